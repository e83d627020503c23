"""Under-reporting detector: reports per 100 discharges per department against the hospital rate.

Only actively reported events count (found_by "reporter"): harm a trigger found and a reviewer filed is
what the department did not report, so it never raises the department's rate (docs/indicators.md).

A funnel plot (Spiegelhalter 2005): for a department with n discharges the expected count is
θ·n, θ being the hospital's reports per discharge; the control limits are the Poisson quantiles of
that expectation, interpolated so they are smooth in n (95 %: 2.5 % and 97.5 %; 99.8 %: 0.1 % and
99.9 %). A department below the lower limit reports less than its size predicts. Departments with
no report for `REPORT_SILENT_WEEKS` weeks (default 4) are flagged as silent, and the share of
reports whose harm reached the patient is shown: a high share with a low rate means minor events
go unreported.

A department's count is below the hospital level: under k it is shown as `<k`, its rate as an
upper bound, its point drawn at that bound, and its flag is given only when every count under k
gets the same flag (otherwise "too few to judge"), so the flag never narrows a hidden count.
"""
from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from flask_babel import lazy_gettext as _l

from qcflow.auth.models import Department, DepartmentKind
from qcflow.core.i18n import current_language, register_labels
from qcflow.core.periods import Period
from qcflow.events.models import AdverseEvent
from qcflow.extensions import db
from qcflow.indicators.definitions import DISCHARGES, actively_reported
from qcflow.reports.analysis import harm_clause, is_report, reports_clause
from qcflow.reports.suppression import SHOWN, suppress

#: Two-sided control limits: name → (lower tail, upper tail).
LIMITS = {"95": (0.025, 0.975), "99.8": (0.001, 0.999)}

FLAGS = {
    "low_99.8": _l("Below the %(p)s limit", p="99.8 %"),
    "low_95": _l("Below the %(p)s limit", p="95 %"),
    "within": _l("Within the limits"),
    "high_95": _l("Above the %(p)s limit", p="95 %"),
    "too_few": _l("Too few reports to judge"),
}


def silent_weeks() -> int:
    return int(current_app.config["REPORT_SILENT_WEEKS"])


def poisson_cdf(r: int, mean: float) -> float:
    """P(X ≤ r) for X ~ Poisson(mean)."""
    if r < 0:
        return 0.0
    if mean <= 0:
        return 1.0
    log_mean = math.log(mean)
    return min(1.0, sum(math.exp(-mean + i * log_mean - math.lgamma(i + 1)) for i in range(r + 1)))


def poisson_limit(mean: float, p: float) -> float:
    """The interpolated Poisson quantile of `mean` at probability p (as a count)."""
    if mean <= 0:
        return 0.0
    r, below, cdf = 0, 0.0, poisson_cdf(0, mean)
    while cdf < p:
        r += 1
        below, cdf = cdf, cdf + math.exp(-mean + r * math.log(mean) - math.lgamma(r + 1))
    alpha = (cdf - p) / (cdf - below) if cdf > below else 0.0
    return max(0.0, r - alpha)


def control_limits(rate: float, discharges: int) -> dict[str, tuple[float, float]]:
    """The funnel's limits, in reports per 100 discharges, for a department of this size."""
    if discharges <= 0:
        return {name: (0.0, 0.0) for name in LIMITS}
    expected = rate * discharges
    return {name: (100 * poisson_limit(expected, low) / discharges, 100 * poisson_limit(expected, high) / discharges)
            for name, (low, high) in LIMITS.items()}


def discharges_by_department(period: Period, now: datetime) -> dict[int, int]:
    """Discharges per department, as the indicator ae_per_100_discharges counts them (census or encounters)."""
    window = replace(period, now=now)
    totals: dict[int, int] = {}
    for source in DISCHARGES:
        rows = source.select(window).subquery()
        stmt = sa.select(rows.c.department_id, sa.func.sum(rows.c.weight)).group_by(rows.c.department_id)
        for department_id, n in db.session.execute(stmt):
            totals[department_id] = totals.get(department_id, 0) + int(n or 0)
    return totals


