"""HIS intake (batch upserts by HIS id), reference data, and the operation workflow with its booking gate.

Every batch is validated row by row before anything is written: a bad row is reported with its
errors and good rows land (or, with `strict`, nothing lands). Re-sending a batch changes nothing;
a changed record is updated and audited with the fields that changed, and a field the row leaves out
keeps its value (an explicit null clears an optional one). Each row says what it set off (`effects`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Callable

import sqlalchemy as sa
from sqlalchemy.orm import lazyload
from flask import current_app
from flask_babel import force_locale, gettext as _, lazy_gettext as _l
from marshmallow import Schema, ValidationError

from qcflow import reactions
from qcflow.auth.models import Department, Role, User
from qcflow.auth.permissions import scoped, sees_all_departments
from qcflow.clinical import schemas
from qcflow.clinical.models import (
    CancerDiagnosis,
    CriticalLabResult,
    DischargeCensus,
    Encounter,
    MedicationAdministration,
    Operation,
    Patient,
    Procedure,
    Staff,
    SurgeonAuthorisation,
    Transfer,
)
from qcflow.clinical.workflow import HIS, OPERATION_WORKFLOW, OperationState
from qcflow.core import audit
from qcflow.core.actors import Actor
from qcflow.core.errors import Unprocessable, translate_errors
from qcflow.core.periods import local_midnight
from qcflow.core.i18n import label
from qcflow.core.time import CLOCK_SLACK, hospital_tz, local
from qcflow.events.services import idempotency_hash
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
    #: A state the HIS pushed with the row (operations): checked before anything lands, applied after the upsert.
    step: "PushedState | None" = None


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


def resolve_patient(row: dict, now: datetime) -> Resolved:
    """A patient's row; its dates are in the past and in order (a death not before the birth, stored or sent)."""
    resolved = Resolved(values=dict(row))
    birth_on = row.get("birth_on")
    if row.get("died_on") and "birth_on" not in row:
        birth_on = db.session.scalar(sa.select(Patient.birth_on).where(Patient.his_id == row["his_id"]))
    if "died_on" in row and row["died_on"] is None:
        # A feed that sends null for everyone it thinks alive must not erase a death (a family may have
        # reported it at a follow-up call): the recorded date stays, and the row says so.
        recorded = db.session.scalar(sa.select(Patient.died_on).where(Patient.his_id == row["his_id"]))
        if recorded is not None:
            resolved.values["died_on"] = recorded
            resolved.warnings.append(_("The recorded date of death (%(day)s) was kept: a death is not cleared by "
                                       "the feed; ask the quality office to correct it.", day=recorded.isoformat()))
    today = local(now).date()
    for name in ("birth_on", "died_on"):
        if row.get(name) and row[name] > today:
            resolved.errors[name] = [_("This date is in the future.")]
    if row.get("died_on") and birth_on and row["died_on"] < birth_on:
        resolved.errors.setdefault("died_on", []).append(
            _("The date of death is before the date of birth (%(born)s).", born=birth_on.isoformat()))
    return resolved


def _after_death(patient: Patient | None, times: dict, resolved: Resolved, message) -> None:
    """Refuse the times (field: datetime) that fall after the day the patient died; `message` (lazy) names the
    date of death as %(died)s."""
    if patient is None or patient.died_on is None:
        return
    for name, at in times.items():
        if at is not None and local(at).date() > patient.died_on:
            resolved.errors.setdefault(name, []).append(message % {"died": patient.died_on.isoformat()})


def _has_facts(encounter: Encounter) -> bool:
    """Whether records of the stay carry its patient (they would keep the old one if the stay moved)."""
    return any(db.session.scalar(sa.select(model.id).where(model.encounter_id == encounter.id).limit(1)) is not None
               for model in (Operation, Transfer, MedicationAdministration, CriticalLabResult))


def resolve_encounter(row: dict, now: datetime) -> Resolved:
    resolved = Resolved()
    patient = _by_his_id(Patient, row["patient_his_id"], resolved, "patient_his_id")
    department_id = _department(row["department_code"], resolved)
    _after_death(patient, {"admitted_at": row["admitted_at"]}, resolved,
                 _l("The patient died on %(died)s; an encounter cannot be admitted after the day of death."))
    if row.get("discharged_at") and row["discharged_at"] < row["admitted_at"]:
        resolved.errors["discharged_at"] = [_("Discharge cannot be before admission.")]
    # A field the row leaves out keeps its stored value: judge the discharge and its disposition together.
    stored = db.session.scalar(sa.select(Encounter).where(Encounter.his_id == row["his_id"]))
    if stored is not None and patient is not None and stored.patient_id != patient.id and _has_facts(stored):
        resolved.errors["patient_his_id"] = [_(
            "This stay belongs to another patient and records refer to it (operations, transfers, medicines, "
            "results): its patient cannot change through intake. Ask the quality office to correct the record.")]
    discharged_at = row["discharged_at"] if "discharged_at" in row else getattr(stored, "discharged_at", None)
    disposition = row["disposition"] if "disposition" in row else getattr(stored, "disposition", None)
    if disposition and not discharged_at:
        resolved.errors["disposition" if "disposition" in row else "discharged_at"] = [
            _("A disposition needs a discharge time (to clear the discharge, send the disposition as null too).")]
    resolved.values = {
        "his_id": row["his_id"], "patient_id": patient.id if patient else None, "department_id": department_id,
        "admitted_at": row["admitted_at"], "discharged_at": row.get("discharged_at"),
        "is_day_surgery": row.get("is_day_surgery", False), "disposition": row.get("disposition"),
    }
    return resolved


