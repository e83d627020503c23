"""MDT clinics (多学科门诊): specialties and weekly slots

Revision ID: e4b7c2d9a615
Revises: ca6184ac1363
Create Date: 2026-12-06 08:00:00.000000

The indicator mdt_clinic_count counts the clinics active on a period's last day with a weekly slot and at least
two specialties (Yubei [002:321-325]: at least 3 for tertiary hospitals, 1 for secondary).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e4b7c2d9a615'
down_revision = 'ca6184ac1363'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('mdt_clinic',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('name_en', sa.String(length=100), nullable=False),
    sa.Column('department_id', sa.Integer(), nullable=False),
    sa.Column('specialties', sa.JSON(), nullable=False),
    sa.Column('active_from', sa.Date(), nullable=False),
    sa.Column('active_to', sa.Date(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint('active_to IS NULL OR active_to >= active_from', name=op.f('ck_mdt_clinic_active_to_after_from')),
    sa.ForeignKeyConstraint(['department_id'], ['department.id'], name=op.f('fk_mdt_clinic_department_id_department')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mdt_clinic'))
    )
    with op.batch_alter_table('mdt_clinic', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mdt_clinic_department_id'), ['department_id'], unique=False)

    op.create_table('mdt_clinic_slot',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('clinic_id', sa.Integer(), nullable=False),
    sa.Column('weekday', sa.SmallInteger(), nullable=False),
    sa.Column('starts_at', sa.Time(), nullable=False),
    sa.Column('ends_at', sa.Time(), nullable=False),
    sa.CheckConstraint('ends_at > starts_at', name=op.f('ck_mdt_clinic_slot_ends_after_start')),
    sa.CheckConstraint('weekday BETWEEN 1 AND 7', name=op.f('ck_mdt_clinic_slot_weekday_valid')),
    sa.ForeignKeyConstraint(['clinic_id'], ['mdt_clinic.id'], name=op.f('fk_mdt_clinic_slot_clinic_id_mdt_clinic'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mdt_clinic_slot'))
    )
    with op.batch_alter_table('mdt_clinic_slot', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mdt_clinic_slot_clinic_id'), ['clinic_id'], unique=False)


def downgrade():
    with op.batch_alter_table('mdt_clinic_slot', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mdt_clinic_slot_clinic_id'))
    op.drop_table('mdt_clinic_slot')
    with op.batch_alter_table('mdt_clinic', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mdt_clinic_department_id'))
    op.drop_table('mdt_clinic')
