"""Indicator pages: the table with 12-month trends, one indicator's months, the drill-down lists."""
from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import gettext as _
from marshmallow import ValidationError

from qcflow.auth.models import Department, User
from qcflow.auth.permissions import allowed, current_actor, department_for
from qcflow.auth.queries import department_choices
from qcflow.core import periods
from qcflow.core.errors import DomainError, Unprocessable, page_refusal, translate_errors
from qcflow.core.i18n import current_language
from qcflow.core.time import now, today
from qcflow.extensions import db
from qcflow.indicators import queries, services, survival
from qcflow.indicators.definitions import BY_CODE, INDICATORS
from qcflow.indicators.models import COMPARISONS, HOSPITAL_LEVELS
from qcflow.indicators.schemas import CasesArgs, PeriodArgs, SurvivalArgs, TargetIn, TrendArgs
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
    return render_template("indicators/index.html", values=values, charts=trends, start=start, end=end,
                           department_id=department_id, departments=department_choices(current_actor()),
                           counted_at=queries.rollup_counted_at(),
                           found_by_system=queries.counted_apart(start, end, department_id=department_id),
                           department=db.session.get(Department, department_id) if department_id else None,
                           errors=errors), 422 if errors else 200


@bp.get("/indicators/<code>")
@allowed("indicators")
def detail(code):
    """One indicator: its definition and the 12 months up to the chosen month, frozen or computed."""
    at = now()
    indicator = queries.indicator(code)
    args, errors = _args_or_errors(TrendArgs())
    month = args.get("month") or today(at).replace(day=1)
    try:
        queries.check_month(month, at)
        department_id = department_for(current_actor(), args.get("department"))
    except Unprocessable as error:
        errors.update(translate_errors(error.errors or {"month": [str(error.message)]}))
        month, department_id = today(at).replace(day=1), department_for(current_actor(), None)
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
    """The records behind an indicator's numerator or denominator, with links to their pages."""
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


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "count":
        return f"{value:.0f}"
    return f"{value:.2f}" + {"percent": "%", "permille": "‰"}.get(unit, "")


@bp.app_template_filter("indicator_value")
def indicator_value_filter(value, unit):
    return format_value(value, unit)



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
