"""Indicators over the JSON API (DESIGN §8, §10): values for a period, a 12-month trend, drill-down."""
from __future__ import annotations

from datetime import date, datetime

from qcflow.auth.permissions import allowed, current_actor, department_for
from qcflow.core import periods
from qcflow.core.api import Blueprint
from qcflow.core.i18n import current_language
from qcflow.core.schemas import QueryArgs
from qcflow.core.time import now, today
from qcflow.indicators import queries, services, survival
from qcflow.indicators.schemas import (
    CasesArgs,
    CasesPage,
    IndicatorValueOut,
    PeriodArgs,
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
