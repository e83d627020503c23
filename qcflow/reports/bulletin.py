"""The monthly quality bulletin (质量安全月报): indicators against targets, 12-month trends, the event
analysis, follow-up by department, MDT and death-discussion compliance, overdue work, the
under-reporting funnel and the trigger statistics (with the harm the system found that nobody
reported), as one PDF.

Indicator numbers come from `qcflow.indicators.queries` (a frozen month's snapshot where there is one),
so the bulletin prints what the indicator pages and API show. Counts of the event analysis below the
hospital level are suppressed as on the analysis page: the bulletin is read across the hospital.
"""
from __future__ import annotations

import os
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _

from qcflow.auth.models import Department
from qcflow.core.errors import Unprocessable
from qcflow.core.i18n import current_language, label
from qcflow.core.periods import add_months, month_period, month_start, parse_month as read_month
from qcflow.core.time import today
from qcflow.events.lessons import queries as lessons
from qcflow.events.queries import category_label, department_label, overdue_clause as event_overdue
from qcflow.events.models import AdverseEvent
from qcflow.extensions import db
from qcflow.reports import trigger_stats
from qcflow.followup.invitations import queries as invitations
from qcflow.followup.models import Task
from qcflow.followup.timeliness import overdue_clause as task_overdue
from qcflow.indicators import queries as indicators
from qcflow.indicators import survival
from qcflow.indicators.definitions import BY_CODE
from qcflow.mdt.models import Discussion
from qcflow.mdt.services import overdue_clause as discussion_overdue
from qcflow.reports import analysis, charts, pdf, queries, underreporting

#: Indicators drawn as 12-month trends (the five cancer types are in the table only).
TREND_CODES = ("ae_per_100_discharges", "followup_rate_level4", "followup_rate_cancer", "day_surgery_24h_followup_rate",
               "preop_mdt_rate_level4", "periop_death_discussion_rate", "unplanned_reoperation_rate",
               "ae_closure_on_time_rate")
#: Follow-up performance by department: these indicators, per department.
FOLLOWUP_CODES = ("followup_rate_level4", "followup_rate_cancer", "day_surgery_24h_followup_rate")
COMPLIANCE_CODES = ("preop_mdt_rate_level4", "periop_death_discussion_rate", "periop_death_discussion_7d_rate")
#: Dimensions of the event analysis drawn in the bulletin.
CHART_DIMENSIONS = ("category", "grade", "care_stage", "hour_band", "weekday", "department")
UNIT_SUFFIX = {"percent": " %", "permille": " ‰", "per100": "", "count": ""}


def parse_month(text: str, today_: date) -> date:
    """YYYY-MM → the month's first day; a malformed month or one in the future is refused (422)."""
    month = read_month(text)
    if month is None or month.year < 2000:
        raise Unprocessable(errors={"month": [_("Give the month as YYYY-MM, e.g. 2026-02.")]})
    if month > month_start(today_):
        raise Unprocessable(errors={"month": [_("%(month)s is in the future: there is no bulletin for it yet.",
                                                month=text)]})
    return month


def filename(month: date) -> str:
    return f"bulletin-{month:%Y-%m}.pdf"


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "status":
        return _("done") if value >= 1 else _("not done")
    digits = 2 if unit in ("per100", "ratio") else 0 if unit == "count" else 1
    suffix = f" {label('ind_unit', unit)}" if unit in ("minutes", "hours", "days") else UNIT_SUFFIX.get(unit, "")
    return f"{value:.{digits}f}{suffix}"


def target_text(value) -> str:
    if value.target is None:
        return _("rising") if value.direction == "rising" else "—"
    return f"{label('ind_comparison', value.comparison)} {fmt(value.target, value.unit)}".strip()


def met_text(value) -> str:
    return "—" if value.met is None else (_("met") if value.met else _("not met"))


def _row(value) -> dict:
    return {"code": value.code, "name": value.name, "value": fmt(value.value, value.unit),
            "numerator": value.numerator, "denominator": value.denominator, "target": target_text(value),
            "met": met_text(value), "is_met": value.met, "frozen": value.frozen_at is not None}


def _trend_chart(code: str, month: date, now: datetime):
    points = indicators.trend(code, month, 12, now=now)
    latest = points[-1][1]
    return charts.trend(latest.name, [m for m, _v in points], [v.value for _m, v in points], unit=latest.unit,
                        target=latest.target, width=440, height=240, now=now)


def followup_by_department(month: date, cutoff: datetime, now: datetime) -> list[dict]:
    """Each department's effective follow-up rates (the indicators' definitions, grouped by department)
    and its overdue open calls at the cut-off."""
    period = month_period(month, now)
    counts: dict[int, dict[str, list[int]]] = {}
    for code in FOLLOWUP_CODES:
        for index, part in enumerate(indicators.PARTS):
            for department_id, n in indicators.counts_by_department(BY_CODE[code], part, period).items():
                counts.setdefault(department_id, {}).setdefault(code, [0, 0])[index] += n
    overdue = dict(db.session.execute(sa.select(Task.department_id, sa.func.count()).where(
        task_overdue(Task, cutoff)).group_by(Task.department_id)).all())
    ids = set(counts) | set(overdue)
    language = current_language()
    departments = {d.id: d for d in db.session.scalars(sa.select(Department).where(Department.id.in_(ids)))}
    result = []
    for department_id in sorted(ids, key=lambda i: departments[i].code if i in departments else ""):
        cells = {}
        for code in FOLLOWUP_CODES:
            numerator, denominator = counts.get(department_id, {}).get(code, (0, 0))
            cells[code] = (f"{100 * numerator / denominator:.1f} % ({numerator}/{denominator})"
                           if denominator else "—")
        result.append({"department": departments[department_id].label(language) if department_id in departments
                       else "—", "cells": cells, "overdue": overdue.get(department_id, 0)})
    return result


