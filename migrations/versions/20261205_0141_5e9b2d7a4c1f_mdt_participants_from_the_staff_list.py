"""mdt participants from the staff list; specialties as codes

Revision ID: 5e9b2d7a4c1f
Revises: bfa91eba3f1b
Create Date: 2026-12-05 01:40:00.000000

A participant may now be any staff-list entry, with or without a user account (visiting experts,
anaesthetists without a login): mdt_participant.staff_id. Specialties become codes of one list
(qcflow.clinical.models.SPECIALTIES); specialties stored as free text by hand or by an HIS
("麻醉", "普外科", "Anesthesia") are mapped to their codes, so the quorum counts them. Values the
mapping does not know stay as they are (shown as written).
"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '5e9b2d7a4c1f'
down_revision = 'bfa91eba3f1b'
branch_labels = None
depends_on = None

#: Free text seen in staff lists → specialty code (frozen here: the list may grow, this mapping does not).
ALIASES = {
    "general_surgery": ("普外", "普外科", "普通外科", "外科", "general surgery", "surgery"),
    "hepatobiliary_surgery": ("肝胆外科", "肝胆胰外科", "hepatobiliary surgery"),
    "gastrointestinal_surgery": ("胃肠外科", "gastrointestinal surgery"),
    "thoracic_surgery": ("胸外科", "thoracic surgery"),
    "cardiac_surgery": ("心外科", "心脏外科", "心脏大血管外科", "cardiac surgery"),
    "vascular_surgery": ("血管外科", "vascular surgery"),
    "neurosurgery": ("神经外科", "神外"),
    "orthopaedics": ("骨科", "orthopedics", "orthopaedic surgery"),
    "urology": ("泌尿外科",),
    "obstetrics_gynaecology": ("妇产科", "妇科", "产科", "obstetrics", "gynaecology", "gynecology"),
    "paediatrics": ("儿科", "pediatrics"),
    "ent": ("耳鼻喉科", "耳鼻咽喉科", "耳鼻喉"),
    "ophthalmology": ("眼科",),
    "anaesthesia": ("麻醉", "麻醉科", "麻醉学", "anesthesia", "anesthesiology", "anaesthesiology", "anaesthetics"),
    "icu": ("重症医学科", "重症医学", "icu", "重症监护", "critical care"),
    "emergency": ("急诊", "急诊科", "emergency medicine"),
    "cardiology": ("心内科", "心血管内科", "心内"),
    "respiratory": ("呼吸内科", "呼吸科", "呼吸与危重症医学科"),
    "gastroenterology": ("消化内科", "消化科"),
    "nephrology": ("肾内科", "肾脏内科"),
    "endocrinology": ("内分泌科",),
    "neurology": ("神经内科", "神内"),
    "haematology": ("血液科", "血液内科", "hematology"),
    "infectious_diseases": ("感染科", "感染性疾病科"),
    "oncology": ("肿瘤科", "肿瘤内科"),
    "radiation_oncology": ("放疗科", "放射治疗科"),
    "radiology": ("放射科", "影像科", "医学影像科"),
    "ultrasound": ("超声科", "超声医学科"),
    "pathology": ("病理科", "病理"),
    "laboratory": ("检验科",),
    "pharmacy": ("药学部", "药剂科", "临床药学"),
    "nursing": ("护理", "护理部"),
    "nutrition": ("营养科", "临床营养科"),
    "rehabilitation": ("康复科", "康复医学科"),
}


def _normalise(table: str) -> None:
    column = sa.table(table, sa.column('specialty', sa.String))
    bind = op.get_bind()
    for code, aliases in ALIASES.items():
        written = {code.replace("_", " "), *aliases}
        for text in written:
            bind.execute(column.update().where(sa.func.lower(sa.func.trim(column.c.specialty)) == text.lower())
                         .values(specialty=code))
        bind.execute(column.update().where(sa.func.lower(sa.func.trim(column.c.specialty)) == code,
                                           column.c.specialty != code).values(specialty=code))


def upgrade():
    with op.batch_alter_table('mdt_participant', schema=None) as batch_op:
        batch_op.add_column(sa.Column('staff_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_mdt_participant_staff_id_staff', 'staff', ['staff_id'], ['id'])
        batch_op.create_index('ix_mdt_participant_staff_id', ['staff_id'], unique=False)
        batch_op.create_unique_constraint('uq_mdt_participant_staff', ['discussion_id', 'staff_id'])
    # Colleagues invited so far are the staff entry linked to their user.
    op.execute("UPDATE mdt_participant SET staff_id = (SELECT staff.id FROM staff WHERE staff.user_id = "
               "mdt_participant.user_id) WHERE user_id IS NOT NULL")
    _normalise('staff')
    _normalise('mdt_participant')


def downgrade():
    with op.batch_alter_table('mdt_participant', schema=None) as batch_op:
        batch_op.drop_constraint('uq_mdt_participant_staff', type_='unique')
        batch_op.drop_index('ix_mdt_participant_staff_id')
        batch_op.drop_constraint('fk_mdt_participant_staff_id_staff', type_='foreignkey')
        batch_op.drop_column('staff_id')
