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
    clinical state, with the under-reporting detector (reports made by staff only), the reports found by the
    system counted apart, and the trigger statistics (per trigger and per department, with links to the
    firings). Counts of reports below the hospital level under k show as `<k`."""
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


#: The exports: (kind, format) → what the file holds. Each is one endpoint, `export_<kind>_<format>`.
EXPORTS = {
    ("events", "csv"): "Reports of the period for the NCIS platform (docs/exports.md): scrubbed, nothing about the "
                       "reporter.",
    ("events", "xlsx"): "Reports of the period as an XLSX workbook (same columns as the CSV).",
    ("followup", "csv"): "Follow-up calls due in the period with their outcome (phones masked).",
    ("followup", "xlsx"): "Follow-up calls due in the period as an XLSX workbook (same columns as the CSV).",
}
FORMATS = {"csv": ("text/csv", "UTF-8 CSV with a BOM, streamed"),
           "xlsx": (exports.XLSX_MIMETYPE, "XLSX workbook, streamed")}


def _export_endpoint(kind: str, fmt: str, summary: str) -> None:
    """Register the export of `kind` as `fmt`: rate-limited, a department head's own department only."""
    def export(args):
        return _export(kind, fmt, args)

    export.__name__ = export.__qualname__ = f"export_{kind}_{fmt}"
    export.__doc__ = summary
    content_type, description = FORMATS[fmt]
    for decorate in (rate_limited("export"),
                     blp.alt_response(429, description="Too many exports by this user within the hour (RATE_LIMITS)"),
                     blp.alt_response(404, description="Another department"),
                     blp.response(200, content_type=content_type, description=description),
                     blp.arguments(PeriodArgs, location="query"),
                     allowed("reports"),
                     blp.get(f"/exports/{kind}.{fmt}")):
        export = decorate(export)


for (kind, fmt), summary in EXPORTS.items():
    _export_endpoint(kind, fmt, summary)


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
