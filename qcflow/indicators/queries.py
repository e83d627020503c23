"""Read side of indicators: values for a period, a month (snapshot or computed), trends, drill-down.

The monthly bulletin calls `compute`, `month_values` and `trend`; dates are inclusive calendar days
in the hospital time zone.
"""
from __future__ import annotations

import hashlib
import operator
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _

from qcflow.core.errors import NotFound, Unprocessable
from qcflow.core.i18n import current_language, label
from qcflow.core.pagination import keyset_page
from qcflow.core.periods import Period, add_months, month_end, month_start
from qcflow.core.time import now as clock_now, today
from qcflow.extensions import db
from qcflow.indicators.definitions import (
    BY_CODE,
    INDICATORS,
    UNIT_FACTORS,
    Indicator,
    events_found_by_system,
    events_reported_by_public,
    settled_at,
)
from qcflow.indicators import catalogue, survival
from qcflow.indicators.models import (IndicatorReport, IndicatorRollup, IndicatorRollupMonth, IndicatorSnapshot,
                                      IndicatorTarget)

COMPARE = {"gt": operator.gt, "ge": operator.ge, "le": operator.le, "lt": operator.lt}
PARTS = ("numerator", "denominator")


@dataclass
class IndicatorValue:
    code: str
    name: str
    unit: str
    direction: str
    numerator: int
    denominator: int
    value: float | None
    target: float | None
    met: bool | None
    #: How the value is compared with the target (gt, ge, le, lt); None without a target.
    comparison: str | None = None
    #: Set when the value comes from a frozen monthly snapshot.
    frozen_at: datetime | None = None
    #: For a snapshot: the value computed again now, when it differs from the frozen one.
    recomputed: "IndicatorValue | None" = field(default=None, repr=False)
    #: computed or reported (catalogue.Entry.method).
    method: str = "computed"
    #: Reported: department-months submitted but not yet approved (left out of the value).
    pending: int = 0

    @property
    def differs(self) -> bool:
        return self.recomputed is not None


def hospital_level() -> str:
    return current_app.config["HOSPITAL_LEVEL"]


def targets_for(year: int, *, department_id: int | None = None) -> dict[str, catalogue.Target]:
    """Each indicator's target for a year at this hospital's level (catalogue.targets: a department's own,
    the hospital's own, else the chosen plan's)."""
    return catalogue.targets(year, hospital_level(), department_id=department_id)


def all_targets() -> list[IndicatorTarget]:
    """The hospital's own targets (the targets page); departments' own targets are on their indicators."""
    return list(db.session.scalars(sa.select(IndicatorTarget).where(IndicatorTarget.department_id.is_(None)).order_by(
        IndicatorTarget.code, IndicatorTarget.hospital_level, IndicatorTarget.year)))


def target_form_values(target_id: int | None) -> dict:
    """The targets form's values for replacing one target (its version included); empty for a new one."""
    if target_id is None:
        return {}
    row = db.session.get(IndicatorTarget, target_id)
    if row is None:
        raise NotFound()
    return {"code": row.code, "level": row.hospital_level, "year": str(row.year), "comparison": row.comparison,
            "value": f"{row.value:g}", "source": row.source or "", "version": str(row.version)}


def value_of(indicator: Indicator, numerator: int, denominator: int) -> float | None:
    if indicator.unit == "count":
        return float(numerator)
    return numerator * UNIT_FACTORS[indicator.unit] / denominator if denominator else None


def is_met(value: float | None, target: float | None, comparison: str | None) -> bool | None:
    if value is None or target is None or comparison is None:
        return None
    return COMPARE[comparison](round(value, 6), target)


def _count(indicator: Indicator, part: str, period: Period, department_id: int | None) -> int:
    total = 0
    for source in indicator.sources(part):
        sub = source.select(period).subquery()
        stmt = sa.select(sa.func.coalesce(sa.func.sum(sub.c.weight), 0))
        if department_id is not None:
            stmt = stmt.where(sub.c.department_id == department_id)
        total += int(db.session.scalar(stmt) or 0)
    return total


def counts_by_department(indicator: Indicator, part: str, period: Period) -> dict[int | None, int]:
    """A part's count per department (None: records without one), the same sums `_count` takes."""
    counts: dict[int | None, int] = {}
    for source in indicator.sources(part):
        sub = source.select(period).subquery()
        stmt = sa.select(sub.c.department_id, sa.func.sum(sub.c.weight)).group_by(sub.c.department_id)
        for department_id, n in db.session.execute(stmt):
            counts[department_id] = counts.get(department_id, 0) + int(n or 0)
    return counts


