"""follow-up queue index covers the queue's sort and counts

Revision ID: a4f7c2e9b1d3
Revises: e5c92b7a4d18
Create Date: 2026-12-03 16:00:00.000000

P4: the daily queue read every open task of the department from the table (a few hundred rows
scattered over millions) to sort them and to count them by timeliness, and joined each to its
patient before keeping 50. With the sort, filter and timeliness columns and the id in the (partial)
index, the counts and the choice of the page read the index alone; only the page's 50 tasks and
patients are fetched. (SQLite's indexes end with the rowid anyway; PostgreSQL needs the id named.)
"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'a4f7c2e9b1d3'
down_revision = 'e5c92b7a4d18'
branch_labels = None
depends_on = None

OPEN = sa.text("state IN ('pending', 'in_progress')")
COLUMNS = ['department_id', 'opens_at', 'is_urgent', 'closes_at', 'due_at', 'snoozed_until', 'state', 'closed_at',
           'id']


def upgrade():
    with op.batch_alter_table('followup_task', schema=None) as batch_op:
        batch_op.drop_index('ix_followup_task_queue', sqlite_where=OPEN, postgresql_where=OPEN)
        batch_op.create_index('ix_followup_task_queue', COLUMNS, unique=False, sqlite_where=OPEN,
                              postgresql_where=OPEN)


def downgrade():
    with op.batch_alter_table('followup_task', schema=None) as batch_op:
        batch_op.drop_index('ix_followup_task_queue', sqlite_where=OPEN, postgresql_where=OPEN)
        batch_op.create_index('ix_followup_task_queue', ['department_id', 'opens_at'], unique=False,
                              sqlite_where=OPEN, postgresql_where=OPEN)
