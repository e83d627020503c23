"""MDT clinics (多学科门诊): the quality office's list of them, with their specialties and weekly slots.

Services flush and never commit; callers pass `actor` and `now`. Whether a clinic counts towards the
indicator `mdt_clinic_count` is the indicator's definition (indicators.definitions.mdt_clinics_open);
`is_counted` below asks the same of one clinic for the pages.
"""
from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from flask_babel import gettext as _

from qcflow.auth.models import Department
from qcflow.core import audit
from qcflow.core.actors import Actor
from qcflow.core.errors import Conflict, NotFound, Unprocessable
from qcflow.core.time import today
from qcflow.extensions import db
from qcflow.mdt.models import Clinic, ClinicSlot

#: A clinic counts with this many specialties or more (two specialties make it multidisciplinary).
MIN_SPECIALTIES = 2


def is_counted(clinic: Clinic, day: date) -> bool:
    """Whether the indicator counts the clinic on `day` (the rule of definitions.mdt_clinics_open)."""
    return clinic.is_active_on(day) and bool(clinic.slots) and len(clinic.specialties) >= MIN_SPECIALTIES


def list_clinics(active_on: date | None = None) -> list[Clinic]:
    """Every clinic (or those open on `active_on`), open ones first, by name."""
    stmt = sa.select(Clinic)
    if active_on is not None:
        stmt = stmt.where(Clinic.active_from <= active_on,
                          sa.or_(Clinic.active_to.is_(None), Clinic.active_to >= active_on))
    return list(db.session.scalars(stmt.order_by(Clinic.active_to.is_not(None), Clinic.name, Clinic.id)))


def load_clinic(clinic_id: int) -> Clinic:
    clinic = db.session.get(Clinic, clinic_id)
    if clinic is None:
        raise NotFound(_("No such MDT clinic."))
    return clinic


def _snapshot(clinic: Clinic) -> dict:
    return {"name": clinic.name, "name_en": clinic.name_en, "department_id": clinic.department_id,
            "specialties": list(clinic.specialties),
            "slots": [[s.weekday, s.starts_at.strftime("%H:%M"), s.ends_at.strftime("%H:%M")] for s in clinic.slots],
            "active_from": clinic.active_from.isoformat(),
            "active_to": clinic.active_to.isoformat() if clinic.active_to else None}


#: A clinic opened before this day is a typing error (qcflow's records start in 2000, as its months do).
FIRST_DAY = date(2000, 1, 1)


def _check(data: dict, clinic_id: int | None = None) -> None:
    """The rules a clinic's fields must keep; every broken one is named under its field."""
    errors: dict[str, list[str]] = {}
    name = data["name"].strip()
    if not name:
        errors["name"] = [_("Enter the clinic's name.")]
    elif _same_name_open(name, data, clinic_id):
        errors["name"] = [_("A clinic of this name is already open over these days: change that one instead of "
                            "adding it twice.")]
    if data["active_from"] < FIRST_DAY:
        errors["active_from"] = [_("Choose a day from %(day)s on.", day=FIRST_DAY.isoformat())]
    department = db.session.get(Department, data["department_id"])
    if department is None or not department.is_active:
        errors["department_id"] = [_("No such department.")]
    if len(set(data["specialties"])) != len(data["specialties"]):
        errors["specialties"] = [_("Each specialty once.")]
    if data.get("active_to") is not None and data["active_to"] < data["active_from"]:
        errors["active_to"] = [_("The last day cannot be before the first day.")]
    slot_errors = []
    slots = sorted(data.get("slots") or [], key=lambda s: (s["weekday"], s["starts_at"]))
    for slot in slots:
        if slot["ends_at"] <= slot["starts_at"]:
            slot_errors.append(_("A slot must end after it starts."))
    for first, second in zip(slots, slots[1:]):
        if first["weekday"] == second["weekday"] and second["starts_at"] < first["ends_at"]:
            slot_errors.append(_("Two slots on the same day overlap."))
    if slot_errors:
        errors["slots"] = sorted(set(slot_errors))
    if errors:
        raise Unprocessable(errors=errors)


