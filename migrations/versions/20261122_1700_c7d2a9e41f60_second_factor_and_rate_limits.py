"""second factor (TOTP) for users; per-user rate-limit hits

Revision ID: c7d2a9e41f60
Revises: b3e1f0c2d9a4
Create Date: 2026-11-22 17:00:00.000000

N3: quality-office and admin accounts log in with a password and a TOTP code (RFC 6238).
Z6: exports and PDFs are limited per user; the hits are rows so the limit holds across workers.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c7d2a9e41f60'
down_revision = 'b3e1f0c2d9a4'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('totp_secret', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('totp_last_step', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('totp_enrolled_at', sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        'rate_limit_hit',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('bucket', sa.String(length=40), nullable=False),
        sa.Column('subject', sa.String(length=64), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_rate_limit_hit')),
    )
    with op.batch_alter_table('rate_limit_hit', schema=None) as batch_op:
        batch_op.create_index('ix_rate_limit_hit_bucket_subject_at', ['bucket', 'subject', 'at'], unique=False)


def downgrade():
    with op.batch_alter_table('rate_limit_hit', schema=None) as batch_op:
        batch_op.drop_index('ix_rate_limit_hit_bucket_subject_at')
    op.drop_table('rate_limit_hit')
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_column('totp_enrolled_at')
        batch_op.drop_column('totp_last_step')
        batch_op.drop_column('totp_secret')
