"""The centre's comparisons across hospitals: read-only aggregates over the monthly values of the current versions
(region_value WHERE is_current, served by the partial index ix_region_value_current on (code, month_on,
hospital_id)). Values add up over months as a hospital's own reported values do (queries.reported_value): rates
from the summed numerators and denominators, counts summed, times and ratios averaged, a status done only if every
month says so."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _

from qcflow.core import periods
from qcflow.core.errors import NotFound, Unprocessable
from qcflow.core.time import local
from qcflow.extensions import db
from qcflow.indicators import catalogue
from qcflow.indicators.definitions import UNIT_FACTORS
from qcflow.indicators.models import HOSPITAL_LEVELS
from qcflow.indicators.queries import is_met, reported_value
from qcflow.indicators.reporting import RATE_UNITS
from qcflow.region.models import RegionHospital, RegionSubmission, RegionValue
from qcflow.region.protocol import last_half_year

#: Two-sided normal quantiles of the funnel plot's control limits (95 % and 99.8 %).
Z95 = 1.959964
Z998 = 3.090232
#: Higher values rank first for these directions; lower first for "lower" and "falling"; "none" is not ranked.
DESCENDING = ("higher", "rising")
ASCENDING = ("lower", "falling")
#: A period asked for spans at most this many months.
LONGEST_MONTHS = 120
#: Completeness of one hospital's month: sent, owed but not yet late, late (after REGION_DUE_DAY of the next
#: month), not yet due (the month has not ended), not expected (before the month the hospital was registered).
SENT, MISSING, OVERDUE, NOT_DUE, NOT_EXPECTED = "sent", "missing", "overdue", "not_due", "not_expected"
STATUSES = (SENT, MISSING, OVERDUE, NOT_DUE, NOT_EXPECTED)


def small_cell_k() -> int:
    return current_app.config["REPORT_SMALL_CELL_K"]


def month_text(month: date) -> str:
    return f"{month:%Y-%m}"


# Periods -------------------------------------------------------------------------------------------------------

def half_year(year: int, half: int) -> tuple[date, date]:
    return (date(year, 1, 1), date(year, 6, 1)) if half == 1 else (date(year, 7, 1), date(year, 12, 1))


def check_months(start: date | None, end: date | None, today: date) -> tuple[date, date]:
    """The asked months (first days), by default the last complete half-year; a reversed period, one that
    ends after this month or one longer than LONGEST_MONTHS is refused (422 naming `from` or `to`)."""
    if start is None and end is None:
        return last_half_year(today)
    end = periods.month_start(end) if end else periods.add_months(periods.month_start(start), 5)
    start = periods.month_start(start) if start else periods.add_months(end, -5)
    errors = {}
    if end > periods.month_start(today):
        errors["to"] = [_("Choose this month or an earlier one.")]
    if start > end:
        errors["from"] = [_("The first month is after the last month.")]
    elif (end.year - start.year) * 12 + end.month - start.month >= LONGEST_MONTHS:
        errors["from"] = [_("A period spans at most %(n)d months.", n=LONGEST_MONTHS)]
    if errors:
        raise Unprocessable(_("Choose another period."), errors=errors)
    return start, end


def months_between(start: date, end: date) -> list[date]:
    found, month = [], start
    while month <= end:
        found.append(month)
        month = periods.add_months(month, 1)
    return found


# Sums ----------------------------------------------------------------------------------------------------------

@dataclass
class Sums:
    """One group's monthly values added up (a hospital's, or a level's)."""

    numerator: int | None = None
    denominator: int | None = None
    total: float | None = None
    lowest: float | None = None
    #: How many monthly values there are (and how many rows: months sent).
    valued: int = 0
    months: int = 0
    hospitals: int = 0

    def value(self, unit: str) -> float | None:
        mean = self.total / self.valued if self.valued and self.total is not None else None
        if unit in RATE_UNITS and self.denominator is None:
            # A rate sent as a value only (five-year survival): the mean of the months.
            return mean
        return reported_value(unit, self.numerator, self.denominator, self.total, mean, self.lowest)


