"""Indicator verbs: freeze a month's snapshot, refresh the rollup, set a target. They flush, never commit."""
from __future__ import annotations

import math
import re
from datetime import date, datetime

import sqlalchemy as sa
from flask_babel import gettext as _

from qcflow.auth.models import Department, Role
from qcflow.clinical.models import DischargeCensus, Encounter, Operation, Patient
from qcflow.core import audit
from qcflow.core.actors import Actor
from qcflow.core import periods
from qcflow.core.errors import Conflict, Forbidden, NotFound, Unprocessable
from qcflow.core.time import local, today
from qcflow.events.models import AdverseEvent
from qcflow.extensions import db
from qcflow.followup.models import Task
from qcflow.indicators import catalogue, queries
from qcflow.indicators.definitions import BY_CODE, INDICATORS, settled_at
from qcflow.indicators.models import (COMPARISONS, DIRECTIONS, HOSPITAL_LEVELS, METHODS, UNITS, IndicatorReport,
                                      IndicatorRollup, IndicatorRollupMonth, IndicatorSetup, IndicatorSnapshot,
                                      IndicatorTarget, LocalIndicator)

#: How far back the rollup reaches: the longest period the list computes (periods.INDICATOR_PERIODS).
ROLLUP_MONTHS = 120


def freeze_month(month: date, *, actor: Actor, now: datetime) -> int:
    """Freeze a finished month's values, hospital-wide and per active department; returns rows added.

    Idempotent: an indicator already frozen for the month and scope is left as it was (the unique
    keys make a concurrent second run fail rather than freeze twice).
    """
    first = periods.month_start(month)
    if periods.month_end(first) >= today(now):
        raise Unprocessable(_("Only a finished month can be frozen."),
                            errors={"month": [_("Choose a month before the current one.")]})
    scopes = [None] + list(db.session.scalars(sa.select(Department.id).where(Department.is_active.is_(True))
                                              .order_by(Department.id)))
    added = 0
    for department_id in scopes:
        frozen = queries.snapshots(first, department_id)
        missing = [code for code in BY_CODE if code not in frozen]
        if not missing:
            continue
        for value in queries.compute(first, periods.month_end(first), department_id=department_id, codes=missing,
                                     now=now):
            db.session.add(IndicatorSnapshot(
                month_on=first, code=value.code, department_id=department_id, numerator=value.numerator,
                denominator=value.denominator, value=value.value, target=value.target, comparison=value.comparison,
                met=value.met, frozen_at=now))
            added += 1
    db.session.flush()
    if added:
        audit.record(actor.audit_name, "indicator_snapshot.freeze", "indicator_snapshot", first.isoformat(), now,
                     after={"month": first.isoformat(), "rows": added})
    return added


def last_settled_month(now: datetime) -> date:
    """The latest month whose counts no longer depend on `now` (definitions.settled_at)."""
    month = periods.add_months(periods.month_start(today(now)), -1)
    while settled_at(month) > now:
        month = periods.add_months(month, -1)
    return month


def _first_record_month(last: date) -> date:
    """The month of the oldest record any part is dated by, at most ROLLUP_MONTHS back (only how
    much is rolled up depends on it: months before it are computed live)."""
    oldest = [db.session.scalar(sa.select(sa.func.min(column))) for column in (
        AdverseEvent.submitted_at, Encounter.discharged_at, Task.closes_at, Operation.performed_at,
        DischargeCensus.month_on, Patient.died_on)]
    days = [local(value).date() if isinstance(value, datetime) else value for value in oldest if value is not None]
    if not days:
        return periods.add_months(last, 1)  # no records: nothing to roll up
    return max(periods.month_start(min(days)), periods.add_months(last, 1 - ROLLUP_MONTHS))


