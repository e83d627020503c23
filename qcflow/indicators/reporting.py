"""Reported monthly values (docs/indicators.md, Reported values): entering, approving, returning and re-opening
a department's value of an indicator it reports, what each department still owes, the HIS's intake rows and the
reminders before the deadline. Services take `actor` and `now`, flush, and never commit.

The rules of a value live in `check_report` (one place: pages, the API and the HIS intake call it); the states
live in `indicators.workflow` (only the engine changes them).
"""
from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _
from marshmallow import ValidationError

from qcflow.auth.models import Department, Role
from qcflow.auth.permissions import sees_all_departments
from qcflow.core import audit
from qcflow.core.actors import Actor
from qcflow.core.errors import Conflict, DomainError, NotFound, Unprocessable, translate_errors
from qcflow.core.i18n import current_language
from qcflow.core.periods import add_months, month_end, month_start
from qcflow.core.time import local, today
from qcflow.extensions import db
from qcflow.indicators import catalogue
from qcflow.indicators.definitions import UNIT_FACTORS
from qcflow.indicators.models import IndicatorReport
from qcflow.indicators.schemas import IndicatorValueRowIn
from qcflow.indicators.workflow import HIS, REPORT_WORKFLOW, ReportState
from qcflow.notify.services import notify, users_with_role

#: Units reported as a numerator and a denominator (the value is computed from them).
RATE_UNITS = tuple(UNIT_FACTORS)
#: Rates whose numerator counts a subset of the denominator (a per-100 rate may exceed 100).
SHARE_UNITS = ("percent", "permille")
#: Units reported as one value.
VALUE_UNITS = ("count", "minutes", "hours", "days", "ratio", "status")
#: The first month a value can be reported for.
FIRST_MONTH = date(2000, 1, 1)
#: The longest reason for returning or re-opening a value (the column's length).
REASON_MAX = 500
#: Control characters a reason may not hold (tab and line breaks are text).
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
#: What the completeness view shows for a month nobody has reported yet.
MISSING = "missing"
#: Batches of the HIS intake: at most this many rows.
MAX_BATCH = 1000


def reportable_from(month: date) -> date:
    """The day from which a month's value can be reported: its last day (the month's figures are then
    practically known; the HIS often sends on the evening of that day)."""
    return month_end(month)


def deadline(month: date) -> date:
    """The day by which a month's values are due: INDICATOR_REPORT_DEADLINE_DAY of the next month."""
    following = add_months(month_start(month), 1)
    return following.replace(day=min(current_app.config["INDICATOR_REPORT_DEADLINE_DAY"], month_end(following).day))


def reported_entries() -> list[catalogue.Entry]:
    """Every indicator of the catalogue this hospital gets by a monthly report (a plan's or a department's own)."""
    return [e for e in catalogue.entries() if e.method == "reported"]


def entries_owed_by(department_id: int | None, *, quality_department_id: int | None = None) -> list[catalogue.Entry]:
    """The reported indicators a department reports; `quality_department_id` also gives the quality office's own
    (those with no reporting department) when it is the department asked for."""
    return [e for e in reported_entries() if e.department_id == department_id
            or (e.department_id is None and department_id is not None and department_id == quality_department_id)]


def value_from_parts(unit: str, numerator: int, denominator: int) -> float:
    return numerator * UNIT_FACTORS[unit] / denominator


def _entry_or_errors(code: str, errors: dict) -> catalogue.Entry | None:
    try:
        entry = catalogue.entry(code)
    except NotFound:
        errors["code"] = [_("No indicator %(code)s.", code=code)]
        return None
    name = entry.label()
    if not entry.is_active:
        errors["code"] = [_("“%(name)s” is switched off: switch it on again before entering values.", name=name)]
    elif entry.method == "computed":
        errors["code"] = [_("“%(name)s” is computed by qcflow from its own records: it is not reported.", name=name)]
    elif entry.method == "not_applicable":
        errors["code"] = [_("“%(name)s” does not apply to this hospital (%(reason)s): there is nothing to report.",
                            name=name, reason=entry.reason or _("no reason given"))]
    return entry


