"""Indicator pages: the table with 12-month trends, one indicator's months, the drill-down lists."""
from __future__ import annotations

import json
from datetime import date, datetime

import sqlalchemy as sa
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from marshmallow import ValidationError

from qcflow.auth.models import Department, User
from qcflow.auth.permissions import allowed, can, current_actor, department_for, sees_all_departments
from qcflow.auth.queries import active_departments, department_choices
from qcflow.auth.ratelimit import rate_limited
from qcflow.core import periods
from qcflow.core.errors import DomainError, NotFound, Unprocessable, page_refusal, translate_errors
from qcflow.core.i18n import current_language, label
from qcflow.core.time import now, today
from qcflow.extensions import db
from qcflow.indicators import api, catalogue, catalogue_queries, forms, queries, reporting, services, survival
from qcflow.indicators.definitions import BY_CODE, INDICATORS, format_value
from qcflow.indicators.models import COMPARISONS, DIRECTIONS, FORM_KINDS, HOSPITAL_LEVELS, METHODS, UNITS
from qcflow.indicators.schemas import (CasesArgs, CatalogueArgs, CompletenessArgs, FormIn, FormListArgs, IndicatorReportIn,
                                       IndicatorReportsArgs, LocalIndicatorChangeIn, LocalIndicatorIn, PeriodArgs,
                                       ReportPageArgs, SetupIn, SurvivalArgs, TargetIn, TrendArgs)
from qcflow.indicators.workflow import REPORT_WORKFLOW
from qcflow.reports import charts

bp = Blueprint("indicators", __name__)


def trend_chart(points: list[tuple[date, queries.IndicatorValue]], *, unit: str, title: str = "", width: int = 360,
                height: int = 170, target: float | None = None, compact: bool = True,
                now: datetime | None = None) -> str:
    """A 12-month trend as a data: URL for an <img> (reports.charts.trend: the same chart as the bulletin's).

    An <img> with a data: URL keeps the chart's own styles inside the image, so the page's CSP
    (style-src 'self') holds.
    """
    svg = charts.trend(title, [month for month, _v in points], [v.value for _month, v in points], unit=unit,
                       target=target, width=width, height=height, compact=compact, now=now)
    return charts.data_url(svg)


def _args(schema):
    """Query-string arguments through the API's schema (a ValidationError becomes a 422 page)."""
    return schema.load({key: value for key, value in request.args.items() if value != ""})


def _args_or_errors(schema) -> tuple[dict, dict]:
    """Query-string arguments, or none and the translated field errors (the page then shows its default
    with the message, as a 422, instead of an error page)."""
    try:
        return _args(schema), {}
    except ValidationError as error:
        return {}, translate_errors(error.messages)


def _period_or_default(args: dict, errors: dict, at: datetime):
    """The asked period and department; a refused one adds its message to `errors` and gives the default."""
    if not errors:
        try:
            return _period(args, at)
        except Unprocessable as error:
            errors.update(translate_errors(error.errors or {"from": [str(error.message)]}))
    return _period({}, at)


def _period(args: dict, at: datetime):
    period = periods.check_period(args.get("from_"), args.get("to"), today(at), periods.INDICATOR_PERIODS)
    return period.start, period.end, department_for(current_actor(), args.get("department"))


@bp.get("/indicators")
@allowed("indicators")
def index():
    """Every indicator for the chosen period and department, with its 12-month trend."""
    at = now()
    args, errors = _args_or_errors(PeriodArgs())
    start, end, department_id = _period_or_default(args, errors, at)
    values = queries.period_values(start, end, department_id=department_id, now=at)
    last_month = periods.month_start(end)
    by_month = [(month, {v.code: v for v in queries.month_values(month, department_id=department_id, now=at)})
                for month in (periods.add_months(last_month, -n) for n in range(11, -1, -1))]
    trends = {v.code: trend_chart([(month, values_of[v.code]) for month, values_of in by_month], unit=v.unit,
                              target=v.target, now=at)
              for v in values}
    reported = queries.reported_values(start, end, department_id=department_id)
    by_month = reported_months(end, department_id)
    # A reported indicator with nothing approved or awaiting approval in the period nor in the 12 months before
    # is named in one line below the table, not given an empty row and chart each.
    shown = [v for v in reported if v.value is not None or v.pending
             or any(found.get(v.code) is not None and found[v.code].value is not None for _m, found in by_month)]
    quiet = [v for v in reported if v not in shown]
    trends.update(reported_charts(shown, by_month, at))
    values = values + shown
    return render_template("indicators/index.html", values=values, charts=trends, start=start, end=end, quiet=quiet,
                           department_id=department_id, departments=department_choices(current_actor()),
                           counted_at=queries.rollup_counted_at(),
                           found_by_system=queries.counted_apart(start, end, department_id=department_id),
                           reported_by_public={"ae_per_100_discharges": queries.reported_by_public(
                               start, end, department_id=department_id)},
                           department=db.session.get(Department, department_id) if department_id else None,
                           errors=errors), 422 if errors else 200


