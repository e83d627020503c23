"""follow-up: why the system cancelled a call or ended a plan is stored as a code

Revision ID: bfa91eba3f1b
Revises: c3a8e6f1d2b5
Create Date: 2026-12-05 01:40:00.000000

The system's reasons (protocol changed, plan paused or ended, death recorded, unreachable call after
call) were stored as sentences in the server's language; they are now codes the pages show as labels
in the reader's language. The reason a person gives stays free text beside the code.

The protocols installed with qcflow carried an English note for developers ("default protocol
(DESIGN §6)") that the administrator's protocol page showed as the version's change note; they have
no change note.
"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'bfa91eba3f1b'
down_revision = 'c3a8e6f1d2b5'
branch_labels = None
depends_on = None

#: Also applied by the tests' PostgreSQL reset, which re-seeds the default protocols from their migration.
CLEAR_DEVELOPER_NOTE = ("UPDATE followup_protocol SET change_note = NULL "
                        "WHERE created_by = 'system:migration' AND change_note = 'default protocol (DESIGN §6)'")


def upgrade():
    with op.batch_alter_table('followup_task', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cancel_code', sa.String(length=20), nullable=True))
    with op.batch_alter_table('followup_plan', schema=None) as batch_op:
        batch_op.add_column(sa.Column('end_code', sa.String(length=20), nullable=True))
    op.execute(CLEAR_DEVELOPER_NOTE)


def downgrade():
    op.execute("UPDATE followup_protocol SET change_note = 'default protocol (DESIGN §6)' "
               "WHERE created_by = 'system:migration' AND version_no = 1 AND change_note IS NULL")
    with op.batch_alter_table('followup_plan', schema=None) as batch_op:
        batch_op.drop_column('end_code')
    with op.batch_alter_table('followup_task', schema=None) as batch_op:
        batch_op.drop_column('cancel_code')