def _department_label(department_id: int | None) -> str:
    if department_id is None:
        return _("the quality office")
    department = db.session.get(Department, department_id)
    return department.label(current_language()) if department else str(department_id)


def _check_department(entry: catalogue.Entry, department_id: int | None, actor: Actor, errors: dict) -> None:
    if department_id is None:
        errors["department"] = [_("Choose the department the value is for.")]
        return
    if db.session.get(Department, department_id) is None:
        errors["department"] = [_("No such department.")]
        return
    if not (sees_all_departments(actor) or HIS in actor.roles) and department_id != actor.department_id:
        # The quality office and the HIS enter any department's values, a department head only their own.
        errors["department"] = [_("You may enter values only for your own department.")]
    elif entry.department_id is not None and entry.department_id != department_id:
        # An indicator the quality office reports (no reporting department) may come from any department.
        errors["department"] = [_("“%(name)s” is reported by %(department)s, not by your department.",
                                  name=entry.label(), department=_department_label(entry.department_id))]


def _check_month(month: date | None, now: datetime, errors: dict) -> None:
    if month is None:
        errors["month"] = [_("Choose the month the value is for.")]
    elif month < FIRST_MONTH:
        errors["month"] = [_("Months before 2000 cannot be reported.")]
    elif reportable_from(month) > today(now):
        errors["month"] = [_("A month can be reported from its last day on (%(day)s).",
                             day=reportable_from(month).isoformat())]


#: The largest numerator, denominator or value a month can hold: a hospital's month never counts a billion of
#: anything, so a larger number is a typing (or sending) error; it also keeps every sum within 64 bits.
MAX_AMOUNT = 10 ** 9


def _too_large() -> str:
    return _("At most %(limit)s: check the number.", limit=f"{MAX_AMOUNT:,}")


def check_parts(unit: str, numerator, denominator, value, errors: dict) -> None:
    if unit in RATE_UNITS:
        if value is not None:
            errors["value"] = [_("A rate's value is computed from its numerator and denominator: leave it empty.")]
        if numerator is None:
            errors["numerator"] = [_("A rate needs its numerator.")]
        elif isinstance(numerator, bool) or not isinstance(numerator, int) or numerator < 0:
            errors["numerator"] = [_("Enter a whole number of 0 or more.")]
        elif numerator > MAX_AMOUNT:
            errors["numerator"] = [_too_large()]
        if denominator is None:
            errors["denominator"] = [_("A rate needs its denominator.")]
        elif isinstance(denominator, bool) or not isinstance(denominator, int) or denominator <= 0:
            errors["denominator"] = [_("Enter a whole number greater than 0.")]
        elif denominator > MAX_AMOUNT:
            errors["denominator"] = [_too_large()]
        if (unit in SHARE_UNITS and not errors.get("numerator") and not errors.get("denominator")
                and numerator > denominator):
            errors["numerator"] = [_("The numerator cannot be larger than the denominator (%(n)d > %(d)d).",
                                     n=numerator, d=denominator)]
        return
    for name, given in (("numerator", numerator), ("denominator", denominator)):
        if given is not None:
            errors[name] = [_("This indicator is reported as one value: leave the numerator and denominator empty.")]
    if value is None:
        errors["value"] = [_("Enter the value.")]
    elif isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        errors["value"] = [_("Enter a number.")]
    elif value < 0:
        errors["value"] = [_("Enter 0 or more.")]
    elif value > MAX_AMOUNT:
        errors["value"] = [_too_large()]
    elif unit == "count" and value != int(value):
        errors["value"] = [_("A count is a whole number.")]
    elif unit == "status" and value not in (0, 1):
        errors["value"] = [_("Enter 1 (done) or 0 (not done).")]


