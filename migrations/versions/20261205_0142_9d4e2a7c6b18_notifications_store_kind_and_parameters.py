"""notifications store kind and parameters

Revision ID: 9d4e2a7c6b18
Revises: 5e9b2d7a4c1f
Create Date: 2026-12-05 01:30:00.000000

A notification stored its title and body in the language of the moment it was written (Chinese);
it now stores its parameters and is rendered in the reader's language. Rows written before keep
their text (params NULL) and are shown as they were.
"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '9d4e2a7c6b18'
down_revision = '5e9b2d7a4c1f'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.add_column(sa.Column('params', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.drop_column('params')
