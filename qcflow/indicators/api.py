"""Indicators over the JSON API (DESIGN §8, §10): values for a period, a 12-month trend, drill-down."""
from __future__ import annotations

import json
from datetime import date, datetime

from flask import Response, url_for
from flask_babel import gettext as _

from qcflow.auth.models import Department
from qcflow.auth.permissions import PERMISSIONS, allowed, can, current_actor, department_for, roles_required
from qcflow.auth.ratelimit import rate_limited
from qcflow.core import periods
from qcflow.core.api import Blueprint
from qcflow.core.errors import Forbidden, NotFound, Unprocessable
from qcflow.core.i18n import current_language
from qcflow.core.schemas import QueryArgs
from qcflow.core.time import now, today
from qcflow.extensions import db
from qcflow.indicators import catalogue, catalogue_queries, forms, queries, reporting, services, survival
from qcflow.indicators.definitions import BY_CODE
from qcflow.indicators.models import IndicatorForm
from qcflow.indicators.schemas import (
    CasesArgs,
    CasesPage,
    CatalogueArgs,
    CatalogueDetailOut,
    CatalogueEntryArgs,
    CatalogueRowOut,
    FormIn,
    FormListArgs,
    FormOut,
    FormPage,
    IndicatorIntakeBatchOut,
    IndicatorIntakeIn,
    IndicatorReportIn,
    IndicatorReportOut,
    IndicatorReportsArgs,
    IndicatorValueOut,
    IndicatorValueRowIn,
    LocalIndicatorChangeIn,
    LocalIndicatorIn,
    LocalIndicatorOut,
    PeriodArgs,
    ReportDecisionIn,
    SetupIn,
    SurvivalArgs,
    SurvivalOut,
    TargetIn,
    TargetOut,
    TrendArgs,
    TrendOut,
)

blp = Blueprint("indicators_api", __name__, url_prefix="/api/v1/indicators", description="Quality indicators (质量指标)")


def present(value: queries.IndicatorValue) -> dict:
    """An indicator value for the API; a frozen one says whether a computation now differs."""
    data = {name: getattr(value, name) for name in (
        "code", "name", "unit", "direction", "value", "numerator", "denominator", "target", "comparison", "met",
        "frozen_at", "method")}
    fresh = value.recomputed
    data["differs"] = value.differs
    data["recomputed"] = {name: getattr(fresh, name) for name in (
        "numerator", "denominator", "value", "target", "met")} if fresh is not None else None
    return data


def period_of(args: dict, at: datetime):
    """The checked period and the department the caller may read."""
    period = periods.check_period(args.get("from_"), args.get("to"), today(at), periods.INDICATOR_PERIODS)
    return period.start, period.end, department_for(current_actor(), args.get("department"))


def month_of(first: date | None, at: datetime):
    month = first or today(at).replace(day=1)
    queries.check_month(month, at)
    return month


@blp.get("")
@allowed("indicators")
@blp.arguments(PeriodArgs, location="query")
@blp.response(200, IndicatorValueOut(many=True))
@blp.alt_response(404, description="Another department's indicators")
@blp.alt_response(422, description="`from` after `to`, a day in the future, or an unknown department")
def list_indicators(args):
    """Every indicator for a period (default: this month so far; nurses and department heads: their
    department). The reporting rate carries `found_by_system`: the reports filed from a trigger's firing,
    which it leaves out. A whole past month comes from its frozen snapshot; `differs` and `recomputed` show
    a computation now that gives another result."""
    at = now()
    start, end, department_id = period_of(args, at)
    values = queries.period_values(start, end, department_id=department_id, now=at)
    apart = queries.counted_apart(start, end, department_id=department_id)
    return [{**present(v), **({"found_by_system": apart[v.code]} if v.code in apart else {})} for v in values] + [
        present_reported(v) for v in queries.reported_values(start, end, department_id=department_id)]


def present_row(row: catalogue_queries.Row) -> dict:
    """A catalogue row for the API."""
    entry = row.entry
    data = {name: getattr(entry, name) for name in (
        "code", "name", "name_en", "unit", "direction", "method", "default_method", "reason", "responsible",
        "department_id", "is_local", "version")}
    data["annex"] = [{"plan": a.plan, "seq": a.seq, "wording": a.wording, "line": a.line}
                     for a in catalogue_queries.annex_rows(entry)]
    target = row.target
    data["target"] = None if target is None else {
        "comparison": target.comparison, "value": target.value, "source": target.source, "set": target.set,
        "year": target.year}
    return data