def check_report(code: str, month: date | None, department_id: int | None, *, numerator=None, denominator=None,
                 value=None, actor: Actor, now: datetime) -> tuple[catalogue.Entry, dict]:
    """The one check of a reported value: the indicator is reported, the department reports it (the quality
    office and the HIS: any department), the month has ended (from its last day on) and is not before 2000, and
    the parts fit the unit. Returns the entry and the values to store; Unprocessable lists every field's errors."""
    errors: dict[str, list[str]] = {}
    entry = _entry_or_errors(code, errors)
    if entry is not None and "code" not in errors:
        _check_department(entry, department_id, actor, errors)
        check_parts(entry.unit, numerator, denominator, value, errors)
    _check_month(month, now, errors)
    if errors:
        raise Unprocessable(_("The value was not saved: correct the fields marked."), errors=errors)
    if entry.unit in RATE_UNITS:
        values = {"numerator": numerator, "denominator": denominator,
                  "value": value_from_parts(entry.unit, numerator, denominator)}
    else:
        values = {"numerator": None, "denominator": None, "value": float(value)}
    return entry, values


def find_report(code: str, month: date, department_id: int) -> IndicatorReport | None:
    return db.session.scalar(sa.select(IndicatorReport).where(
        IndicatorReport.code == code, IndicatorReport.month_on == month_start(month),
        IndicatorReport.department_id == department_id))


def _locked(report: IndicatorReport) -> Conflict:
    return Conflict(_("The value of %(month)s was approved on %(day)s and is locked. The quality office re-opens it "
                      "(with a reason) for a correction.", month=report.month_on.strftime("%Y-%m"),
                      day=local(report.decided_at).strftime("%Y-%m-%d") if report.decided_at else "—"),
                    current_version=report.version, state=report.state)


def _plain(value):
    return value.isoformat() if hasattr(value, "isoformat") else value


def submit(code: str, month: date | None, department_id: int | None, *, numerator=None, denominator=None, value=None,
           note: str | None = None, actor: Actor, now: datetime, expected_version: int | None = None,
           channel: str = "page") -> tuple[IndicatorReport, str]:
    """Enter a department's value of a reported indicator for a month: the first time (submit), or again while
    it awaits a decision, was returned or re-opened (revise). Returns the report and created, updated or
    unchanged.

    A revision from a page needs the version it was read at (stale or missing → 409); the HIS sends without
    one, and the same values again change nothing (no new version). An approved month is locked (409)."""
    entry, values = check_report(code, month, department_id, numerator=numerator, denominator=denominator,
                                 value=value, actor=actor, now=now)
    note = (note or "").strip() or None
    values["note"] = note
    first = month_start(month)
    report = find_report(entry.code, first, department_id)
    if report is not None and REPORT_WORKFLOW.in_phase(report, "locked"):
        raise _locked(report)
    if report is None:
        report = IndicatorReport(code=entry.code, month_on=first, department_id=department_id,
                                 state=ReportState.NEW.value, channel=channel, submitted_at=now,
                                 submitted_by=actor.audit_name, **values)
        REPORT_WORKFLOW.check(report, "submit", actor=actor)  # refused before anything is added to the session
        db.session.add(report)
        REPORT_WORKFLOW.apply(report, "submit", actor=actor, now=now, audit_detail={
            "code": entry.code, "month": first.isoformat(), "department_id": department_id, "channel": channel,
            "values": {k: _plain(v) for k, v in values.items()}})
        return report, "created"
    same = all(_plain(getattr(report, k)) == _plain(v) for k, v in values.items())
    if channel == "his" and same:
        return report, "unchanged"
    if channel != "his":
        if expected_version is None or expected_version != report.version:
            raise Conflict(_("A value for this indicator, month and department exists already and was changed in the "
                             "meantime. Reload the page to see it, then revise it."), current_version=report.version)
        if same and REPORT_WORKFLOW.in_phase(report, "awaiting_decision"):
            return report, "unchanged"
    REPORT_WORKFLOW.check(report, "revise", actor=actor)
    before = {k: _plain(getattr(report, k)) for k in values}
    for k, v in values.items():
        setattr(report, k, v)
    report.channel, report.submitted_at, report.submitted_by = channel, now, actor.audit_name
    report.decided_at = report.decided_by = None
    REPORT_WORKFLOW.apply(report, "revise", actor=actor, now=now, audit_detail={
        "changed": sorted(k for k in values if before[k] != _plain(values[k])), "values_before": before,
        "values": {k: _plain(v) for k, v in values.items()}, "channel": channel,
        "reason_before": report.reason})
    return report, "updated"


