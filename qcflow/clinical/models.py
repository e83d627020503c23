"""Patients, encounters, operations, cancer diagnoses, the procedure catalogue, staff, census."""
from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Mapped, mapped_column, relationship

from qcflow.clinical.workflow import OperationState
from qcflow.core.db import Base, Versioned, enum_check
from qcflow.core.i18n import register_labels

SEXES = ("M", "F", "U")

#: The clinical specialties of the staff list and of MDT participants (the quorum counts distinct ones);
#: the HIS and the forms send the code, pages show the label.
SPECIALTIES = {
    "general_surgery": _l("General surgery"),
    "hepatobiliary_surgery": _l("Hepatobiliary surgery"),
    "gastrointestinal_surgery": _l("Gastrointestinal surgery"),
    "thoracic_surgery": _l("Thoracic surgery"),
    "cardiac_surgery": _l("Cardiac surgery"),
    "vascular_surgery": _l("Vascular surgery"),
    "neurosurgery": _l("Neurosurgery"),
    "orthopaedics": _l("Orthopaedics"),
    "urology": _l("Urology"),
    "obstetrics_gynaecology": _l("Obstetrics and gynaecology"),
    "paediatrics": _l("Paediatrics"),
    "ent": _l("Otorhinolaryngology (ENT)"),
    "ophthalmology": _l("Ophthalmology"),
    "anaesthesia": _l("Anaesthesia"),
    "icu": _l("Critical care medicine"),
    "emergency": _l("Emergency medicine"),
    "cardiology": _l("Cardiology"),
    "respiratory": _l("Respiratory medicine"),
    "gastroenterology": _l("Gastroenterology"),
    "nephrology": _l("Nephrology"),
    "endocrinology": _l("Endocrinology"),
    "neurology": _l("Neurology"),
    "haematology": _l("Haematology"),
    "infectious_diseases": _l("Infectious diseases"),
    "oncology": _l("Oncology"),
    "radiation_oncology": _l("Radiation oncology"),
    "radiology": _l("Radiology"),
    "ultrasound": _l("Ultrasound"),
    "pathology": _l("Pathology"),
    "laboratory": _l("Laboratory medicine"),
    "pharmacy": _l("Clinical pharmacy"),
    "nursing": _l("Nursing"),
    "nutrition": _l("Clinical nutrition"),
    "rehabilitation": _l("Rehabilitation medicine"),
}
DISPOSITIONS = ("home", "transfer", "death", "against_advice", "other")


class CancerType(StrEnum):
    LUNG = "lung"
    GASTRIC = "gastric"
    LIVER = "liver"
    BREAST = "breast"
    COLORECTAL = "colorectal"
    OTHER = "other"


class Procedure(Base):
    """The procedure catalogue (national clinical code); restricted technology is managed as grade 4."""

    __tablename__ = "procedure"

    code: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    grade: Mapped[int]
    is_restricted_technology: Mapped[bool] = mapped_column(default=False)
    is_day_surgery_allowed: Mapped[bool] = mapped_column(default=False)
    is_active: Mapped[bool] = mapped_column(default=True)

    __table_args__ = (sa.CheckConstraint("grade BETWEEN 1 AND 4", name="grade_valid"),)

    @property
    def needs_mdt(self) -> bool:
        return self.grade == 4 or self.is_restricted_technology


class Staff(Versioned, Base):
    """Clinical staff as the HIS knows them (surgeons, anaesthetists); linked to a qcflow user if any."""

    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Staff number in the HIS.
    his_id: Mapped[str] = mapped_column(sa.String(40), unique=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    department_id: Mapped[int | None] = mapped_column(sa.ForeignKey("department.id"))
    #: e.g. general_surgery, anaesthesia, oncology (used for MDT quorum).
    specialty: Mapped[str | None] = mapped_column(sa.String(60))
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"), unique=True)
    is_active: Mapped[bool] = mapped_column(default=True)


class SurgeonAuthorisation(Base):
    __tablename__ = "surgeon_authorisation"

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int] = mapped_column(sa.ForeignKey("staff.id"), index=True)
    procedure_code: Mapped[str] = mapped_column(sa.ForeignKey("procedure.code"))
    valid_from: Mapped[date]
    #: None: no end date.
    valid_until: Mapped[date | None]

    __table_args__ = (sa.UniqueConstraint("staff_id", "procedure_code", "valid_from", name="uq_authorisation_period"),)