def _sum_columns():
    v = RegionValue
    with_parts = v.denominator.is_not(None)
    return (sa.func.sum(sa.case((with_parts, v.numerator))), sa.func.sum(sa.case((with_parts, v.denominator))),
            sa.func.sum(v.value), sa.func.min(v.value), sa.func.count(v.value), sa.func.count())


def _sums(row) -> Sums:
    numerator, denominator, total, lowest, valued, months = row
    return Sums(int(numerator) if numerator is not None else None,
                int(denominator) if denominator is not None else None,
                float(total) if total is not None else None, float(lowest) if lowest is not None else None,
                int(valued), int(months))


def _current(start: date, end: date):
    """The WHERE of every comparison: current values of the months start..end (the partial index's predicate
    is `is_current` as such, so the query says exactly that)."""
    return sa.and_(RegionValue.is_current, RegionValue.month_on >= start, RegionValue.month_on <= end)


def hospital_sums(code: str, start: date, end: date) -> dict[int, Sums]:
    """One indicator's sums per hospital over the months: one GROUP BY on the partial index."""
    stmt = (sa.select(RegionValue.hospital_id, *_sum_columns())
            .where(RegionValue.code == code, _current(start, end)).group_by(RegionValue.hospital_id))
    return {row[0]: _sums(row[1:]) for row in db.session.execute(stmt)}


def pooled(unit: str, rows: list[Sums]) -> Sums:
    """A level's regional figures from its hospitals' sums: rates pooled from the summed parts (a rate sent as a
    value only: the mean of the hospitals' values, `valued` then counting hospitals), times and ratios the mean
    of every month sent, counts the mean of the hospitals' totals, a status done only if every month is."""
    with_values = [r for r in rows if r.months]
    found = Sums(hospitals=len(with_values), months=sum(r.months for r in with_values),
                 valued=sum(r.valued for r in with_values))
    parts = [r for r in with_values if r.denominator is not None]
    if parts:
        found.numerator = sum(r.numerator or 0 for r in parts)
        found.denominator = sum(r.denominator for r in parts)
    totals = [r.total for r in with_values if r.total is not None]
    if totals:
        found.total = sum(totals)
        found.lowest = min(r.lowest for r in with_values if r.lowest is not None)
    if unit in RATE_UNITS and not parts:
        # Rates sent as values only: the regional value is the mean of the hospitals' values (each the mean of
        # its months), so a hospital's weight does not depend on how many months it sent.
        means = [r.value(unit) for r in with_values if r.valued]
        found.total, found.valued = (sum(means), len(means)) if means else (None, 0)
    return found


def regional_value(unit: str, sums: Sums) -> float | None:
    """A level's regional value as pages and documents show it: none for a rate pooled over fewer than k cases
    (it would be made only of hidden cells)."""
    if is_small(unit, sums, small_cell_k()):
        return None
    if unit == "count":
        return sums.total / sums.hospitals if sums.hospitals and sums.total is not None else None
    return sums.value(unit)


def is_small(unit: str, sums: Sums, k: int) -> bool:
    """A rate over fewer than k cases: not ranked, and hidden from other hospitals and published documents."""
    return unit in RATE_UNITS and sums.denominator is not None and sums.denominator < k


# Ranks and the funnel --------------------------------------------------------------------------------------------

def ranks(values: dict[int, float | None], direction: str) -> dict[int, int]:
    """Competition ranks (1, 1, 3) of the keys with a value, best first by the indicator's direction; none for
    an indicator without a direction."""
    if direction not in DESCENDING + ASCENDING:
        return {}
    sign = -1 if direction in DESCENDING else 1
    ordered = sorted(((sign * round(v, 6), key) for key, v in values.items() if v is not None))
    found, previous, rank = {}, None, 0
    for position, (score, key) in enumerate(ordered, start=1):
        if score != previous:
            rank, previous = position, score
        found[key] = rank
    return found