@blp.get("/catalogue")
@allowed("indicator_catalogue")
@blp.arguments(CatalogueArgs, location="query")
@blp.response(200, CatalogueRowOut(many=True))
@blp.alt_response(422, description="An unknown plan, method or department")
def list_catalogue(args):
    """Every indicator of the catalogue with this hospital's choice (method, reason, reporting department), its
    annex rows and the year's target: the plan's annex first, in its order, then the catalogue's other indicators,
    then the departments' own."""
    found = catalogue_queries.build(now(), plan_key=args["plan"], method=args["method"],
                                    department_id=catalogue_department(args["department"]), search=args["q"], year=args["year"])
    return [present_row(row) for row in found.rows()]


def catalogue_department(department_id: int | None) -> int | None:
    """A department filter of the catalogue: a department head's as the one department rule allows it (another
    department's: 404, an unknown one: 422); those who set the catalogue up filter by any existing department.
    Without one, every row (the catalogue is the same for every reader)."""
    if department_id is None:
        return None
    if can(current_actor(), "set_up_indicators"):
        if db.session.get(Department, department_id) is None:
            raise Unprocessable(errors={"department": [_("No such department.")]})
        return department_id
    return department_for(current_actor(), department_id)


@blp.get("/catalogue/<code>")
@allowed("indicator_catalogue")
@blp.arguments(CatalogueEntryArgs, location="query")
@blp.response(200, CatalogueDetailOut)
@blp.alt_response(404, description="No such indicator")
@blp.alt_response(422, description="An unknown plan or department")
def get_catalogue_entry(args, code):
    """One indicator of the catalogue: the row (its target for a plan, a department and a year), its definition,
    every plan's targets and this hospital's."""
    row = catalogue_queries.row(code, now(), plan_key=args["plan"], department_id=catalogue_department(args["department"]),
                                year=args["year"])
    return {**present_row(row), "definition": row.entry.definition, "definition_en": row.entry.definition_en,
            "plan_targets": catalogue_queries.plan_targets(code), "own_targets": catalogue_queries.own_targets(code)}


@blp.patch("/catalogue/<code>")
@allowed("set_up_indicators")
@blp.arguments(SetupIn)
@blp.response(200, CatalogueRowOut)
@blp.alt_response(404, description="No such indicator of the plans")
@blp.alt_response(409, description="The setup changed since it was read: reload it")
@blp.alt_response(422, description="A method qcflow cannot compute, no reason, an unknown or inactive department")
def set_up_catalogue_entry(data, code):
    """Choose how a plan indicator gets its value here (audited); fields left out stay as they are."""
    current = catalogue.entry(code)
    services.set_up_indicator(code, data.get("method", current.method), data.get("reason", current.reason),
                              data.get("department", current.department_id), data["version"],
                              actor=current_actor(), now=now())
    return present_row(catalogue_queries.row(code, now()))


@blp.post("/local")
@allowed("report_indicators")
@blp.arguments(LocalIndicatorIn)
@blp.response(201, LocalIndicatorOut)
@blp.alt_response(403, description="Another department's (department heads)")
@blp.alt_response(422, description="A missing name or definition, an unknown unit, direction or department")
def create_local_indicator(data):
    """A department's own key indicator, reported by the department (audited)."""
    actor = current_actor()
    department_id = data.pop("department") or actor.department_id
    return services.create_local_indicator(department_id, data, actor=actor, now=now())


@blp.patch("/local/<code>")
@allowed("report_indicators")
@blp.arguments(LocalIndicatorChangeIn)
@blp.response(200, LocalIndicatorOut)
@blp.alt_response(403, description="Another department's (department heads)")
@blp.alt_response(404, description="No such indicator")
@blp.alt_response(409, description="A newer version exists")
@blp.alt_response(422, description="A field refused; the unit of an indicator with reported values")
def change_local_indicator(data, code):
    """Change a department's own indicator, or switch it off (`is_active`: false) or on (audited)."""
    version = data.pop("version")
    return services.update_local_indicator(code, data, version, actor=current_actor(), now=now())


@blp.get("/targets")
@allowed("targets")
@blp.arguments(QueryArgs, location="query")
@blp.response(200, TargetOut(many=True))
def list_targets(args):
    """Every target row: indicator, hospital level, first year, comparison and value."""
    return queries.all_targets()


@blp.put("/targets")
@roles_required(*(PERMISSIONS["administer"] | PERMISSIONS["report_indicators"]))
@blp.arguments(TargetIn)
@blp.response(200, TargetOut)
@blp.alt_response(403, description="The hospital's targets: administrators only; a department's: its head (its "
                                   "own indicators and the plan indicators it reports) or the quality office")