#: The quality office's decisions on a submitted value (and re-opening an approved one).
DECISIONS = ("approve", "return", "reopen")


def decide(report: IndicatorReport, action: str, *, actor: Actor, now: datetime, expected_version: int | None,
           reason: str | None = None) -> IndicatorReport:
    """Approve a submitted value, return it with a reason, or re-open an approved one with a reason (a correction).
    A stale version is 409."""
    if action not in DECISIONS:
        raise Unprocessable(errors={"action": [_("Choose one of: %(values)s.", values=", ".join(DECISIONS))]})
    if expected_version is None:
        raise Conflict(current_version=report.version)
    reason = (reason or "").strip() or None
    if reason is not None and len(reason) > REASON_MAX:
        raise Unprocessable(errors={"reason": [_("At most %(n)s characters.", n=REASON_MAX)]})
    if reason is not None and CONTROL.search(reason):
        raise Unprocessable(errors={"reason": [_("Control characters (such as NUL or ESC) are not allowed in text.")]})
    REPORT_WORKFLOW.check(report, action, actor=actor, data={"reason": reason}, expected_version=expected_version)
    before_reason = report.reason
    if action in ("return", "reopen"):
        report.reason = reason
    report.decided_at, report.decided_by = now, actor.audit_name
    REPORT_WORKFLOW.apply(report, action, actor=actor, now=now, data={"reason": reason},
                          expected_version=expected_version, audit_detail={
                              "code": report.code, "month": report.month_on.isoformat(),
                              "department_id": report.department_id, "reason": reason,
                              "reason_before": before_reason})
    if action in ("return", "reopen"):  # the department owes a correction: tell its heads where
        month = f"{report.month_on:%Y-%m}"
        notify(_heads(report.department_id), "indicator.report_returned", {"month": month, "reason": reason},
               now=now, link=f"/indicators/report?month={month}&department={report.department_id}#report-{report.code}")
    return report


def decide_many(decisions: list[tuple[int, int]], action: str, *, actor: Actor, now: datetime,
                reason: str | None = None) -> list[IndicatorReport]:
    """The same decision on several reports, each (id, version): all or none (one refusal refuses them all)."""
    if not decisions:
        raise Unprocessable(errors={"ids": [_("Choose at least one value.")]})
    done = []
    for report_id, version in decisions:
        report = db.session.get(IndicatorReport, report_id)
        if report is None:
            raise NotFound()
        done.append(decide(report, action, actor=actor, now=now, expected_version=version, reason=reason))
    return done


def get_report(report_id: int, actor: Actor) -> IndicatorReport:
    """A report the actor may read: the quality office any, a department head their department's (else 404)."""
    report = db.session.get(IndicatorReport, report_id)
    if report is None or not (sees_all_departments(actor) or report.department_id == actor.department_id):
        raise NotFound()
    return report


def reports(*, month: date | None = None, department_id: int | None = None, state: str | None = None,
            code: str | None = None, start: date | None = None, end: date | None = None,
            limit: int = 500) -> list[IndicatorReport]:
    """Reports by month (or months start..end), department, state and indicator, newest month first."""
    stmt = sa.select(IndicatorReport)
    if month is not None:
        stmt = stmt.where(IndicatorReport.month_on == month_start(month))
    if start is not None:
        stmt = stmt.where(IndicatorReport.month_on >= month_start(start))
    if end is not None:
        stmt = stmt.where(IndicatorReport.month_on <= month_start(end))
    if department_id is not None:
        stmt = stmt.where(IndicatorReport.department_id == department_id)
    if state is not None:
        stmt = stmt.where(IndicatorReport.state == state)
    if code is not None:
        stmt = stmt.where(IndicatorReport.code == code)
    stmt = stmt.order_by(IndicatorReport.month_on.desc(), IndicatorReport.code, IndicatorReport.department_id,
                         IndicatorReport.id).limit(limit)
    return list(db.session.scalars(stmt))