_DEFINITIONS: dict[tuple, str] = {}
#: The month every definition is compiled for when taking the digest (any fixed month would do).
_DIGEST_PERIOD = Period(date(2000, 1, 1), date(2000, 1, 31), datetime(2000, 3, 1, tzinfo=timezone.utc))


def definition_digest() -> str:
    """A digest of every part's SQL and parameters as this app compiles them.

    A rollup month records the digest it was counted with and is read only under the same digest,
    so a changed definition or setting (EVENT_CLOSURE_DAYS, TIMEZONE) never mixes old counts with
    new ones: until the refresh counts them again those months are computed live.
    """
    dialect = db.session.get_bind().dialect
    key = (dialect.name, tuple(sorted(current_app.config["EVENT_CLOSURE_DAYS"].items())),
           current_app.config["TIMEZONE"])
    if key not in _DEFINITIONS:
        digest = hashlib.sha256()
        for indicator in INDICATORS:
            for part in PARTS:
                for source in indicator.sources(part):
                    compiled = source.select(_DIGEST_PERIOD).compile(dialect=dialect)
                    params = sorted((name, repr(value)) for name, value in compiled.params.items())
                    digest.update(f"{indicator.code}|{part}|{source.kind}|{compiled}|{params}\n".encode())
        _DEFINITIONS[key] = digest.hexdigest()[:16]
    return _DEFINITIONS[key]


def rolled_up_months(period: Period) -> list[date]:
    """The months the period covers whole whose rollup can be read: settled by `period.now` and
    counted under the current definitions."""
    candidates = [month for month, first, last, _whole in period.segments()
                  if first == month and last == month_end(month) and settled_at(month) <= period.now]
    if not candidates:
        return []
    stored = set(db.session.scalars(sa.select(IndicatorRollupMonth.month_on).where(
        IndicatorRollupMonth.month_on.between(candidates[0], candidates[-1]),
        IndicatorRollupMonth.definition == definition_digest())))
    return [month for month in candidates if month in stored]


def rollup_counted_at() -> datetime | None:
    """When the settled months were last counted into the rollup (shown with the dashboard)."""
    return db.session.scalar(sa.select(sa.func.max(IndicatorRollupMonth.refreshed_at)))


def live_periods(period: Period, rolled: list[date]) -> list[Period]:
    """The stretches of the period outside the rolled-up months, computed from the records."""
    stretches, cursor = [], period.start
    for month in rolled:
        if cursor < month:
            stretches.append(Period(cursor, month - timedelta(days=1), period.now))
        cursor = month_end(month) + timedelta(days=1)
    if cursor <= period.end:
        stretches.append(Period(cursor, period.end, period.now))
    return stretches


def _rolled_counts(months: list[date], codes: list[str], department_id: int | None) -> dict[tuple[str, str], int]:
    if not months:
        return {}
    scope = (IndicatorRollup.department_id.is_(None) if department_id is None
             else IndicatorRollup.department_id == department_id)
    stmt = (sa.select(IndicatorRollup.code, IndicatorRollup.part, sa.func.sum(IndicatorRollup.total))
            .where(scope, IndicatorRollup.month_on.in_(months), IndicatorRollup.code.in_(codes))
            .group_by(IndicatorRollup.code, IndicatorRollup.part))
    return {(code, part): int(n or 0) for code, part, n in db.session.execute(stmt)}


def _indicators(codes: list[str] | None) -> list[Indicator]:
    if codes is None:
        return list(INDICATORS)
    unknown = [code for code in codes if code not in BY_CODE]
    if unknown:
        raise NotFound(_("No indicator %(code)s.", code=", ".join(unknown)))
    return [BY_CODE[code] for code in codes]


