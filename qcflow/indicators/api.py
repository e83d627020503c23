"""Indicators over the JSON API (DESIGN §8, §10): values for a period, a 12-month trend, drill-down."""
from __future__ import annotations

from datetime import date, datetime

from flask_babel import gettext as _

from qcflow.auth.permissions import PERMISSIONS, allowed, can, current_actor, department_for, roles_required
from qcflow.core import periods
from qcflow.core.api import Blueprint
from qcflow.core.errors import Forbidden
from qcflow.core.i18n import current_language
from qcflow.core.schemas import QueryArgs
from qcflow.core.time import now, today
from qcflow.indicators import catalogue, catalogue_queries, queries, services
from qcflow.indicators.schemas import (
    CasesArgs,
    CasesPage,
    CatalogueArgs,
    CatalogueDetailOut,
    CatalogueEntryArgs,
    CatalogueRowOut,
    IndicatorValueOut,
    LocalIndicatorChangeIn,
    LocalIndicatorIn,
    LocalIndicatorOut,
    PeriodArgs,
    SetupIn,
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
                                    department_id=args["department"], search=args["q"], year=args["year"])
    return [present_row(row) for row in found.rows()]


@blp.get("/catalogue/<code>")
@allowed("indicator_catalogue")
@blp.arguments(CatalogueEntryArgs, location="query")
@blp.response(200, CatalogueDetailOut)
@blp.alt_response(404, description="No such indicator")
@blp.alt_response(422, description="An unknown plan or department")
def get_catalogue_entry(args, code):
    """One indicator of the catalogue: the row (its target for a plan, a department and a year), its definition,
    every plan's targets and this hospital's."""
    row = catalogue_queries.row(code, now(), plan_key=args["plan"], department_id=args["department"],
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