def months_so_far(year: int, now: datetime) -> list[date]:
    """The months of `year` that can be reported by `now` (from their last day on), oldest first."""
    months = [date(year, m, 1) for m in range(1, 13)]
    return [m for m in months if reportable_from(m) <= today(now) and m >= FIRST_MONTH]


@dataclass
class Owed:
    """One reported indicator and its responsible department (None: the quality office), month by month."""

    entry: catalogue.Entry
    department_id: int | None
    #: month → the state of its report, or MISSING.
    months: dict[date, str] = field(default_factory=dict)
    #: month → the report (where there is one).
    reports: dict[date, IndicatorReport] = field(default_factory=dict)

    def still_owed(self, month: date) -> bool:
        return self.months.get(month) in (MISSING, ReportState.RETURNED.value, ReportState.REOPENED.value)

    @property
    def department_key(self) -> int:
        """The department it is listed under, the quality office (0) first."""
        return self.department_id or 0

    @property
    def owed(self) -> int:
        """How many of its months are still owed (the completeness page counts them per department)."""
        return sum(self.still_owed(month) for month in self.months)


def completeness(months: list[date], *, department_id: int | None = None, only_department: bool = False
                 ) -> list[Owed]:
    """For each reported indicator and its responsible department, the state of each month's report (or
    missing). `only_department`: the indicators `department_id` reports (a department head's view); else every
    indicator, or with `department_id` those of that department.

    The quality office's own indicators (no reporting department) count as reported by whichever department's
    report there is for the month."""
    entries = reported_entries()
    if only_department or department_id is not None:
        entries = [e for e in entries if e.department_id == department_id]
    if not entries or not months:
        return []
    found = db.session.scalars(sa.select(IndicatorReport).where(
        IndicatorReport.code.in_([e.code for e in entries]), IndicatorReport.month_on >= min(months),
        IndicatorReport.month_on <= max(months)))
    by_key: dict[tuple, IndicatorReport] = {}
    for report in found:
        by_key[(report.code, report.month_on, report.department_id)] = report
        by_key.setdefault((report.code, report.month_on, None), report)
    rows = []
    for entry in entries:
        row = Owed(entry, entry.department_id)
        for month in months:
            report = by_key.get((entry.code, month, entry.department_id))
            row.months[month] = report.state if report is not None else MISSING
            if report is not None:
                row.reports[month] = report
        rows.append(row)
    return rows


def submissions(code: str, start: date, end: date, *, department_id: int | None) -> list[IndicatorReport]:
    """The reports behind a reported indicator's value for the months start..end touches (the drill-down)."""
    return reports(code=code, start=start, end=end, department_id=department_id)


# The HIS intake -------------------------------------------------------------------------------------------------

@dataclass
class RowResult:
    row: int
    key: str | None = None
    status: str = "error"
    id: object = None
    errors: dict = field(default_factory=dict)
    state: str | None = None


def _row_key(raw) -> str | None:
    if not isinstance(raw, dict):
        return None
    sent = [raw.get(name) for name in ("code", "month", "department_code")]
    if any(v is None or isinstance(v, (dict, list)) for v in sent):
        return None
    return "/".join(str(v) for v in sent)


def _department_by_code(code: str) -> int | None:
    return db.session.scalar(sa.select(Department.id).where(Department.code == code))