def _flag(count: int, shown: bool, k: int, discharges: int, limits: dict) -> str:
    """Where the department's rate lies; for a hidden count, only what every count under k agrees on."""
    rate, ceiling = 100 * count / discharges, 100 * (k - 1) / discharges
    low95, high95 = limits["95"]
    low998 = limits["99.8"][0]

    def below(limit):
        if shown:
            return rate < limit
        if ceiling < limit:
            return True
        if limit <= 0:
            return False
        return None  # a hidden count could fall either side

    if below(low998) is True:
        return "low_99.8"
    verdict95 = below(low95)
    if verdict95 is True:
        return "low_95"
    if verdict95 is None or below(low998) is None:
        return "too_few"
    if shown and rate > high95:
        return "high_95"
    return "within"


def silent_departments(period: Period, department_id: int | None = None) -> list[Department]:
    """Clinical and nursing departments with no report in the last N weeks of the period."""
    since = period.end_at - timedelta(weeks=silent_weeks())
    reported = (sa.select(AdverseEvent.department_id)
                .where(is_report(), actively_reported(), AdverseEvent.submitted_at >= since, AdverseEvent.submitted_at < period.end_at,
                       AdverseEvent.department_id.is_not(None)))
    stmt = (sa.select(Department).where(Department.is_active.is_(True),
                                        Department.kind.in_((DepartmentKind.CLINICAL.value, DepartmentKind.NURSING.value)),
                                        Department.id.not_in(reported))
            .order_by(Department.code))
    if department_id is not None:
        stmt = stmt.where(Department.id == department_id)
    return list(db.session.scalars(stmt))


def funnel(period: Period, *, k: int, now: datetime, department_id: int | None = None) -> dict:
    """The detector: hospital rate, one point per department with discharges, silent departments.

    With `department_id` only that department's point is listed (the limits still come from the
    hospital rate).
    """
    discharges = discharges_by_department(period, now)
    where = sa.and_(reports_clause(period), actively_reported())
    stmt = (sa.select(AdverseEvent.department_id, sa.func.count(), sa.func.count().filter(harm_clause()))
            .where(where).group_by(AdverseEvent.department_id))
    by_department = {d: (n, harm) for d, n, harm in db.session.execute(stmt)}
    total_reports = sum(n for n, _harm in by_department.values())
    total_discharges = sum(discharges.values())
    rate = total_reports / total_discharges if total_discharges else 0.0
    language = current_language()
    departments = {d.id: d for d in db.session.scalars(
        sa.select(Department).where(Department.id.in_(list(discharges))))}
    points = []
    for dept_id, n in sorted(discharges.items(),
                             key=lambda item: departments[item[0]].code if item[0] in departments else ""):
        if n <= 0 or (department_id is not None and dept_id != department_id):
            continue
        count, harm = by_department.get(dept_id, (0, 0))
        published = suppress([harm, count - harm], k=k)
        shown = published.total == SHOWN
        limits = control_limits(rate, n)
        department = departments.get(dept_id)
        points.append({
            "department": {"id": dept_id, "code": department.code if department else None,
                           "name": department.label(language) if department else None},
            "discharges": n,
            "reports": count if shown else None,
            "reports_display": str(count) if shown else f"<{k}",
            "rate": round(100 * count / n, 3) if shown else None,
            "rate_display": f"{100 * count / n:.2f}" if shown else f"≤{100 * (k - 1) / n:.2f}",
            "plot_rate": 100 * (count if shown else k - 1) / n,
            "expected": round(rate * n, 2),
            "limits": {name: [round(low, 3), round(high, 3)] for name, (low, high) in limits.items()},
            "flag": _flag(count, shown, k, n, limits),
            "harm_share": round(100 * harm / count, 1) if published.cells == (SHOWN, SHOWN) and count else None,
            "suppressed": not shown,
        })
    silent = silent_departments(period, department_id)
    return {
        "hospital_rate": round(100 * rate, 3),
        "reports": total_reports,
        "discharges": total_discharges,
        "points": points,
        "flagged": [p["department"]["code"] for p in points if p["flag"] in ("low_99.8", "low_95")],
        "silent_weeks": silent_weeks(),
        "silent": [{"id": d.id, "code": d.code, "name": d.label(language)} for d in silent],
    }


register_labels({"funnel_flag": FLAGS})
