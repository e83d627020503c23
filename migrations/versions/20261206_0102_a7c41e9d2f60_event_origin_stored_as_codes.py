"""event origin stored as codes

Revision ID: a7c41e9d2f60
Revises: a7c4e2b9d316
Create Date: 2026-12-06 01:30:00.000000

A report filed from a follow-up call stored its place ("出院后（随访发现）") and opening sentence
("第 1 次随访（日间手术随访，…）发现：并发症。") in the filer's language. It now stores what generated it
(`adverse_event.origin`: the call's number, pathway, due date and findings, as codes) and the case page
writes the place and the sentence in each reader's language; the description keeps only the nurse's words.
Reports stored before keep their text as it is.
"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'a7c41e9d2f60'
down_revision = 'a7c4e2b9d316'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('adverse_event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('origin', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('adverse_event', schema=None) as batch_op:
        batch_op.drop_column('origin')