def compute(start: date, end: date, *, department_id: int | None = None, codes: list[str] | None = None,
            now: datetime | None = None, live: bool = False) -> list[IndicatorValue]:
    """Compute the indicators for calendar days start..end (inclusive), hospital-wide or for a department.

    Settled months that the rollup covers are read from it; the rest of the period (the current
    month, months not rolled up) is counted from the records. `live` counts everything from the
    records (the check that the rollup agrees). Targets are those of the year of `end` at the
    configured hospital level.
    """
    period = Period(start, end, now or clock_now())
    targets = targets_for(end.year, department_id=department_id)
    language = current_language()
    indicators = _indicators(codes)
    rolled = [] if live else rolled_up_months(period)
    stretches = live_periods(period, rolled)
    counted = _rolled_counts(rolled, [i.code for i in indicators], department_id)
    values = []
    for indicator in indicators:
        if indicator.unit == "count":
            # A number on the period's last day, not a sum over months: never read from the rollup.
            numerator, denominator = (_count(indicator, part, period, department_id) for part in PARTS)
        else:
            numerator, denominator = (
                counted.get((indicator.code, part), 0) + sum(_count(indicator, part, stretch, department_id)
                                                             for stretch in stretches)
                for part in PARTS)
        value = value_of(indicator, numerator, denominator)
        target = targets.get(indicator.code)
        goal, comparison = (target.value, target.comparison) if target is not None else (None, None)
        values.append(IndicatorValue(indicator.code, indicator.label(language), indicator.unit, indicator.direction,
                                     numerator, denominator, value, goal, is_met(value, goal, comparison),
                                     comparison))
    return values


def snapshots(month: date, department_id: int | None = None) -> dict[str, IndicatorSnapshot]:
    stmt = sa.select(IndicatorSnapshot).where(IndicatorSnapshot.month_on == month_start(month))
    stmt = stmt.where(IndicatorSnapshot.department_id.is_(None) if department_id is None
                      else IndicatorSnapshot.department_id == department_id)
    return {row.code: row for row in db.session.scalars(stmt)}


def _from_snapshot(row: IndicatorSnapshot, indicator: Indicator, language: str) -> IndicatorValue:
    return IndicatorValue(row.code, indicator.label(language), indicator.unit, indicator.direction, row.numerator,
                          row.denominator, row.value, row.target, row.met, row.comparison, frozen_at=row.frozen_at)


def _same(a: IndicatorValue, b: IndicatorValue) -> bool:
    return (a.numerator, a.denominator, a.target, a.comparison) == (b.numerator, b.denominator, b.target, b.comparison)


def month_values(month: date, *, department_id: int | None = None, codes: list[str] | None = None,
                 now: datetime | None = None, compare: bool = False) -> list[IndicatorValue]:
    """A month's values: from its snapshot where frozen, else computed (the current month: up to today).

    With `compare`, a frozen value carries `recomputed` when computing it again now gives another result.
    """
    now = now or clock_now()
    first = month_start(month)
    last = min(month_end(first), today(now))
    frozen = snapshots(first, department_id)
    language = current_language()
    indicators = _indicators(codes)
    missing = [i.code for i in indicators if i.code not in frozen]
    needed = [i.code for i in indicators] if compare else missing
    computed = {v.code: v for v in compute(first, last, department_id=department_id, codes=needed, now=now)} \
        if needed else {}
    values = []
    for indicator in indicators:
        row = frozen.get(indicator.code)
        if row is None:
            values.append(computed[indicator.code])
            continue
        value = _from_snapshot(row, indicator, language)
        fresh = computed.get(indicator.code)
        if fresh is not None and not _same(value, fresh):
            value = replace(value, recomputed=fresh)
        values.append(value)
    return values


def trend(code: str, end_month: date, months: int = 12, *, department_id: int | None = None,
          now: datetime | None = None, compare: bool = False) -> list[tuple[date, IndicatorValue]]:
    """One indicator month by month, the `months` months up to `end_month` (oldest first)."""
    _indicators([code])
    last = month_start(end_month)
    return [(month, month_values(month, department_id=department_id, codes=[code], now=now, compare=compare)[0])
            for month in (add_months(last, -n) for n in range(months - 1, -1, -1))]


def check_month(month: date, now: datetime) -> None:
    if month_start(month) > month_start(today(now)):
        raise Unprocessable(_("This month is in the future."),
                            errors={"month": [_("Choose this month or an earlier one.")]})


def indicator(code: str) -> Indicator:
    found = BY_CODE.get(code)
    if found is None:
        raise NotFound(_("No indicator %(code)s.", code=code))
    return found


def found_by_system(start: date, end: date, *, department_id: int | None = None) -> int:
    """Reports of the period filed from a trigger's firing (系统发现), shown beside the reporting rate, which
    leaves them out (definitions.actively_reported)."""
    sub = events_found_by_system(Period(start, end)).subquery()
    stmt = sa.select(sa.func.count()).select_from(sub)
    if department_id is not None:
        stmt = stmt.where(sub.c.department_id == department_id)
    return int(db.session.scalar(stmt) or 0)


def reported_by_public(start: date, end: date, *, department_id: int | None = None) -> int:
    """Reports of the period from patients and families (the public form), shown beside the reporting rate,
    which leaves them out (definitions.actively_reported)."""
    sub = events_reported_by_public(Period(start, end)).subquery()
    stmt = sa.select(sa.func.count()).select_from(sub)
    if department_id is not None:
        stmt = stmt.where(sub.c.department_id == department_id)
    return int(db.session.scalar(stmt) or 0)