def _same_name_open(name: str, data: dict, clinic_id: int | None) -> bool:
    """Another clinic of the same name open on some of the same days (a copy would count twice)."""
    stmt = sa.select(Clinic.id).where(sa.func.lower(sa.func.trim(Clinic.name)) == name.lower(),
                                      sa.or_(Clinic.active_to.is_(None), Clinic.active_to >= data["active_from"]))
    if data.get("active_to") is not None:
        stmt = stmt.where(Clinic.active_from <= data["active_to"])
    if clinic_id is not None:
        stmt = stmt.where(Clinic.id != clinic_id)
    return db.session.scalar(stmt.limit(1)) is not None


def _apply(clinic: Clinic, data: dict, now: datetime) -> None:
    clinic.name, clinic.name_en = data["name"].strip(), (data.get("name_en") or "").strip()
    clinic.department_id, clinic.specialties = data["department_id"], list(data["specialties"])
    clinic.active_from, clinic.active_to = data["active_from"], data.get("active_to")
    clinic.slots = [ClinicSlot(weekday=s["weekday"], starts_at=s["starts_at"], ends_at=s["ends_at"])
                    for s in sorted(data.get("slots") or [], key=lambda s: (s["weekday"], s["starts_at"]))]
    clinic.updated_at = now


def create_clinic(data: dict, *, actor: Actor, now: datetime) -> Clinic:
    """Add an MDT clinic to the list."""
    _check(data)
    clinic = Clinic(created_at=now)
    _apply(clinic, data, now)
    db.session.add(clinic)
    db.session.flush()
    audit.record(actor.audit_name, "mdt_clinic.create", "mdt_clinic", clinic.id, now, after=_snapshot(clinic))
    return clinic


def _check_version(clinic: Clinic, expected_version: int | None) -> None:
    if expected_version != clinic.version:
        raise Conflict(current_version=clinic.version)


def _fields(clinic: Clinic) -> dict:
    return {"name": clinic.name, "name_en": clinic.name_en, "department_id": clinic.department_id,
            "specialties": list(clinic.specialties), "active_from": clinic.active_from, "active_to": clinic.active_to,
            "slots": [{"weekday": s.weekday, "starts_at": s.starts_at, "ends_at": s.ends_at} for s in clinic.slots]}


def update_clinic(clinic: Clinic, data: dict, *, actor: Actor, now: datetime, expected_version: int | None) -> Clinic:
    """Change the given fields of a clinic (name, department, specialties, slots, dates) from the version read;
    `active_to` closes it after that day, null opens it again."""
    _check_version(clinic, expected_version)
    data = {**_fields(clinic), **data}
    _check(data, clinic.id)
    before = _snapshot(clinic)
    _apply(clinic, data, now)
    db.session.flush()
    audit.record(actor.audit_name, "mdt_clinic.update", "mdt_clinic", clinic.id, now, before=before,
                 after=_snapshot(clinic))
    return clinic


def deactivate_clinic(clinic: Clinic, active_to: date, *, actor: Actor, now: datetime,
                      expected_version: int | None) -> Clinic:
    """Close a clinic after `active_to` (its last day open); it stays on the list as closed."""
    _check_version(clinic, expected_version)
    if clinic.active_to is not None and clinic.active_to <= today(now):
        raise Conflict(_("This clinic is already closed (last day %(day)s).", day=clinic.active_to.isoformat()))
    if active_to < clinic.active_from:
        raise Unprocessable(errors={"active_to": [_("The last day cannot be before the first day.")]})
    before = clinic.active_to
    clinic.active_to, clinic.updated_at = active_to, now
    db.session.flush()
    audit.record(actor.audit_name, "mdt_clinic.deactivate", "mdt_clinic", clinic.id, now,
                 before={"active_to": before.isoformat() if before else None},
                 after={"active_to": active_to.isoformat()})
    return clinic