#: The column a row's field sets where it is not the field's name (a reference by HIS id or code sets the
#: referenced record's id); None: it sets no column by itself (an operation's grade is the catalogue's).
COLUMN_OF = {"department_code": "department_id", "username": "user_id", "grade": None, "month": "month_on",
             "patient_his_id": "patient_id", "encounter_his_id": "encounter_id", "surgeon_his_id": "surgeon_staff_id",
             "staff_his_id": "staff_id", "from_department_code": "from_department_id",
             "to_department_code": "to_department_id"}
#: The fields a performed or cancelled operation keeps whatever a re-sent row says: what the indicators count
#: it by.
SETTLED_FIELDS = ("procedure_code", "surgeon_his_id", "encounter_his_id", "department_code", "planned_at")


def _settled_changes(existing: Operation | None, row: dict, values: dict, resolved: Resolved) -> None:
    """Refuse a re-sent row that rewrites what a performed or cancelled operation was: a correction of the
    record goes through the quality office (docs/decisions.md)."""
    if existing is None or existing.state not in (OperationState.PERFORMED, OperationState.CANCELLED):
        return
    for field_name in SETTLED_FIELDS:
        column = COLUMN_OF.get(field_name, field_name)
        if field_name in row and _plain(getattr(existing, column)) != _plain(values[column]):
            resolved.errors.setdefault(field_name, []).append(_(
                "The operation is %(state)s; this cannot change any more through intake. Ask the quality office "
                "to correct the record.", state=label("clin_operation_state", existing.state)))


def resolve_operation(row: dict, now: datetime) -> Resolved:
    resolved = Resolved()
    existing = db.session.scalar(sa.select(Operation).where(Operation.his_id == row["his_id"]))
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
    _settled_changes(existing, row, resolved.values, resolved)
    # Cancelling what was planned for after the death stays possible: that is what the HIS does then.
    cancelled = row.get("state") == OperationState.CANCELLED or (
        existing is not None and existing.state == OperationState.CANCELLED)
    _after_death(encounter.patient if encounter else None,
                 {"planned_at": None if cancelled else row["planned_at"], "booked_at": row.get("booked_at"),
                  "performed_at": row.get("performed_at")}, resolved,
                 _l("The patient died on %(died)s; an operation cannot be planned, booked or performed after the day "
                 "of death (send it as cancelled)."))
    if row.get("state") and not resolved.errors:
        resolved.step = PushedState(row, resolved.values, encounter, procedure, surgeon, existing)
        resolved.warnings.extend(resolved.step.kept_times())
    return resolved


def resolve_diagnosis(row: dict, now: datetime) -> Resolved:
    resolved = Resolved()
    patient = _by_his_id(Patient, row["patient_his_id"], resolved, "patient_his_id")
    if row["diagnosed_on"] > local(now).date():
        resolved.errors["diagnosed_on"] = [_("This date is in the future.")]
    resolved.values = {
        "his_id": row["his_id"], "patient_id": patient.id if patient else None, "cancer_type": row["cancer_type"],
        "icd10": row["icd10"], "diagnosed_on": row["diagnosed_on"], "stage": row.get("stage"),
        "department_id": _department(row.get("department_code"), resolved),
    }
    return resolved


def resolve_census(row: dict, now: datetime) -> Resolved:
    resolved = Resolved()
    resolved.values = {"department_id": _department(row["department_code"], resolved),
                       "month_on": row["month"], "discharges": row["discharges"]}
    return resolved


def resolve_staff(row: dict, now: datetime) -> Resolved:
    resolved = Resolved()
    user_id = None
    if row.get("username"):
        user_id = db.session.scalar(sa.select(User.id).where(User.username == row["username"].lower()))
        if user_id is None:
            resolved.errors["username"] = [_("No user “%(name)s”.", name=row["username"])]
        else:
            # One account is one person of the staff list (notifications and MDT invitations go to it).
            holder = db.session.scalar(sa.select(Staff).where(Staff.user_id == user_id, Staff.his_id != row["his_id"]))
            if holder is not None:
                resolved.errors["username"] = [_("The account “%(name)s” belongs to %(staff)s (%(his_id)s) of the "
                                                 "staff list already.", name=row["username"], staff=holder.name,
                                                 his_id=holder.his_id)]
    resolved.values = {"his_id": row["his_id"], "name": row["name"], "specialty": row.get("specialty"),
                       "department_id": _department(row.get("department_code"), resolved), "user_id": user_id,
                       "is_active": row.get("is_active", True)}
    return resolved