def refresh_rollups(*, actor: Actor, now: datetime) -> int:
    """Count every settled month again from the records into the rollup; returns the months rolled up.

    Every run recounts every month it keeps (from the oldest record, at most ROLLUP_MONTHS back, to
    the last settled month) with the definitions' own SQL, so late, edited or deleted records of any
    past month are in the rollup after the next run. Idempotent: a run that finds the counts already
    stored writes (and audits) nothing.
    """
    last = last_settled_month(now)
    first = _first_record_month(last)
    digest = queries.definition_digest()
    months, rows, month = [], [], first
    # Count everything first, write at the end: on SQLite the write lock is then held for the
    # replacement only, not for the whole recount.
    while month <= last:
        period = periods.month_period(month, now)
        for indicator in INDICATORS:
            for part in queries.PARTS:
                counts = queries.counts_by_department(indicator, part, period)
                scopes = [(None, sum(counts.values()))] + [(d, n) for d, n in counts.items() if d is not None]
                rows += [{"month_on": month, "code": indicator.code, "part": part, "department_id": department_id,
                          "total": n} for department_id, n in scopes if n]
        months.append({"month_on": month, "definition": digest, "refreshed_at": now})
        month = periods.add_months(month, 1)
    if _stored_rollup() == ({(m["month_on"], m["definition"]) for m in months},
                            {(r["month_on"], r["code"], r["part"], r["department_id"], r["total"]) for r in rows}):
        return len(months)  # the same counts: nothing to write or audit
    db.session.execute(sa.delete(IndicatorRollup))
    db.session.execute(sa.delete(IndicatorRollupMonth))
    if months:
        db.session.execute(sa.insert(IndicatorRollupMonth), months)
    if rows:
        db.session.execute(sa.insert(IndicatorRollup), rows)
    db.session.flush()
    audit.record(actor.audit_name, "indicator_rollup.refresh", "indicator_rollup", digest, now,
                 after={"from": first.isoformat(), "to": last.isoformat(), "months": len(months), "rows": len(rows)})
    return len(months)


def _stored_rollup() -> tuple[set, set]:
    months = set(db.session.execute(sa.select(IndicatorRollupMonth.month_on, IndicatorRollupMonth.definition)).all())
    rows = set(db.session.execute(sa.select(IndicatorRollup.month_on, IndicatorRollup.code, IndicatorRollup.part,
                                            IndicatorRollup.department_id, IndicatorRollup.total)).all())
    return {tuple(m) for m in months}, {tuple(r) for r in rows}


def _target_row(code: str, level: str, year: int, department_id: int | None):
    return sa.select(IndicatorTarget).where(
        IndicatorTarget.code == code, IndicatorTarget.hospital_level == level, IndicatorTarget.year == year,
        IndicatorTarget.department_id.is_(None) if department_id is None
        else IndicatorTarget.department_id == department_id)


def target_version(code: str, level: str, year: int, department_id: int | None = None) -> int | None:
    """The version of the target of this indicator, level, year (and department), if there is one."""
    row = db.session.scalar(_target_row(code, level, year, department_id))
    return row.version if row is not None else None


def set_target(code: str, level: str, year: int, comparison: str, value: float, *, actor: Actor, now: datetime,
               expected_version: int | None, source: str | None = None,
               department_id: int | None = None) -> IndicatorTarget:
    """Set an indicator's target for a hospital level from a year on (a later year's row overrides it): the
    hospital's own, or with `department_id` a department's own target for its value.

    Replacing an existing target needs its version (`expected_version`): a missing or stale one is 409,
    so that an administrator never overwrites a target she has not seen.
    """
    errors = {}
    if not catalogue.is_plan_code(code) and code not in BY_CODE and not _is_local_code(code):
        errors["code"] = [_("No indicator %(code)s.", code=code)]
    if level not in HOSPITAL_LEVELS:
        errors["level"] = [_("Choose one of: %(values)s.", values=", ".join(HOSPITAL_LEVELS))]
    if comparison not in COMPARISONS:
        errors["comparison"] = [_("Choose one of: %(values)s.", values=", ".join(COMPARISONS))]
    if not 2000 <= year <= 2100:
        errors["year"] = [_("Out of range (%(low)s to %(high)s).", low=2000, high=2100)]
    if "code" not in errors and (value_error := _target_value_error(code, value)):
        errors["value"] = [value_error]
    if errors:
        raise Unprocessable(errors=errors)
    row = db.session.scalar(_target_row(code, level, year, department_id))
    if row is not None and expected_version != row.version:
        raise Conflict(_("A target for this indicator, level and year exists already (%(comparison)s %(value)s). "
                         "Edit that row to replace it.", comparison=row.comparison, value=row.value),
                       current_version=row.version)
    before = {"comparison": row.comparison, "value": row.value} if row is not None else None
    if row is None:
        row = IndicatorTarget(code=code, hospital_level=level, year=year, department_id=department_id)
        db.session.add(row)
    row.comparison, row.value, row.source = comparison, float(value), source or row.source
    row.updated_at, row.updated_by = now, actor.audit_name
    db.session.flush()
    audit.record(actor.audit_name, "indicator_target.set", "indicator_target", row.id, now, before=before,
                 after={"code": code, "level": level, "year": year, "comparison": comparison, "value": float(value),
                        "department_id": department_id})
    return row