def counted_apart(start: date, end: date, *, department_id: int | None = None) -> dict[str, int]:
    """What an indicator leaves out but shows beside its value, by indicator code: the reporting rate's
    reports found by the system."""
    return {"ae_per_100_discharges": found_by_system(start, end, department_id=department_id)}


def period_values(start: date, end: date, *, department_id: int | None, now: datetime) -> list[IndicatorValue]:
    """What the list shows: a whole past month from its snapshot (with any difference), else computed."""
    first = month_start(start)
    if start == first and end == month_end(first) and end < today(now):
        return month_values(first, department_id=department_id, now=now, compare=True)
    return compute(start, end, department_id=department_id, now=now)


def _label(kind: str, row) -> str:
    mapping = row._mapping
    if kind == "event":
        return mapping["reference"] or f"#{row.id}"
    if kind == "census":
        english = current_language() == "en" and mapping["department_name_en"]
        department = mapping["department_name_en"] if english else mapping["department_name"]
        return _("Discharge census %(department)s %(month)s: %(n)d discharges", department=department,
                 month=mapping["month_on"].strftime("%Y-%m"), n=row.weight)
    if kind == "encounter":
        return f"{mapping['his_id']} · {mapping['mrn']}"
    if kind == "operation":
        return f"{mapping['his_id']} · {mapping['procedure']} · {mapping['mrn']}"
    if kind == "mdt_clinic":
        return mapping["name"]
    if kind == "followup_task":
        return f"{label('fu_pathway', mapping['pathway'])} · {mapping['due_on'].isoformat()} · {mapping['mrn']}"
    return f"#{row.id} · {mapping['mrn']}"


def encode_cursor(source_index: int, last_id: int) -> str:
    return f"{source_index}.{last_id}"


def decode_cursor(cursor: str | None) -> tuple[int, int]:
    if not cursor:
        return 0, 0
    try:
        index, last = cursor.split(".")
        return int(index), int(last)
    except ValueError:
        raise Unprocessable(errors={"cursor": [_("Not a cursor from this list; start again without it.")]})


def cases(code: str, part: str, start: date, end: date, *, department_id: int | None, now: datetime,
          cursor: str | None = None, limit: int = 50) -> tuple[list[dict], str | None, int]:
    """The records behind a numerator or denominator, keyset-paginated by (source, id).

    Each item has the record's kind, id, a short label, its page (if any) and its weight (1, or a
    census row's discharges), so the weights of all pages add up to the count.
    """
    found = indicator(code)
    period = Period(start, end, now)
    index, last_id = decode_cursor(cursor)
    sources = found.sources(part)
    items: list[dict] = []
    total = _count(found, part, period, department_id)
    for position in range(index, len(sources)):
        source = sources[position]
        stmt = _source_rows(source, period, department_id, last_id if position == index else 0)
        stmt = stmt.order_by(stmt.selected_columns.id)
        rows, after = keyset_page(lambda n: db.session.execute(stmt.limit(n)), limit - len(items),
                                  key=lambda row: row.id)
        items += [{"kind": source.kind, "id": row.id, "label": _label(source.kind, row),
                   "url": source.url.format(id=row.id) if source.url else None, "weight": int(row.weight)}
                  for row in rows]
        if len(items) >= limit:
            more = after is not None or _has_more(sources[position + 1:], period, department_id)
            return items, encode_cursor(position, items[-1]["id"]) if more else None, total
    return items, None, total


def _source_rows(source, period: Period, department_id: int | None, after_id: int = 0) -> sa.Select:
    sub = source.select(period).subquery()
    stmt = sa.select(sub)
    if department_id is not None:
        stmt = stmt.where(sub.c.department_id == department_id)
    return stmt.where(sub.c.id > after_id) if after_id else stmt


def _has_more(sources, period: Period, department_id: int | None) -> bool:
    return any(db.session.execute(_source_rows(source, period, department_id).limit(1)).first() is not None
               for source in sources)


#: How a reported indicator's monthly values add up over months and departments, by unit (docs/decisions.md):
#: rates from the summed parts, counts summed, times and ratios averaged, a status done only if every report says so.
REPORTED_RATES = tuple(UNIT_FACTORS)


