"""operation cancellation time and reason

Revision ID: a7c4e2b9d316
Revises: a3c5e7f9b2d4
Create Date: 2026-12-06 01:00:00.000000

The HIS pushes an operation's state with its real times; a cancellation keeps when it happened and
why (the manual cancel step stores its reason there too).
"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'a7c4e2b9d316'
down_revision = 'a3c5e7f9b2d4'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('operation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('cancel_reason', sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table('operation', schema=None) as batch_op:
        batch_op.drop_column('cancel_reason')
        batch_op.drop_column('cancelled_at')