@blp.alt_response(409, description="A target exists for this code, level, year (and department): give its version")
@blp.alt_response(422, description="Unknown indicator, level, comparison or department")
def put_target(data):
    """Set an indicator's target for a hospital level from a year on: the hospital's, or with `department` a
    department's own (audited)."""
    actor = current_actor()
    if data["department"] is not None:
        return services.set_department_target(
            data["code"], data["department"], data["level"], data["year"], data["comparison"], data["value"],
            actor=actor, now=now(), source=data.get("source"), expected_version=data["version"])
    if not can(actor, "administer"):
        raise Forbidden(_("Only an administrator sets the hospital's own targets; give a department for its own."))
    return services.set_target(data["code"], data["level"], data["year"], data["comparison"], data["value"],
                               actor=actor, now=now(), source=data.get("source"),
                               expected_version=data["version"])


@blp.get("/<code>")
@allowed("indicators")
@blp.arguments(TrendArgs, location="query")
@blp.response(200, TrendOut)
@blp.alt_response(404, description="No such indicator, or another department's")
@blp.alt_response(422, description="A month in the future or an unknown department")
def get_indicator(args, code):
    """One indicator month by month over the 12 months up to `month` (snapshots where frozen; a reported
    indicator: its approved reports)."""
    if code not in BY_CODE:
        return _reported_trend_response(args, code)
    at = now()
    indicator = queries.indicator(code)
    month = month_of(args.get("month"), at)
    department_id = department_for(current_actor(), args.get("department"))
    points = queries.trend(code, month, department_id=department_id, now=at, compare=True)
    return {"code": code, "name": indicator.label(current_language()), "unit": indicator.unit,
            "direction": indicator.direction, "source": indicator.source, "department": department_id,
            "months": [{"month": f"{first:%Y-%m}", **present(value)} for first, value in points]}


@blp.get("/<code>/cases")
@allowed("indicators")
@blp.arguments(CasesArgs, location="query")
@blp.response(200, CasesPage)
@blp.alt_response(404, description="No such indicator, or another department's")
@blp.alt_response(422, description="`from` after `to`, a day in the future, or an unknown department")
def list_cases(args, code):
    """The records behind the numerator or denominator (ids and short labels), keyset-paginated; a reported
    indicator: its approved submissions, each weighing its part."""
    if code not in BY_CODE:
        return _reported_cases_response(args, code)
    at = now()
    queries.indicator(code)
    start, end, department_id = period_of(args, at)
    items, next_cursor, total = queries.cases(code, args["part"], start, end, department_id=department_id, now=at,
                                              cursor=args.get("cursor"), limit=args["limit"])
    return {"code": code, "part": args["part"], "total": total, "items": items, "next_cursor": next_cursor}


# Reported values (indicators.reporting) ------------------------------------------------------------------------

def present_reported(value: queries.IndicatorValue) -> dict:
    """A reported indicator's value: approved reports only; `pending` counts those awaiting approval."""
    return {**present(value), "pending": value.pending}


def reported_indicator(code: str):
    """The catalogue entry of a reported indicator (404 for an unknown code or one that is not reported)."""
    entry = catalogue.entry(code)
    if entry.method != "reported":
        raise NotFound(_("No indicator %(code)s.", code=code))
    return entry


def _reported_trend_response(args, code):
    at = now()
    entry = reported_indicator(code)
    month = month_of(args.get("month"), at)
    department_id = department_for(current_actor(), args.get("department"))
    return {"code": code, "name": entry.label(current_language()), "unit": entry.unit, "direction": entry.direction,
            "source": entry.definition_in(), "department": department_id,
            "months": [{"month": f"{first:%Y-%m}", **present_reported(value)}
                       for first, value in queries.reported_trend(code, month, department_id)]}


def _reported_cases_response(args, code):
    at = now()
    reported_indicator(code)
    start, end, department_id = period_of(args, at)
    found = reporting.submissions(code, start, end, department_id=department_id)
    items = [{"kind": "report", "id": r.id, "label": f"{r.month_on:%Y-%m} · {r.state}",
              "url": url_for("indicators.report_page", month=f"{r.month_on:%Y-%m}", department=r.department_id),
              "weight": (r.numerator if args["part"] == "numerator" else r.denominator) or 0} for r in found
             if r.state == "approved"]
    return {"code": code, "part": args["part"], "total": sum(i["weight"] for i in items), "items": items,
            "next_cursor": None}