def import_rows(rows: list, *, actor: Actor, now: datetime, strict: bool = False) -> list[RowResult]:
    """The HIS's monthly values: each row checked on its own (good rows land, bad rows come back with their
    errors; with `strict` one error and nothing lands). The same values again change nothing."""
    if len(rows) > MAX_BATCH:
        raise Unprocessable(_("At most %(n)d rows per batch.", n=MAX_BATCH))
    his = dataclasses.replace(actor, roles=actor.roles | {HIS})
    results, planned, seen = [], [], set()
    for offset, raw in enumerate(rows):
        result = RowResult(row=offset + 1, key=_row_key(raw))
        results.append(result)
        try:
            row = IndicatorValueRowIn().load(raw)
        except ValidationError as error:
            result.errors = translate_errors(error.messages)
            continue
        department_id = _department_by_code(row["department_code"])
        errors = {}
        if department_id is None:
            errors["department_code"] = [_("No department with code “%(code)s”.", code=row["department_code"])]
        else:
            try:
                check_report(row["code"], row["month"], department_id, numerator=row.get("numerator"),
                             denominator=row.get("denominator"), value=row.get("value"), actor=his, now=now)
                existing = find_report(row["code"], row["month"], department_id)
                if existing is not None and REPORT_WORKFLOW.in_phase(existing, "locked"):
                    raise _locked(existing)
            except DomainError as error:
                errors = dict(error.errors or {"row": [str(error.message)]})
        key = (row["code"], row["month"], row["department_code"])
        if key in seen:
            errors["row"] = errors.get("row", []) + [_("The same record appears twice in this batch.")]
        seen.add(key)
        if errors:
            result.errors = translate_errors(errors)
            continue
        planned.append((result, row, department_id))
    if strict and any(r.errors for r in results):
        for result in results:
            if not result.errors:
                result.status = "skipped"
        return results
    for result, row, department_id in planned:
        report, status = submit(row["code"], row["month"], department_id, numerator=row.get("numerator"),
                                denominator=row.get("denominator"), value=row.get("value"), note=row.get("note"),
                                actor=his, now=now, channel="his")
        result.status, result.id, result.state = status, report.id, report.state
    return results


def summarise(results: list[RowResult]) -> dict:
    counts = {status: sum(r.status == status for r in results) for status in ("created", "updated", "unchanged")}
    return {"results": results, **counts, "failed": sum(bool(r.errors) for r in results)}


# Reminders ------------------------------------------------------------------------------------------------------

def _already(action: str, object_id: str) -> bool:
    return db.session.scalar(sa.select(audit.AuditEntry.id).where(
        audit.AuditEntry.action == action, audit.AuditEntry.object_id == object_id).limit(1)) is not None


def _heads(department_id: int | None) -> list[int]:
    if department_id is None:
        return users_with_role(Role.QUALITY)
    return users_with_role(Role.DEPT_HEAD, department_id)


def remind(now: datetime) -> tuple[int, int]:
    """From INDICATOR_REMINDER_DAYS before the deadline of last month's values until the deadline, remind each
    responsible department's heads (the quality office for its own indicators) of what they still owe, once per
    department and month; after the deadline tell the quality office, once per month, which are overdue.
    Returns (departments reminded, overdue notices)."""
    config = current_app.config
    month = add_months(month_start(today(now)), -1)
    due = deadline(month)
    day = today(now)
    rows = completeness([month])
    owed: dict[int | None, list[str]] = {}
    for row in rows:
        if row.still_owed(month):
            owed.setdefault(row.department_id, []).append(row.entry.code)
    label = f"{month:%Y-%m}"
    reminded = overdue = 0
    if (due - day).days <= config["INDICATOR_REMINDER_DAYS"] and day <= due:
        for department_id, codes in sorted(owed.items(), key=lambda item: (item[0] is not None, item[0] or 0)):
            key = f"{label}:{department_id if department_id is not None else 'quality'}"
            if _already("indicator_report.reminded", key):
                continue
            recipients = _heads(department_id)
            audit.record("system:indicators.remind_reports", "indicator_report.reminded", "indicator_report", key,
                         now, month=label, department_id=department_id, codes=sorted(codes),
                         recipients=sorted(recipients))
            notify(recipients, "indicator.report_due", {"month": label, "date": due.isoformat(), "n": len(codes)},
                   now=now, link=f"/indicators/report?month={label}"
                   + (f"&department={department_id}" if department_id is not None else ""))
            reminded += 1
    elif day > due and owed and not _already("indicator_report.overdue", label):
        codes = sorted(code for found in owed.values() for code in found)
        audit.record("system:indicators.remind_reports", "indicator_report.overdue", "indicator_report", label, now,
                     month=label, owed={str(k): sorted(v) for k, v in owed.items()})
        notify(users_with_role(Role.QUALITY), "indicator.report_overdue",
               {"month": label, "n": len(codes), "departments": len(owed)}, now=now,
               link=f"/indicators/completeness?year={month.year}")
        overdue = 1
    return reminded, overdue