def _trend_month(at: datetime) -> tuple[date, int | None, dict]:
    """The month (default this one) and department a detail page shows; a refused one falls back to this
    month and the reader's own scope, with the fields' errors."""
    args, errors = _args_or_errors(TrendArgs())
    month = args.get("month") or today(at).replace(day=1)
    try:
        queries.check_month(month, at)
        department_id = department_for(current_actor(), args.get("department"))
    except Unprocessable as error:
        errors.update(translate_errors(error.errors or {"month": [str(error.message)]}))
        month, department_id = today(at).replace(day=1), department_for(current_actor(), None)
    return month, department_id, errors


@bp.get("/indicators/<code>")
@allowed("indicators")
def detail(code):
    """One indicator: its definition and the 12 months up to the chosen month, frozen or computed (a reported
    one: from its approved reports)."""
    if code not in BY_CODE:
        return _reported_detail(code)
    at = now()
    indicator = queries.indicator(code)
    month, department_id, errors = _trend_month(at)
    points = queries.trend(code, month, department_id=department_id, now=at, compare=True)
    target = points[-1][1].target if points else None
    chart = trend_chart(points, unit=indicator.unit, width=720, height=280, target=target,
                        title=indicator.label(current_language()), compact=False, now=at)
    # A phone draws its own, narrower chart: the desktop one scaled to 390 px has 5 px labels.
    phone_chart = trend_chart(points, unit=indicator.unit, width=360, height=220, target=target, now=at)
    last_day = today(at)
    rows = [(first, value, {"from": first.isoformat(), "to": min(periods.month_end(first), last_day).isoformat()})
            for first, value in reversed(points)]
    return render_template("indicators/detail.html", indicator=indicator, rows=rows, chart=chart,
                           phone_chart=phone_chart, month=month,
                           department_id=department_id, departments=department_choices(current_actor()),
                           errors=errors,
                           department=db.session.get(Department, department_id) if department_id else None), (
        422 if errors else 200)


@bp.get("/indicators/<code>/cases")
@allowed("indicators")
def cases(code):
    """The records behind an indicator's numerator or denominator, with links to their pages (a reported one:
    its submissions)."""
    if code not in BY_CODE:
        return _reported_cases(code)
    at = now()
    indicator = queries.indicator(code)
    args, errors = _args_or_errors(CasesArgs())
    start, end, department_id = _period_or_default(args, errors, at)
    if errors:
        args = CasesArgs().load({})
    try:
        items, next_cursor, total = queries.cases(code, args["part"], start, end, department_id=department_id,
                                                  now=at, cursor=args.get("cursor"), limit=args["limit"])
    except Unprocessable as error:  # a cursor from another list: the first page, and why
        errors.update(translate_errors(error.errors))
        items, next_cursor, total = queries.cases(code, args["part"], start, end, department_id=department_id,
                                                  now=at, limit=args["limit"])
    return render_template("indicators/cases.html", indicator=indicator, part=args["part"], items=items,
                           next_cursor=next_cursor, total=total, start=start, end=end, department_id=department_id,
                           department=db.session.get(Department, department_id) if department_id else None,
                           errors=errors), 422 if errors else 200


def _catalogue_page_args() -> tuple[dict, dict]:
    args, errors = _args_or_errors(CatalogueArgs())
    return (args or CatalogueArgs().load({})), errors


