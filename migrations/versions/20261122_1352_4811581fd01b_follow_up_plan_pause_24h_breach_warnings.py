"""follow-up plan pause, 24 h breach warnings

Revision ID: 4811581fd01b
Revises: ff2853041db4
Create Date: 2026-11-22 13:52:53.783298

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '4811581fd01b'
down_revision = 'ff2853041db4'
branch_labels = None
depends_on = None


OLD = "state IN ('active', 'stopped', 'lost', 'withdrawn')"
NEW = "state IN ('active', 'paused', 'stopped', 'lost', 'withdrawn')"


def _replace_check(sql: str) -> None:
    with op.batch_alter_table('followup_plan', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_followup_plan_state_valid'), type_='check')
        batch_op.create_check_constraint(op.f('ck_followup_plan_state_valid'), sql)


URGENT_OPEN = "is_urgent AND breach_level < 2 AND state IN ('pending', 'in_progress')"


def upgrade():
    _replace_check(NEW)
    with op.batch_alter_table('followup_task', schema=None) as batch_op:
        batch_op.add_column(sa.Column('breach_level', sa.SmallInteger(), server_default='0', nullable=False))
    with op.batch_alter_table('followup_task', schema=None) as batch_op:
        batch_op.create_index('ix_followup_task_urgent_open', ['closes_at'], unique=False,
                              sqlite_where=sa.text(URGENT_OPEN), postgresql_where=sa.text(URGENT_OPEN))


def downgrade():
    with op.batch_alter_table('followup_task', schema=None) as batch_op:
        batch_op.drop_index('ix_followup_task_urgent_open', sqlite_where=sa.text(URGENT_OPEN),
                            postgresql_where=sa.text(URGENT_OPEN))
        batch_op.drop_column('breach_level')
    op.execute("UPDATE followup_plan SET state = 'active' WHERE state = 'paused'")
    _replace_check(OLD)
