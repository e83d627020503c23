"""anonymous reports ordered by their hour only; the anonymous audit chain

Revision ID: f3b8d1c6a2e7
Revises: b7e3d1c9a2f4
Create Date: 2026-12-04 22:00:00.000000

Nothing may order an anonymous report among named ones more finely than its stored hour:
- its audit entries go into their own append-only chain (audit_anonymous_entry, head id 2);
- the case lists are ordered by (submitted_at, id) instead of id (anonymous ids are random), so
  the list indexes become (submitted_at, id) and (column, submitted_at, id);
- `is_announced`: an anonymous report is announced to the quality office after its hour has ended.
  Every existing report was announced at submission.
- `event_message.number`: a case's messages are shown in this order (1, 2, …), not by id, which is
  random for an anonymous reporter's replies. Existing messages are numbered in id order.
"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'f3b8d1c6a2e7'
down_revision = 'b7e3d1c9a2f4'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('audit_anonymous_entry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=80), nullable=False),
    sa.Column('action', sa.String(length=80), nullable=False),
    sa.Column('object_type', sa.String(length=60), nullable=False),
    sa.Column('object_id', sa.String(length=60), nullable=True),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_anonymous_entry')),
    sa.UniqueConstraint('seq', name=op.f('uq_audit_anonymous_entry_seq'))
    )
    with op.batch_alter_table('audit_anonymous_entry', schema=None) as batch_op:
        batch_op.create_index('ix_audit_anonymous_entry_object', ['object_type', 'object_id'], unique=False)

    with op.batch_alter_table('adverse_event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('is_announced', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.drop_index('ix_adverse_event_state_id')
        batch_op.drop_index('ix_adverse_event_department_id_id')
        batch_op.drop_index('ix_adverse_event_handling_department_id_id')
        batch_op.drop_index('ix_adverse_event_submitted_at')
        batch_op.create_index('ix_adverse_event_submitted_at_id', ['submitted_at', 'id'], unique=False)
        batch_op.create_index('ix_adverse_event_state_submitted_at_id', ['state', 'submitted_at', 'id'], unique=False)
        batch_op.create_index('ix_adverse_event_department_id_submitted_at_id',
                              ['department_id', 'submitted_at', 'id'], unique=False)
        batch_op.create_index('ix_adverse_event_handling_department_id_submitted_at_id',
                              ['handling_department_id', 'submitted_at', 'id'], unique=False)
    op.execute("UPDATE adverse_event SET is_announced = " + ("true" if op.get_bind().dialect.name == "postgresql" else "1"))

    with op.batch_alter_table('event_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('number', sa.Integer(), nullable=True))
    op.execute("UPDATE event_message SET number = (SELECT count(*) FROM event_message AS earlier "
               "WHERE earlier.event_id = event_message.event_id AND earlier.id <= event_message.id)")
    with op.batch_alter_table('event_message', schema=None) as batch_op:
        batch_op.alter_column('number', existing_type=sa.Integer(), nullable=False)
        batch_op.create_unique_constraint('uq_event_message_event_id_number', ['event_id', 'number'])

    # Append-only like audit_entry (I2).
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION audit_anonymous_entry_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'audit_anonymous_entry is append-only (% refused)', TG_OP;
            END $$
            """
        )
        op.execute(
            "CREATE TRIGGER audit_anonymous_entry_append_only BEFORE UPDATE OR DELETE OR TRUNCATE "
            "ON audit_anonymous_entry FOR EACH STATEMENT EXECUTE FUNCTION audit_anonymous_entry_refuse_change()"
        )
    else:
        op.execute(
            "CREATE TRIGGER audit_anonymous_entry_no_update BEFORE UPDATE ON audit_anonymous_entry "
            "BEGIN SELECT RAISE(ABORT, 'audit_anonymous_entry is append-only (UPDATE refused)'); END"
        )
        op.execute(
            "CREATE TRIGGER audit_anonymous_entry_no_delete BEFORE DELETE ON audit_anonymous_entry "
            "BEGIN SELECT RAISE(ABORT, 'audit_anonymous_entry is append-only (DELETE refused)'); END"
        )


def downgrade():
    with op.batch_alter_table('event_message', schema=None) as batch_op:
        batch_op.drop_constraint('uq_event_message_event_id_number', type_='unique')
        batch_op.drop_column('number')
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_anonymous_entry_append_only ON audit_anonymous_entry")
        op.execute("DROP FUNCTION audit_anonymous_entry_refuse_change()")
    with op.batch_alter_table('adverse_event', schema=None) as batch_op:
        batch_op.drop_index('ix_adverse_event_handling_department_id_submitted_at_id')
        batch_op.drop_index('ix_adverse_event_department_id_submitted_at_id')
        batch_op.drop_index('ix_adverse_event_state_submitted_at_id')
        batch_op.drop_index('ix_adverse_event_submitted_at_id')
        batch_op.create_index('ix_adverse_event_submitted_at', ['submitted_at'], unique=False)
        batch_op.create_index('ix_adverse_event_handling_department_id_id', ['handling_department_id', 'id'],
                              unique=False)
        batch_op.create_index('ix_adverse_event_department_id_id', ['department_id', 'id'], unique=False)
        batch_op.create_index('ix_adverse_event_state_id', ['state', 'id'], unique=False)
        batch_op.drop_column('is_announced')
    with op.batch_alter_table('audit_anonymous_entry', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_anonymous_entry_object')
    op.drop_table('audit_anonymous_entry')
