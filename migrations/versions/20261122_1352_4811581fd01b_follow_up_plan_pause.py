"""follow-up plan pause

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


def upgrade():
    _replace_check(NEW)


def downgrade():
    op.execute("UPDATE followup_plan SET state = 'active' WHERE state = 'paused'")
    _replace_check(OLD)
