"""The catalogue as its page and its API read it: the plan's annex in its own order, then the catalogue's other
indicators, then each department's own; with this hospital's choices, the year's targets and where they come from.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from flask_babel import gettext as _

from qcflow.auth.models import Department
from qcflow.core.audit import AuditEntry
from qcflow.core.errors import NotFound, Unprocessable
from qcflow.core.time import today
from qcflow.extensions import db
from qcflow.indicators import catalogue, queries
from qcflow.indicators.catalogue import AnnexRow, Entry, Target
from qcflow.indicators.definitions import PLANS
from qcflow.indicators.models import IndicatorTarget, LocalIndicator

#: A citation of the plans' text, "Yubei [002:720]": its line numbers.
CITATION = re.compile(r"\[\d{3}:([\d,\s-]+)\]")


@dataclass(frozen=True)
class Row:
    """One indicator as the catalogue lists it."""

    entry: Entry
    #: The year's target for this row's department (catalogue.targets), None: none.
    target: Target | None
    #: The department of this hospital that reports it (a local indicator: its own), None: the quality office.
    department: Department | None
    #: Whether /indicators has a page with its values.
    has_values: bool


@dataclass
class Catalogue:
    """The catalogue of one plan's point of view, filtered."""

    plan: str
    year: int
    #: The plan's annex rows in their order, each with the rows of its indicators that pass the filters.
    annex: list[tuple[AnnexRow, list[Row]]] = field(default_factory=list)
    #: The catalogue's indicators outside this plan's annex.
    others: list[Row] = field(default_factory=list)
    #: Each department's own indicators, by department.
    local: list[tuple[Department, list[Row]]] = field(default_factory=list)

    def rows(self) -> list[Row]:
        """Every indicator once, in the page's order (the API's list)."""
        seen, found = set(), []
        for row in [r for _annex, rows in self.annex for r in rows] + self.others + [
                r for _department, rows in self.local for r in rows]:
            if row.entry.code not in seen:
                seen.add(row.entry.code)
                found.append(row)
        return found


def check_plan(plan_key: str | None) -> str:
    """The plan asked for, or the installation's; an unknown one is a 422."""
    if plan_key is None:
        return catalogue.plan()
    if plan_key not in catalogue.PLAN_KEYS:
        raise Unprocessable(errors={"plan": [_("Choose one of: %(values)s.", values=", ".join(catalogue.PLAN_KEYS))]})
    return plan_key


def has_values(entry: Entry) -> bool:
    """Whether /indicators shows the indicator's values (an indicator that does not apply has none)."""
    if entry.method == "not_applicable":
        return False
    try:
        queries.indicator(entry.code)
    except NotFound:
        return False
    return True


def _matches(entry: Entry, method: str | None, department_id: int | None, search: str | None) -> bool:
    if method is not None and entry.method != method:
        return False
    if department_id is not None and entry.department_id != department_id:
        return False
    if search:
        needle = search.casefold()
        return any(needle in (text or "").casefold() for text in (entry.name, entry.name_en, entry.code))
    return True


def build(now: datetime, *, plan_key: str | None = None, method: str | None = None, department_id: int | None = None,
          search: str | None = None, year: int | None = None) -> Catalogue:
    """The catalogue from one plan's point of view (default: the installation's), filtered by method, reporting
    department and a piece of a name. A row's target is its department's (the filter's, else the department that
    reports it), else the hospital's, else the plan's (catalogue.targets)."""
    key = check_plan(plan_key)
    year = year or today(now).year
    level = queries.hospital_level()
    departments = {d.id: d for d in db.session.scalars(sa.select(Department))}
    targets_by_department: dict[int | None, dict[str, Target]] = {}

    def row_of(entry: Entry) -> Row:
        scope = department_id if department_id is not None else entry.department_id
        if scope not in targets_by_department:
            targets_by_department[scope] = catalogue.targets(year, level, department_id=scope, plan_key=key)
        return Row(entry, targets_by_department[scope].get(entry.code), departments.get(entry.department_id),
                   has_values(entry))

    entries = [e for e in catalogue.entries() if _matches(e, method, department_id, search)]
    by_code = {e.code: e for e in entries}
    result = Catalogue(key, year)
    in_annex = set()
    for annex_row in catalogue.annex(key):
        in_annex.update(annex_row.codes)
        rows = [row_of(by_code[code]) for code in annex_row.codes if code in by_code]
        if rows:
            result.annex.append((annex_row, rows))
    result.others = [row_of(e) for e in entries if not e.is_local and e.code not in in_annex]
    local: dict[int, list[Row]] = {}
    for entry in entries:
        if entry.is_local:
            local.setdefault(entry.owner_department_id, []).append(row_of(entry))
    result.local = [(departments[d], rows) for d, rows in sorted(
        local.items(), key=lambda item: departments[item[0]].code)]
    return result


