"""The catalogue: every indicator of the plans' annexes, how this hospital gets each one's value, and the targets.

The plans' part is data shipped with the code (`indicators/data/`, docs/indicators.md "The catalogue"):
`catalogue.csv` one row per indicator, `annexes.csv` the annexes' rows in their own order and wording, and
`targets.csv` the numeric targets the plans state. This hospital's part is rows: `IndicatorSetup` (another
method than the catalogue's default, the reason an indicator does not apply, the reporting department),
`LocalIndicator` (a department's own key indicators) and `IndicatorTarget` (the hospital's and the
departments' own targets).
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _

from qcflow.core.errors import NotFound
from qcflow.core.i18n import current_language
from qcflow.extensions import db
from qcflow.indicators.definitions import BY_CODE, Indicator
from qcflow.indicators.models import IndicatorSetup, IndicatorTarget, LocalIndicator

DATA = Path(__file__).parent / "data"
#: The plans an installation can choose (config INDICATOR_PLAN); the first three have an annex of indicators.
PLAN_KEYS = ("henan", "yubei", "shaoxing", "guizhou")


@dataclass(frozen=True)
class AnnexRow:
    """One row of a plan's annex, in its own wording and order."""

    plan: str
    seq: int
    dimension: str
    dimension_en: str
    wording: str
    wording_en: str
    #: Line of the plan's text (reference/seeds) where the row starts.
    line: int
    codes: tuple[str, ...]
    #: The annex's target or direction column as written ("逐步升高", "≥80%", "/", "").
    target_text: str
    responsible: str

    def label(self, language: str | None = None) -> str:
        return self.wording_en if (language or current_language()) == "en" and self.wording_en else self.wording

    def dimension_label(self, language: str | None = None) -> str:
        english = (language or current_language()) == "en" and self.dimension_en
        return self.dimension_en if english else self.dimension


@dataclass(frozen=True)
class Entry:
    """One indicator of this hospital's catalogue."""

    code: str
    name: str
    name_en: str
    unit: str
    direction: str
    #: computed, reported or not_applicable: the hospital's choice, else the catalogue's default.
    method: str
    default_method: str
    #: The responsible department as the annexes name it (words, not a department of this hospital).
    responsible: str
    definition: str
    definition_en: str
    #: Why it does not apply (the hospital's words, else the catalogue's).
    reason: str = ""
    #: The department of this hospital that reports it; None: the quality office.
    department_id: int | None = None
    #: Set for a department's own key indicator (LocalIndicator).
    owner_department_id: int | None = None
    #: The IndicatorSetup (or LocalIndicator) version, for a 409 on a stale edit; None without a row.
    version: int | None = None
    #: False for a department's own indicator that was switched off (it takes no new values or targets).
    is_active: bool = True

    def label(self, language: str | None = None) -> str:
        return self.name_en if (language or current_language()) == "en" and self.name_en else self.name

    def definition_in(self, language: str | None = None) -> str:
        english = (language or current_language()) == "en" and self.definition_en
        return self.definition_en if english else self.definition

    @property
    def computed(self) -> Indicator | None:
        """The definition qcflow computes it by (definitions.BY_CODE), when it is computed."""
        return BY_CODE.get(self.code) if self.method == "computed" else None

    @property
    def is_local(self) -> bool:
        return self.owner_department_id is not None


@dataclass(frozen=True)
class Target:
    """A target a value is compared with, and where it comes from."""

    comparison: str
    value: float
    #: The plan's citation, or "hospital" / "department" for targets set here.
    source: str
    #: The plan key, "hospital" or "department".
    set: str
    year: int


def _rows(name: str) -> list[dict]:
    with (DATA / name).open(encoding="utf-8", newline="") as file:
        return list(csv.DictReader(file))


@cache
def _plan_entries() -> dict[str, Entry]:
    entries = {}
    for row in _rows("catalogue.csv"):
        entries[row["code"]] = Entry(
            row["code"], row["name"], row["name_en"], row["unit"], row["direction"], row["method"], row["method"],
            row["responsible"], row["definition"], row["definition_en"], reason=row.get("na_reason") or "")
    return entries


@cache
def _annexes() -> dict[str, tuple[AnnexRow, ...]]:
    rows: dict[str, list[AnnexRow]] = {}
    for row in _rows("annexes.csv"):
        rows.setdefault(row["plan"], []).append(AnnexRow(
            row["plan"], int(row["seq"]), row["dimension"], row["dimension_en"], row["wording"], row["wording_en"],
            int(row["line"]), tuple(row["codes"].split()), row["target_text"], row["responsible"]))
    return {plan: tuple(sorted(found, key=lambda r: r.seq)) for plan, found in rows.items()}


