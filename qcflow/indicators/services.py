"""Indicator verbs: freeze a month's snapshot, set a target. They flush, never commit."""
from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from flask_babel import gettext as _

from qcflow.auth.models import Department
from qcflow.core import audit
from qcflow.core.actors import Actor
from qcflow.core.errors import Unprocessable
from qcflow.core.time import today
from qcflow.extensions import db
from qcflow.indicators import queries
from qcflow.indicators.definitions import BY_CODE
from qcflow.indicators.models import COMPARISONS, HOSPITAL_LEVELS, IndicatorSnapshot, IndicatorTarget


def freeze_month(month: date, *, actor: Actor, now: datetime) -> int:
    """Freeze a finished month's values, hospital-wide and per active department; returns rows added.

    Idempotent: an indicator already frozen for the month and scope is left as it was (the unique
    keys make a concurrent second run fail rather than freeze twice).
    """
    first = queries.month_start(month)
    if queries.month_end(first) >= today(now):
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
        for value in queries.compute(first, queries.month_end(first), department_id=department_id, codes=missing,
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


def set_target(code: str, level: str, year: int, comparison: str, value: float, *, actor: Actor, now: datetime,
               source: str | None = None) -> IndicatorTarget:
    """Set an indicator's target for a hospital level from a year on (a later year's row overrides it)."""
    errors = {}
    if code not in BY_CODE:
        errors["code"] = [_("No indicator %(code)s.", code=code)]
    if level not in HOSPITAL_LEVELS:
        errors["level"] = [_("Choose one of: %(values)s.", values=", ".join(HOSPITAL_LEVELS))]
    if comparison not in COMPARISONS:
        errors["comparison"] = [_("Choose one of: %(values)s.", values=", ".join(COMPARISONS))]
    if not 2000 <= year <= 2100:
        errors["year"] = [_("Out of range (%(low)s to %(high)s).", low=2000, high=2100)]
    if errors:
        raise Unprocessable(errors=errors)
    row = db.session.scalar(sa.select(IndicatorTarget).where(
        IndicatorTarget.code == code, IndicatorTarget.hospital_level == level, IndicatorTarget.year == year))
    before = {"comparison": row.comparison, "value": row.value} if row is not None else None
    if row is None:
        row = IndicatorTarget(code=code, hospital_level=level, year=year)
        db.session.add(row)
    row.comparison, row.value, row.source = comparison, float(value), source or row.source
    row.updated_at, row.updated_by = now, actor.audit_name
    db.session.flush()
    audit.record(actor.audit_name, "indicator_target.set", "indicator_target", row.id, now, before=before,
                 after={"code": code, "level": level, "year": year, "comparison": comparison, "value": float(value)})
    return row