#: The range of a target by unit: a share cannot pass its whole, nothing a hospital counts is negative, and a
#: target beyond a billion is a typing error (the reported values' bound).
_TARGET_RANGES = {"percent": 100.0, "permille": 1000.0}


def _target_value_error(code: str, value: float) -> str | None:
    unit = BY_CODE[code].unit if code in BY_CODE else catalogue.entry(code).unit
    high = _TARGET_RANGES.get(unit, float(10 ** 9))
    if not math.isfinite(value) or not 0 <= value <= high:
        return _("Out of range (%(low)s to %(high)s).", low=0, high=f"{high:g}")
    if unit == "status" and value not in (0, 1):
        return _("A done-or-not item's target is 1 (done).")
    return None


def _is_local_code(code: str) -> bool:
    return db.session.scalar(sa.select(LocalIndicator.id).where(LocalIndicator.code == code)) is not None


# This hospital's setup of the catalogue, departments' own indicators and their targets (docs/indicators.md,
# "This hospital's setup").

#: Control characters refused in names, reasons and definitions (core.schemas.no_control_characters says why);
#: a definition (long text) keeps its tabs and line breaks.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_IN_LONG_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
REASON_MAX, NAME_MAX, DEFINITION_MAX = 300, 120, 2000
#: What a department may change of its own indicator (its code and department stay).
LOCAL_FIELDS = ("name", "name_en", "unit", "direction", "definition", "is_active")


def _text_errors(value: str | None, *, required: bool, limit: int, long_text: bool = False) -> list[str]:
    """Why a text field is refused (empty when it is fine)."""
    if value is None or not value.strip():
        return [_("This field is required.")] if required else []
    if len(value) > limit:
        return [_("At most %(n)s characters.", n=limit)]
    if (_CONTROL_IN_LONG_TEXT if long_text else _CONTROL).search(value):
        return [_("Control characters (such as NUL or ESC) are not allowed in text.")]
    return []


def _active_department_errors(department_id: int | None) -> list[str]:
    if department_id is None:
        return []
    department = db.session.get(Department, department_id)
    if department is None:
        return [_("No such department.")]
    if not department.is_active:
        return [_("This department is no longer active: choose another one.")]
    return []


def _stale(current: int | None, expected: int | None) -> None:
    """409 when the row changed (or appeared, or went away) since the caller read it."""
    if current != expected:
        raise Conflict(_("Someone changed this indicator since you opened it; reload it and try again."),
                       current_version=current)


