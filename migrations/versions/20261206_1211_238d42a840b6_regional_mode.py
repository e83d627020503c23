"""regional mode: the hospital's outbox to its centre; the centre's hospitals, submissions and values; the centre role

Revision ID: 238d42a840b6
Revises: e4b7c2d9a615
Create Date: 2026-12-06 12:11:32.013159

One codebase, two installations (docs/region.md): a hospital uses region_outbox, a centre the other three tables.
None of them holds a patient.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '238d42a840b6'
down_revision = 'e4b7c2d9a615'
branch_labels = None
depends_on = None

OLD_ROLES = "role IN ('clinician', 'nurse', 'dept_head', 'quality', 'admin', 'interface')"
NEW_ROLES = "role IN ('clinician', 'nurse', 'dept_head', 'quality', 'admin', 'interface', 'centre')"


def _replace_role_check(sql: str) -> None:
    with op.batch_alter_table('user_role', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_user_role_role_valid'), type_='check')
        batch_op.create_check_constraint(op.f('ck_user_role_role_valid'), sql)


def upgrade():
    _replace_role_check(NEW_ROLES)
    op.create_table('region_hospital',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('name_en', sa.String(length=100), nullable=True),
    sa.Column('level', sa.String(length=10), nullable=False),
    sa.Column('ownership', sa.String(length=10), nullable=False),
    sa.Column('region', sa.String(length=60), nullable=False),
    sa.Column('public_key', sa.String(length=64), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=80), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint("level IN ('tertiary', 'secondary')", name=op.f('ck_region_hospital_level_valid')),
    sa.CheckConstraint("ownership IN ('public', 'private')", name=op.f('ck_region_hospital_ownership_valid')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_region_hospital')),
    sa.UniqueConstraint('code', name=op.f('uq_region_hospital_code'))
    )
    op.create_table('region_reminder',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('month_on', sa.Date(), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('missing', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_region_reminder')),
    sa.UniqueConstraint('month_on', name=op.f('uq_region_reminder_month_on'))
    )
    op.create_table('region_outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('document', sa.Text(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('answer', sa.JSON(), nullable=True),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=80), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint("kind IN ('month', 'annual_form', 'quarterly_form')", name=op.f('ck_region_outbox_kind_valid')),
    sa.CheckConstraint("state IN ('queued', 'sent', 'waiting', 'accepted', 'rejected')", name=op.f('ck_region_outbox_state_valid')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_region_outbox')),
    sa.UniqueConstraint('kind', 'period', 'revision', name='uq_region_outbox_revision')
    )
    with op.batch_alter_table('region_outbox', schema=None) as batch_op:
        batch_op.create_index('ix_region_outbox_due', ['state', 'next_attempt_at'], unique=False)

    op.create_table('region_submission',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('hospital_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('starts_on', sa.Date(), nullable=False),
    sa.Column('ends_on', sa.Date(), nullable=False),
    sa.Column('document', sa.Text(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('signature', sa.String(length=100), nullable=False),
    sa.Column('signed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('is_current', sa.Boolean(), nullable=False),
    sa.CheckConstraint("kind IN ('month', 'annual_form', 'quarterly_form')", name=op.f('ck_region_submission_kind_valid')),
    sa.ForeignKeyConstraint(['hospital_id'], ['region_hospital.id'], name=op.f('fk_region_submission_hospital_id_region_hospital')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_region_submission')),
    sa.UniqueConstraint('hospital_id', 'kind', 'period', 'revision', name='uq_region_submission_revision')
    )
    with op.batch_alter_table('region_submission', schema=None) as batch_op:
        batch_op.create_index('ix_region_submission_period', ['kind', 'period', 'hospital_id'], unique=False)
        batch_op.create_index('ix_region_submission_received', ['received_at', 'id'], unique=False)

    op.create_table('region_value',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('submission_id', sa.Integer(), nullable=False),
    sa.Column('hospital_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=60), nullable=False),
    sa.Column('month_on', sa.Date(), nullable=False),
    sa.Column('numerator', sa.BigInteger(), nullable=True),
    sa.Column('denominator', sa.BigInteger(), nullable=True),
    sa.Column('value', sa.Float(), nullable=True),
    sa.Column('is_current', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['hospital_id'], ['region_hospital.id'], name=op.f('fk_region_value_hospital_id_region_hospital')),
    sa.ForeignKeyConstraint(['submission_id'], ['region_submission.id'], name=op.f('fk_region_value_submission_id_region_submission')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_region_value'))
    )
    with op.batch_alter_table('region_value', schema=None) as batch_op:
        batch_op.create_index('ix_region_value_current', ['code', 'month_on', 'hospital_id'], unique=False, sqlite_where=sa.text('is_current'), postgresql_where=sa.text('is_current'))
        batch_op.create_index('ix_region_value_hospital', ['hospital_id', 'month_on'], unique=False)
        batch_op.create_index(batch_op.f('ix_region_value_submission_id'), ['submission_id'], unique=False)



def downgrade():
    with op.batch_alter_table('region_value', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_region_value_submission_id'))
        batch_op.drop_index('ix_region_value_hospital')
        batch_op.drop_index('ix_region_value_current', sqlite_where=sa.text('is_current'), postgresql_where=sa.text('is_current'))

    op.drop_table('region_value')
    with op.batch_alter_table('region_submission', schema=None) as batch_op:
        batch_op.drop_index('ix_region_submission_received')
        batch_op.drop_index('ix_region_submission_period')

    op.drop_table('region_submission')
    with op.batch_alter_table('region_outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_region_outbox_due')

    op.drop_table('region_outbox')
    op.drop_table('region_hospital')
    op.drop_table('region_reminder')
    op.execute("DELETE FROM user_role WHERE role = 'centre'")
    _replace_role_check(OLD_ROLES)
