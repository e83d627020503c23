"""Read side of clinical data: operations and patients as each role may see them."""
from __future__ import annotations

import sqlalchemy as sa
from flask_babel import gettext as _, lazy_gettext as _l

from qcflow.auth.models import Department, User
from qcflow.auth.permissions import get_scoped_or_404, scoped, sees_all_departments
from qcflow.clinical.models import (
    CancerDiagnosis,
    Encounter,
    Operation,
    Patient,
    Procedure,
    Staff,
    SurgeonAuthorisation,
)
from qcflow.core.actors import Actor
from qcflow.core.i18n import current_language, label
from qcflow.core.masking import mask_id_number, mask_phone
from qcflow.extensions import db
from qcflow.mdt.models import Discussion


def load_operation(operation_id: int, actor: Actor) -> Operation:
    """An operation of the actor's department (quality: any); others are 404."""
    return get_scoped_or_404(Operation, operation_id, actor)


def may_open_operation(operation: Operation | None, actor: Actor) -> bool:
    """Whether the actor may open the operation's page (load_operation would not be a 404): pages that name an
    operation link to it only then (an invited colleague of another department reads the discussion, not the
    operation)."""
    if operation is None:
        return False
    stmt = scoped(sa.select(Operation.id).where(Operation.id == operation.id), [Operation.department_id], actor)
    return db.session.scalar(stmt) is not None


def masked_patient(patient: Patient) -> dict:
    """A patient for lists and exports: phone and ID numbers masked."""
    return {
        "id": patient.id, "his_id": patient.his_id, "mrn": patient.mrn, "name": patient.name, "sex": patient.sex,
        "birth_on": patient.birth_on, "phone": mask_phone(patient.phone),
        "id_number": mask_id_number(patient.id_number), "died_on": patient.died_on,
    }


def clinical_record_clause(patient_id, department_id):
    """The patient has a clinical record in the department: an encounter, an operation or a diagnosis there.

    This is what makes a patient one of a department's patients (patient search, manual enrolment).
    """
    return sa.or_(*(sa.exists().where(model.patient_id == patient_id, model.department_id == department_id)
                    for model in (Encounter, Operation, CancerDiagnosis)))


def has_clinical_record(patient_id: int, department_id: int | None) -> bool:
    """Whether the patient has a clinical record in the department."""
    if department_id is None:
        return False
    return bool(db.session.scalar(sa.select(clinical_record_clause(patient_id, department_id))))


def find_patients(actor: Actor, *, mrn: str | None = None, limit: int = 50) -> list[dict]:
    """Patients by record number, masked: the quality office finds any, others only their department's."""
    stmt = sa.select(Patient)
    if not sees_all_departments(actor):
        stmt = stmt.where(clinical_record_clause(Patient.id, actor.department_id))
    if mrn:
        stmt = stmt.where(Patient.mrn == mrn)
    return [masked_patient(p) for p in db.session.scalars(stmt.order_by(Patient.id.desc()).limit(limit))]


def reference_rows(kind: str, limit: int = 500) -> list:
    """Rows of a reference-data kind for the admin pages."""
    if kind == "procedures":
        return list(db.session.scalars(sa.select(Procedure).order_by(Procedure.grade.desc(), Procedure.code).limit(limit)))
    if kind == "staff":
        return list(db.session.scalars(sa.select(Staff).order_by(Staff.his_id).limit(limit)))
    return list(db.session.scalars(sa.select(SurgeonAuthorisation).order_by(SurgeonAuthorisation.id.desc()).limit(limit)))


#: Column headings of the reference lists (the CSV columns, in the reader's words).
REFERENCE_HEADINGS = {
    "code": _l("Procedure code"), "name": _l("Name"), "grade": _l("Grade"),
    "is_restricted_technology": _l("Restricted technology"), "is_day_surgery_allowed": _l("Day surgery allowed"),
    "is_active": _l("In use"), "his_id": _l("HIS staff number"), "department_code": _l("Department"),
    "specialty": _l("Specialty"), "username": _l("qcflow account"), "staff_his_id": _l("Staff member"),
    "procedure_code": _l("Procedure"), "valid_from": _l("Valid from"), "valid_until": _l("Valid until"),
    "row": _l("Row"),
}


def reference_headings(kind: str) -> dict:
    """The column headings of one reference list (a staff member's name is a person's)."""
    return {**REFERENCE_HEADINGS, "name": _l("Full name")} if kind == "staff" else REFERENCE_HEADINGS


def reference_table(kind: str, columns: list[str], limit: int = 500) -> list[dict]:
    """The reference rows as the admin reads them: one display text per CSV column (department, account and
    staff member by name, specialty by label, an open end as “open-ended”)."""
    rows = reference_rows(kind, limit)
    language = current_language()
    departments = _by_id(Department, [getattr(r, "department_id", None) for r in rows])
    users = _by_id(User, [getattr(r, "user_id", None) for r in rows])
    staff = _by_id(Staff, [getattr(r, "staff_id", None) for r in rows])
    procedures = {p.code: p for p in db.session.scalars(sa.select(Procedure).where(
        Procedure.code.in_({r.procedure_code for r in rows if hasattr(r, "procedure_code")})))} if kind == "authorisations" else {}

    def text(row, column):
        if column == "department_code":
            dept = departments.get(row.department_id)
            return f"{dept.code} · {dept.label(language)}" if dept else "—"
        if column == "username":
            user = users.get(row.user_id)
            return f"{user.username} · {user.display_name}" if user else _("no account")
        if column == "staff_his_id":
            person = staff.get(row.staff_id)
            return f"{person.his_id} · {person.name}" if person else "—"
        if column == "procedure_code" and kind == "authorisations":
            procedure = procedures.get(row.procedure_code)
            return f"{row.procedure_code} · {procedure.name}" if procedure else row.procedure_code
        if column == "specialty":
            return label("clin_specialty", row.specialty) if row.specialty else "—"
        if column == "valid_until" and row.valid_until is None:
            return _("open-ended")
        value = getattr(row, column, None)
        if isinstance(value, bool):
            return _("yes") if value else _("no")
        return "—" if value is None else str(value)

    return [{column: text(row, column) for column in columns} for row in rows]


def _by_id(model, ids) -> dict:
    ids = {i for i in ids if i is not None}
    return {row.id: row for row in db.session.scalars(sa.select(model).where(model.id.in_(ids)))} if ids else {}


def department_operations(actor: Actor, limit: int = 100) -> list[Operation]:
    stmt = scoped(sa.select(Operation), Operation.department_id, actor)
    return list(db.session.scalars(stmt.order_by(Operation.planned_at.desc()).limit(limit)))


def operation_discussions(operation: Operation) -> list:
    """The MDT discussions linked to an operation (pre-operative and case reviews)."""
    return list(db.session.scalars(sa.select(Discussion).where(Discussion.operation_id == operation.id)
                                   .order_by(Discussion.id)))


def patients_named(term: str):
    """The ids of the patients a search box names: by HIS id or record number (病案号), both indexed; a
    subquery for lists to filter by (`Model.patient_id.in_(...)`)."""
    term = term.strip()
    return sa.select(Patient.id).where(sa.or_(Patient.his_id == term, Patient.mrn == term))