def set_up_indicator(code: str, method: str, reason: str | None, department_id: int | None,
                     expected_version: int | None, *, actor: Actor, now: datetime) -> catalogue.Entry:
    """Choose how a plan indicator gets its value here: computed (only where qcflow can compute it), reported
    (by `department_id`, None: the quality office) or not applicable (with a reason).

    The hospital's row holds only what differs from the catalogue: a choice equal to the catalogue's default
    deletes it (audited like any other), so the indicator follows the catalogue again. A reason is kept only for
    an indicator that does not apply, and such an indicator has no reporting department. `expected_version` is
    the row's version as read (None: no row); another one is 409.
    """
    if not catalogue.is_plan_code(code):
        raise NotFound(_("No indicator %(code)s in the plans' catalogue.", code=code))
    current = catalogue.entry(code)
    errors: dict[str, list] = {}
    if method not in METHODS:
        errors["method"] = [_("Choose one of: %(values)s.", values=", ".join(METHODS))]
    elif method == "computed" and code not in BY_CODE and current.default_method != "computed":
        errors["method"] = [_("qcflow cannot compute this indicator from its own data: choose reported or "
                              "not applicable.")]
    if method == "not_applicable":
        reason = (reason or "").strip() or None
        if reason_errors := _text_errors(reason, required=True, limit=REASON_MAX):
            errors["reason"] = reason_errors
        department_id = None
    else:
        reason = None
        if department_errors := _active_department_errors(department_id):
            errors["department"] = department_errors
    if errors:
        raise Unprocessable(errors=errors)
    row = db.session.scalar(sa.select(IndicatorSetup).where(IndicatorSetup.code == code))
    _stale(row.version if row is not None else None, expected_version)
    is_default = (method == current.default_method and department_id is None
                  and reason in (None, catalogue.default_entry(code).reason or None))
    if is_default:
        reason = None  # the catalogue's own reason, if any
    before = {"method": current.method, "reason": row.reason if row is not None else None,
              "department_id": current.department_id}
    after = {"method": method, "reason": reason, "department_id": department_id}
    if before == after:
        return current
    if is_default:
        db.session.delete(row)
        action = "indicator_setup.reset"
    else:
        if row is None:
            row = IndicatorSetup(code=code)
            db.session.add(row)
        row.method, row.reason, row.department_id = method, reason, department_id
        row.updated_at, row.updated_by = now, actor.audit_name
        action = "indicator_setup.set"
    db.session.flush()
    audit.record(actor.audit_name, action, "indicator_setup", code, now, before=before, after=after)
    return catalogue.entry(code)


def _may_keep(actor: Actor, department_id: int) -> None:
    """The quality office keeps any department's own indicators and targets; a department head their own."""
    if Role.QUALITY in actor.roles:
        return
    if Role.DEPT_HEAD in actor.roles and actor.department_id == department_id:
        return
    raise Forbidden(_("Only a head of this department or the quality office may change its own indicators and "
                      "targets."))


def _local_errors(values: dict) -> dict:
    errors = {}
    for name, required, limit, long_text in (("name", True, NAME_MAX, False), ("name_en", False, NAME_MAX, False),
                                             ("definition", True, DEFINITION_MAX, True)):
        if found := _text_errors(values.get(name), required=required, limit=limit, long_text=long_text):
            errors[name] = found
    if values.get("unit") not in UNITS:
        errors["unit"] = [_("Choose one of: %(values)s.", values=", ".join(UNITS))]
    if values.get("direction") not in DIRECTIONS:
        errors["direction"] = [_("Choose one of: %(values)s.", values=", ".join(DIRECTIONS))]
    return errors


def local_code_prefix(department: Department) -> str:
    """"local_" and the department's code in lower case (characters other than a-z and 0-9 become "_")."""
    slug = re.sub(r"[^a-z0-9]+", "_", department.code.lower()).strip("_") or str(department.id)
    return f"local_{slug}_"


def _next_local_code(department: Department) -> str:
    prefix = local_code_prefix(department)
    taken = db.session.scalars(sa.select(LocalIndicator.code).where(LocalIndicator.code.startswith(prefix)))
    numbers = [int(code[len(prefix):]) for code in taken if code[len(prefix):].isdigit()]
    return f"{prefix}{max(numbers, default=0) + 1}"


def _clean(values: dict) -> dict:
    cleaned = dict(values)
    for name in ("name", "name_en", "definition"):
        if isinstance(cleaned.get(name), str):
            cleaned[name] = cleaned[name].strip() or None
    return cleaned


