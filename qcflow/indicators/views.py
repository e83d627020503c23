"""Indicator pages: the table with 12-month trends, one indicator's months, the drill-down lists."""
from __future__ import annotations

import base64
import re
from datetime import date, datetime

import sqlalchemy as sa
from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import gettext as _
from marshmallow import ValidationError

from qcflow.auth.models import Department
from qcflow.auth.permissions import allowed, current_actor, department_for, sees_all_departments
from qcflow.core.errors import DomainError, translate_errors
from qcflow.core.i18n import current_language
from qcflow.core.time import now, today
from qcflow.extensions import db
from qcflow.indicators import queries, services
from qcflow.indicators.definitions import INDICATORS
from qcflow.indicators.models import COMPARISONS, HOSPITAL_LEVELS
from qcflow.indicators.schemas import CasesArgs, PeriodArgs, TargetIn, TrendArgs

bp = Blueprint("indicators", __name__)
#: pygal always writes its config as an inline <script> and credits as comments: neither is kept.
_STRIP = re.compile(r"<!--.*?-->|<script\b[^>]*/>|<script\b.*?</script>", re.S)


def trend_chart(points: list[tuple[date, queries.IndicatorValue]], *, title: str = "", width: int = 360,
                height: int = 140, target: float | None = None) -> str:
    """A line chart of monthly values as a data: URL (SVG by pygal without scripts; nothing is fetched).

    An <img> with a data: URL keeps the chart's own styles inside the image, so the page's CSP
    (style-src 'self') holds.
    """
    import pygal
    from pygal.style import Style

    style = Style(background="transparent", plot_background="transparent", colors=("#1565c0", "#9e9e9e"),
                  font_family="sans-serif", label_font_size=9, major_label_font_size=9, title_font_size=11)
    chart = pygal.Line(width=width, height=height, style=style, js=[], disable_xml_declaration=True,
                       show_legend=target is not None, legend_at_bottom=True, legend_font_size=9,
                       x_label_rotation=0, show_minor_x_labels=False, x_labels_major_every=3, title=title or None,
                       allow_interruptions=True, dots_size=2, include_x_axis=True, print_values=False)
    chart.x_labels = [f"{month:%Y-%m}" for month, _value in points]
    chart.add(_("Value"), [None if v.value is None else round(v.value, 2) for _month, v in points])
    if target is not None:
        chart.add(_("Target"), [target] * len(points), show_dots=False, stroke_style={"dasharray": "4,3"})
    svg = _STRIP.sub("", chart.render(is_unicode=True))
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def _args(schema):
    """Query-string arguments through the API's schema (a ValidationError becomes a 422 page)."""
    return schema.load({key: value for key, value in request.args.items() if value != ""})


def _period(args: dict, at: datetime):
    end = args.get("to") or today(at)
    start = args.get("from_") or end.replace(day=1)
    queries.check_period(start, end, at)
    return start, end, department_for(current_actor(), args.get("department"))


def _departments() -> list[Department]:
    if not sees_all_departments(current_actor()):
        return []
    return list(db.session.scalars(sa.select(Department).where(Department.is_active.is_(True))
                                   .order_by(Department.kind, Department.code)))


@bp.get("/indicators")
@allowed("indicators")
def index():
    """Every indicator for the chosen period and department, with its 12-month trend."""
    at = now()
    args = _args(PeriodArgs())
    start, end, department_id = _period(args, at)
    values = queries.period_values(start, end, department_id=department_id, now=at)
    last_month = queries.month_start(end)
    by_month = [(month, {v.code: v for v in queries.month_values(month, department_id=department_id, now=at)})
                for month in (queries.add_months(last_month, -n) for n in range(11, -1, -1))]
    charts = {v.code: trend_chart([(month, values_of[v.code]) for month, values_of in by_month], target=v.target)
              for v in values}
    return render_template("indicators/index.html", values=values, charts=charts, start=start, end=end,
                           department_id=department_id, departments=_departments(), counted_at=queries.rollup_counted_at(),
                           department=db.session.get(Department, department_id) if department_id else None)


@bp.get("/indicators/<code>")
@allowed("indicators")
def detail(code):
    """One indicator: its definition and the 12 months up to the chosen month, frozen or computed."""
    at = now()
    indicator = queries.indicator(code)
    args = _args(TrendArgs())
    month = args.get("month") or today(at).replace(day=1)
    queries.check_month(month, at)
    department_id = department_for(current_actor(), args.get("department"))
    points = queries.trend(code, month, department_id=department_id, now=at, compare=True)
    target = points[-1][1].target if points else None
    chart = trend_chart(points, width=720, height=260, target=target, title=indicator.label(current_language()))
    last_day = today(at)
    rows = [(first, value, {"from": first.isoformat(), "to": min(queries.month_end(first), last_day).isoformat()})
            for first, value in reversed(points)]
    return render_template("indicators/detail.html", indicator=indicator, rows=rows, chart=chart, month=month,
                           department_id=department_id, departments=_departments(),
                           department=db.session.get(Department, department_id) if department_id else None)


@bp.get("/indicators/<code>/cases")
@allowed("indicators")
def cases(code):
    """The records behind an indicator's numerator or denominator, with links to their pages."""
    at = now()
    indicator = queries.indicator(code)
    args = _args(CasesArgs())
    start, end, department_id = _period(args, at)
    items, next_cursor, total = queries.cases(code, args["part"], start, end, department_id=department_id, now=at,
                                              cursor=args.get("cursor"), limit=args["limit"])
    return render_template("indicators/cases.html", indicator=indicator, part=args["part"], items=items,
                           next_cursor=next_cursor, total=total, start=start, end=end, department_id=department_id,
                           department=db.session.get(Department, department_id) if department_id else None)


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
            db.session.commit()
            return redirect(url_for("indicators.targets"))
        except ValidationError as error:
            errors, status = translate_errors(error.messages), 422
        except DomainError as error:
            db.session.rollback()
            errors, status = translate_errors(error.errors or {"form": [str(error.message)]}), error.status
    values = request.form if request.method == "POST" else queries.target_form_values(request.args.get("edit", type=int))
    return render_template("indicators/targets.html", targets=queries.all_targets(), indicators=INDICATORS,
                           levels=HOSPITAL_LEVELS, comparisons=COMPARISONS, errors=errors, values=values,
                           level=queries.hospital_level()), status


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    return f"{value:.2f}" + {"percent": "%", "permille": "‰"}.get(unit, "")


@bp.app_template_filter("indicator_value")
def indicator_value_filter(value, unit):
    return format_value(value, unit)