@bp.get("/indicators/catalogue")
@allowed("indicator_catalogue")
def catalogue_page():
    """Every indicator of the plan's annex in its own order and words, then the catalogue's others, then the
    departments' own: how each gets its value, who reports it, this year's target and where it comes from."""
    args, errors = _catalogue_page_args()
    found = catalogue_queries.build(now(), plan_key=args["plan"], method=args["method"],
                                    department_id=api.catalogue_department(args["department"]), search=args["q"],
                                    year=args["year"])
    return render_template("indicators/catalogue.html", catalogue=found, args=args, errors=errors,
                           **_catalogue_context(found.plan)), 422 if errors else 200


def _catalogue_context(plan_key: str) -> dict:
    """What the catalogue's pages show beside the rows: plans, methods, departments, who may change what."""
    actor = current_actor()
    configured = catalogue.plan()
    return {"configured_plan": configured, "plans": catalogue.PLAN_KEYS, "methods": METHODS,
            "departments": active_departments(), "may_set_up": can(actor, "set_up_indicators") and plan_key == configured,
            "may_keep": lambda department_id: can(actor, "report_indicators") and (
                sees_all_departments(actor) or actor.department_id == department_id),
            "plan_name": catalogue_queries.plan_name, "citation_lines": catalogue_queries.citation_lines}


@bp.get("/indicators/catalogue/<code>")
@allowed("indicator_catalogue")
def catalogue_entry(code):
    """One indicator of the catalogue: its definition, every annex row and plan target, this hospital's targets
    and how its setup changed."""
    return _catalogue_entry(code, {}, 200)


def _catalogue_entry(code: str, errors: dict, status: int, values=None):
    row = catalogue_queries.row(code, now())
    history = catalogue_queries.history(code)
    targets = catalogue_queries.own_targets(code)
    departments = {d.id: d for d in db.session.scalars(sa.select(Department))}
    return render_template("indicators/catalogue_entry.html", row=row, entry=row.entry,
                           annex_rows=catalogue_queries.annex_rows(row.entry),
                           plan_targets=catalogue_queries.plan_targets(code), own_targets=targets,
                           by_id=departments, history=history, errors=errors, values=values,
                           setters=_setters([t.updated_by for t in targets]),
                           **_catalogue_context(catalogue.plan())), status


def _whole_or_none(text: str | None):
    text = (text or "").strip()
    return int(text) if text.isdigit() else (None if not text else text)


@bp.post("/indicators/catalogue/<code>")
@allowed("set_up_indicators")
def set_up(code):
    """Change how an indicator gets its value here (method, reason, reporting department)."""
    form = {"method": request.form.get("method", ""), "reason": request.form.get("reason", "").strip() or None,
            "department": _whole_or_none(request.form.get("department")),
            "version": _whole_or_none(request.form.get("version"))}
    try:
        data = SetupIn().load(form)
        entry = services.set_up_indicator(code, data["method"], data.get("reason"), data.get("department"),
                                          data["version"], actor=current_actor(), now=now())
    except (ValidationError, DomainError) as error:
        if isinstance(error, DomainError) and error.status == 404:
            raise
        errors, status = page_refusal(error)
        return _catalogue_entry(code, errors, status, request.form)
    flash(_("Saved: %(name)s is now “%(method)s”.", name=entry.label(), method=label("ind_method", entry.method)))
    return redirect(url_for("indicators.catalogue_page", _anchor=f"ind-{code}"))


def _local_department() -> int:
    """The department whose own indicators the page keeps: a head's own; the quality office's choice (default:
    its own)."""
    actor = current_actor()
    requested = request.values.get("department", type=int)
    return department_for(actor, requested) or actor.department_id