def create_local_indicator(department_id: int, data: dict, *, actor: Actor, now: datetime) -> LocalIndicator:
    """A department's own key indicator (name, English name, unit, direction, definition), always reported by
    the department; its code is "local_" + the department's code + "_" + the next number."""
    if department_errors := _active_department_errors(department_id):
        raise Unprocessable(errors={"department": department_errors})
    _may_keep(actor, department_id)
    values = _clean({name: data.get(name) for name in LOCAL_FIELDS if name != "is_active"})
    if errors := _local_errors(values):
        raise Unprocessable(errors=errors)
    department = db.session.get(Department, department_id)
    row = LocalIndicator(code=_next_local_code(department), department_id=department_id, is_active=True,
                         created_at=now, updated_at=now, updated_by=actor.audit_name, **values)
    db.session.add(row)
    db.session.flush()
    audit.record(actor.audit_name, "local_indicator.create", "local_indicator", row.code, now,
                 after={**values, "department_id": department_id})
    return row


def local_indicator(code: str) -> LocalIndicator:
    row = db.session.scalar(sa.select(LocalIndicator).where(LocalIndicator.code == code))
    if row is None:
        raise NotFound(_("No indicator %(code)s.", code=code))
    return row


def update_local_indicator(code: str, data: dict, expected_version: int | None, *, actor: Actor,
                           now: datetime) -> LocalIndicator:
    """Change a department's own indicator, or switch it off or on (`is_active`); fields not given stay. Its unit
    stays once values have been reported in it."""
    row = local_indicator(code)
    _may_keep(actor, row.department_id)
    _stale(row.version, expected_version)
    values = _clean({name: data[name] if name in data else getattr(row, name) for name in LOCAL_FIELDS})
    errors = _local_errors(values)
    if not isinstance(values["is_active"], bool):
        errors["is_active"] = [_("Enter true or false.")]
    if values["unit"] != row.unit and db.session.scalar(
            sa.select(IndicatorReport.id).where(IndicatorReport.code == code).limit(1)) is not None:
        errors["unit"] = [_("Values have been reported in this unit: the unit cannot change. Deactivate this "
                            "indicator and create another one.")]
    if errors:
        raise Unprocessable(errors=errors)
    changed = [name for name in LOCAL_FIELDS if values[name] != getattr(row, name)]
    if not changed:
        return row
    before = {name: getattr(row, name) for name in changed}
    for name in changed:
        setattr(row, name, values[name])
    row.updated_at, row.updated_by = now, actor.audit_name
    db.session.flush()
    action = ("local_indicator.deactivate" if changed == ["is_active"] and not row.is_active else
              "local_indicator.reactivate" if changed == ["is_active"] else "local_indicator.update")
    audit.record(actor.audit_name, action, "local_indicator", code, now, before=before,
                 after={name: values[name] for name in changed})
    return row


def deactivate_local_indicator(code: str, expected_version: int | None, *, actor: Actor,
                               now: datetime) -> LocalIndicator:
    """Switch a department's own indicator off: it leaves the catalogue and the reporting forms; its values and
    targets stay."""
    return update_local_indicator(code, {"is_active": False}, expected_version, actor=actor, now=now)


def set_department_target(code: str, department_id: int, level: str, year: int, comparison: str, value: float, *,
                          actor: Actor, now: datetime, expected_version: int | None,
                          source: str | None = None) -> IndicatorTarget:
    """A department's own yearly target (set_target with `department_id`). A department head sets them for
    their own department only, and only for its own indicators and the plan indicators it reports; the quality
    office for any department and indicator."""
    if department_errors := _active_department_errors(department_id):
        raise Unprocessable(errors={"department": department_errors})
    _may_keep(actor, department_id)
    try:
        found = catalogue.entry(code)
    except NotFound:
        raise Unprocessable(errors={"code": [_("No indicator %(code)s.", code=code)]}) from None
    if Role.QUALITY not in actor.roles:
        if found.department_id != department_id or found.method == "not_applicable":
            raise Forbidden(_("A department sets targets only for its own indicators and the plan indicators it "
                              "reports."))
    if _is_local_code(code) and not local_indicator(code).is_active:
        raise Unprocessable(errors={"code": [_("This indicator is switched off: switch it on to set targets.")]})
    return set_target(code, level, year, comparison, value, actor=actor, now=now, expected_version=expected_version,
                      source=source, department_id=department_id)
