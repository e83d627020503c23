"""HIS intake (batch upserts by HIS id), reference data, and the operation workflow with its booking gate.

Every batch is validated row by row before anything is written: a bad row is reported with its
errors and good rows land (or, with `strict`, nothing lands). Re-sending a batch changes nothing;
a changed record is updated and audited with the fields that changed, and a field the row leaves out
keeps its value (an explicit null clears an optional one). Each row says what it set off (`effects`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _
from marshmallow import Schema, ValidationError

from qcflow import reactions
from qcflow.auth.models import Department, Role, User
from qcflow.clinical import schemas
from qcflow.clinical.models import (
    CancerDiagnosis,
    DischargeCensus,
    Encounter,
    Operation,
    Patient,
    Procedure,
    Staff,
    SurgeonAuthorisation,
)
from qcflow.clinical.workflow import OPERATION_WORKFLOW
from qcflow.core import audit
from qcflow.core.actors import Actor
from qcflow.core.errors import Unprocessable, translate_errors
from qcflow.core.time import hospital_tz, local
from qcflow.extensions import db
from qcflow.notify.services import notify, users_with_role

MAX_BATCH = 1000


@dataclass
class RowResult:
    row: int
    key: str | None = None
    status: str = "error"
    id: object = None
    errors: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)
    #: What the record's change set off in other domains (reactions.Effect).
    effects: list = field(default_factory=list)


@dataclass
class Resolved:
    """A row turned into model values, or the reasons it cannot be."""

    values: dict = field(default_factory=dict)
    errors: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)


def _department(code: str | None, resolved: Resolved, field_name: str = "department_code") -> int | None:
    if code is None:
        return None
    dept_id = db.session.scalar(sa.select(Department.id).where(Department.code == code))
    if dept_id is None:
        resolved.errors[field_name] = [_("Unknown department code “%(code)s”.", code=code)]
    return dept_id


def _by_his_id(model, his_id: str, resolved: Resolved, field_name: str):
    obj = db.session.scalar(sa.select(model).where(model.his_id == his_id))
    if obj is None:
        resolved.errors[field_name] = [_("No record with HIS id “%(id)s”; send it first.", id=his_id)]
    return obj


def resolve_patient(row: dict) -> Resolved:
    return Resolved(values=dict(row))


def resolve_encounter(row: dict) -> Resolved:
    resolved = Resolved()
    patient = _by_his_id(Patient, row["patient_his_id"], resolved, "patient_his_id")
    department_id = _department(row["department_code"], resolved)
    if row.get("discharged_at") and row["discharged_at"] < row["admitted_at"]:
        resolved.errors["discharged_at"] = [_("Discharge cannot be before admission.")]
    if row.get("disposition") and not row.get("discharged_at"):
        resolved.errors["disposition"] = [_("A disposition needs a discharge time.")]
    resolved.values = {
        "his_id": row["his_id"], "patient_id": patient.id if patient else None, "department_id": department_id,
        "admitted_at": row["admitted_at"], "discharged_at": row.get("discharged_at"),
        "is_day_surgery": row.get("is_day_surgery", False), "disposition": row.get("disposition"),
    }
    return resolved


def resolve_operation(row: dict) -> Resolved:
    resolved = Resolved()
    encounter = _by_his_id(Encounter, row["encounter_his_id"], resolved, "encounter_his_id")
    surgeon = _by_his_id(Staff, row["surgeon_his_id"], resolved, "surgeon_his_id")
    procedure = db.session.get(Procedure, row["procedure_code"])
    if procedure is None or not procedure.is_active:
        resolved.errors["procedure_code"] = [_("Unknown procedure code “%(code)s”: add it to the catalogue first.",
                                               code=row["procedure_code"])]
    elif row.get("grade") is not None and row["grade"] != procedure.grade:
        resolved.warnings.append(_("Grade %(sent)s differs from the catalogue's grade %(grade)s for %(code)s; "
                                   "the catalogue's grade was used.", sent=row["grade"], grade=procedure.grade,
                                   code=procedure.code))
    department_id = _department(row.get("department_code"), resolved) if row.get("department_code") else (
        encounter.department_id if encounter else None)
    resolved.values = {
        "his_id": row["his_id"], "encounter_id": encounter.id if encounter else None,
        "patient_id": encounter.patient_id if encounter else None, "department_id": department_id,
        "procedure_code": row["procedure_code"], "grade": procedure.grade if procedure else None,
        "is_restricted_technology": procedure.is_restricted_technology if procedure else False,
        "surgeon_staff_id": surgeon.id if surgeon else None, "planned_at": row["planned_at"],
        "is_unplanned_reoperation": row.get("is_unplanned_reoperation", False),
    }
    return resolved


def resolve_diagnosis(row: dict) -> Resolved:
    resolved = Resolved()
    patient = _by_his_id(Patient, row["patient_his_id"], resolved, "patient_his_id")
    resolved.values = {
        "his_id": row["his_id"], "patient_id": patient.id if patient else None, "cancer_type": row["cancer_type"],
        "icd10": row["icd10"], "diagnosed_on": row["diagnosed_on"], "stage": row.get("stage"),
        "department_id": _department(row.get("department_code"), resolved),
    }
    return resolved


def resolve_census(row: dict) -> Resolved:
    resolved = Resolved()
    resolved.values = {"department_id": _department(row["department_code"], resolved),
                       "month_on": row["month"], "discharges": row["discharges"]}
    return resolved


def resolve_staff(row: dict) -> Resolved:
    resolved = Resolved()
    user_id = None
    if row.get("username"):
        user_id = db.session.scalar(sa.select(User.id).where(User.username == row["username"].lower()))
        if user_id is None:
            resolved.errors["username"] = [_("No user “%(name)s”.", name=row["username"])]
    resolved.values = {"his_id": row["his_id"], "name": row["name"], "specialty": row.get("specialty"),
                       "department_id": _department(row.get("department_code"), resolved), "user_id": user_id,
                       "is_active": row.get("is_active", True)}
    return resolved


def resolve_authorisation(row: dict) -> Resolved:
    resolved = Resolved()
    staff = _by_his_id(Staff, row["staff_his_id"], resolved, "staff_his_id")
    if db.session.get(Procedure, row["procedure_code"]) is None:
        resolved.errors["procedure_code"] = [_("Unknown procedure code “%(code)s”: add it to the catalogue first.",
                                               code=row["procedure_code"])]
    if row.get("valid_until") and row["valid_until"] < row["valid_from"]:
        resolved.errors["valid_until"] = [_("The end is before the start.")]
    resolved.values = {"staff_id": staff.id if staff else None, "procedure_code": row["procedure_code"],
                       "valid_from": row["valid_from"], "valid_until": row.get("valid_until")}
    return resolved


@dataclass(frozen=True)
class Kind:
    """One kind of record the HIS (or an administrator) sends in batches."""

    name: str
    schema: type[Schema]
    model: type
    #: Column names that identify a record (the natural key).
    key: tuple[str, ...]
    resolve: Callable[[dict], Resolved]
    #: Reference data is the administrator's; clinical facts are the HIS's.
    is_reference: bool = False


KINDS = {
    kind.name: kind for kind in (
        Kind("patients", schemas.PatientIn, Patient, ("his_id",), resolve_patient),
        Kind("encounters", schemas.EncounterIn, Encounter, ("his_id",), resolve_encounter),
        Kind("operations", schemas.OperationIn, Operation, ("his_id",), resolve_operation),
        Kind("diagnoses", schemas.DiagnosisIn, CancerDiagnosis, ("his_id",), resolve_diagnosis),
        Kind("census", schemas.CensusIn, DischargeCensus, ("department_id", "month_on"), resolve_census),
        Kind("procedures", schemas.ProcedureIn, Procedure, ("code",), lambda row: Resolved(values=dict(row)),
             is_reference=True),
        Kind("staff", schemas.StaffIn, Staff, ("his_id",), resolve_staff, is_reference=True),
        Kind("authorisations", schemas.AuthorisationIn, SurgeonAuthorisation,
             ("staff_id", "procedure_code", "valid_from"), resolve_authorisation, is_reference=True),
    )
}


def _plain(value):
    return value.isoformat() if hasattr(value, "isoformat") else value


def _key_label(values: dict, kind: Kind) -> str:
    return "/".join(str(_plain(values.get(k))) for k in kind.key)


def import_rows(kind_name: str, rows: list[dict], *, actor: Actor, now: datetime, strict: bool = False,
                first_row: int = 1) -> list[RowResult]:
    """Validate and upsert a batch; one RowResult per row. With `strict`, any error writes nothing."""
    kind = KINDS[kind_name]
    if len(rows) > MAX_BATCH:
        raise Unprocessable(_("At most %(n)d rows per batch.", n=MAX_BATCH))
    planned, results, seen = [], [], set()
    for offset, raw in enumerate(rows):
        result = RowResult(row=first_row + offset)
        results.append(result)
        try:
            row = kind.schema().load(raw)
        except ValidationError as error:
            result.errors = translate_errors(error.messages)
            continue
        resolved = kind.resolve(row)
        result.key, result.warnings = _key_label(resolved.values, kind), [str(w) for w in resolved.warnings]
        if result.key in seen:
            resolved.errors["row"] = [_("The same record appears twice in this batch.")]
        seen.add(result.key)
        if resolved.errors:
            result.errors = translate_errors(resolved.errors)
            continue
        unmentioned = {_COLUMN_OF.get(name, name) for name in kind.schema._declared_fields if name not in raw} - {None}
        planned.append((result, resolved.values, unmentioned))
    if strict and any(r.errors for r in results):
        for result in results:
            if not result.errors:
                result.status = "skipped"
        return results
    for result, values, unmentioned in planned:
        _upsert(kind, result, values, unmentioned, actor=actor, now=now)
    return results


#: The column an optional field of a row sets where it is not the field's name; None: it sets no column by
#: itself (an operation's grade is the catalogue's, whatever the row says).
_COLUMN_OF = {"department_code": "department_id", "username": "user_id", "grade": None}


def _upsert(kind: Kind, result: RowResult, values: dict, unmentioned: set[str], *, actor: Actor,
            now: datetime) -> None:
    """Create the record with `values` (defaults for what the row left out), or update the columns the row
    mentions: a re-sent row never erases what it does not mention."""
    stmt = sa.select(kind.model).where(*(getattr(kind.model, k) == values[k] for k in kind.key))
    obj = db.session.scalar(stmt)
    timestamps = {c for c in ("created_at", "updated_at") if hasattr(kind.model, c)}
    if obj is None:
        obj = kind.model(**values, **{c: now for c in timestamps})
        db.session.add(obj)
        db.session.flush()
        result.status, changed, before = "created", sorted(values), {}
    else:
        values = {k: v for k, v in values.items() if k not in unmentioned}
        before = {k: _plain(getattr(obj, k)) for k in values}
        changed = sorted(k for k, v in values.items() if _plain(getattr(obj, k)) != _plain(v))
        if not changed:
            result.status, result.id = "unchanged", _identity(obj)
            return
        for k in changed:
            setattr(obj, k, values[k])
        if "updated_at" in timestamps:
            obj.updated_at = now
        db.session.flush()
        result.status = "updated"
        before = {k: before[k] for k in changed}
    result.id = _identity(obj)
    audit.record(actor.audit_name, f"intake.{kind.name}.{result.status}", kind.model.__tablename__, result.id, now,
                 changed=changed, before=before, after={k: _plain(values[k]) for k in changed})
    result.effects = _after_change(kind.name, obj, changed, created=result.status == "created", actor=actor, now=now)


def _identity(obj):
    return getattr(obj, "id", None) or getattr(obj, "code", None)


def _after_change(kind: str, obj, changed: list[str], *, created: bool, actor: Actor,
                  now: datetime) -> list[reactions.Effect]:
    """Facts that start other work: pre-operative MDT requests, case reviews, death review and follow-up;
    returns what they set off."""
    effects = []
    if kind == "operations":
        if obj.needs_mdt and (created or "planned_at" in changed):
            effects += reactions.publish("operation.planned", obj, now=now)
        if obj.is_unplanned_reoperation and "is_unplanned_reoperation" in changed:
            effects += reactions.publish("operation.unplanned_reoperation", obj, now=now)
    elif kind == "encounters" and obj.disposition == "death" and {"disposition", "discharged_at"} & set(changed):
        effects += reactions.publish("death.recorded", obj.patient, died_at=obj.discharged_at, encounter=obj, now=now)
    elif kind == "patients" and obj.died_on and "died_on" in changed:
        died_at = datetime.combine(obj.died_on, datetime.min.time(), tzinfo=hospital_tz())
        effects += reactions.publish("death.recorded", obj, died_at=died_at, encounter=None, now=now)
    if (kind == "encounters" and obj.is_day_surgery and obj.discharged_at
            and {"discharged_at", "is_day_surgery"} & set(changed)):
        effects += reactions.publish("encounter.day_surgery_discharged", obj, now=now)
    elif kind == "diagnoses" and created:
        effects += reactions.publish("diagnosis.recorded", obj, now=now)
    return effects


def summarise(results: list[RowResult]) -> dict:
    counts = {status: sum(r.status == status for r in results) for status in ("created", "updated", "unchanged")}
    return {"results": results, **counts, "failed": sum(bool(r.errors) for r in results)}


def authorised(operation: Operation) -> bool:
    """Whether the surgeon holds an authorisation for the procedure valid on the planned day."""
    day = local(operation.planned_at).date()
    return db.session.scalar(sa.select(sa.func.count()).select_from(SurgeonAuthorisation).where(
        SurgeonAuthorisation.staff_id == operation.surgeon_staff_id,
        SurgeonAuthorisation.procedure_code == operation.procedure_code,
        SurgeonAuthorisation.valid_from <= day,
        sa.or_(SurgeonAuthorisation.valid_until.is_(None), SurgeonAuthorisation.valid_until >= day),
    )) > 0


def has_signed_preop_mdt(operation: Operation, window_days: int) -> bool:
    return reactions.ask("operation.signed_preop_discussion", operation, window_days=window_days) is not None


def booking_missing(operation: Operation) -> list[str]:
    """What the booking gate still needs for this operation (empty: it may be booked)."""
    missing = []
    window = current_app.config["MDT_VALIDITY_DAYS"]
    if operation.needs_mdt and not has_signed_preop_mdt(operation, window):
        missing.append(_("a signed pre-operative MDT discussion linked to this operation, signed "
                         "within %(days)d days before the planned date: request or finish it under MDT, then book "
                         "again", days=window))
    if operation.grade >= 3 and not authorised(operation):
        missing.append(_("an authorisation of surgeon %(surgeon)s for procedure %(code)s valid on the planned "
                         "date: ask medical affairs to grant it", surgeon=operation.surgeon.name,
                         code=operation.procedure_code))
    return missing


def transition_operation(operation: Operation, action: str, data: dict, *, actor: Actor, now: datetime,
                         expected_version: int | None = None) -> Operation:
    """Book, perform or cancel an operation; booking passes the table's gate or, where the MDT is needed, a
    reasoned emergency override."""
    OPERATION_WORKFLOW.check(operation, action, actor=actor, data=data, expected_version=expected_version)
    detail = {}
    if action == "book":
        if data.get("emergency_override") and operation.needs_mdt:
            if not (data.get("override_reason") or "").strip():
                raise Unprocessable(errors={"override_reason": [_("An emergency override needs a reason.")]})
            bypassed = OPERATION_WORKFLOW.missing(operation, "book")
            operation.is_emergency_override = True
            operation.override_reason = data["override_reason"].strip()
            detail = {"emergency_override": True, "override_reason": operation.override_reason, "bypassed": bypassed}
        operation.booked_at = now
    elif action == "perform":
        performed_at = data.get("performed_at") or now
        if performed_at > now + timedelta(minutes=5):
            raise Unprocessable(errors={"performed_at": [_("This time is in the future.")]})
        operation.performed_at = performed_at
    OPERATION_WORKFLOW.apply(operation, action, actor=actor, now=now, data=data, audit_detail=detail)
    if action == "perform" and (operation.needs_mdt or operation.grade == 4):
        reactions.publish("operation.performed", operation, now=now)
    if detail.get("emergency_override"):
        notify(users_with_role(Role.QUALITY), "operation.emergency_override",
               {"id": operation.his_id, "code": operation.procedure_code, "reason": operation.override_reason},
               now=now, link=f"/operations/{operation.id}")
    return operation
