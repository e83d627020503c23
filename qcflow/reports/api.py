"""Reports and exports over the JSON API: the event analysis, the monthly bulletin, CSV/XLSX exports."""
from __future__ import annotations

from qcflow.auth.permissions import allowed, current_actor, department_for
from qcflow.auth.ratelimit import rate_limited
from qcflow.core import periods
from qcflow.core.api import Blueprint
from qcflow.core.time import now, today
from qcflow.reports import exports, queries
from qcflow.reports.schemas import AnalysisOut, MonthArgs, PeriodArgs

blp = Blueprint("reports_api", __name__, url_prefix="/api/v1", description="Reports and exports (报表与导出)")


def _period(args):
    return periods.check_period(args.get("start"), args.get("end"), today(), periods.REPORT_PERIODS)


@blp.get("/reports/analysis")
@allowed("reports")
@blp.arguments(PeriodArgs, location="query")
@blp.response(200, AnalysisOut)
@blp.alt_response(404, description="Another department (department heads see only their own)")
@blp.alt_response(422, description="Reversed or over-long period")
def analysis(args):
    """Count and composition of reports by category, grade, care stage, time, location, department and
    clinical state, with the under-reporting detector. Counts below the hospital level under k show as `<k`."""
    return queries.event_analysis(current_actor(), _period(args), args.get("department"), now=now())


def _export(kind: str, fmt: str, args):
    actor = current_actor()
    period = _period(args)
    department_id = department_for(actor, args.get("department"))
    if kind == "events":
        columns, rows = exports.EVENT_COLUMNS, lambda: exports.event_rows(actor, period, department_id)
    else:
        at = now()
        columns, rows = exports.FOLLOWUP_COLUMNS, lambda: exports.followup_rows(actor, period, department_id, at)
    filename = f"{kind}-{period.start.isoformat()}-{period.end.isoformat()}.{fmt}"
    if fmt == "csv":
        return exports.csv_response(columns, rows, filename)
    return exports.xlsx_response(columns, rows, filename, sheet=kind)


@blp.get("/exports/events.csv")
@allowed("reports")
@blp.arguments(PeriodArgs, location="query")
@blp.response(200, content_type="text/csv", description="UTF-8 CSV with a BOM, streamed")
@blp.alt_response(404, description="Another department")
@blp.alt_response(429, description="Too many exports by this user within the hour (RATE_LIMITS)")
@rate_limited("export")
def export_events_csv(args):
    """Reports of the period for the NCIS platform (docs/exports.md): scrubbed, nothing about the reporter."""
    return _export("events", "csv", args)


@blp.get("/exports/events.xlsx")
@allowed("reports")
@blp.arguments(PeriodArgs, location="query")
@blp.response(200, content_type=exports.XLSX_MIMETYPE, description="XLSX workbook, streamed")
@blp.alt_response(404, description="Another department")
@blp.alt_response(429, description="Too many exports by this user within the hour (RATE_LIMITS)")
@rate_limited("export")
def export_events_xlsx(args):
    """Reports of the period as an XLSX workbook (same columns as the CSV)."""
    return _export("events", "xlsx", args)


@blp.get("/exports/followup.csv")
@allowed("reports")
@blp.arguments(PeriodArgs, location="query")
@blp.response(200, content_type="text/csv", description="UTF-8 CSV with a BOM, streamed")
@blp.alt_response(404, description="Another department")
@blp.alt_response(429, description="Too many exports by this user within the hour (RATE_LIMITS)")
@rate_limited("export")
def export_followup_csv(args):
    """Follow-up calls due in the period with their outcome (phones masked)."""
    return _export("followup", "csv", args)


@blp.get("/exports/followup.xlsx")
@allowed("reports")
@blp.arguments(PeriodArgs, location="query")
@blp.response(200, content_type=exports.XLSX_MIMETYPE, description="XLSX workbook, streamed")
@blp.alt_response(404, description="Another department")
@blp.alt_response(429, description="Too many exports by this user within the hour (RATE_LIMITS)")
@rate_limited("export")
def export_followup_xlsx(args):
    """Follow-up calls due in the period as an XLSX workbook (same columns as the CSV)."""
    return _export("followup", "xlsx", args)


@blp.get("/reports/monthly.pdf")
@allowed("bulletin")
@blp.arguments(MonthArgs, location="query")
@blp.response(200, content_type="application/pdf", description="The monthly quality bulletin (质量安全月报)")
@blp.alt_response(422, description="Malformed month, or a month in the future")
@blp.alt_response(429, description="Too many PDFs by this user within the hour (RATE_LIMITS)")
@rate_limited("pdf")
def monthly_bulletin(args):
    """The monthly quality bulletin of a month (YYYY-MM) as PDF."""
    from qcflow.reports import bulletin, pdf

    month = bulletin.parse_month(args["month"], today())
    return pdf.pdf_response(bulletin.render(month, now()), bulletin.filename(month))