@dataclass(frozen=True)
class Limit:
    denominator: int
    lower95: float
    upper95: float
    lower998: float
    upper998: float

    def as_dict(self) -> dict:
        return {"denominator": self.denominator, "lower95": round(self.lower95, 6),
                "upper95": round(self.upper95, 6), "lower998": round(self.lower998, 6),
                "upper998": round(self.upper998, 6)}


def limit_at(unit: str, proportion: float, n: int) -> Limit:
    """Control limits around the pooled `proportion` (numerator / denominator) for a denominator of n, in the
    unit: binomial by the normal approximation, Poisson for a rate per 100 (events can outnumber cases)."""
    factor = UNIT_FACTORS[unit]
    if unit == "per100":
        spread, ceiling = math.sqrt(proportion / n), math.inf
    else:
        spread, ceiling = math.sqrt(proportion * (1 - proportion) / n), 1.0

    def bounded(x: float) -> float:
        return min(max(x, 0.0), ceiling) * factor

    return Limit(n, bounded(proportion - Z95 * spread), bounded(proportion + Z95 * spread),
                 bounded(proportion - Z998 * spread), bounded(proportion + Z998 * spread))


def funnel_limits(unit: str, proportion: float | None, largest: int, points: int = 40, *,
                  top: int | None = None) -> list[Limit]:
    """The limits on a fixed grid of denominators from 1 to `top`, by default beyond the largest (never at a
    hospital's own denominator, which could then be read off)."""
    if unit not in RATE_UNITS or proportion is None or largest < 1:
        return []
    top = top or largest * 1.1 + 1
    grid = sorted({max(1, round(math.exp(math.log(top) * i / (points - 1)))) for i in range(points)})
    return [limit_at(unit, proportion, n) for n in grid]


def outside(unit: str, proportion: float | None, numerator: int | None, denominator: int | None) -> str | None:
    """"above" or "below" the 99.8 % limits, for a rate; None inside them or without a rate."""
    if unit not in RATE_UNITS or proportion is None or not denominator or numerator is None:
        return None
    limit = limit_at(unit, proportion, denominator)
    value = numerator * UNIT_FACTORS[unit] / denominator
    if value > limit.upper998 + 1e-9:
        return "above"
    if value < limit.lower998 - 1e-9:
        return "below"
    return None


# One indicator across hospitals -------------------------------------------------------------------------------

@dataclass
class HospitalRow:
    hospital: RegionHospital
    sums: Sums
    value: float | None
    rank: int | None = None
    met: bool | None = None
    outside: str | None = None
    #: A rate whose denominator is under k: published documents and peers hide it.
    small: bool = False

    @property
    def numerator(self):
        return self.sums.numerator

    @property
    def denominator(self):
        return self.sums.denominator

    @property
    def months(self):
        return self.sums.months


@dataclass
class LevelComparison:
    level: str
    rows: list[HospitalRow]
    regional: Sums
    regional_value: float | None
    target: catalogue.Target | None
    #: The pooled proportion (numerator / denominator) the funnel's limits centre on; None for other units.
    proportion: float | None
    limits: list[Limit] = field(default_factory=list)

    @property
    def ranked(self) -> int:
        return sum(1 for r in self.rows if r.rank is not None)

    @property
    def judged(self) -> list[HospitalRow]:
        """The hospitals whose value is held against the target: a value and a target, not under k cases (the
        same hospitals in "X of Y meet the target")."""
        return [r for r in self.rows if r.met is not None and not r.small]

    @property
    def meeting(self) -> int:
        return sum(1 for r in self.judged if r.met)


@dataclass
class Comparison:
    entry: catalogue.Entry
    start: date
    end: date
    levels: list[LevelComparison]

    @property
    def is_rate(self) -> bool:
        return self.entry.unit in RATE_UNITS

    def level(self, level: str) -> LevelComparison | None:
        return next((found for found in self.levels if found.level == level), None)


def indicator_entry(code: str) -> catalogue.Entry:
    """An indicator of the plans' catalogue (what hospitals send); NotFound otherwise."""
    if not catalogue.is_plan_code(code):
        raise NotFound(_("No indicator %(code)s.", code=code))
    return catalogue.default_entry(code)