@bp.route("/indicators/catalogue/local", methods=["GET", "POST"])
@allowed("report_indicators")
def local_indicators():
    """A department's own key indicators (create, change, switch off or on) and its yearly targets, also for the
    plan indicators it reports."""
    actor = current_actor()
    department_id = _local_department()
    errors, status = {}, 200
    if request.method == "POST":
        try:
            message = _keep_local(request.form.get("action", ""), department_id, actor)
            flash(message)
            return redirect(url_for("indicators.local_indicators", department=department_id))
        except (ValidationError, DomainError) as error:
            errors, status = page_refusal(error)
    own = catalogue_queries.local_indicators(department_id)
    reported = [e for e in catalogue.entries(include_local=False) if e.department_id == department_id
                and e.method != "not_applicable"]
    codes = [row.code for row in own] + [e.code for e in reported]
    edit = next((row for row in own if row.code == request.args.get("edit")), None)
    return render_template("indicators/catalogue_local.html", own=own, reported=reported, edit=edit,
                           department=db.session.get(Department, department_id), department_id=department_id,
                           choices=department_choices(actor), targets=catalogue_queries.department_targets(
                               codes, department_id), units=UNITS, directions=DIRECTIONS, levels=HOSPITAL_LEVELS,
                           comparisons=COMPARISONS, level=queries.hospital_level(), year=today(now()).year,
                           errors=errors, values=request.form if request.method == "POST" else {},
                           action=request.form.get("action") if request.method == "POST" else None), status


def _keep_local(action: str, department_id: int, actor) -> str:
    """Do what the local page's form asked; the message to flash."""
    form = {k: v.strip() for k, v in request.form.items() if k not in ("csrf_token", "action", "department")}
    code = form.pop("code", "")
    version = _whole_or_none(form.pop("version", None))
    if action == "create":
        data = LocalIndicatorIn().load({k: v for k, v in form.items() if v or k in ("name", "definition")})
        data.pop("department")
        row = services.create_local_indicator(department_id, data, actor=actor, now=now())
        return _("Indicator “%(name)s” created.", name=row.name)
    if action == "update":
        fields = {k: form.get(k, "") for k in ("name", "name_en", "unit", "direction", "definition")}
        data = LocalIndicatorChangeIn().load({**fields, "name_en": fields["name_en"] or None, "version": version})
        row = services.update_local_indicator(code, data, data.pop("version"), actor=actor, now=now())
        return _("Indicator “%(name)s” saved.", name=row.name)
    if action in ("deactivate", "reactivate"):
        row = services.update_local_indicator(code, {"is_active": action == "reactivate"},
                                              version if isinstance(version, int) else -1, actor=actor, now=now())
        return (_("Indicator “%(name)s” switched on again.", name=row.name) if row.is_active
                else _("Indicator “%(name)s” switched off.", name=row.name))
    if action == "target":
        data = TargetIn().load({"code": code, "level": form.get("level", ""), "year": form.get("year", ""),
                                "comparison": form.get("comparison", ""), "value": form.get("value", ""),
                                "version": version, "department": department_id})
        services.set_department_target(code, department_id, data["level"], data["year"], data["comparison"],
                                       data["value"], actor=actor, now=now(), expected_version=data["version"])
        return _("Target saved.")
    raise Unprocessable(_("Choose what to do."))


@bp.route("/admin/indicators/targets", methods=["GET", "POST"])
@allowed("administer")
def targets():
    """Indicator targets by hospital level and year; a posted row sets one, or replaces the one opened
    with ?edit= (from its version)."""
    errors, status = {}, 200
    if request.method == "POST":
        try:
            data = TargetIn().load({k: v.strip() for k, v in request.form.items() if k != "csrf_token" and v.strip()})
            services.set_target(data["code"], data["level"], data["year"], data["comparison"], data["value"],
                                actor=current_actor(), now=now(), source=data.get("source"),
                                expected_version=data["version"])
            return redirect(url_for("indicators.targets"))
        except (ValidationError, DomainError) as error:
            errors, status = page_refusal(error)
    values = request.form if request.method == "POST" else queries.target_form_values(request.args.get("edit", type=int))
    targets = queries.all_targets()
    return render_template("indicators/targets.html", targets=targets, indicators=INDICATORS, by_code=BY_CODE,
                           setters=_setters(t.updated_by for t in targets),
                           levels=HOSPITAL_LEVELS, comparisons=COMPARISONS, errors=errors, values=values,
                           level=queries.hospital_level()), status


def _setters(audit_names) -> dict[str, str]:
    """Who set each target, as a person's name or "system" (never the audit name user:4)."""
    names = set(audit_names)
    ids = {int(name.split(":", 1)[1]) for name in names if name.startswith("user:") and name[5:].isdigit()}
    users = {f"user:{u.id}": u.display_name or u.username
             for u in db.session.scalars(sa.select(User).where(User.id.in_(ids)))} if ids else {}
    return {name: users.get(name) or (_("System") if name.startswith("system") else _("Unknown"))
            for name in names}