def row(code: str, now: datetime, *, plan_key: str | None = None, department_id: int | None = None,
        year: int | None = None) -> Row:
    """One indicator as the catalogue lists it (NotFound for an unknown code)."""
    entry = catalogue.entry(code)
    key = check_plan(plan_key)
    scope = department_id if department_id is not None else entry.department_id
    targets = catalogue.targets(year or today(now).year, queries.hospital_level(), department_id=scope, plan_key=key)
    department = db.session.get(Department, entry.department_id) if entry.department_id is not None else None
    return Row(entry, targets.get(code), department, has_values(entry))


def annex_rows(entry: Entry, plan_key: str | None = None) -> list[AnnexRow]:
    """The annex rows that hold the indicator: one plan's, or every plan's."""
    return [r for r in catalogue.annex_rows_of(entry.code) if plan_key is None or r.plan == plan_key]


def plan_name(plan_key: str) -> str:
    plan = PLANS.get(plan_key)
    return str(plan.name) if plan is not None else plan_key


def citation_lines(source: str | None) -> str | None:
    """The line numbers a citation names ("Yubei [002:720]" → "720"), for words on a page."""
    found = CITATION.findall(source or "")
    return ", ".join(lines.strip() for lines in found) or None


@dataclass(frozen=True)
class PlanTarget:
    plan: str
    level: str
    year: int
    comparison: str
    value: float
    source: str


def plan_targets(code: str) -> list[PlanTarget]:
    """Every plan's target rows for the indicator, by plan, level and year."""
    return sorted((PlanTarget(*row) for row in catalogue.plan_targets_of(code)),
                  key=lambda t: (catalogue.PLAN_KEYS.index(t.plan), t.level, t.year))


def own_targets(code: str) -> list[IndicatorTarget]:
    """This hospital's and its departments' target rows for the indicator."""
    return list(db.session.scalars(sa.select(IndicatorTarget).where(IndicatorTarget.code == code).order_by(
        IndicatorTarget.department_id.is_not(None), IndicatorTarget.department_id, IndicatorTarget.hospital_level,
        IndicatorTarget.year)))


#: Audit actions that change how an indicator gets its value or what it is.
HISTORY_ACTIONS = ("indicator_setup.set", "indicator_setup.reset", "local_indicator.create", "local_indicator.update",
                   "local_indicator.deactivate", "local_indicator.reactivate")


def history(code: str) -> list[AuditEntry]:
    """The changes of the indicator's setup (or of a department's own indicator), oldest first."""
    return list(db.session.scalars(sa.select(AuditEntry).where(
        AuditEntry.object_type.in_(("indicator_setup", "local_indicator")), AuditEntry.object_id == code,
        AuditEntry.action.in_(HISTORY_ACTIONS)).order_by(AuditEntry.seq)))


def local_indicators(department_id: int | None) -> list[LocalIndicator]:
    """Departments' own indicators, switched off ones too (one department's, or every department's)."""
    stmt = sa.select(LocalIndicator).order_by(LocalIndicator.department_id, LocalIndicator.code)
    if department_id is not None:
        stmt = stmt.where(LocalIndicator.department_id == department_id)
    return list(db.session.scalars(stmt))


def department_targets(codes: list[str], department_id: int | None) -> dict[str, list[IndicatorTarget]]:
    """Departments' own target rows of these indicators, by code (one department's, or every department's)."""
    stmt = sa.select(IndicatorTarget).where(IndicatorTarget.code.in_(codes), IndicatorTarget.department_id.is_not(None))
    if department_id is not None:
        stmt = stmt.where(IndicatorTarget.department_id == department_id)
    found: dict[str, list[IndicatorTarget]] = {}
    for target in db.session.scalars(stmt.order_by(IndicatorTarget.year, IndicatorTarget.hospital_level)):
        found.setdefault(target.code, []).append(target)
    return found
