"""idempotency keys stored as keyed hashes scoped to the client, anonymous ones unlinked

Revision ID: b7e3d1c9a2f4
Revises: 5b8e3d1c7a62
Create Date: 2026-12-04 21:50:00.000000

The key was stored verbatim, forever, with the id of the report it filed, and a replay by anyone
returned that id. Now the primary key is an HMAC of the client's scope and the key, an anonymous
report's row points at no report, and the housekeeping job deletes rows after
IDEMPOTENCY_KEY_HOURS. The stored keys are dropped, not converted: they only protect retries of the
last minutes, and converting them would keep the links this revision removes.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'b7e3d1c9a2f4'
down_revision = '5b8e3d1c7a62'
branch_labels = None
depends_on = None


def upgrade():
    op.drop_table('idempotency_key')
    op.create_table('idempotency_key',
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['adverse_event.id'], name=op.f('fk_idempotency_key_event_id_adverse_event')),
    sa.PrimaryKeyConstraint('key_hash', name=op.f('pk_idempotency_key'))
    )
    op.create_index(op.f('ix_idempotency_key_created_at'), 'idempotency_key', ['created_at'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_idempotency_key_created_at'), table_name='idempotency_key')
    op.drop_table('idempotency_key')
    op.create_table('idempotency_key',
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['adverse_event.id'], name=op.f('fk_idempotency_key_event_id_adverse_event')),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_idempotency_key'))
    )