def resolve_authorisation(row: dict, now: datetime) -> Resolved:
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


def _in_the_stay(kind: str, encounter: Encounter | None, name: str, at: datetime, now: datetime,
                 resolved: Resolved) -> None:
    """Refuse the time of a fact of the stay that is in the future (beyond CLOCK_SLACK), before the admission or
    after the discharge (with the kind's schemas.AFTER_DISCHARGE), or after the patient's day of death."""
    if at > now + CLOCK_SLACK:
        resolved.errors.setdefault(name, []).append(_("This time is in the future."))
    if encounter is None:
        return
    if at < encounter.admitted_at:
        resolved.errors.setdefault(name, []).append(_(
            "This time is before the admission of the stay (%(at)s).",
            at=local(encounter.admitted_at).strftime("%Y-%m-%d %H:%M")))
    grace = schemas.AFTER_DISCHARGE[kind]
    if encounter.discharged_at is not None and at > encounter.discharged_at + grace:
        at_discharge = local(encounter.discharged_at).strftime("%Y-%m-%d %H:%M")
        resolved.errors.setdefault(name, []).append(
            _("This time is after the discharge of the stay (%(at)s).", at=at_discharge) if not grace else
            _("This time is more than %(hours)d h after the discharge of the stay (%(at)s).",
              hours=grace // timedelta(hours=1), at=at_discharge))
    _after_death(encounter.patient, {name: at}, resolved,
                 _l("The patient died on %(died)s; nothing of the stay can be dated after the day of death."))


def _stay_fact(kind: str, row: dict, now: datetime, time_field: str, **values) -> Resolved:
    """A fact of a stay (its HIS id, the stay's patient, its time within the stay) with the kind's own
    `values`."""
    resolved = Resolved()
    encounter = _by_his_id(Encounter, row["encounter_his_id"], resolved, "encounter_his_id")
    _in_the_stay(kind, encounter, time_field, row[time_field], now, resolved)
    resolved.values = {"his_id": row["his_id"], "encounter_id": encounter.id if encounter else None,
                       "patient_id": encounter.patient_id if encounter else None, time_field: row[time_field],
                       **values}
    return resolved


def resolve_transfer(row: dict, now: datetime) -> Resolved:
    """A move between departments during a stay: both departments known and different, in the stay's time."""
    resolved = _stay_fact("transfers", row, now, "transferred_at", to_icu=row.get("to_icu", False))
    resolved.values["from_department_id"] = _department(row["from_department_code"], resolved, "from_department_code")
    resolved.values["to_department_id"] = _department(row["to_department_code"], resolved, "to_department_code")
    if row["from_department_code"] == row["to_department_code"]:
        resolved.errors.setdefault("to_department_code", []).append(
            _("A transfer moves the patient to another department: “%(code)s” is the department left.",
              code=row["to_department_code"]))
    return resolved


def resolve_administration(row: dict, now: datetime) -> Resolved:
    """A listed medicine given during a stay, in the stay's time."""
    return _stay_fact("administrations", row, now, "given_at", drug=row["drug"], dose=row.get("dose"),
                      reaction=row.get("reaction", False))


def resolve_lab_result(row: dict, now: datetime) -> Resolved:
    """A critical laboratory result of a specimen taken during a stay, in the stay's time (and its grace)."""
    return _stay_fact("lab_results", row, now, "resulted_at", test_code=row["test_code"], value=row["value"],
                      unit=row.get("unit"))


@dataclass(frozen=True)
class Kind:
    """One kind of record the HIS (or an administrator) sends in batches."""

    name: str
    schema: type[Schema]
    model: type
    #: Column names that identify a record (the natural key).
    key: tuple[str, ...]
    #: The row's rules, with the time of the request (row, now).
    resolve: Callable[[dict, datetime], Resolved]
    #: Reference data is the administrator's; clinical facts are the HIS's.
    is_reference: bool = False


KINDS = {
    kind.name: kind for kind in (
        Kind("patients", schemas.PatientIn, Patient, ("his_id",), resolve_patient),
        Kind("encounters", schemas.EncounterIn, Encounter, ("his_id",), resolve_encounter),
        Kind("operations", schemas.OperationIn, Operation, ("his_id",), resolve_operation),
        Kind("diagnoses", schemas.DiagnosisIn, CancerDiagnosis, ("his_id",), resolve_diagnosis),
        Kind("census", schemas.CensusIn, DischargeCensus, ("department_id", "month_on"), resolve_census),
        Kind("transfers", schemas.TransferIn, Transfer, ("his_id",), resolve_transfer),
        Kind("administrations", schemas.AdministrationIn, MedicationAdministration, ("his_id",),
             resolve_administration),
        Kind("lab_results", schemas.LabResultIn, CriticalLabResult, ("his_id",), resolve_lab_result),
        Kind("procedures", schemas.ProcedureIn, Procedure, ("code",), lambda row, now: Resolved(values=dict(row)),
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


#: The row field that gives a key column where the column is not sent as such.
_FIELD_OF_KEY = {column: name for name, column in COLUMN_OF.items() if column}


def _raw_key(raw, kind: Kind) -> str | None:
    """The key of a row as sent (None: a key field is missing or not a plain value)."""
    if not isinstance(raw, dict):
        return None
    sent = [raw.get(_FIELD_OF_KEY.get(k, k)) for k in kind.key]
    if any(value is None or value == "" or isinstance(value, (dict, list)) for value in sent):
        return None
    return "/".join(str(value) for value in sent)


def import_rows(kind_name: str, rows: list[dict], *, actor: Actor, now: datetime, strict: bool = False,
                first_row: int = 1, example: dict | None = None) -> list[RowResult]:
    """Validate and upsert a batch; one RowResult per row. With `strict`, any error writes nothing. A row
    equal to `example` (a CSV template's example row, uploaded unchanged) is refused."""
    kind = KINDS[kind_name]
    if len(rows) > MAX_BATCH:
        raise Unprocessable(_("At most %(n)d rows per batch.", n=MAX_BATCH))
    planned, results, seen = [], [], set()
    for offset, raw in enumerate(rows):
        result = RowResult(row=first_row + offset)
        results.append(result)
        if example is not None and raw == example:
            result.key = _raw_key(raw, kind)
            result.errors = {"row": [_("This is the template's example row: replace it with your own records.")]}
            continue
        try:
            row = kind.schema().load(raw)
        except ValidationError as error:
            result.key, result.errors = _raw_key(raw, kind), translate_errors(error.messages)
            continue
        resolved = kind.resolve(row, now)
        if resolved.step is not None:
            resolved.errors.update(resolved.step.check(now))
        # The key as the HIS sent it (its ids and codes, not qcflow's), also to find a row sent twice.
        result.key = _raw_key(raw, kind) or _key_label(resolved.values, kind)
        result.warnings = [str(w) for w in resolved.warnings]
        if result.key in seen:
            resolved.errors["row"] = [_("The same record appears twice in this batch.")]
        seen.add(result.key)
        if resolved.errors:
            result.errors = translate_errors(resolved.errors)
            continue
        unmentioned = {COLUMN_OF.get(name, name) for name in kind.schema._declared_fields if name not in raw} - {None}
        planned.append((result, resolved, unmentioned))
    if strict and any(r.errors for r in results):
        for result in results:
            if not result.errors:
                result.status = "skipped"
        return results
    for result, resolved, unmentioned in planned:
        _upsert(kind, result, resolved.values, unmentioned, actor=actor, now=now,
                settled=resolved.step is not None and resolved.step.settles())
        if resolved.step is not None:
            resolved.step.apply(result, actor=actor, now=now)
    return results


def _upsert(kind: Kind, result: RowResult, values: dict, unmentioned: set[str], *, actor: Actor,
            now: datetime, settled: bool = False) -> None:
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
    result.effects = _after_change(kind.name, obj, changed, created=result.status == "created", actor=actor, now=now,
                                   settled=settled)


def _identity(obj):
    return getattr(obj, "id", None) or getattr(obj, "code", None)


def _after_change(kind: str, obj, changed: list[str], *, created: bool, actor: Actor, now: datetime,
                  settled: bool = False) -> list[reactions.Effect]:
    """Facts that start other work: pre-operative MDT requests, case reviews, death review and follow-up;
    returns what they set off. A `settled` operation (the HIS reports it performed or cancelled) is past
    its pre-operative discussion: none is requested."""
    effects = reactions.publish("fact.recorded", kind, obj, now=now)
    if kind == "operations":
        if obj.needs_mdt and not settled and (created or "planned_at" in changed):
            effects += reactions.publish("operation.planned", obj, now=now)
        if obj.is_unplanned_reoperation and "is_unplanned_reoperation" in changed:
            effects += reactions.publish("operation.unplanned_reoperation", obj, now=now)
    elif (kind == "encounters" and obj.disposition == "death" and obj.discharged_at is not None
          and {"disposition", "discharged_at"} & set(changed)):
        effects += record_death(obj.patient, local(obj.discharged_at).date(), source=DEATH_FROM_HIS, actor=actor,
                                now=now, died_at=obj.discharged_at, encounter=obj)
    elif kind == "patients" and obj.died_on and "died_on" in changed:
        effects += record_death(obj, obj.died_on, source=DEATH_FROM_HIS, actor=actor, now=now)
    if (kind == "encounters" and obj.is_day_surgery and obj.discharged_at
            and {"discharged_at", "is_day_surgery"} & set(changed)):
        effects += reactions.publish("encounter.day_surgery_discharged", obj, now=now)
    elif kind == "diagnoses" and (created or "department_id" in changed):
        # A diagnosis re-sent with the department it lacked is enrolled then (enrolment happens once).
        effects += reactions.publish("diagnosis.recorded", obj, now=now)
    return effects


#: Who told qcflow of a death (record_death's `source`): the HIS's patient row, or a follow-up call.
DEATH_FROM_HIS, DEATH_FROM_FOLLOWUP = "his", "followup"


def record_death(patient: Patient, died_on: date, *, source: str, actor: Actor, now: datetime,
                 died_at: datetime | None = None, encounter: Encounter | None = None) -> list[reactions.Effect]:
    """Record that the patient died on `died_on`, whoever learnt it, and set off what a death sets off
    (the perioperative death review, stopping follow-up: "death.recorded"). Returns what it set off
    (nothing: a recorded date stands). A death in hospital gives its time (`died_at`, the discharge of
    `encounter`); one known by the day counts from the day's last instant.

    The HIS's date is the hospital's record and stands (its intake row has stored it already); a death
    reported at a follow-up call sets the date only when none is recorded: a recorded date that differs
    stays, and the difference is audited for the quality office to settle.
    """
    if source != DEATH_FROM_HIS and patient.died_on is not None:
        if patient.died_on != died_on:
            audit.record(actor.audit_name, "patient.death_date_differs", "patient", patient.id, now,
                         before={"died_on": patient.died_on.isoformat()},
                         after={"died_on": died_on.isoformat(), "source": source})
        return []
    if patient.died_on != died_on:
        before = patient.died_on.isoformat() if patient.died_on else None
        patient.died_on, patient.updated_at = died_on, now
        db.session.flush()
        audit.record(actor.audit_name, "patient.death_recorded", "patient", patient.id, now,
                     before={"died_on": before}, after={"died_on": died_on.isoformat(), "source": source})
    # Known by the day only: at the day's last instant, so an operation performed that day came before it.
    died_at = died_at or local_midnight(died_on + timedelta(days=1), hospital_tz()) - timedelta(microseconds=1)
    return reactions.publish("death.recorded", patient, died_at=died_at, encounter=encounter, now=now)


def summarise(results: list[RowResult]) -> dict:
    counts = {status: sum(r.status == status for r in results) for status in ("created", "updated", "unchanged")}
    return {"results": results, **counts, "failed": sum(bool(r.errors) for r in results)}


@dataclass(frozen=True)
class Reason:
    """One reason a booking is refused: a stable code for the HIS, what is wrong and what to do next (both
    lazily translated, so one reason reads in any language)."""

    code: str
    message: object
    next_step: object

    def __str__(self) -> str:
        return f"{self.message} {self.next_step}"


@dataclass(frozen=True)
class BookingCase:
    """What the booking gate decides on: an operation with the date and surgeon asked for (by default the
    stored ones). The MDT answer reads its `id` and `planned_at` as it reads an operation's."""

    id: int | None
    needs_mdt: bool
    grade: int
    procedure_code: str
    planned_at: datetime
    surgeon: Staff

    @classmethod
    def of(cls, operation: Operation, *, planned_at: datetime | None = None, surgeon: Staff | None = None) -> "BookingCase":
        return cls(operation.id, operation.needs_mdt, operation.grade, operation.procedure_code,
                   planned_at or operation.planned_at, surgeon or operation.surgeon)


def _authorisation_reason(case: BookingCase) -> Reason | None:
    """None when the surgeon holds an authorisation for the procedure valid on the day asked."""
    day = local(case.planned_at).date()
    periods = db.session.execute(sa.select(SurgeonAuthorisation.valid_from, SurgeonAuthorisation.valid_until).where(
        SurgeonAuthorisation.staff_id == case.surgeon.id,
        SurgeonAuthorisation.procedure_code == case.procedure_code)).all()
    if any(start <= day and (until is None or until >= day) for start, until in periods):
        return None
    procedure = db.session.get(Procedure, case.procedure_code)
    names = {"surgeon": case.surgeon.name,
             "procedure": f"{procedure.name} ({procedure.code})" if procedure else case.procedure_code}
    if not periods:
        return Reason("not_authorised", _l("Surgeon %(surgeon)s holds no authorisation for procedure %(procedure)s.",
                                           **names),
                      _l("Ask medical affairs to grant it, or choose an authorised surgeon."))
    return Reason("authorisation_not_valid",
                  _l("The authorisation of surgeon %(surgeon)s for procedure %(procedure)s is not valid on %(date)s.",
                     date=day.isoformat(), **names),
                  _l("Ask medical affairs to renew it, or choose a date within its validity or an authorised surgeon."))


def _discussion_reason(case: BookingCase) -> Reason | None:
    """None when a signed pre-operative MDT discussion is valid for the date asked."""
    window = current_app.config["MDT_VALIDITY_DAYS"]
    if case.id is not None and reactions.ask("operation.signed_preop_discussion", case, window_days=window):
        return None
    # The MDT's own rule with an unbounded window finds a discussion signed too long before the date.
    older = case.id is not None and reactions.ask("operation.signed_preop_discussion", case, window_days=36500)
    if not older:
        return Reason("mdt_missing", _l("No signed pre-operative MDT discussion is linked to this operation."),
                      _l("Request or finish the discussion under MDT and have it signed within %(days)d days before "
                         "the operation, then book again.", days=window))
    return Reason("mdt_too_old",
                  _l("The pre-operative MDT discussion was signed on %(signed)s, more than %(days)d days before "
                     "%(date)s.", signed=local(older.signed_at).date().isoformat(), days=window,
                     date=local(case.planned_at).date().isoformat()),
                  _l("Hold and sign the discussion again, or book a date within %(days)d days of its signature.",
                     days=window))


def booking_reasons(case: BookingCase) -> list[Reason]:
    """Why the booking gate refuses this case (empty: it may be booked): grade 4 and restricted technology need
    a signed pre-operative MDT within MDT_VALIDITY_DAYS, grade 3 and above an authorised surgeon."""
    reasons = [_discussion_reason(case) if case.needs_mdt else None,
               _authorisation_reason(case) if case.grade >= 3 else None]
    return [reason for reason in reasons if reason is not None]


def booking_missing(operation: Operation) -> list[str]:
    """What the booking gate still needs for this operation (empty: it may be booked)."""
    return [str(reason) for reason in booking_reasons(BookingCase.of(operation))]


def _in_both_languages(reasons: list[Reason]) -> list[dict]:
    """The reasons as the HIS shows them: code, and message and next step in Chinese and in English."""
    texts = {}
    for language in ("zh", "en"):
        with force_locale(language):
            texts[language] = [(str(r.message), str(r.next_step)) for r in reasons]
    return [{"code": r.code, "message": {lang: texts[lang][i][0] for lang in texts},
             "next_step": {lang: texts[lang][i][1] for lang in texts}} for i, r in enumerate(reasons)]


def _operation_reasons(operation: Operation | None, his_id: str, *, scoped: bool) -> list[Reason]:
    """Why an operation cannot be booked whatever the date: unknown to the asker (`scoped`: a user who sees
    their department's operations only), cancelled or performed."""
    if operation is None:
        unknown = (_l("No operation with HIS id “%(id)s” in your department.", id=his_id) if scoped
                   else _l("No operation with HIS id “%(id)s”.", id=his_id))
        return [Reason("operation_unknown", unknown, _l("Send the operation through intake first, then ask again."))]
    if operation.state == OperationState.CANCELLED:
        return [Reason("operation_cancelled", _l("The operation is cancelled."),
                       _l("Send a new operation if it is to be done after all."))]
    if operation.state == OperationState.PERFORMED:
        return [Reason("operation_performed", _l("The operation has already been performed."),
                       _l("Nothing to book; correct the HIS record if it is wrong."))]
    return []


def _replayed_check(operation: Operation | None, key_hash: str, now: datetime) -> bool:
    """Whether this client already asked with this Idempotency-Key within IDEMPOTENCY_KEY_HOURS."""
    cutoff = now - timedelta(hours=current_app.config["IDEMPOTENCY_KEY_HOURS"])
    entry = audit.AuditEntry
    return db.session.scalar(sa.select(sa.exists().where(
        entry.object_type == "operation",
        entry.object_id == str(operation.id) if operation else entry.object_id.is_(None),
        entry.action == "operation.booking_check", entry.at >= cutoff, entry.detail.contains(key_hash))))


def booking_decision(data: dict, *, actor: Actor, now: datetime, idempotency_key: str | None = None) -> dict:
    """May the operation (by HIS id) be booked for the time and by the surgeon asked? Decide with the asked
    values through the booking gate's reasons, change nothing, and audit the decision (a replayed
    Idempotency-Key answers again without a second entry)."""
    his_id = data["operation_his_id"]
    stmt = sa.select(Operation).where(Operation.his_id == his_id).options(lazyload(Operation.encounter))
    # The HIS's own token asks about any operation; a user who operates, about their department's.
    # The HIS's own account and the quality office see every department; any other user, their own.
    everywhere = Role.INTERFACE in actor.roles or sees_all_departments(actor)
    operation = db.session.scalar(stmt if everywhere else scoped(stmt, [Operation.department_id], actor))
    reasons = _operation_reasons(operation, his_id, scoped=not everywhere)
    planned_at = data.get("planned_at") or (operation.planned_at if operation else None)
    surgeon = operation.surgeon if operation else None
    if data.get("surgeon_his_id") and (surgeon is None or surgeon.his_id != data["surgeon_his_id"]):
        surgeon = db.session.scalar(sa.select(Staff).where(Staff.his_id == data["surgeon_his_id"]))
        if surgeon is None:
            reasons.append(Reason("surgeon_unknown",
                                  _l("No staff member with HIS id “%(id)s”.", id=data["surgeon_his_id"]),
                                  _l("Send the staff list first, then ask again.")))
    gated = operation is not None and not reasons
    if gated:
        reasons = booking_reasons(BookingCase.of(operation, planned_at=planned_at, surgeon=surgeon))
    answer = {
        "allowed": not reasons, "operation_his_id": his_id, "operation_id": operation.id if operation else None,
        "planned_at": planned_at, "surgeon_his_id": surgeon.his_id if surgeon else data.get("surgeon_his_id"),
        # In qcflow, the gate of an operation needing an MDT may be passed by a reasoned emergency override.
        "emergency_override_possible": bool(gated and reasons and operation.needs_mdt
                                            and OPERATION_WORKFLOW.permits(operation, "book")),
        "reasons": _in_both_languages(reasons),
    }
    key_hash = idempotency_hash(f"booking_check:{actor.audit_name}", idempotency_key) if idempotency_key else None
    if key_hash is None or not _replayed_check(operation, key_hash, now):
        audit.record(actor.audit_name, "operation.booking_check", "operation", answer["operation_id"], now,
                     operation_his_id=his_id, planned_at=_plain(planned_at), surgeon_his_id=answer["surgeon_his_id"],
                     allowed=answer["allowed"], reasons=[r.code for r in reasons],
                     **({"idempotency_key": key_hash} if key_hash else {}))
    return answer


#: How long before its planned time an operation may be booked or cancelled: a booking a year ahead is already
#: more than any waiting list; a time earlier than that is a typing or clock error (docs/decisions.md).
BOOKING_LEAD = timedelta(days=365)


def _gate_lacked_discussion(operation: Operation, performed_at: datetime) -> list[str]:
    """The discussion reasons the booking gate would have given for the day performed (empty: none, or the
    operation needs no discussion or was booked by an emergency override)."""
    if not operation.needs_mdt or operation.is_emergency_override:
        return []
    return [r.code for r in booking_reasons(BookingCase.of(operation, planned_at=performed_at))
            if r.code.startswith("mdt_")]


def transition_operation(operation: Operation, action: str, data: dict, *, actor: Actor, now: datetime,
                         expected_version: int | None = None) -> list[reactions.Effect]:
    """Book, perform or cancel an operation (the HIS: with the real times it sends); booking passes the table's
    gate or, where the MDT is needed, a reasoned emergency override. An operation the HIS reports performed
    without the signed discussion it needed is recorded and the quality office told at once. Returns what
    the step set off in other domains."""
    OPERATION_WORKFLOW.check(operation, action, actor=actor, data=data, expected_version=expected_version)
    detail, lacked, effects = {}, [], []
    if action == "book":
        if data.get("emergency_override") and operation.needs_mdt:
            if not (data.get("override_reason") or "").strip():
                raise Unprocessable(errors={"override_reason": [_("An emergency override needs a reason.")]})
            bypassed = OPERATION_WORKFLOW.missing(operation, "book")
            operation.is_emergency_override = True
            operation.override_reason = data["override_reason"].strip()
            detail = {"emergency_override": True, "override_reason": operation.override_reason, "bypassed": bypassed}
        operation.booked_at = data.get("booked_at") or now
        detail["booked_at"] = _plain(operation.booked_at)
    elif action in ("perform", "record_performed"):
        performed_at = data.get("performed_at") or now
        if performed_at > now + CLOCK_SLACK:
            raise Unprocessable(errors={"performed_at": [_("This time is in the future.")]})
        if action == "record_performed":
            lacked = _gate_lacked_discussion(operation, performed_at)
            operation.booked_at = data.get("booked_at")
            detail = {"booked_at": _plain(operation.booked_at), "without_signed_discussion": lacked}
        operation.performed_at = performed_at
        detail["performed_at"] = _plain(performed_at)
    elif action == "cancel":
        operation.cancelled_at = data.get("cancelled_at") or now
        operation.cancel_reason = (data.get("reason") or "").strip() or None
        detail = {"cancelled_at": _plain(operation.cancelled_at), "reason": operation.cancel_reason}
    OPERATION_WORKFLOW.apply(operation, action, actor=actor, now=now, data=data, audit_detail=detail)
    if action in ("perform", "record_performed"):
        effects = reactions.publish("operation.performed", operation, now=now)
    elif action == "cancel":
        effects = reactions.publish("operation.cancelled", operation, now=now)
    if detail.get("emergency_override"):
        notify(users_with_role(Role.QUALITY), "operation.emergency_override",
               {"id": operation.his_id, "code": operation.procedure_code, "procedure": operation.procedure.name,
                "reason": operation.override_reason},
               now=now, link=f"/operations/{operation.id}")
    if lacked:
        notify(users_with_role(Role.QUALITY), "operation.performed_without_mdt",
               {"id": operation.his_id, "code": operation.procedure_code, "procedure": operation.procedure.name,
                "time": _plain(operation.performed_at)},
               now=now, link=f"/operations/{operation.id}")
    return effects


class PushedState:
    """A state the HIS pushed with an operation row, with its real times: checked with the row (a refused
    booking or an impossible step is the row's error, and nothing of the row lands), then applied through
    the operation workflow as the HIS."""

    def __init__(self, row: dict, values: dict, encounter: Encounter, procedure: Procedure, surgeon: Staff,
                 existing: Operation | None):
        self.row, self.values, self.encounter, self.procedure, self.surgeon = row, values, encounter, procedure, surgeon
        self.existing = existing

    def action(self) -> str | None:
        """The workflow step from the stored state to the pushed one (None: already there)."""
        current, target = self.existing.state if self.existing else OperationState.PLANNED, self.row["state"]
        if current == target:
            return None
        if target == OperationState.PERFORMED:
            return "perform" if current == OperationState.BOOKED else "record_performed"
        return {OperationState.BOOKED: "book", OperationState.CANCELLED: "cancel"}[target]

    def settles(self) -> bool:
        """Whether the row reports the operation performed or cancelled (no discussion can come before it now)."""
        return self.row["state"] in (OperationState.PERFORMED, OperationState.CANCELLED)

    def kept_times(self) -> list:
        """Warnings for a re-sent state whose time differs from the one stored (the first report is kept)."""
        name = {"booked": "booked_at", "performed": "performed_at", "cancelled": "cancelled_at"}[self.row["state"]]
        stored, sent = getattr(self.existing, name) if self.existing else None, self.row.get(name)
        if self.action() is not None or not (stored and sent) or stored == sent:
            return []
        return [_("%(field)s differs from the time already recorded (%(at)s), which was kept.",
                  field=str(schemas.TIME_WORDS[name]).capitalize(), at=local(stored).strftime("%Y-%m-%d %H:%M"))]

    def check(self, now: datetime) -> dict:
        """The row's errors: times in the future or out of order, a step the table refuses, a shut gate."""
        row, errors = self.row, {}
        for name in ("booked_at", "performed_at", "cancelled_at"):
            if row.get(name) and row[name] > now + CLOCK_SLACK:
                errors[name] = [_("This time is in the future.")]
        if row.get("performed_at") and row["performed_at"] < self.encounter.admitted_at:
            errors.setdefault("performed_at", []).append(
                _("An operation cannot be performed before the admission (%(at)s).",
                  at=local(self.encounter.admitted_at).strftime("%Y-%m-%d %H:%M")))
        self._in_order(errors)
        action = self.action()
        current = self.existing.state if self.existing else OperationState.PLANNED
        if action is not None and action not in OPERATION_WORKFLOW.allowed_actions(OperationState(current)):
            errors["state"] = [_("The operation is %(current)s in qcflow; it cannot become %(state)s.",
                                 current=label("clin_operation_state", current),
                                 state=label("clin_operation_state", row["state"]))]
        elif action == "book":
            case = BookingCase(self.existing.id if self.existing else None, self.procedure.needs_mdt,
                               self.procedure.grade, self.procedure.code, self.values["planned_at"], self.surgeon)
            reasons = booking_reasons(case)
            if reasons:
                errors["state"] = [str(reason) for reason in reasons]
        return errors

    def _time(self, name: str) -> datetime | None:
        """The row's time, or the one stored (the first report is kept)."""
        stored = getattr(self.existing, name) if self.existing else None
        return stored or self.row.get(name)

    def _in_order(self, errors: dict) -> None:
        """The times in their order, against the stored record as well as the row: a booking or a cancellation
        not more than BOOKING_LEAD before the planned time, a booking not after the operation, a cancellation
        not before the booking."""
        booked, performed = self._time("booked_at"), self._time("performed_at")
        earliest = self.values["planned_at"] - BOOKING_LEAD
        for name in ("booked_at", "cancelled_at"):
            if self.row.get(name) and self.row[name] < earliest:
                errors.setdefault(name, []).append(_(
                    "This time is more than %(days)d days before the planned time (%(at)s).",
                    days=BOOKING_LEAD.days, at=local(self.values["planned_at"]).strftime("%Y-%m-%d %H:%M")))
        if booked and performed and booked > performed:
            name = "booked_at" if self.row.get("booked_at") == booked else "performed_at"
            errors.setdefault(name, []).append(_("The booking (%(booked)s) cannot be after the operation (%(performed)s).",
                                                 booked=local(booked).strftime("%Y-%m-%d %H:%M"),
                                                 performed=local(performed).strftime("%Y-%m-%d %H:%M")))
        cancelled = self.row.get("cancelled_at")
        if cancelled and booked and cancelled < booked:
            errors.setdefault("cancelled_at", []).append(_(
                "The cancellation cannot be before the booking (%(booked)s).",
                booked=local(booked).strftime("%Y-%m-%d %H:%M")))

    def apply(self, result: RowResult, *, actor: Actor, now: datetime) -> None:
        """Take the step as the HIS (the row's upsert has landed); re-sending the same state changes nothing."""
        action = self.action()
        if action is None:
            return
        operation = db.session.get(Operation, result.id)
        data = {"booked_at": self.row.get("booked_at"), "performed_at": self.row.get("performed_at"),
                "cancelled_at": self.row.get("cancelled_at"), "reason": self.row.get("cancel_reason")}
        his = dataclasses.replace(actor, roles=actor.roles | {HIS})
        if action == "record_performed" and _gate_lacked_discussion(operation, self.row["performed_at"]):
            result.warnings.append(str(_("Performed without a signed pre-operative MDT discussion: the quality "
                                         "office has been told.")))
        result.effects += transition_operation(operation, action, data, actor=his, now=now)
        if result.status == "unchanged":
            result.status = "updated"
