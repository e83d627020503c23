"""API tokens expire; login failures know their (hashed) address and known browser

Revision ID: 5b8e3d1c7a62
Revises: a4f7c2e9b1d3
Create Date: 2026-12-04 21:40:00.000000

Tokens get `expires_at`. Tokens issued before this revision had none: they expire 90 days after the
upgrade (the default API_TOKEN_DAYS), so a running interface keeps working while its operator
replaces the token (`tokens list` shows the date). Login failures record a keyed hash of the client
address and of the browser's known-browser mark, so throttling can slow an attacker's address
without locking the account's owner out.
"""
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '5b8e3d1c7a62'
down_revision = 'a4f7c2e9b1d3'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.add_column(sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True))
    expires = datetime.now(timezone.utc) + timedelta(days=90)
    if op.get_bind().dialect.name == 'sqlite':
        expires = expires.replace(tzinfo=None)  # stored as naive UTC text, as qcflow.core.db.UTCDateTime does
    token = sa.table('api_token', sa.column('expires_at', sa.DateTime(timezone=True)))
    op.execute(token.update().where(token.c.expires_at.is_(None)).values(expires_at=expires))
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.alter_column('expires_at', existing_type=sa.DateTime(timezone=True), nullable=False)

    with op.batch_alter_table('login_failure', schema=None) as batch_op:
        batch_op.add_column(sa.Column('address_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('browser_hash', sa.String(length=64), nullable=True))
        batch_op.create_index('ix_login_failure_address_hash_failed_at', ['address_hash', 'failed_at'], unique=False)


def downgrade():
    with op.batch_alter_table('login_failure', schema=None) as batch_op:
        batch_op.drop_index('ix_login_failure_address_hash_failed_at')
        batch_op.drop_column('browser_hash')
        batch_op.drop_column('address_hash')
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.drop_column('expires_at')