@bp.app_template_filter("indicator_value")
def indicator_value_filter(value, unit):
    return format_value(value, unit)



# Reported values (indicators.reporting) ------------------------------------------------------------------------

def _last_ended_month(at: datetime) -> date:
    """The latest month that can be reported (from its last day on)."""
    month = periods.month_start(today(at))
    return month if reporting.reportable_from(month) <= today(at) else periods.add_months(month, -1)


@bp.route("/indicators/report", methods=["GET", "POST"])
@allowed("report_indicators")
def report_page():
    """A department's reported indicators for a month, a form per indicator; a posted form enters one value."""
    at, actor = now(), current_actor()
    errors, status, failed_code = {}, 200, None
    if request.method == "POST":
        form = {k: v for k, v in request.form.items() if k != "csrf_token" and v.strip() != ""}
        failed_code = form.get("code")
        try:
            data = IndicatorReportIn().load(form)
            department_id = department_for(actor, data.get("department"))
            reporting.submit(data["code"], data["month"], department_id, numerator=data["numerator"],
                             denominator=data["denominator"], value=data["value"], note=data["note"], actor=actor,
                             now=at, expected_version=data["version"])
            return redirect(url_for("indicators.report_page", month=f"{data['month']:%Y-%m}",
                                    department=department_id if sees_all_departments(actor) else None,
                                    saved=data["code"]) + f"#report-{data['code']}")
        except (ValidationError, DomainError) as error:
            errors, status = page_refusal(error)
    # The form posts to the page's own address (month and department in the query), so a refused form shows
    # the same page again.
    args, filter_errors = _args_or_errors(ReportPageArgs())
    month = args.get("month") or _last_ended_month(at)
    try:
        department_id = department_for(actor, args.get("department")) or actor.department_id
    except Unprocessable as error:
        filter_errors.update(translate_errors(error.errors))
        department_id = actor.department_id
    entries = reporting.entries_owed_by(department_id, quality_department_id=actor.department_id
                                        if sees_all_departments(actor) else None)
    found = {r.code: r for r in reporting.reports(month=month, department_id=department_id)}
    return render_template("indicators/report.html", entries=entries, reports=found, month=month,
                           department_id=department_id, department=db.session.get(Department, department_id)
                           if department_id else None, departments=department_choices(actor),
                           errors=errors, failed_code=failed_code, values=request.form, filter_errors=filter_errors,
                           saved=request.args.get("saved"), reportable=reporting.reportable_from(month) <= today(at),
                           reportable_from=reporting.reportable_from(month), deadline=reporting.deadline(month),
                           workflow=REPORT_WORKFLOW), status if errors else (422 if filter_errors else 200)


@bp.route("/indicators/approvals", methods=["GET", "POST"])
@allowed("approve_indicators")
def approvals():
    """The quality office's list of reported values of a month: approve one or many, return or re-open with a
    reason."""
    at, actor = now(), current_actor()
    errors, status = {}, 200
    if request.method == "POST":
        try:
            action = request.form.get("action", "")
            ids = [int(i) for i in request.form.getlist("id") if i.isdigit()]
            decisions = [(i, request.form.get(f"version-{i}", type=int)) for i in ids]
            reporting.decide_many(decisions, action, actor=actor, now=at, reason=request.form.get("reason"))
            n = len(decisions)
            flash({"approve": _("Approved: %(n)d value(s).", n=n),
                   "return": _("Returned to the department: %(n)d value(s).", n=n),
                   "reopen": _("Re-opened for a correction: %(n)d value(s).", n=n)}[action])
            return redirect(url_for("indicators.approvals", **{k: v for k, v in request.args.items()}))
        except DomainError as error:
            errors, status = page_refusal(error)
    args, filter_errors = _args_or_errors(IndicatorReportsArgs())
    month = args.get("month") or periods.add_months(periods.month_start(today(at)), -1)
    state = args.get("state") if "state" in request.args else "submitted"
    found = reporting.reports(month=month, department_id=args.get("department"), state=state or None)
    return render_template("indicators/approvals.html", reports=found, month=month, state=state,
                           department_id=args.get("department"), departments=department_choices(actor),
                           entries={e.code: e for e in catalogue.entries()}, names=_department_names(),
                           errors={**filter_errors, **errors}, workflow=REPORT_WORKFLOW,
                           actor=actor), status if errors else (422 if filter_errors else 200)