class Patient(Versioned, Base):
    __tablename__ = "patient"

    id: Mapped[int] = mapped_column(primary_key=True)
    his_id: Mapped[str] = mapped_column(sa.String(40), unique=True)
    #: 病案号.
    mrn: Mapped[str] = mapped_column(sa.String(40), index=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    sex: Mapped[str] = mapped_column(sa.String(1))
    birth_on: Mapped[date | None]
    #: Shown masked everywhere except the assigned nurse's task view.
    phone: Mapped[str | None] = mapped_column(sa.String(30))
    id_number: Mapped[str | None] = mapped_column(sa.String(30))
    #: Date of death, when recorded (by the HIS or a follow-up call).
    died_on: Mapped[date | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (enum_check("sex", SEXES),)


class Encounter(Versioned, Base):
    __tablename__ = "encounter"

    id: Mapped[int] = mapped_column(primary_key=True)
    his_id: Mapped[str] = mapped_column(sa.String(40), unique=True)
    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("patient.id"), index=True)
    department_id: Mapped[int] = mapped_column(sa.ForeignKey("department.id"), index=True)
    admitted_at: Mapped[datetime]
    discharged_at: Mapped[datetime | None] = mapped_column(index=True)
    is_day_surgery: Mapped[bool] = mapped_column(default=False)
    disposition: Mapped[str | None] = mapped_column(sa.String(16))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    patient: Mapped[Patient] = relationship(lazy="joined")

    __table_args__ = (
        sa.CheckConstraint(f"disposition IS NULL OR disposition IN ({', '.join(repr(d) for d in DISPOSITIONS)})",
                           name="disposition_valid"),
        sa.CheckConstraint("discharged_at IS NULL OR discharged_at >= admitted_at", name="discharge_after_admission"),
    )


class Operation(Versioned, Base):
    __tablename__ = "operation"

    id: Mapped[int] = mapped_column(primary_key=True)
    his_id: Mapped[str] = mapped_column(sa.String(40), unique=True)
    encounter_id: Mapped[int] = mapped_column(sa.ForeignKey("encounter.id"), index=True)
    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("patient.id"), index=True)
    department_id: Mapped[int] = mapped_column(sa.ForeignKey("department.id"), index=True)
    procedure_code: Mapped[str] = mapped_column(sa.ForeignKey("procedure.code"))
    #: Copied from the catalogue when recorded (the catalogue wins over the feed).
    grade: Mapped[int]
    is_restricted_technology: Mapped[bool] = mapped_column(default=False)
    surgeon_staff_id: Mapped[int] = mapped_column(sa.ForeignKey("staff.id"), index=True)
    state: Mapped[str] = mapped_column(sa.String(10), default=OperationState.PLANNED.value)
    planned_at: Mapped[datetime]
    performed_at: Mapped[datetime | None] = mapped_column(index=True)
    booked_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    #: Why it was cancelled (the HIS's text, or the user's).
    cancel_reason: Mapped[str | None] = mapped_column(sa.Text)
    is_unplanned_reoperation: Mapped[bool] = mapped_column(default=False)
    is_emergency_override: Mapped[bool] = mapped_column(default=False)
    override_reason: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    procedure: Mapped[Procedure] = relationship(lazy="joined")
    surgeon: Mapped[Staff] = relationship(lazy="joined")
    encounter: Mapped[Encounter] = relationship(lazy="joined")

    __table_args__ = (
        enum_check("state", OperationState),
        sa.CheckConstraint("grade BETWEEN 1 AND 4", name="grade_valid"),
        sa.CheckConstraint("NOT is_emergency_override OR override_reason IS NOT NULL", name="override_has_reason"),
    )

    @property
    def needs_mdt(self) -> bool:
        return self.grade == 4 or self.is_restricted_technology


class CancerDiagnosis(Versioned, Base):
    __tablename__ = "cancer_diagnosis"

    id: Mapped[int] = mapped_column(primary_key=True)
    his_id: Mapped[str] = mapped_column(sa.String(40), unique=True)
    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("patient.id"), index=True)
    cancer_type: Mapped[str] = mapped_column(sa.String(12))
    icd10: Mapped[str] = mapped_column(sa.String(10))
    diagnosed_on: Mapped[date]
    stage: Mapped[str | None] = mapped_column(sa.String(10))
    department_id: Mapped[int | None] = mapped_column(sa.ForeignKey("department.id"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (enum_check("cancer_type", CancerType),)


class DischargeCensus(Base):
    """Discharges per department and month, pushed where the HIS does not send every encounter."""

    __tablename__ = "discharge_census"

    id: Mapped[int] = mapped_column(primary_key=True)
    department_id: Mapped[int] = mapped_column(sa.ForeignKey("department.id"))
    #: First day of the month.
    month_on: Mapped[date]
    discharges: Mapped[int]
    updated_at: Mapped[datetime]

    __table_args__ = (
        sa.UniqueConstraint("department_id", "month_on", name="uq_discharge_census_month"),
        sa.CheckConstraint("discharges >= 0", name="discharges_not_negative"),
    )


#: Medicines whose administration the HIS reports (the reversal and rescue drugs of the trigger tools), and
#: blood products (with the transfusion system's reaction flag). Only these: qcflow keeps no medication record.
LISTED_DRUGS = ("naloxone", "flumazenil", "vitamin_k", "protamine", "glucose_50", "antihistamine", "adrenaline",
                "blood_product")


class Transfer(Versioned, Base):
    """A patient moved from one ward or unit to another during a stay (matched on `his_id`)."""

    __tablename__ = "transfer"

    id: Mapped[int] = mapped_column(primary_key=True)
    his_id: Mapped[str] = mapped_column(sa.String(40), unique=True)
    encounter_id: Mapped[int] = mapped_column(sa.ForeignKey("encounter.id"), index=True)
    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("patient.id"))
    from_department_id: Mapped[int] = mapped_column(sa.ForeignKey("department.id"))
    to_department_id: Mapped[int] = mapped_column(sa.ForeignKey("department.id"))
    #: The unit moved to is an intensive care unit (the HIS knows its wards).
    to_icu: Mapped[bool] = mapped_column(default=False)
    transferred_at: Mapped[datetime]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (sa.Index("ix_transfer_patient_at", "patient_id", "transferred_at"),)


class MedicationAdministration(Versioned, Base):
    """A listed medicine given (matched on `his_id`): only the drugs of LISTED_DRUGS."""

    __tablename__ = "medication_administration"

    id: Mapped[int] = mapped_column(primary_key=True)
    his_id: Mapped[str] = mapped_column(sa.String(40), unique=True)
    encounter_id: Mapped[int] = mapped_column(sa.ForeignKey("encounter.id"), index=True)
    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("patient.id"))
    drug: Mapped[str] = mapped_column(sa.String(20))
    #: As the HIS writes it (e.g. "0.4 mg iv").
    dose: Mapped[str | None] = mapped_column(sa.String(60))
    given_at: Mapped[datetime]
    #: The transfusion (or pharmacy) system flagged a reaction to it.
    reaction: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (enum_check("drug", LISTED_DRUGS), sa.Index("ix_medication_administration_patient_at",
                                                                 "patient_id", "given_at"))


