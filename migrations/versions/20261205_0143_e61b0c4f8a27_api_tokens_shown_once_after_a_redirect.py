"""api tokens shown once after a redirect

Revision ID: e61b0c4f8a27
Revises: 9d4e2a7c6b18
Create Date: 2026-12-05 01:50:00.000000

Creating a token answered the POST with the token itself, so reloading the page posted again and
created a second token. The POST now redirects; the new token waits in api_token_reveal (at most a
few minutes) until the tokens page shows it once to the session that created it.
"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'e61b0c4f8a27'
down_revision = '9d4e2a7c6b18'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'api_token_reveal',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('token_id', sa.Integer(), nullable=False),
        sa.Column('session_hash', sa.String(length=64), nullable=False),
        sa.Column('secret', sa.String(length=100), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['token_id'], ['api_token.id'], name=op.f('fk_api_token_reveal_token_id_api_token'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_api_token_reveal')),
    )
    with op.batch_alter_table('api_token_reveal', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_token_reveal_session_hash'), ['session_hash'], unique=False)


def downgrade():
    with op.batch_alter_table('api_token_reveal', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_token_reveal_session_hash'))
    op.drop_table('api_token_reveal')