@bp.get("/indicators/completeness")
@allowed("report_indicators")
def completeness():
    """Which responsible department still owes which month of each reported indicator, for the year so far
    (a department head: their department's indicators)."""
    at, actor = now(), current_actor()
    args, errors = _args_or_errors(CompletenessArgs())
    year = args.get("year") or _last_ended_month(at).year
    if year > today(at).year:
        errors["year"] = [_("Choose this year or an earlier one.")]
        year = today(at).year
    months = reporting.months_so_far(year, at)
    if sees_all_departments(actor):
        rows = reporting.completeness(months, department_id=args.get("department"))
    else:
        department_for(actor, args.get("department"))
        rows = reporting.completeness(months, department_id=actor.department_id, only_department=True)
    return render_template("indicators/completeness.html", rows=rows, months=months, year=year,
                           department_id=args.get("department"), departments=department_choices(actor),
                           names=_department_names(), errors=errors,
                           missing=reporting.MISSING), 422 if errors else 200


def _department_names() -> dict[int, str]:
    language = current_language()
    return {d.id: d.label(language) for d in db.session.scalars(sa.select(Department))}


def _reported_detail(code: str):
    """A reported indicator's page: the 12 months up to the chosen month from its approved reports."""
    at = now()
    entry = api.reported_indicator(code)
    month, department_id, errors = _trend_month(at)
    points = queries.reported_trend(code, month, department_id)
    target = points[-1][1].target if points else None
    chart = trend_chart(points, unit=entry.unit, width=720, height=280, target=target,
                        title=entry.label(current_language()), compact=False, now=at)
    phone_chart = trend_chart(points, unit=entry.unit, width=360, height=220, target=target, now=at)
    rows = [(first, value, {"from": first.isoformat(), "to": periods.month_end(first).isoformat()})
            for first, value in reversed(points)]
    return render_template("indicators/reported_detail.html", entry=entry, rows=rows, chart=chart,
                           phone_chart=phone_chart, month=month, department_id=department_id,
                           departments=department_choices(current_actor()), errors=errors,
                           department=db.session.get(Department, department_id) if department_id else None), (
        422 if errors else 200)


def _reported_cases(code: str):
    """The submissions behind a reported indicator's value: department, month, parts, state, who and when."""
    at = now()
    entry = api.reported_indicator(code)
    args, errors = _args_or_errors(CasesArgs())
    start, end, department_id = _period_or_default(args, errors, at)
    found = reporting.submissions(code, start, end, department_id=department_id)
    return render_template("indicators/submissions.html", entry=entry, reports=found, start=start, end=end,
                           department_id=department_id, names=_department_names(),
                           setters=_setters({r.submitted_by for r in found} | {r.decided_by for r in found
                                                                              if r.decided_by}),
                           department=db.session.get(Department, department_id) if department_id else None,
                           errors=errors), 422 if errors else 200


def reported_months(end: date, department_id: int | None) -> list[tuple[date, dict]]:
    """The reported indicators' values of each of the 12 months up to `end`'s month, by code."""
    last = periods.month_start(end)
    return [(month, {v.code: v for v in queries.reported_values(month, periods.month_end(month),
                                                                department_id=department_id)})
            for month in (periods.add_months(last, -n) for n in range(11, -1, -1))]


def reported_charts(values, by_month: list[tuple[date, dict]], at: datetime) -> dict[str, str]:
    """Each reported indicator's 12-month trend chart for the list."""
    return {v.code: trend_chart([(month, found[v.code]) for month, found in by_month if v.code in found],
                                unit=v.unit, target=v.target, now=at) for v in values}
def _form_values(form) -> dict:
    """The page's generate form as FormIn takes it: empty fields left out, the draft box as a boolean."""
    values = {key: form[key].strip() for key in ("kind", "year", "quarter") if form.get(key, "").strip()}
    if values.get("kind") == "annual":
        values.pop("quarter", None)  # the quarter box stays filled in when one switches to annual
    values["draft"] = bool(form.get("draft") or form.get("download"))
    return values


