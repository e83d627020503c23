"""Indicators over the JSON API (DESIGN §8, §10): values for a period, a 12-month trend, drill-down."""
from __future__ import annotations

import json
from datetime import date, datetime

from flask import Response, url_for

from qcflow.auth.permissions import allowed, current_actor, department_for
from qcflow.auth.ratelimit import rate_limited
from qcflow.core import periods
from qcflow.core.api import Blueprint
from qcflow.core.i18n import current_language
from qcflow.core.schemas import QueryArgs
from qcflow.core.time import now, today
from qcflow.indicators import catalogue, forms, queries, services
from qcflow.indicators.models import IndicatorForm
from qcflow.indicators.schemas import (
    CasesArgs,
    CasesPage,
    FormIn,
    FormListArgs,
    FormOut,
    FormPage,
    IndicatorValueOut,
    PeriodArgs,
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
        "frozen_at")}
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
    return [{**present(v), **({"found_by_system": apart[v.code]} if v.code in apart else {})} for v in values]


@blp.get("/targets")
@allowed("targets")
@blp.arguments(QueryArgs, location="query")
@blp.response(200, TargetOut(many=True))
def list_targets(args):
    """Every target row: indicator, hospital level, first year, comparison and value."""
    return queries.all_targets()


@blp.put("/targets")
@allowed("administer")
@blp.arguments(TargetIn)
@blp.response(200, TargetOut)
@blp.alt_response(409, description="A target exists for this code, level and year: give its current version")
@blp.alt_response(422, description="Unknown indicator, level or comparison")
def put_target(data):
    """Set an indicator's target for a hospital level from a year on (audited)."""
    return services.set_target(data["code"], data["level"], data["year"], data["comparison"], data["value"],
                               actor=current_actor(), now=now(), source=data.get("source"),
                               expected_version=data["version"])


@blp.get("/<code>")
@allowed("indicators")
@blp.arguments(TrendArgs, location="query")
@blp.response(200, TrendOut)
@blp.alt_response(404, description="No such indicator, or another department's")
@blp.alt_response(422, description="A month in the future or an unknown department")
def get_indicator(args, code):
    """One indicator month by month over the 12 months up to `month` (snapshots where frozen)."""
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
    """The records behind the numerator or denominator (ids and short labels), keyset-paginated."""
    at = now()
    queries.indicator(code)
    start, end, department_id = period_of(args, at)
    items, next_cursor, total = queries.cases(code, args["part"], start, end, department_id=department_id, now=at,
                                              cursor=args.get("cursor"), limit=args["limit"])
    return {"code": code, "part": args["part"], "total": total, "items": items, "next_cursor": next_cursor}


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