def _hospitals(levels, with_values) -> list[RegionHospital]:
    stmt = sa.select(RegionHospital).where(RegionHospital.level.in_(levels), sa.or_(
        RegionHospital.is_active, RegionHospital.id.in_(list(with_values) or [0]))).order_by(RegionHospital.code)
    return list(db.session.scalars(stmt))


def compare_level(entry: catalogue.Entry, level: str, hospitals: list[RegionHospital], sums: dict[int, Sums],
                  year: int) -> LevelComparison:
    """One level's table: each hospital's value, rank, target met and place in the funnel."""
    unit, k = entry.unit, small_cell_k()
    rows = [HospitalRow(h, sums.get(h.id, Sums()), None) for h in hospitals]
    for row in rows:
        row.value = row.sums.value(unit) if row.sums.months else None
    regional = pooled(unit, [r.sums for r in rows])
    proportion = (regional.numerator / regional.denominator
                  if unit in RATE_UNITS and regional.denominator and regional.numerator is not None else None)
    target = catalogue.targets(year, level).get(entry.code)
    for row in rows:
        row.small = is_small(unit, row.sums, k)
    order = ranks({row.hospital.id: row.value for row in rows if not row.small}, entry.direction)
    for row in rows:
        row.rank = order.get(row.hospital.id)
        if target is not None:
            row.met = is_met(row.value, target.value, target.comparison)
        row.outside = outside(unit, proportion, row.numerator, row.denominator)
    rows.sort(key=lambda r: (r.rank is None, r.rank or 0, r.value is None, r.hospital.code))
    largest = max((r.denominator or 0 for r in rows), default=0)
    return LevelComparison(level, rows, regional, regional_value(unit, regional), target, proportion,
                           funnel_limits(unit, proportion, largest))


def compare(code: str, start: date, end: date, level: str | None = None) -> Comparison:
    """One indicator across the hospitals over the months start..end, each level apart."""
    entry = indicator_entry(code)
    levels = (level,) if level else HOSPITAL_LEVELS
    sums = hospital_sums(code, start, end)
    hospitals = _hospitals(levels, sums)
    return Comparison(entry, start, end, [
        compare_level(entry, lv, [h for h in hospitals if h.level == lv], sums, end.year) for lv in levels])


def regional_trend(code: str, start: date, end: date) -> dict[str, list[tuple[date, float | None]]]:
    """The regional value of each month by level: one GROUP BY (level, month)."""
    entry = indicator_entry(code)
    stmt = (sa.select(RegionHospital.level, RegionValue.month_on, *_sum_columns(),
                      sa.func.count(sa.distinct(RegionValue.hospital_id)))
            .join(RegionHospital, RegionHospital.id == RegionValue.hospital_id)
            .where(RegionValue.code == code, _current(start, end))
            .group_by(RegionHospital.level, RegionValue.month_on))
    found: dict[tuple[str, date], float | None] = {}
    for row in db.session.execute(stmt):
        sums = _sums(row[2:8])
        sums.hospitals = int(row[8])
        found[(row[0], row[1])] = regional_value(entry.unit, sums)
    months = months_between(start, end)
    return {level: [(m, found.get((level, m))) for m in months] for level in HOSPITAL_LEVELS}


# Every indicator ---------------------------------------------------------------------------------------------------

@dataclass
class IndicatorSummary:
    entry: catalogue.Entry
    #: level → (hospitals that sent, regional value)
    levels: dict[str, tuple[int, float | None]]

    @property
    def hospitals(self) -> int:
        return sum(n for n, _v in self.levels.values())