@blp.get("/reports")
@allowed("report_indicators")
@blp.arguments(IndicatorReportsArgs, location="query")
@blp.response(200, IndicatorReportOut(many=True))
@blp.alt_response(404, description="Another department's values")
def list_reports(args):
    """Reported monthly values by month, department, state and indicator (department heads: their department's)."""
    department_id = department_for(current_actor(), args.get("department"))
    return reporting.reports(month=args.get("month"), department_id=department_id, state=args.get("state"),
                             code=args.get("code"))


@blp.post("/reports")
@allowed("report_indicators")
@blp.arguments(IndicatorReportIn)
@blp.response(200, IndicatorReportOut)
@blp.alt_response(409, description="The month is approved (locked until re-opened), or the version is stale")
@blp.alt_response(422, description="Not a reported indicator, not your department's, a month not yet ended or before "
                                   "2000, or parts that do not fit the unit (each field's error listed)")
def submit_report(data):
    """Enter (or revise) a department's value of a reported indicator for a month; it then awaits approval by
    the quality office. Rates: numerator and denominator; other units: value."""
    actor = current_actor()
    report, _status = reporting.submit(
        data["code"], data["month"], data.get("department") or actor.department_id, numerator=data["numerator"],
        denominator=data["denominator"], value=data["value"], note=data["note"], actor=actor, now=now(),
        expected_version=data["version"])
    return report


@blp.post("/reports/<int:report_id>/transitions")
@allowed("approve_indicators")
@blp.arguments(ReportDecisionIn)
@blp.response(200, IndicatorReportOut)
@blp.alt_response(404, description="No such report")
@blp.alt_response(409, description="Stale version, or not possible in the report's state")
@blp.alt_response(422, description="Returning or re-opening needs a reason")
def decide_report(data, report_id):
    """Approve a submitted value, return it with a reason, or re-open an approved month with a reason."""
    actor = current_actor()
    report = reporting.get_report(report_id, actor)
    reporting.decide(report, data["action"], actor=actor, now=now(), expected_version=data["version"],
                     reason=data["reason"])
    return report


intake_blp = Blueprint("indicator_intake_api", __name__, url_prefix="/api/v1/intake",
                       description="Clinical intake from the HIS (HIS 数据接入)")


def _intake_doc() -> dict:
    batch = {"type": "object", "required": ["items"], "properties": {
        "items": {"type": "array", "minItems": 1, "maxItems": reporting.MAX_BATCH,
                  "items": IndicatorValueRowIn, "description": "The rows; each is checked on its own: a bad row comes "
                                                               "back with its errors and the good rows land"},
        "strict": {"type": "boolean", "default": False, "description": "true: one bad row and nothing lands"}}}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": batch}}}}


@intake_blp.post("/indicator_values", endpoint="intake_indicator_values")
@allowed("his_intake")
@intake_blp.arguments(IndicatorIntakeIn)
@intake_blp.doc(**_intake_doc())
@intake_blp.response(200, IndicatorIntakeBatchOut)
@intake_blp.alt_response(422, schema={"oneOf": [{"$ref": "#/components/schemas/IndicatorIntakeBatchOut"},
                                                {"$ref": "#/components/schemas/Error"}]},
                         description="No row could be accepted (each row's errors listed), or the body is invalid")
def intake_indicator_values(data):
    """Upsert departments' monthly values of reported indicators.

    Each row: code, month, department_code, numerator and denominator for a rate, else value; note. Good rows land as submitted values awaiting approval, bad rows
    come back with their errors; re-sending the same values changes nothing; a row for an approved month is
    that row's error. See docs/his-integration.md."""
    results = reporting.import_rows(data["items"], actor=current_actor(), now=now(), strict=data["strict"])
    summary = reporting.summarise(results)
    landed = summary["created"] + summary["updated"] + summary["unchanged"]
    return summary, (200 if landed or not summary["failed"] else 422)
def present_form(form: IndicatorForm) -> dict:
    """A form's meta for the API and the pages; a draft carries its snapshot instead of download links."""
    period = forms.period_of(form)
    draft = form.id is None
    return {"id": form.id, "plan": form.plan, "kind": form.kind, "year": period.year, "quarter": period.quarter,
            "period_start": form.starts_on, "period_end": form.ends_on, "revision": form.revision or None,
            "draft": draft, "generated_at": form.generated_at, "generated_by": form.generator_name,
            "xlsx_sha256": form.xlsx_sha256, "json_sha256": form.json_sha256,
            "xlsx_url": None if draft else url_for("indicators_api.download_form_xlsx", form_id=form.id),
            "json_url": None if draft else url_for("indicators_api.download_form_json", form_id=form.id),
            "snapshot": json.loads(form.snapshot) if draft else None}