def survival_section(as_of: date) -> dict:
    """Kaplan–Meier survival of the five key cancers as known on `as_of` (indicators.survival): the curves of
    the groups of k diagnoses or more, and each group's 1-, 3- and 5-year survival."""
    k = survival.small_group_k()
    groups = survival.curves(as_of, k=k)
    language = current_language()
    shown = [g for g in groups if not g.suppressed and g.times]
    series = [(g.name(language), g.times, g.survival) for g in shown]
    chart = charts.kaplan_meier(_("Survival after diagnosis"), series, width=640, height=300) if shown else None

    def text(e) -> str:
        if e.survival is None:
            return "—"
        return f"{e.survival * 100:.1f} % ({e.lower * 100:.1f}–{e.upper * 100:.1f})"

    return {"as_of": as_of, "k": k, "chart": chart,
            "groups": [{"name": g.name(language), "suppressed": g.suppressed, "n": g.n, "events": g.events,
                        "estimates": [{"text": text(e)} for e in g.estimates]} for g in groups]}


def overdue_counts(cutoff: datetime) -> dict:
    """Open work past its deadline at the cut-off, by each domain's own overdue rule."""
    def count(model, clause):
        return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(clause)) or 0

    return {"events": count(AdverseEvent, event_overdue(cutoff)), "followup": count(Task, task_overdue(Task, cutoff)),
            "mdt": count(Discussion, discussion_overdue(cutoff))}


def lessons_of_the_month(month: date, now: datetime) -> list[dict]:
    """The lessons of the case-learning library published in the month and still published at `now`."""
    period = month_period(month)
    return [{"title": lesson.title, "category": category_label(lesson.category_code) or "—",
             "department": department_label(lesson.department_id) or "—", "what_changed": lesson.what_changed}
            for lesson in lessons.published_in(period.start_at, min(period.end_at, now))]


def context(month: date, now: datetime) -> dict:
    """Everything the bulletin prints for `month`, judged at `now`."""
    period = month_period(month)
    cutoff = min(period.end_at, now)
    values = indicators.month_values(month, now=now)
    by_code = {v.code: v for v in values}
    event_summary = analysis.summary(period, None)
    event_summary["underreporting"] = underreporting.funnel(period, k=event_summary["k"], now=now)
    return {
        "month": month,
        "month_label": local_month_label(month),
        "now": now,
        "cutoff": cutoff,
        "cutoff_shown": cutoff - timedelta(minutes=1) if cutoff == period.end_at else cutoff,
        "hospital": current_app.config["HOSPITAL_NAME"],
        "indicators": [_row(v) for v in values],
        # Values the departments reported for the month (approved), and those still awaiting approval.
        "reported": [{**_row(v), "pending": v.pending} for v in indicators.reported_values(period.start, period.end)
                     if v.value is not None or v.pending],
        "frozen": any(v.frozen_at is not None for v in values),
        "trends": [_trend_chart(code, month, now) for code in TREND_CODES if code in by_code],
        "analysis": event_summary,
        "tables": {t["name"]: t for t in event_summary["dimensions"]},
        "event_charts": queries.dimension_charts(event_summary, names=CHART_DIMENSIONS, width=440),
        "funnel": queries.funnel_chart(event_summary),
        "triggers": trigger_stats.summary(period, event_summary["k"]),
        "followup": followup_by_department(month, cutoff, now),
        "followup_codes": [(code, BY_CODE[code].label(current_language())) for code in FOLLOWUP_CODES],
        "online": invitations.statistics(None, month),
        "compliance": [_row(by_code[code]) for code in COMPLIANCE_CODES if code in by_code],
        "overdue": overdue_counts(cutoff),
        "survival": survival_section(min(period.end, today(now))),
        "lessons": lessons_of_the_month(month, now),
    }


def render(month: date, now: datetime) -> bytes:
    """The bulletin of `month` as PDF bytes."""
    # The template engine directly, not render_template: the scheduler has no request, and the
    # page context processors (current user, inbox badge) have nothing to add to a print.
    html = current_app.jinja_env.get_template("reports/bulletin.html").render(**context(month, now))
    return pdf.render_pdf(html)


def previous_month(now: datetime) -> date:
    return add_months(month_start(today(now)), -1)


def archive_path(month: date) -> str:
    return os.path.join(current_app.instance_path, "reports", filename(month))


def archive(month: date, now: datetime) -> str | None:
    """Write the month's bulletin under <instance>/reports once; None when it is there already."""
    path = archive_path(month)
    if os.path.exists(path):
        return None
    os.makedirs(os.path.dirname(path), exist_ok=True)
    data = render(month, now)
    partial = f"{path}.{os.getpid()}.part"
    with open(partial, "wb") as handle:
        handle.write(data)
    os.replace(partial, path)  # readers never see half a file
    return path


def local_month_label(month: date) -> str:
    return f"{month.year}年{month.month}月" if current_language() != "en" else month.strftime("%B %Y")