class CriticalLabResult(Versioned, Base):
    """A laboratory result the HIS flagged as critical (危急值), matched on `his_id`."""

    __tablename__ = "critical_lab_result"

    id: Mapped[int] = mapped_column(primary_key=True)
    his_id: Mapped[str] = mapped_column(sa.String(40), unique=True)
    encounter_id: Mapped[int] = mapped_column(sa.ForeignKey("encounter.id"), index=True)
    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("patient.id"))
    #: The laboratory's test code (INR, GLU, K …), as the triggers name it.
    test_code: Mapped[str] = mapped_column(sa.String(20))
    value: Mapped[float] = mapped_column(sa.Float)
    unit: Mapped[str | None] = mapped_column(sa.String(20))
    resulted_at: Mapped[datetime]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (sa.Index("ix_critical_lab_result_patient_at", "patient_id", "resulted_at"),)


#: Display labels of the clinical codes (codes stay English in the API and the HIS feed).
LABELS = {
    "specialty": SPECIALTIES,
    "operation_state": {
        "planned": _l("Planned"), "booked": _l("Booked"), "performed": _l("Performed"),
        "cancelled": _l("Cancelled"),
    },
    "operation_action": {"book": _l("Book"), "perform": _l("Mark performed"), "cancel": _l("Cancel the operation"),
                         "record_performed": _l("Performed (reported by the HIS)")},
    "reference": {
        "procedures": _l("Procedure catalogue"), "staff": _l("Staff"), "authorisations": _l("Surgeon authorisations"),
        "patients": _l("Patients"), "encounters": _l("Encounters"), "operations": _l("Operations"),
        "diagnoses": _l("Cancer diagnoses"), "census": _l("Monthly discharges"),
        "transfers": _l("Transfers"), "administrations": _l("Medicine administrations"),
        "lab_results": _l("Critical laboratory results"),
    },
    "drug": {
        "naloxone": _l("Naloxone"), "flumazenil": _l("Flumazenil"), "vitamin_k": _l("Vitamin K"),
        "protamine": _l("Protamine"), "glucose_50": _l("High-dose glucose (50%)"),
        "antihistamine": _l("Antihistamine"), "adrenaline": _l("Adrenaline"), "blood_product": _l("Blood product"),
    },
    #: What an intake row set off (reactions.Effect codes).
    "intake_effect": {
        "discussion_requested": _l("Discussion requested"),
        "discussion_already_requested": _l("Discussion already requested"),
        "discussion_rescheduled": _l("Discussion moved to the new operation time"),
        "discussion_disputed": _l("Discussion deadline shortened (disputed death)"),
        "discussion_withdrawn": _l("Discussion withdrawn (the operation was cancelled or performed)"),
        "plan_enrolled": _l("Follow-up plan started"), "plan_already_enrolled": _l("Follow-up plan already running"),
        "plan_reanchored": _l("Follow-up calls moved to the corrected discharge"),
        "plan_stopped": _l("Follow-up plan stopped (death)"),
        "plan_not_enrolled_deceased": _l("No follow-up plan started: the patient has died"),
        "plan_not_enrolled_no_protocol": _l("No follow-up plan started: no protocol for this pathway"),
        "plan_not_enrolled_no_department": _l("No follow-up plan started: no department to follow the patient up "
                                              "(send the department code)"),
    },
    #: What an uploaded row did.
    "import_status": {
        "created": _l("New record"), "updated": _l("Record updated"), "unchanged": _l("No change"),
        "skipped": _l("Not imported (another row has errors)"), "error": _l("Rejected"),
    },
}

register_labels(LABELS, prefix="clin_")
