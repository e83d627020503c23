"""the HIS interface role

Revision ID: c5e2a8d4f1b7
Revises: a7c41e9d2f60
Create Date: 2026-12-06 01:03:00.000000

The hospital information system's account holds a role of its own, allowed only the intake and the
booking question: it no longer needs the quality office's role (and its notifications and reads).
"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'c5e2a8d4f1b7'
down_revision = 'a7c41e9d2f60'
branch_labels = None
depends_on = None

OLD = "role IN ('clinician', 'nurse', 'dept_head', 'quality', 'admin')"
NEW = "role IN ('clinician', 'nurse', 'dept_head', 'quality', 'admin', 'interface')"


def _replace_check(sql: str) -> None:
    with op.batch_alter_table('user_role', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_user_role_role_valid'), type_='check')
        batch_op.create_check_constraint(op.f('ck_user_role_role_valid'), sql)


def upgrade():
    _replace_check(NEW)


def downgrade():
    op.execute("DELETE FROM user_role WHERE role = 'interface'")
    _replace_check(OLD)
