"""follow-up task: drop the foreign keys of the columns copied from the plan

Revision ID: b3e1f0c2d9a4
Revises: e7a21c57e94b
Create Date: 2026-11-22 14:25:00.000000

A task's protocol_id, patient_id and department_id are copied from its plan, whose own foreign
keys check them; the task's checks only cost the generator (≈ half of its insert on PostgreSQL,
docs/performance.md P3). plan_id keeps its foreign key.
"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'b3e1f0c2d9a4'
down_revision = 'e7a21c57e94b'
branch_labels = None
depends_on = None

COPIED = (("protocol_id", "followup_protocol"), ("patient_id", "patient"), ("department_id", "department"))


def upgrade():
    with op.batch_alter_table('followup_task', schema=None) as batch_op:
        for column, table in COPIED:
            batch_op.drop_constraint(op.f(f'fk_followup_task_{column}_{table}'), type_='foreignkey')


def downgrade():
    with op.batch_alter_table('followup_task', schema=None) as batch_op:
        for column, table in COPIED:
            batch_op.create_foreign_key(op.f(f'fk_followup_task_{column}_{table}'), table, [column], ['id'])