def indicator_summaries(start: date, end: date) -> list[IndicatorSummary]:
    """Every indicator of the catalogue with how many hospitals of each level sent it and the level's regional
    value, pooled from each hospital's sums as the indicator's page does: one aggregate grouped by (code,
    hospital)."""
    by_code = sums_by_code(start, end)
    levels_of = dict(db.session.execute(sa.select(RegionHospital.id, RegionHospital.level)).all())
    summaries = []
    for entry in catalogue.entries(include_local=False):
        groups: dict[str, list[Sums]] = {}
        for hospital_id, found in by_code.get(entry.code, {}).items():
            groups.setdefault(levels_of.get(hospital_id), []).append(found)
        levels = {}
        for level in HOSPITAL_LEVELS:
            group = groups.get(level) or []
            regional = pooled(entry.unit, group)
            levels[level] = (regional.hospitals, regional_value(entry.unit, regional)) if group else (0, None)
        summaries.append(IndicatorSummary(entry, levels))
    return summaries


# One hospital's profile -----------------------------------------------------------------------------------------

@dataclass
class ProfileRow:
    entry: catalogue.Entry
    sums: Sums
    value: float | None
    regional_value: float | None
    rank: int | None
    ranked: int
    target: catalogue.Target | None
    met: bool | None


def hospital_by_code(code: str) -> RegionHospital:
    hospital = db.session.scalar(sa.select(RegionHospital).where(RegionHospital.code == code))
    if hospital is None:
        raise NotFound(_("No hospital %(code)s is registered at this centre.", code=code))
    return hospital


def profile(hospital: RegionHospital, start: date, end: date) -> list[ProfileRow]:
    """Every indicator for the period: the hospital's value, its level's regional value, its rank among the
    level's hospitals and whether it meets the target. One aggregate grouped by (code, hospital) over the level."""
    by_code = sums_by_code(start, end, level=hospital.level)
    k = small_cell_k()
    targets = catalogue.targets(end.year, hospital.level)
    rows = []
    for entry in catalogue.entries(include_local=False):
        sums = by_code.get(entry.code, {})
        values = {hid: s.value(entry.unit) for hid, s in sums.items()}
        order = ranks({hid: v for hid, v in values.items() if not is_small(entry.unit, sums[hid], k)},
                      entry.direction)
        own = sums.get(hospital.id, Sums())
        value = values.get(hospital.id)
        target = targets.get(entry.code)
        rows.append(ProfileRow(entry, own, value, regional_value(entry.unit, pooled(entry.unit, list(sums.values()))),
                               order.get(hospital.id), len(order), target,
                               is_met(value, target.value, target.comparison) if target else None))
    return rows


def sums_by_code(start: date, end: date, *, level: str | None = None) -> dict[str, dict[int, Sums]]:
    """Every indicator's sums per hospital (of one level, or all): one aggregate grouped by (code, hospital)."""
    stmt = (sa.select(RegionValue.code, RegionValue.hospital_id, *_sum_columns())
            .where(_current(start, end)).group_by(RegionValue.code, RegionValue.hospital_id))
    if level:
        stmt = stmt.where(RegionValue.hospital_id.in_(
            sa.select(RegionHospital.id).where(RegionHospital.level == level).scalar_subquery()))
    found: dict[str, dict[int, Sums]] = {}
    for row in db.session.execute(stmt):
        found.setdefault(row[0], {})[row[1]] = _sums(row[2:])
    return found


# Completeness -------------------------------------------------------------------------------------------------

@dataclass
class Cell:
    status: str
    revision: int | None = None
    received_on: date | None = None


@dataclass
class CompletenessRow:
    hospital: RegionHospital
    cells: dict[date, Cell]

    @property
    def owed(self) -> int:
        return sum(1 for c in self.cells.values() if c.status in (MISSING, OVERDUE))

    def expected(self, months) -> int:
        """How many of `months` the hospital owes or sent (not those before its registration)."""
        return sum(1 for m in months if self.cells[m].status != NOT_EXPECTED)


def due_on(month: date) -> date:
    """The day by which a month's values are due: REGION_DUE_DAY of the next month."""
    following = periods.add_months(month, 1)
    return following.replace(day=min(current_app.config["REGION_DUE_DAY"], periods.month_end(following).day))