def reported_value(unit: str, numerator, denominator, total, mean, lowest) -> float | None:
    if unit in REPORTED_RATES:
        return numerator * UNIT_FACTORS[unit] / denominator if denominator else None
    if mean is None:
        return None
    return float({"count": total, "status": lowest}.get(unit, mean))


def reported_values(start: date, end: date, *, department_id: int | None = None,
                    codes: list[str] | None = None) -> list[IndicatorValue]:
    """The reported indicators of the catalogue for the months start..end touches: approved reports only
    (hospital-wide: every department's), with the reports awaiting the quality office's decision counted in
    `pending` (a returned or re-opened value is owed by its department, not pending). A department's own
    indicator is compared with its department's target, also in the hospital's view.
    One aggregate over the reports, grouped by indicator."""
    entries = [e for e in catalogue.entries() if e.method == "reported" and (codes is None or e.code in codes)]
    if not entries:
        return []
    report = IndicatorReport
    approved = report.state == "approved"
    with_parts = sa.and_(approved, report.denominator.is_not(None))
    stmt = sa.select(
        report.code,
        sa.func.sum(sa.case((with_parts, report.numerator))), sa.func.sum(sa.case((with_parts, report.denominator))),
        sa.func.sum(sa.case((approved, report.value))), sa.func.avg(sa.case((approved, report.value))),
        sa.func.min(sa.case((approved, report.value))),
        sa.func.count(sa.case((report.state == "submitted", report.id))),
    ).where(report.code.in_([e.code for e in entries]), report.month_on >= month_start(start),
            report.month_on <= month_start(end)).group_by(report.code)
    if department_id is not None:
        stmt = stmt.where(report.department_id == department_id)
    sums = {row[0]: row[1:] for row in db.session.execute(stmt)}
    targets = targets_for(end.year, department_id=department_id)
    owners = {e.owner_department_id for e in entries if e.is_local and department_id is None}
    own_targets = {owner: targets_for(end.year, department_id=owner) for owner in owners}
    language = current_language()
    found = []
    for entry in entries:
        numerator, denominator, total, mean, lowest, pending = sums.get(entry.code, (None,) * 5 + (0,))
        numerator = int(numerator) if numerator is not None else None
        denominator = int(denominator) if denominator is not None else None
        value = reported_value(entry.unit, numerator, denominator, total, mean, lowest)
        target = own_targets.get(entry.owner_department_id, targets).get(entry.code)
        goal, comparison = (target.value, target.comparison) if target is not None else (None, None)
        found.append(IndicatorValue(entry.code, entry.label(language), entry.unit, entry.direction, numerator,
                                    denominator, value, goal, is_met(value, goal, comparison), comparison,
                                    method="reported", pending=int(pending)))
    return found


def reported_trend(code: str, month: date, department_id: int | None) -> list[tuple[date, IndicatorValue]]:
    """A reported indicator month by month, the 12 months up to `month` (approved reports)."""
    first = month_start(month)
    return [(start, value) for start in (add_months(first, -n) for n in range(11, -1, -1))
            for value in reported_values(start, month_end(start), department_id=department_id, codes=[code])]


def survival_values(end: date, *, department_id: int | None = None) -> list[IndicatorValue]:
    """The five-year survival indicators of the catalogue (indicators.survival: Kaplan–Meier as known on `end`),
    as values without parts; none where fewer than k were diagnosed or nobody was followed five years yet."""
    entries = [e for e in catalogue.entries(include_local=False)
               if e.method == "computed" and e.code in survival.SURVIVAL_CODES]
    targets = targets_for(end.year, department_id=department_id)
    language = current_language()
    found = []
    for entry in entries:
        value = survival.survival_value(entry.code, end, end, department_id)
        target = targets.get(entry.code)
        goal, comparison = (target.value, target.comparison) if target is not None else (None, None)
        found.append(IndicatorValue(entry.code, entry.label(language), entry.unit, entry.direction, None, None, value,
                                    goal, is_met(value, goal, comparison), comparison))
    return found


def catalogue_values(start: date, end: date, *, department_id: int | None = None,
                     now: datetime | None = None) -> dict[str, IndicatorValue]:
    """Every indicator of the catalogue that has a value here, computed (by SQL, or the survival estimate) or
    reported, by code (an indicator that does not apply has none)."""
    computed_codes = [e.code for e in catalogue.entries(include_local=False) if e.computed is not None]
    values = {v.code: v for v in compute(start, end, department_id=department_id, codes=computed_codes, now=now)}
    values.update((v.code, v) for v in survival_values(end, department_id=department_id))
    values.update((v.code, v) for v in reported_values(start, end, department_id=department_id))
    return values
