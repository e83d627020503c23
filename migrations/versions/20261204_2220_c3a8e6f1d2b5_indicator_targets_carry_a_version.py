"""indicator targets carry a version

Revision ID: c3a8e6f1d2b5
Revises: f3b8d1c6a2e7
Create Date: 2026-12-04 22:20:00.000000

PUT /api/v1/indicators/targets and the targets page replaced an existing target without knowing
what the administrator had seen; replacing one now needs its version (stale → 409).
"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'c3a8e6f1d2b5'
down_revision = 'f3b8d1c6a2e7'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('indicator_target', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version', sa.Integer(), nullable=False, server_default='1'))


def downgrade():
    with op.batch_alter_table('indicator_target', schema=None) as batch_op:
        batch_op.drop_column('version')