def owed_from(hospitals: list[RegionHospital]) -> dict[int, date]:
    """The first month each hospital owes: the month it was registered at the centre (local time), or the first
    month it sent if that is earlier (a hospital that sent a month has begun reporting, whenever it was registered;
    its later gaps are gaps)."""
    first_sent = dict(db.session.execute(
        sa.select(RegionSubmission.hospital_id, sa.func.min(RegionSubmission.starts_on)).where(
            RegionSubmission.kind == "month", RegionSubmission.hospital_id.in_([h.id for h in hospitals]))
        .group_by(RegionSubmission.hospital_id)).all()) if hospitals else {}
    owed = {}
    for hospital in hospitals:
        registered = periods.month_start(local(hospital.created_at).date())
        sent = first_sent.get(hospital.id)
        owed[hospital.id] = min(registered, sent) if sent is not None else registered
    return owed


def status_of(month: date, sent: bool, today: date, registered: date | None = None) -> str:
    if sent:
        return SENT
    if registered is not None and month < registered:
        return NOT_EXPECTED
    if month >= periods.month_start(today):
        return NOT_DUE
    return OVERDUE if today > due_on(month) else MISSING


def completeness(year: int, today: date, *, level: str | None = None, region: str | None = None
                 ) -> tuple[list[date], list[CompletenessRow]]:
    """The active hospitals × the months of `year`: the current version and when it came, or owed, overdue, not
    yet due, or not expected (before the first month the hospital owes, owed_from)."""
    months = [date(year, m, 1) for m in range(1, 13)]
    stmt = sa.select(RegionHospital).where(RegionHospital.is_active).order_by(RegionHospital.code)
    if level:
        stmt = stmt.where(RegionHospital.level == level)
    if region:
        stmt = stmt.where(RegionHospital.region == region)
    hospitals = list(db.session.scalars(stmt))
    sent = {}
    if hospitals:
        rows = db.session.execute(sa.select(
            RegionSubmission.hospital_id, RegionSubmission.period, RegionSubmission.revision,
            RegionSubmission.received_at).where(
            RegionSubmission.kind == "month", RegionSubmission.is_current,
            RegionSubmission.period.in_([month_text(m) for m in months]),
            RegionSubmission.hospital_id.in_([h.id for h in hospitals])))
        for hospital_id, period, revision, received_at in rows:
            sent[(hospital_id, period)] = (revision, local(received_at).date())
    found, owed = [], owed_from(hospitals)
    for hospital in hospitals:
        cells, registered = {}, owed[hospital.id]
        for month in months:
            got = sent.get((hospital.id, month_text(month)))
            cells[month] = Cell(status_of(month, got is not None, today, registered), *(got or (None, None)))
        found.append(CompletenessRow(hospital, cells))
    return months, found


def month_counts(months: list[date], rows: list[CompletenessRow]) -> dict[date, dict[str, int]]:
    return {m: {status: sum(1 for r in rows if r.cells[m].status == status) for status in STATUSES} for m in months}


def regions() -> list[str]:
    return list(db.session.scalars(sa.select(RegionHospital.region).distinct().order_by(RegionHospital.region)))


def missing_hospitals(month: date) -> list[RegionHospital]:
    """The active hospitals that have not sent `month` and owe it (owed_from)."""
    sent = sa.select(RegionSubmission.hospital_id).where(
        RegionSubmission.kind == "month", RegionSubmission.period == month_text(month))
    hospitals = list(db.session.scalars(sa.select(RegionHospital).where(
        RegionHospital.is_active, RegionHospital.id.not_in(sent)).order_by(RegionHospital.code)))
    owed = owed_from(hospitals)
    return [h for h in hospitals if owed[h.id] <= month]


# Where a hospital stands (the hospital's own view; the others unnamed) -------------------------------------------

STANDING_SCHEMA = "qcflow.region-standing/1"
#: A level with fewer hospitals with a value than this (the asking one included) gives no regional value, no
#: peers, no rank and no funnel: with two, the other's figures follow from the regional ones.
FEWEST_HOSPITALS = 3


