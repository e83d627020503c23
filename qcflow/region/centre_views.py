"""Pages of regional mode (centre side): completeness, one indicator across hospitals, a hospital's profile, the
province table and the six-monthly evaluation."""
from __future__ import annotations

from flask import Blueprint, Response, redirect, render_template, request, url_for
from flask_babel import gettext as _

from qcflow.auth.permissions import allowed
from qcflow.auth.ratelimit import rate_limited
from qcflow.core.errors import Unprocessable, translate_errors
from qcflow.core.forms import load_args
from qcflow.core.i18n import current_language
from qcflow.core.time import now, today
from qcflow.indicators.models import HOSPITAL_LEVELS
from qcflow.region import centre_jobs, comparisons as cmp, evaluation
from qcflow.region.centre_schemas import (CentreComparisonArgs, CentreCompletenessPageArgs, CentreEvaluationArgs,
                                          CentreMonthsArgs)
from qcflow.region.models import RegionHospital

bp = Blueprint("centre", __name__, url_prefix="/centre")


def _period(args: dict, errors: dict):
    """The asked months, or the default with the refusal added to `errors`."""
    at = today(now())
    if not errors:
        try:
            return cmp.check_months(args.get("from_"), args.get("to"), at)
        except Unprocessable as error:
            errors.update(translate_errors(error.errors or {"from": [str(error.message)]}))
    return cmp.last_half_year(at)


@bp.get("")
@allowed("centre_compare")
def index():
    """The centre's start: completeness of this year (the query, the language with it, carries over)."""
    return redirect(url_for("centre.completeness", **request.args.to_dict()))


@bp.get("/completeness")
@allowed("centre_compare")
def completeness():
    """Hospitals × the months of a year: sent (version, date), owed, overdue; filter by level and region."""
    at = now()
    args, errors = load_args(CentreCompletenessPageArgs())
    year = args.get("year") or today(at).year
    if year > today(at).year:
        errors["year"] = [_("Choose this year or an earlier one.")]
        year = today(at).year
    months, rows = cmp.completeness(year, today(at), level=args.get("level"), region=args.get("region"))
    gaps = bool(args.get("gaps"))
    shown = [row for row in rows if row.owed] if gaps else rows
    return render_template("centre/completeness.html", months=months, rows=shown, registered=len(rows), year=year,
                           counts=cmp.month_counts(months, rows), gaps=gaps, reminders=centre_jobs.reminders(year),
                           level=args.get("level"), region=args.get("region"), regions=cmp.regions(),
                           levels=HOSPITAL_LEVELS, errors=errors, due_day=_due_day()), 422 if errors else 200


def _due_day() -> int:
    from flask import current_app

    return current_app.config["REGION_DUE_DAY"]


@bp.get("/indicators")
@allowed("centre_compare")
def indicators():
    """Every indicator of the catalogue: how many hospitals of each level sent it, and the regional value."""
    args, errors = load_args(CentreMonthsArgs())
    start, end = _period(args, errors)
    return render_template("centre/indicators.html", summaries=cmp.indicator_summaries(start, end), start=start,
                           end=end, levels=HOSPITAL_LEVELS, errors=errors), 422 if errors else 200


@bp.get("/indicators/<code>")
@allowed("centre_compare")
def indicator(code):
    """One indicator across the hospitals: ranking table, funnel plot (rates) and the regional trend."""
    entry = cmp.indicator_entry(code)
    args, errors = load_args(CentreComparisonArgs())
    start, end = _period(args, errors)
    comparison = cmp.compare(entry.code, start, end, args.get("level"))
    language = current_language()
    funnels = {level.level: evaluation.funnel_svg(level, entry.unit, title=entry.label(language), language=language,
                                                  direction=entry.direction) for level in comparison.levels}
    trend = evaluation.trend_svg(cmp.regional_trend(entry.code, start, end), entry.unit,
                                 title=entry.label(language))
    return render_template("centre/indicator.html", comparison=comparison, entry=entry, funnels=funnels,
                           trend=trend, start=start, end=end, level=args.get("level"), levels=HOSPITAL_LEVELS,
                           errors=errors, k=cmp.small_cell_k(),
                           better_side=evaluation.better_side), 422 if errors else 200


@bp.get("/profile/<code>")
@allowed("centre_compare")
def profile(code):
    """One hospital's profile: every indicator with its value, its level's regional value, rank and target."""
    hospital = cmp.hospital_by_code(code)
    args, errors = load_args(CentreMonthsArgs())
    start, end = _period(args, errors)
    return render_template("centre/profile.html", hospital=hospital, rows=cmp.profile(hospital, start, end),
                           start=start, end=end, errors=errors, k=cmp.small_cell_k(),
                           is_small=cmp.is_small), 422 if errors else 200


@bp.get("/province.xlsx")
@allowed("centre_compare")
@rate_limited("export")
def province_xlsx():
    """The province table of a period as XLSX (one row per hospital, one column per indicator sent)."""
    import sqlalchemy as sa

    from qcflow.extensions import db

    args, errors = load_args(CentreMonthsArgs())
    if errors:
        raise Unprocessable(errors=errors)
    start, end = cmp.check_months(args.get("from_"), args.get("to"), today(now()))
    hospitals = list(db.session.scalars(sa.select(RegionHospital).order_by(RegionHospital.level.desc(),
                                                                             RegionHospital.code)))
    data = evaluation.province_xlsx(start, end, hospitals, current_language(), now())
    name = f"province-{cmp.month_text(start)}-{cmp.month_text(end)}.xlsx"
    return Response(data, mimetype=evaluation.XLSX_MIMETYPE, headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


@bp.get("/evaluation.pdf")
@allowed("centre_compare")
@rate_limited("pdf")
def evaluation_pdf():
    """The six-monthly evaluation of a half-year as PDF (in Chinese)."""
    from qcflow.reports import pdf

    args, errors = load_args(CentreEvaluationArgs())
    if errors:
        raise Unprocessable(errors=errors)
    at = now()
    start, end = cmp.half_year(args["year"], args["half"])
    if end >= today(at).replace(day=1):
        raise Unprocessable(errors={"half": [_("Choose a half-year that has ended.")]})
    data = evaluation.evaluation_pdf(args["year"], args["half"], at)
    return pdf.pdf_response(data, f"evaluation-{args['year']}-H{args['half']}.pdf")
