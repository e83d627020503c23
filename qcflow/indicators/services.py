"""Indicator verbs: freeze a month's snapshot, refresh the rollup, set a target. They flush, never commit."""
from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from flask_babel import gettext as _

from qcflow.auth.models import Department
from qcflow.clinical.models import DischargeCensus, Encounter, Operation, Patient
from qcflow.core import audit
from qcflow.core.actors import Actor
from qcflow.core import periods
from qcflow.core.errors import Conflict, Unprocessable
from qcflow.core.time import local, today
from qcflow.events.models import AdverseEvent
from qcflow.extensions import db
from qcflow.followup.models import Task
from qcflow.indicators import catalogue, queries
from qcflow.indicators.definitions import BY_CODE, INDICATORS, settled_at
from qcflow.indicators.models import (COMPARISONS, HOSPITAL_LEVELS, IndicatorRollup, IndicatorRollupMonth,
                                      IndicatorSnapshot, IndicatorTarget, LocalIndicator)

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


def _is_local_code(code: str) -> bool:
    return db.session.scalar(sa.select(LocalIndicator.id).where(LocalIndicator.code == code)) is not None