@cache
def _plan_targets() -> dict[tuple[str, str], tuple[tuple[str, int, str, float, str], ...]]:
    """(plan, code) → rows (level, year, comparison, value, source), oldest year first."""
    found: dict[tuple[str, str], list] = {}
    for row in _rows("targets.csv"):
        levels = ("tertiary", "secondary") if row["level"] == "both" else (row["level"],)
        for level in levels:
            found.setdefault((row["plan"], row["code"]), []).append(
                (level, int(row["year"]), row["comparison"], float(row["value"]), row["source"]))
    return {key: tuple(sorted(rows, key=lambda r: r[1])) for key, rows in found.items()}


def plan() -> str:
    """The plan this installation reports to (config INDICATOR_PLAN)."""
    return current_app.config["INDICATOR_PLAN"]


def annex(plan_key: str | None = None) -> tuple[AnnexRow, ...]:
    """A plan's annex rows in the annex's order (the chosen plan's by default)."""
    return _annexes().get(plan_key or plan(), ())


def _local(row: LocalIndicator) -> Entry:
    return Entry(row.code, row.name, row.name_en or "", row.unit, row.direction, "reported", "reported", "",
                 row.definition, "", department_id=row.department_id, owner_department_id=row.department_id,
                 version=row.version, is_active=row.is_active)


def entries(*, include_local: bool = True) -> list[Entry]:
    """Every indicator of the catalogue with this hospital's choices, then the departments' own (active) ones."""
    setups = {row.code: row for row in db.session.scalars(sa.select(IndicatorSetup))}
    found = []
    for code, entry in _plan_entries().items():
        setup = setups.get(code)
        if setup is not None:
            entry = replace(entry, method=setup.method, reason=setup.reason or entry.reason,
                            department_id=setup.department_id, version=setup.version)
        found.append(entry)
    if include_local:
        found.extend(_local(row) for row in db.session.scalars(
            sa.select(LocalIndicator).where(LocalIndicator.is_active.is_(True)).order_by(LocalIndicator.code)))
    return found


def entry(code: str) -> Entry:
    """One indicator of the catalogue (a plan's or a department's own); NotFound otherwise."""
    base = _plan_entries().get(code)
    if base is not None:
        setup = db.session.scalar(sa.select(IndicatorSetup).where(IndicatorSetup.code == code))
        if setup is None:
            return base
        return replace(base, method=setup.method, reason=setup.reason or base.reason,
                       department_id=setup.department_id, version=setup.version)
    local = db.session.scalar(sa.select(LocalIndicator).where(LocalIndicator.code == code))
    if local is None:
        raise NotFound(_("No indicator %(code)s.", code=code))
    return _local(local)


def is_plan_code(code: str) -> bool:
    return code in _plan_entries()


def default_entry(code: str) -> Entry:
    """A plan indicator as the catalogue ships it, without this hospital's choices; NotFound otherwise."""
    found = _plan_entries().get(code)
    if found is None:
        raise NotFound(_("No indicator %(code)s.", code=code))
    return found


def plan_targets_of(code: str) -> list[tuple[str, str, int, str, float, str]]:
    """Every plan's target rows for the indicator: (plan, level, year, comparison, value, source)."""
    return [(plan_key, *row) for (plan_key, row_code), rows in _plan_targets().items() if row_code == code
            for row in rows]


def annex_rows_of(code: str) -> list[AnnexRow]:
    """Every annex row (of every plan) that holds the indicator, for its page's "where it comes from"."""
    return [row for rows in _annexes().values() for row in rows if code in row.codes]


def plan_target(code: str, year: int, level: str, plan_key: str | None = None) -> Target | None:
    """The plan's target for the year: its row for the latest year up to `year` at this level."""
    key = plan_key or plan()
    latest = None
    for row_level, row_year, comparison, value, source in _plan_targets().get((key, code), ()):
        if row_level == level and row_year <= year:
            latest = Target(comparison, value, source, key, row_year)
    return latest


def targets(year: int, level: str, *, department_id: int | None = None,
            plan_key: str | None = None) -> dict[str, Target]:
    """Every indicator's target for a year. A row holds from its year until a later row exists; of rows of
    the same year, a department's own (for its values) wins over the hospital's own, which wins over the
    chosen plan's."""
    found: dict[str, tuple[tuple[int, int], Target]] = {}

    def offer(code: str, target: Target, priority: int) -> None:
        rank = (target.year, priority)
        if code not in found or rank > found[code][0]:
            found[code] = (rank, target)

    key = plan_key or plan()
    for target_plan, code in _plan_targets():
        target = plan_target(code, year, level, key) if target_plan == key else None
        if target is not None:
            offer(code, target, 0)
    stmt = sa.select(IndicatorTarget).where(IndicatorTarget.hospital_level == level, IndicatorTarget.year <= year)
    stmt = stmt.where(IndicatorTarget.department_id.is_(None) if department_id is None else
                      sa.or_(IndicatorTarget.department_id.is_(None), IndicatorTarget.department_id == department_id))
    for row in db.session.scalars(stmt):
        own = row.department_id is not None
        offer(row.code, Target(row.comparison, row.value, row.source or "", "department" if own else "hospital",
                               row.year), 2 if own else 1)
    return {code: target for code, (_rank, target) in found.items()}