def two_figures(n: int | None) -> int | None:
    """A peer's volume as the standing gives it: two significant figures, halves up, and at least tens (2540 →
    2500, 707 → 710, 12 → 10, 15 → 20, 0 → 0): exact small volumes would give a peer's few cases back."""
    if n is None or n == 0:
        return n
    step = _figure_step(n)
    return max(step, (n + step // 2) // step * step)


def _figure_step(n: int) -> int:
    return 10 ** max(1, len(str(n)) - 2)


def value_places(unit: str, shown_denominator: int | None) -> int:
    """How many decimals (negative: tens) a peer's rate is given to: the most that keep one rounding step of the
    value at least one whole case wide at its rounded denominator. Each of the ten or more denominators the rounded
    one stands for then has about one numerator that gives the value shown, so value and denominator do not single
    out one (numerator, denominator) pair: 85 % of about 20 cases is given as 90 %, of about 180 as 85 %, of about
    5100 as 85.3 %; 0.89 ‰ of about 12 000 as 0.9 ‰. Never more than 2 decimals; other units 2 decimals."""
    if unit not in RATE_UNITS or not shown_denominator:
        return 2
    return min(2, math.floor(math.log10(shown_denominator / UNIT_FACTORS[unit])))


def shown_value(value: float | None, places: int = 2) -> float | None:
    """A value rounded half up to `places` decimals (negative: to tens, hundreds), as the standing gives it."""
    if value is None:
        return None
    return float(Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


def grid_top(largest_shown: int) -> int:
    """The end of the funnel's grid given to a hospital: a tenth beyond the largest denominator shown (the peers'
    rounded ones, its own), rounded up to one significant figure (540 → 600, 980 → 2000, 5100 → 6000), so it tells
    nothing the rounded denominators do not."""
    beyond = max(10, math.ceil(largest_shown * 1.1))
    step = 10 ** (len(str(beyond)) - 1)
    return -(-beyond // step) * step


def _hidden_from_peers(unit: str, row: HospitalRow, k: int) -> bool:
    """Whether another hospital sees nothing of this one: under k cases, or a rate of 1 to k − 1 events (a death or
    two: the small-cell rule of the hospital's own reports, qcflow.reports.suppression)."""
    return row.small or (unit in RATE_UNITS and row.numerator is not None and 0 < row.numerator < k)


def _rank_among_shown(own: float | None, shown: list[float], direction: str) -> int | None:
    """This hospital's competition rank among the values shown (the peers' rounded ones): 1 + how many are better."""
    if own is None or direction not in DESCENDING + ASCENDING:
        return None
    sign = -1 if direction in DESCENDING else 1
    return 1 + sum(1 for value in shown if sign * value < sign * own - 1e-9)


def standing(hospital: RegionHospital, code: str, start: date, end: date, generated_at) -> dict:
    """The hospital's place among the hospitals of its level over one quarter that has ended (the caller checks it:
    protocol.check_quarter). Its own figures are exact and always shown to it; the others are unnamed and coarsened
    so that none of their figures can be worked back, and nothing given depends on their exact figures beyond what
    is shown of them: denominators to 2 significant figures and at least tens, values rounded by value_places, no
    numerators; the regional value pooled over the hospitals shown and rounded the same way at its pooled rounded
    denominator; the funnel's limits around that shown regional value, on a grid ending at grid_top of the largest
    denominator shown; the rank among the values shown. A peer under k cases or with 1 to k − 1 events has neither
    value nor denominator and is left out of all of these; with fewer than FEWEST_HOSPITALS hospitals with a value
    nothing about the others is given. Peers are ordered by value, then rounded denominator, never by
    registration."""
    comparison = compare(code, start, end, level=hospital.level)
    level = comparison.levels[0]
    entry, k = comparison.entry, small_cell_k()
    unit, is_rate = entry.unit, entry.unit in RATE_UNITS
    own = next((r for r in level.rows if r.hospital.id == hospital.id), None)
    own = own or HospitalRow(hospital, Sums(), None)
    valued = [r for r in level.rows if r.value is not None]
    too_few = len(valued) < FEWEST_HOSPITALS
    peers, regional, limits, rank, ranked, outside_ = [], None, [], None, 0, None
    if not too_few:
        for row in valued:
            if row.hospital.id == hospital.id:
                continue
            if _hidden_from_peers(unit, row, k):
                peers.append({"value": None, "denominator": None, "suppressed": True})
            else:
                shown = two_figures(row.denominator)
                peers.append({"value": shown_value(row.value, value_places(unit, shown)), "denominator": shown,
                              "suppressed": False})
        peers.sort(key=lambda p: (p["suppressed"], p["value"] is None, p["value"] or 0, p["denominator"] or 0))
        # The regional value and the funnel given to a hospital pool only the hospitals shown (at least k cases):
        # a hidden hospital's figures would otherwise be the regional ones less the others'.
        shown_rows = [r for r in valued if not _hidden_from_peers(unit, r, k)]
        if len(shown_rows) >= FEWEST_HOSPITALS:
            # Rounded like a peer's value at the denominators as shown (the peers' rounded ones and its own).
            volume = sum(p["denominator"] or 0 for p in peers) + (own.denominator or 0)
            regional = shown_value(_regional_from_shown(unit, peers, own, k),
                                   value_places(unit, two_figures(volume)))
            if is_rate and regional is not None and any(p["denominator"] for p in peers):
                proportion = regional / UNIT_FACTORS[unit]
                largest = max([p["denominator"] or 0 for p in peers] + [own.denominator or 0])
                limits = [{"denominator": lim.denominator, **{name: round(getattr(lim, name), 2) for name in (
                    "lower95", "upper95", "lower998", "upper998")}}
                    for lim in funnel_limits(unit, proportion, largest, top=grid_top(largest))]
                outside_ = outside(unit, proportion, own.numerator, own.denominator)
        shown_values = [p["value"] for p in peers if p["value"] is not None]
        if not own.small and own.value is not None:
            rank = _rank_among_shown(own.value, shown_values, entry.direction)
        if entry.direction in DESCENDING + ASCENDING:
            ranked = len(shown_values) + (1 if rank is not None else 0)
    return {
        "schema": STANDING_SCHEMA,
        "indicator": {"code": entry.code, "unit": unit, "direction": entry.direction},
        "from": month_text(start), "to": month_text(end), "level": hospital.level,
        "too_few_hospitals": too_few,
        "regional": {"value": regional},
        "own": {"numerator": own.numerator, "denominator": own.denominator, "value": _round(own.value),
                "small": own.small, "rank": rank, "outside": outside_},
        "ranked": ranked,
        "peers": peers,
        "limits": limits,
        "target": ({"comparison": level.target.comparison, "value": level.target.value}
                   if level.target is not None else None),
        "k": k,
        "generated_at": generated_at.isoformat(),
    }


def _regional_from_shown(unit: str, peers: list[dict], own: HospitalRow, k: int) -> float | None:
    """The regional value a hospital is given, pooled from the peers' figures as shown to it and its own exact
    ones. Pooled from the peers' exact figures it would give their sums away: a hospital sending its own month again
    with chosen figures, and asking each time, could solve the regional value for them."""
    shown = [p for p in peers if not p["suppressed"] and p["value"] is not None]
    mine = None if own.value is None or _hidden_from_peers(unit, own, k) else own
    if unit in RATE_UNITS and shown and all(p["denominator"] for p in shown) and (
            mine is None or mine.denominator is not None):
        factor = UNIT_FACTORS[unit]
        cases = sum(p["denominator"] for p in shown) + (mine.denominator if mine else 0)
        events = sum(p["value"] / factor * p["denominator"] for p in shown) + ((mine.numerator or 0) if mine else 0)
        return events / cases * factor if cases else None
    values = [p["value"] for p in shown] + ([mine.value] if mine else [])
    return sum(values) / len(values) if values else None


def _round(value: float | None) -> float | None:
    return round(value, 6) if value is not None else None