def xlsx_download(form: IndicatorForm) -> Response:
    """The stored XLSX bytes, unchanged."""
    return Response(form.xlsx, mimetype=forms.XLSX_MIMETYPE, headers={
        "Content-Disposition": f'attachment; filename="{forms.filename(form, "xlsx")}"', "Cache-Control": "no-store"})


def json_download(form: IndicatorForm) -> Response:
    """The stored JSON twin's bytes, unchanged."""
    return Response(form.snapshot.encode(), mimetype="application/json", headers={
        "Content-Disposition": f'attachment; filename="{forms.filename(form, "json")}"', "Cache-Control": "no-store"})


@blp.get("/forms")
@allowed("indicator_forms")
@blp.arguments(FormListArgs, location="query")
@blp.response(200, FormPage)
def list_forms(args):
    """The archived annual and quarterly forms, newest first (keyset-paginated by id)."""
    rows = forms.archived(kind=args.get("kind"), year=args.get("year"), before_id=args.get("cursor"),
                          limit=args["limit"] + 1)
    more = len(rows) > args["limit"]
    rows = rows[:args["limit"]]
    return {"items": [present_form(row) for row in rows], "next_cursor": rows[-1].id if more else None}


@blp.post("/forms")
@allowed("indicator_forms")
@blp.arguments(FormIn)
@blp.response(201, FormOut)
@blp.alt_response(200, schema=FormOut, description="A draft: the snapshot, nothing archived")
@blp.alt_response(409, description="Someone generated the same period at the same moment: try again")
@blp.alt_response(422, description="Unknown kind, quarter out of 1..4 or missing, a period in the future or not "
                                   "over yet (without `draft`)")
def generate_form(data):
    """Generate the plan's annual form or a quarterly report for a finished period and archive it as the next
    revision; with `draft`, preview any period that has begun (returned, not archived)."""
    form = forms.generate_form(catalogue.plan(), data["kind"], data["year"], data.get("quarter"),
                               actor=current_actor(), now=now(), draft=data["draft"])
    return present_form(form), 200 if form.id is None else 201


@blp.get("/forms/<int:form_id>")
@allowed("indicator_forms")
@blp.arguments(QueryArgs, location="query")
@blp.response(200, FormOut)
@blp.alt_response(404, description="No such form")
def get_form(args, form_id):
    """One archived form's meta: plan, kind, period, revision, who generated it and when, digests, links."""
    return present_form(forms.load_form(form_id))


@blp.get("/forms/<int:form_id>.xlsx")
@allowed("indicator_forms")
@blp.arguments(QueryArgs, location="query")
@blp.response(200, content_type=forms.XLSX_MIMETYPE, description="The archived XLSX, byte for byte")
@blp.alt_response(404, description="No such form")
@blp.alt_response(429, description="Too many exports by this user within the hour (RATE_LIMITS)")
@rate_limited("export")
def download_form_xlsx(args, form_id):
    """The archived XLSX exactly as generated (its SHA-256 is `xlsx_sha256`)."""
    return xlsx_download(forms.load_form(form_id))


@blp.get("/forms/<int:form_id>.json")
@allowed("indicator_forms")
@blp.arguments(QueryArgs, location="query")
@blp.response(200, content_type="application/json", description="The JSON twin, byte for byte")
@blp.alt_response(404, description="No such form")
def download_form_json(args, form_id):
    """The archived JSON twin (schema qcflow.indicator-form/1) exactly as generated (SHA-256: `json_sha256`)."""
    return json_download(forms.load_form(form_id))
@blp.get("/survival")
@allowed("reports")
@blp.arguments(SurvivalArgs, location="query")
@blp.response(200, SurvivalOut)
@blp.alt_response(404, description="Another department's survival")
@blp.alt_response(422, description="A day in the future, or an unknown department")
def survival_curves(args):
    """Kaplan–Meier survival of the five key cancers, together and by type, as known on `as_of` (default
    today): the curve with its 95 % interval, 1-, 3- and 5-year survival and the diagnoses at risk. A group of
    fewer than k diagnoses is `suppressed` (department heads: their department)."""
    at = now()
    as_of = survival.check_as_of(args.get("as_of"), at)
    department_id = department_for(current_actor(), args.get("department"))
    k = survival.small_group_k()
    language = current_language()
    return {"as_of": as_of, "department_id": department_id, "k": k,
            "groups": [survival.present(c, language) for c in survival.curves(as_of, department_id=department_id,
                                                                             k=k)]}
