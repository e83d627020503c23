"""Event analysis: count and composition of reports by each of the seed's dimensions.

Category, grade, care stage, time (month, weekday, hour band of occurrence), location, department
and clinical state [seed 003:1216-1220], each one SQL GROUP BY over the reports of a period,
hospital-wide or for one department. A report is a submitted event that is not a draft, a
duplicate, not reportable or withdrawn; it belongs to the period in which it was submitted
(hospital time). Counts below the hospital level go through `suppression.suppress`.

The analysis covers every report, whoever found the harm: one a reviewer filed from a trigger's firing
(found_by = "trigger", 系统发现) is an adverse event to learn from like any other. The summary counts
those apart, and the reporting rate (the indicator ae_per_100_discharges, the funnel plot) counts only
actively reported events (`actively_reported`; docs/indicators.md).
"""
from __future__ import annotations

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _, lazy_gettext as _l

from qcflow.auth.models import Department
from qcflow.auth.permissions import department_for
from qcflow.clinical.models import Patient
from qcflow.core.actors import Actor
from qcflow.core.i18n import current_language, label
from qcflow.core.periods import Period
from qcflow.core.time import hospital_tz
from qcflow.events.models import CARE_STAGES, AdverseEvent, EventCategory
from qcflow.events.scrub import own_data, scrub, staff_names
from qcflow.extensions import db
from qcflow.indicators.definitions import NOT_REPORTS, actively_reported, found_by_system, reported_by_public
from qcflow.reports.suppression import SHOWN, suppress

GRADES = ("I", "II", "III", "IV")
#: Harm reached the patient: grade I/II, or a recorded harm other than none.
HARM_LEVELS = ("mild", "moderate", "severe", "death")
WEEKDAYS = (_l("Monday"), _l("Tuesday"), _l("Wednesday"), _l("Thursday"), _l("Friday"), _l("Saturday"),
            _l("Sunday"))
#: Hour bands of occurrence, 4 hours each, hospital time.
HOUR_BAND_HOURS = 4
#: Free-text dimensions list this many values; the rest (and, below the hospital level, every
#: value with fewer than k reports) are pooled as "other".
FREE_TEXT_TOP = 10
NOT_RECORDED = "_none"
OTHER = "_other"

DIMENSIONS = {
    "category": _l("Category"),
    "grade": _l("Grade"),
    "care_stage": _l("Care stage"),
    "month": _l("Month of occurrence"),
    "weekday": _l("Weekday of occurrence"),
    "hour_band": _l("Time of day of occurrence"),
    "location": _l("Location"),
    "department": _l("Department where it happened"),
    "clinical_state": _l("Clinical state"),
}


def small_cell_k() -> int:
    """Counts below this are shown as `<k` below the hospital level (QCFLOW_REPORT_SMALL_CELL_K)."""
    return int(current_app.config["REPORT_SMALL_CELL_K"])


def analysis_department(actor: Actor, department_id: int | None) -> Department | None:
    """The department the actor may analyse (department_for), or None for the whole hospital."""
    department_id = department_for(actor, department_id)
    return db.session.get(Department, department_id) if department_id is not None else None


def is_report():
    """An event that counts as a report: submitted, and not a duplicate, not reportable or withdrawn
    (the states the indicator ae_per_100_discharges leaves out)."""
    return sa.and_(AdverseEvent.state.not_in(NOT_REPORTS), AdverseEvent.submitted_at.is_not(None))


def reports_clause(period: Period, department_id: int | None = None):
    """The reports submitted in a period (and department where they happened)."""
    clause = sa.and_(is_report(), AdverseEvent.submitted_at >= period.start_at,
                     AdverseEvent.submitted_at < period.end_at)
    if department_id is not None:
        clause = sa.and_(clause, AdverseEvent.department_id == department_id)
    return clause


def effective_grade():
    """The quality office's grade once triaged, the reporter's before."""
    return sa.func.coalesce(AdverseEvent.confirmed_grade, AdverseEvent.reporter_grade)


def harm_clause():
    return sa.or_(effective_grade().in_(("I", "II")), AdverseEvent.harm.in_(HARM_LEVELS))


