"""indicator monthly rollups

Revision ID: d81f3b5a7c20
Revises: c7d2a9e41f60
Create Date: 2026-11-22 17:10:00.000000

P7/P8: each indicator part's count per settled month, hospital and department, refreshed from the
records by the nightly job `indicators.refresh_rollups` (docs/indicators.md, Rollups). The index on
follow-up calls by pathway and window end lets the refresh count one month of calls at a time.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd81f3b5a7c20'
down_revision = 'c7d2a9e41f60'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('indicator_rollup_month',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('month_on', sa.Date(), nullable=False),
    sa.Column('definition', sa.String(length=16), nullable=False),
    sa.Column('refreshed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_indicator_rollup_month')),
    sa.UniqueConstraint('month_on', name=op.f('uq_indicator_rollup_month_month_on'))
    )
    op.create_table('indicator_rollup',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('month_on', sa.Date(), nullable=False),
    sa.Column('code', sa.String(length=60), nullable=False),
    sa.Column('part', sa.String(length=11), nullable=False),
    sa.Column('department_id', sa.Integer(), nullable=True),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.CheckConstraint("part IN ('numerator', 'denominator')", name=op.f('ck_indicator_rollup_part_valid')),
    sa.ForeignKeyConstraint(['department_id'], ['department.id'], name=op.f('fk_indicator_rollup_department_id_department')),
    sa.ForeignKeyConstraint(['month_on'], ['indicator_rollup_month.month_on'], name=op.f('fk_indicator_rollup_month_on_indicator_rollup_month')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_indicator_rollup')),
    sa.UniqueConstraint('department_id', 'month_on', 'code', 'part', name='uq_indicator_rollup_department_month')
    )
    with op.batch_alter_table('indicator_rollup', schema=None) as batch_op:
        batch_op.create_index('uq_indicator_rollup_hospital', ['month_on', 'code', 'part'], unique=True, sqlite_where=sa.text('department_id IS NULL'), postgresql_where=sa.text('department_id IS NULL'))

    with op.batch_alter_table('followup_task', schema=None) as batch_op:
        batch_op.create_index('ix_followup_task_pathway_closes_at', ['pathway', 'closes_at'], unique=False)


def downgrade():
    with op.batch_alter_table('followup_task', schema=None) as batch_op:
        batch_op.drop_index('ix_followup_task_pathway_closes_at')

    with op.batch_alter_table('indicator_rollup', schema=None) as batch_op:
        batch_op.drop_index('uq_indicator_rollup_hospital', sqlite_where=sa.text('department_id IS NULL'), postgresql_where=sa.text('department_id IS NULL'))

    op.drop_table('indicator_rollup')
    op.drop_table('indicator_rollup_month')