def _forms_page(values: dict, errors: dict, status: int, *, preview: dict | None = None):
    at = now()
    args, list_errors = _args_or_errors(FormListArgs())
    errors = {**list_errors, **errors}
    status = 422 if list_errors and status == 200 else status
    last_year = today(at).year - 1
    year = args.get("year") or last_year
    rows = forms.archived(kind=args.get("kind"), year=args.get("year"), before_id=args.get("cursor"),
                          limit=args.get("limit", 50) + 1)
    limit = args.get("limit", 50)
    next_cursor = rows[limit - 1].id if len(rows) > limit else None
    plan = catalogue.plan()
    title = forms.PLAN_TITLES[plan][1 if current_language() == "en" else 0]
    return render_template("indicators/forms.html", archive=rows[:limit], period_of=forms.period_of,
                           next_cursor=next_cursor, plan_title=title, missing=forms.missing_values(plan, year),
                           missing_year=year, values=values or {"kind": "annual", "year": str(last_year)},
                           errors=errors, preview=preview, kinds=FORM_KINDS,
                           filters={k: args.get(k) for k in ("kind", "year")}), status


@bp.get("/indicators/forms")
@allowed("indicator_forms")
def list_forms():
    """The archived forms of the plan with their downloads, the form to generate one, and what is still missing."""
    return _forms_page({}, {}, 200)


@bp.post("/indicators/forms")
@allowed("indicator_forms")
def generate_form():
    """Generate a form: archived as the next revision (then back to the list), or a draft shown or downloaded."""
    values = _form_values(request.form)
    try:
        data = FormIn().load(values)
        form = forms.generate_form(catalogue.plan(), data["kind"], data["year"], data.get("quarter"),
                                   actor=current_actor(), now=now(), draft=data["draft"])
    except (ValidationError, DomainError) as error:
        errors, status = page_refusal(error)
        return _forms_page(request.form, errors, status)
    if form.id is None:
        if request.form.get("download"):
            return api.xlsx_download(form)
        return _forms_page(request.form, {}, 200, preview=json.loads(form.snapshot))
    period = forms.period_of(form)
    when = str(period.year) if period.quarter is None else _("%(year)d, quarter %(n)d", year=period.year,
                                                              n=period.quarter)
    flash(_("Generated and archived: %(kind)s %(period)s, revision %(revision)d.",
            kind=label("ind_form_kind", form.kind), period=when, revision=form.revision))
    return redirect(url_for("indicators.list_forms"))


@bp.get("/indicators/forms/<int:form_id>.xlsx")
@allowed("indicator_forms")
@rate_limited("export")
def download_form_xlsx(form_id):
    """The archived XLSX, byte for byte."""
    return api.xlsx_download(forms.load_form(form_id))


@bp.get("/indicators/forms/<int:form_id>.json")
@allowed("indicator_forms")
def download_form_json(form_id):
    """The archived JSON twin, byte for byte."""
    return api.json_download(forms.load_form(form_id))
@bp.get("/indicators/survival")
@allowed("reports")
def survival_page():
    """Kaplan–Meier survival of the five key cancers (恶性肿瘤患者生存时间), together and by type."""
    at = now()
    args, errors = _args_or_errors(SurvivalArgs())
    try:
        as_of = survival.check_as_of(args.get("as_of"), at)
        department_id = department_for(current_actor(), args.get("department"))
    except Unprocessable as error:
        errors.update(translate_errors(error.errors or {"as_of": [str(error.message)]}))
        as_of, department_id = today(at), department_for(current_actor(), None)
    k = survival.small_group_k()
    groups = survival.curves(as_of, department_id=department_id, k=k)
    language = current_language()
    shown = [g for g in groups if not g.suppressed and g.times]
    chart = charts.as_image(charts.kaplan_meier(_("Survival after diagnosis"), [
        (g.name(language), g.times, g.survival) for g in shown]), _("Kaplan–Meier survival curves")) if shown else None
    return render_template("indicators/survival.html", groups=groups, chart=chart, as_of=as_of, k=k,
                           department_id=department_id, departments=department_choices(current_actor()),
                           department=db.session.get(Department, department_id) if department_id else None,
                           errors=errors), 422 if errors else 200
