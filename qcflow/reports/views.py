"""Report pages: the reports index and the event analysis."""
from __future__ import annotations

from datetime import date

from flask import Blueprint, render_template, request
from flask_babel import gettext as _
from marshmallow import ValidationError

from qcflow.auth.permissions import allowed, current_actor, department_for
from qcflow.auth.queries import department_choices
from qcflow.core import periods
from qcflow.core.errors import Unprocessable, translate_errors
from qcflow.core.i18n import current_language
from qcflow.core.time import now, today
from qcflow.reports import queries
from qcflow.reports.charts import as_image
from qcflow.reports.schemas import PeriodArgs

bp = Blueprint("reports", __name__)


def _period_args() -> tuple[dict, dict]:
    """The period of the query string (PeriodArgs, as the exports read it) and its errors, translated."""
    try:
        return PeriodArgs().load({key: value for key, value in request.args.items() if value.strip()}), {}
    except ValidationError as error:
        return {}, translate_errors(error.messages)


@bp.get("/reports")
@allowed("reports")
def index():
    """List the reports: the event analysis, the monthly bulletins, and the exports of the chosen period
    (last month unless from=/to= say otherwise; a form picks them, without script)."""
    actor = current_actor()
    this_month = today().replace(day=1)
    months = [periods.add_months(this_month, -n) for n in range(1, 13)]
    last = periods.month_period(months[0])
    args, errors = _period_args()
    start, end = last.start, last.end
    if not errors and (args.get("start") or args.get("end")):
        try:
            chosen = periods.check_period(args.get("start"), args.get("end"), today(), periods.REPORT_PERIODS)
            start, end = chosen.start, chosen.end
        except Unprocessable as error:
            errors = translate_errors(error.errors)
    quarter = this_month.replace(month=(this_month.month - 1) // 3 * 3 + 1)
    presets = [(_("Previous month"), last.start, last.end), (_("This month so far"), this_month, today()),
               (_("This quarter so far"), quarter, today()), (_("This year so far"), this_month.replace(month=1), today()),
               (_("Last year"), date(this_month.year - 1, 1, 1), date(this_month.year - 1, 12, 31))]
    departments = department_choices(actor)
    department = None
    if not errors:
        try:  # another department's figures are a 404, an unknown department a 422, as on every page
            department = department_for(actor, args.get("department"))
        except Unprocessable as error:
            errors = translate_errors(error.errors)
    if not any(d.id == department for d in departments):
        department = None  # only the quality office picks one; the others' exports are their own anyway
    return render_template("reports/index.html", months=months, start=start, end=end, errors=errors,
                           presets=presets, departments=departments, department=department), 422 if errors else 200


@bp.get("/reports/analysis")
@allowed("reports")
def analysis():
    """Show the event analysis and the under-reporting funnel for a period (and department)."""
    actor = current_actor()
    errors, status = {}, 200
    try:
        args = PeriodArgs().load({key: value for key, value in request.args.items() if value.strip()})
    except ValidationError as error:
        args, errors, status = {}, translate_errors(error.messages), 422
    try:
        period = periods.check_period(args.get("start"), args.get("end"), today(), periods.REPORT_PERIODS)
    except Unprocessable as error:
        errors, status = translate_errors(error.errors), 422
        period = periods.check_period(None, None, today(), periods.REPORT_PERIODS)
    result = queries.event_analysis(actor, period, args.get("department"), now=now())
    departments = department_choices(actor)
    titles = {table["name"]: table["title"] for table in result["dimensions"]}
    charts = {name: as_image(svg, titles[name]) for name, svg in queries.dimension_charts(result).items()}
    return render_template("reports/analysis.html", result=result, errors=errors, departments=departments,
                           charts=charts, funnel=as_image(queries.funnel_chart(result), _("Funnel plot")),
                           language=current_language()), status