def _sqlite_offset(period: Period) -> str:
    # SQLite has no time-zone database: shift by the zone's offset at the start of the period.
    minutes = int(period.start_at.astimezone(hospital_tz()).utcoffset().total_seconds() // 60)
    return f"{minutes:+d} minutes"


def local_part(column, part: str, period: Period):
    """Month ("YYYY-MM"), ISO weekday (1 = Monday) or hour of an instant, in hospital time, as SQL."""
    if db.session.get_bind().dialect.name == "postgresql":
        at = sa.func.timezone(current_app.config["TIMEZONE"], column)
        if part == "month":
            return sa.func.to_char(at, "YYYY-MM")
        if part == "weekday":
            return sa.cast(sa.extract("isodow", at), sa.Integer)
        return sa.cast(sa.extract("hour", at), sa.Integer)
    offset = _sqlite_offset(period)
    if part == "month":
        return sa.func.strftime("%Y-%m", column, offset)
    if part == "weekday":
        # %w: 0 = Sunday … 6 = Saturday → 1 = Monday … 7 = Sunday.
        return (sa.cast(sa.func.strftime("%w", column, offset), sa.Integer) + 6) % 7 + 1
    return sa.cast(sa.func.strftime("%H", column, offset), sa.Integer)


def _count_by(expr, where) -> dict:
    stmt = sa.select(expr.label("value"), sa.func.count().label("n")).where(where).group_by(expr)
    return {value: n for value, n in db.session.execute(stmt)}


def _domain(name: str, period: Period, counts: dict) -> list[tuple[object, str]]:
    """Every value of a dimension with its label, so an absent row never gives a zero away."""
    language = current_language()
    if name == "category":
        categories = db.session.scalars(sa.select(EventCategory).where(EventCategory.parent_code.is_(None))
                                        .order_by(EventCategory.sort_order, EventCategory.code))
        return [(c.code, c.label(language)) for c in categories] + [(None, _("Not recorded"))]
    if name == "grade":
        return [(g, str(label("grade", g))) for g in GRADES] + [(None, _("Not recorded"))]
    if name == "care_stage":
        return [(s, label("care_stage", s)) for s in CARE_STAGES] + [(None, _("Not recorded"))]
    if name == "month":
        return [(m.strftime("%Y-%m"), m.strftime("%Y-%m")) for m in period.months()]
    if name == "weekday":
        return [(i + 1, str(day)) for i, day in enumerate(WEEKDAYS)]
    if name == "hour_band":
        return [(b, f"{b * HOUR_BAND_HOURS:02d}:00–{(b + 1) * HOUR_BAND_HOURS:02d}:00")
                for b in range(24 // HOUR_BAND_HOURS)] + [(None, _("Not recorded"))]
    if name == "department":
        ids = {i for i in counts if i is not None}
        departments = db.session.scalars(sa.select(Department).where(
            sa.or_(Department.is_active.is_(True), Department.id.in_(ids))).order_by(Department.kind, Department.code))
        return [(d.id, d.label(language)) for d in departments] + [(None, _("Not recorded"))]
    raise ValueError(name)


def _free_text_counts(expr, where) -> dict:
    """Counts of a free-text dimension by (value, patient record number, the case's own data): each value is
    scrubbed with the name of its own case's patient and the case's own data (events.scrub.own_data)."""
    e = AdverseEvent
    own = (e.patient_mrn, e.contact_name, e.contact_phone)
    stmt = sa.select(expr.label("value"), *own, sa.func.count().label("n")).where(where).group_by(expr, *own)
    return {(row.value, row.patient_mrn, own_data(row)): row.n for row in db.session.execute(stmt)}


def _free_text_rows(counts: dict, k: int, below: bool) -> list[tuple[object, str, int]]:
    """Top values of a free-text dimension (scrubbed labels), the rest pooled as "other"."""
    merged: dict[str, int] = {}
    missing = 0
    names = staff_names()
    patients = dict(db.session.execute(sa.select(Patient.mrn, Patient.name).where(
        Patient.mrn.in_({mrn for _value, mrn, _own in counts if mrn}))).all()) if counts else {}
    for (value, mrn, own), n in counts.items():
        text = (value or "").strip()
        if not text:
            missing += n
            continue
        key = scrub(text, names + ([patients[mrn]] if patients.get(mrn) else []), own=own)
        merged[key] = merged.get(key, 0) + n
    ranked = sorted(merged.items(), key=lambda item: (-item[1], item[0]))
    listed = [(text, n) for text, n in ranked if not below or n >= k][:FREE_TEXT_TOP]
    other = sum(merged.values()) - sum(n for _text, n in listed)
    rows = [(text, text, n) for text, n in listed]
    rows.append((OTHER, _("Other") if not below else _("Other (values with fewer than %(k)d reports)", k=k), other))
    rows.append((NOT_RECORDED, _("Not recorded"), missing))
    return rows


def _expression(name: str, period: Period):
    occurred = AdverseEvent.occurred_at
    return {
        "category": AdverseEvent.category_code,
        "grade": effective_grade(),
        "care_stage": AdverseEvent.care_stage,
        "month": local_part(occurred, "month", period),
        "weekday": local_part(occurred, "weekday", period),
        "hour_band": local_part(occurred, "hour", period) // HOUR_BAND_HOURS,
        "location": AdverseEvent.location,
        "department": AdverseEvent.department_id,
        "clinical_state": AdverseEvent.clinical_state,
    }[name]


def table(name: str, period: Period, department_id: int | None, k: int) -> dict:
    """One dimension: rows of {code, label, count, display, share}, the total, suppression applied."""
    where = reports_clause(period, department_id)
    below = department_id is not None or name == "department"
    if name in ("location", "clinical_state"):
        rows = _free_text_rows(_free_text_counts(_expression(name, period), where), k, below)
    else:
        counts = _count_by(_expression(name, period), where)
        rows = [(code, text, counts.get(code, 0)) for code, text in _domain(name, period, counts)]
        listed = {code for code, _text, _n in rows}
        unlisted = sum(n for value, n in counts.items() if value not in listed)
        if name == "month":  # an event filed in the period may have happened before it
            rows.append((OTHER, _("Before the period"), unlisted))
        elif unlisted:  # a code the taxonomy no longer lists: counted, never dropped
            rows.append((OTHER, _("Other"), unlisted))
        rows = [row for row in rows if row[0] not in (None, OTHER, NOT_RECORDED) or row[2] or below]
    values = [n for _code, _text, n in rows]
    total = sum(values)
    # A department's total of k or more is in every one of its tables: no table may hide it alone.
    published = suppress(values, k=k, below_hospital_level=below, total_is_public=department_id is None or total >= k)
    total_shown = published.total == SHOWN
    out_rows = []
    for i, (code, text, n) in enumerate(rows):
        shown = published.cells[i] == SHOWN
        out_rows.append({
            "code": None if code is None else str(code), "label": str(text),
            "count": n if shown else None, "display": published.display(values, i),
            "share": round(100 * n / total, 1) if shown and total_shown and total else None,
            "suppressed": not shown,
        })
    return {"name": name, "title": str(DIMENSIONS[name]), "rows": out_rows,
            "total": {"count": total if total_shown else None, "display": published.display(values),
                      "suppressed": not total_shown}}


def analyse(actor: Actor, period: Period, department_id: int | None = None) -> dict:
    """The event analysis the actor may see: hospital-wide (quality office) or one department."""
    return summary(period, analysis_department(actor, department_id))


def summary(period: Period, department: Department | None) -> dict:
    """Every dimension's table for the hospital (department None) or one department."""
    scope_id = department.id if department is not None else None
    k = small_cell_k()
    names = [n for n in DIMENSIONS if not (n == "department" and scope_id is not None)]
    tables = [table(name, period, scope_id, k) for name in names]
    return {
        "period": {"start": period.start.isoformat(), "end": period.end.isoformat()},
        "department": None if department is None else {"id": department.id, "code": department.code,
                                                       "name": department.label(current_language())},
        "k": k,
        "below_hospital_level": scope_id is not None,
        "total": tables[0]["total"],
        "found_by": found_by_split(period, scope_id, k),
        "harm": harm_share(period, scope_id, k),
        "dimensions": tables,
    }


def harm_share(period: Period, department_id: int | None, k: int) -> dict:
    """Reports whose harm reached the patient, and their share of all reports."""
    stmt = sa.select(sa.func.count(), sa.func.count().filter(harm_clause())).where(reports_clause(period, department_id))
    total, harm = db.session.execute(stmt).one()
    harm = harm or 0
    published = suppress([harm, total - harm], k=k, below_hospital_level=department_id is not None,
                         total_is_public=department_id is None or total >= k)
    shown = published.cells[0] == SHOWN and published.total == SHOWN
    return {"count": harm if published.cells[0] == SHOWN else None,
            "display": published.display([harm, total - harm], 0),
            "share": round(100 * harm / total, 1) if shown and total else None,
            "suppressed": published.cells[0] != SHOWN}


#: Who brought a report in, as the analysis splits them: staff (the reporting rate), a trigger's firing, a
#: patient or a family (the public form).
REPORT_SOURCES = ("reporter", "trigger", "public")


def found_by_split(period: Period, department_id: int | None, k: int) -> dict:
    """The reports actively reported by staff, those found by the system (filed from a trigger's firing) and
    those from patients and families."""
    stmt = sa.select(sa.func.count().filter(actively_reported()),
                     sa.func.count().filter(found_by_system()),
                     sa.func.count().filter(reported_by_public())).where(reports_clause(period, department_id))
    values = [n or 0 for n in db.session.execute(stmt).one()]  # in the order of REPORT_SOURCES
    total = sum(values)
    published = suppress(values, k=k, below_hospital_level=department_id is not None,
                         total_is_public=department_id is None or total >= k)
    return {code: {"count": values[i] if published.cells[i] == SHOWN else None, "display": published.display(values, i),
                   "suppressed": published.cells[i] != SHOWN}
            for i, code in enumerate(REPORT_SOURCES)}


