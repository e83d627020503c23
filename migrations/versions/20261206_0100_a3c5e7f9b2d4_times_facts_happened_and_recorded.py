"""the time a fact happened and the time it was recorded

Revision ID: a3c5e7f9b2d4
Revises: e61b0c4f8a27
Create Date: 2026-12-06 01:00:00.000000

A report's submission, a discussion's signature and a follow-up call's completion may be given the
time they happened when they are recorded late (a paper report typed in, a record signed on paper,
yesterday's call). The existing columns keep that meaning; the new *_recorded_at columns hold when
qcflow recorded them. Existing rows were recorded when they happened.
"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'a3c5e7f9b2d4'
down_revision = 'e61b0c4f8a27'
branch_labels = None
depends_on = None

#: (table, the new column, the time it was recorded for rows written before).
COLUMNS = (
    ('adverse_event', 'submitted_recorded_at', 'submitted_at'),
    ('mdt_discussion', 'signed_recorded_at', 'signed_at'),
    ('followup_task', 'closed_recorded_at', 'closed_at'),
    ('followup_attempt', 'recorded_at', 'attempted_at'),
)


def upgrade():
    for table, column, happened in COLUMNS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column(column, sa.DateTime(timezone=True), nullable=True))
        op.execute(f"UPDATE {table} SET {column} = {happened}")
    with op.batch_alter_table('followup_attempt', schema=None) as batch_op:
        batch_op.alter_column('recorded_at', existing_type=sa.DateTime(timezone=True), nullable=False)


def downgrade():
    # Plain DROP COLUMN (SQLite >= 3.35): a batch copy would drop tables other tables' rows refer to.
    for table, column, _happened in reversed(COLUMNS):
        op.drop_column(table, column)
