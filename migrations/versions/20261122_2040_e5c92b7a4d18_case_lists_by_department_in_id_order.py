"""case lists by department in id order

Revision ID: e5c92b7a4d18
Revises: d81f3b5a7c20
Create Date: 2026-11-22 20:40:00.000000

P6: a department head's case list is the newest cases the department reported or handles, one
keyset page per column. With an index on the department alone, PostgreSQL read every case of the
department and sorted them to keep 50 (0.4 s at 2.5M cases); (department, id) hands them over in
id order. SQLite's indexes already end with the rowid, so it gains nothing but loses nothing.
"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'e5c92b7a4d18'
down_revision = 'd81f3b5a7c20'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('adverse_event', schema=None) as batch_op:
        batch_op.drop_index('ix_adverse_event_department_id')
        batch_op.drop_index('ix_adverse_event_handling_department_id')
        batch_op.create_index('ix_adverse_event_department_id_id', ['department_id', 'id'], unique=False)
        batch_op.create_index('ix_adverse_event_handling_department_id_id', ['handling_department_id', 'id'],
                              unique=False)


def downgrade():
    with op.batch_alter_table('adverse_event', schema=None) as batch_op:
        batch_op.drop_index('ix_adverse_event_handling_department_id_id')
        batch_op.drop_index('ix_adverse_event_department_id_id')
        batch_op.create_index('ix_adverse_event_handling_department_id', ['handling_department_id'], unique=False)
        batch_op.create_index('ix_adverse_event_department_id', ['department_id'], unique=False)
