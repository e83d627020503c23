"""JSON API of regional mode (centre side): completeness, one indicator across hospitals, a hospital's profile, and
where a hospital stands among its peers (signed request, signed answer)."""
from __future__ import annotations

from flask import jsonify, request
from flask_babel import gettext as _
from marshmallow import ValidationError

from qcflow.auth.permissions import allowed, public
from qcflow.core.api import Blueprint
from qcflow.core.errors import DomainError, Unprocessable
from qcflow.core.i18n import client_program, current_language
from qcflow.core.time import now, today
from qcflow.region import comparisons as cmp, keys, protocol
from qcflow.region.centre_schemas import (CentreComparisonArgs, CentreComparisonOut, CentreCompletenessArgs,
                                          CentreCompletenessOut, CentreMonthsArgs, CentreProfileOut,
                                          CentreStandingArgs, CentreStandingOut)

blp = Blueprint("centre_api", __name__, url_prefix="/api/v1/centre",
                description="Centre: completeness and comparisons across hospitals")


def _target(target) -> dict | None:
    return {"comparison": target.comparison, "value": target.value} if target is not None else None


def completeness_body(args: dict, at) -> dict:
    year = args.get("year") or today(at).year
    months, rows = cmp.completeness(year, today(at), level=args.get("level"), region=args.get("region"))
    counts = cmp.month_counts(months, rows)
    rows.sort(key=lambda r: r.hospital.id)
    after = args.get("cursor") or 0
    page = [r for r in rows if r.hospital.id > after][:args["limit"]]
    more = len(page) == args["limit"] and any(r.hospital.id > page[-1].hospital.id for r in rows)
    language = current_language()
    return {
        "year": year, "next_cursor": page[-1].hospital.id if more else None,
        "counts": [{"month": cmp.month_text(m), **counts[m]} for m in months],
        "items": [{"code": r.hospital.code, "name": r.hospital.label(language), "level": r.hospital.level,
                   "region": r.hospital.region,
                   "months": [{"month": cmp.month_text(m), "status": c.status, "revision": c.revision,
                               "received_on": c.received_on} for m, c in r.cells.items()]} for r in page]}


@blp.get("/completeness")
@allowed("centre_compare")
@blp.arguments(CentreCompletenessArgs, location="query")
@blp.response(200, CentreCompletenessOut)
@blp.alt_response(404, description="Not a centre installation")
@blp.alt_response(422, description="Malformed year, level or region")
def completeness(args):
    """Which hospital sent which month of a year (the current version's number and when it came), which months
    are owed and which are overdue (after REGION_DUE_DAY of the next month); keyset-paginated by hospital."""
    return completeness_body(args, now())


def comparison_body(comparison: cmp.Comparison) -> dict:
    language = current_language()
    entry = comparison.entry
    return {
        "indicator": {"code": entry.code, "name": entry.label(language), "unit": entry.unit,
                      "direction": entry.direction},
        "from_": cmp.month_text(comparison.start), "to": cmp.month_text(comparison.end),
        "levels": [{
            "level": level.level,
            "regional": {"numerator": level.regional.numerator, "denominator": level.regional.denominator,
                         "value": level.regional_value, "hospitals": level.regional.hospitals},
            "target": _target(level.target),
            "meeting": level.meeting, "judged": len(level.judged),
            "hospitals": [{"code": r.hospital.code, "name": r.hospital.label(language), "region": r.hospital.region,
                           "numerator": r.numerator, "denominator": r.denominator, "value": r.value,
                           "rank": r.rank, "met": r.met, "outside": r.outside, "months": r.months}
                          for r in level.rows],
            "limits": [limit.as_dict() for limit in level.limits],
        } for level in comparison.levels]}


@blp.get("/indicators/<code>")
@allowed("centre_compare")
@blp.arguments(CentreComparisonArgs, location="query")
@blp.response(200, CentreComparisonOut)
@blp.alt_response(404, description="No such indicator in the catalogue, or not a centre installation")
@blp.alt_response(422, description="Malformed, reversed, future or over-long period")
def indicator(args, code):
    """One indicator across the hospitals for a period (default: the last complete half-year), each level apart:
    every hospital's value (rates pooled from the summed parts), rank by the indicator's direction, target met,
    place in the funnel (above or below the 99.8 % limits) and months sent; the level's regional value."""
    start, end = cmp.check_months(args.get("from_"), args.get("to"), today())
    return comparison_body(cmp.compare(code, start, end, args.get("level")))


def profile_body(hospital, rows, start, end) -> dict:
    language = current_language()
    return {"code": hospital.code, "name": hospital.label(language), "level": hospital.level,
            "region": hospital.region, "from_": cmp.month_text(start), "to": cmp.month_text(end),
            "indicators": [{"code": r.entry.code, "name": r.entry.label(language), "unit": r.entry.unit,
                            "value": r.value, "regional": r.regional_value, "rank": r.rank, "ranked": r.ranked,
                            "target": _target(r.target), "met": r.met, "months": r.sums.months} for r in rows]}


@blp.get("/profile/<code>")
@allowed("centre_compare")
@blp.arguments(CentreMonthsArgs, location="query")
@blp.response(200, CentreProfileOut)
@blp.alt_response(404, description="No hospital with this code, or not a centre installation")
@blp.alt_response(422, description="Malformed, reversed, future or over-long period")
def profile(args, code):
    """One hospital's profile for a period: every indicator's value, its level's regional value, its rank n of N
    among the level's hospitals that sent it, the target and whether it is met, and months sent."""
    hospital = cmp.hospital_by_code(code)
    start, end = cmp.check_months(args.get("from_"), args.get("to"), today())
    return profile_body(hospital, cmp.profile(hospital, start, end), start, end)


@blp.get("/standing")
@public
@client_program
@blp.doc(parameters=[
    {"in": "query", "name": "indicator", "required": True, "schema": {"type": "string"}},
    {"in": "query", "name": "from", "required": False, "schema": {"type": "string", "pattern": r"^\d{4}-\d{2}$"}},
    {"in": "query", "name": "to", "required": False, "schema": {"type": "string", "pattern": r"^\d{4}-\d{2}$"}},
    {"in": "header", "name": "X-Qcflow-Hospital", "required": False, "schema": {"type": "string"}},
    {"in": "header", "name": "X-Qcflow-Signed-At", "required": False, "schema": {"type": "string"}},
    {"in": "header", "name": "X-Qcflow-Signature", "required": False, "schema": {"type": "string"}},
])
@blp.response(200, CentreStandingOut)
@blp.alt_response(401, description="Unknown hospital, wrong signature, or a stale or future signing time (signed)")
@blp.alt_response(404, description="No such indicator (signed), or not a centre installation")
@blp.alt_response(422, description="Malformed period, or not one quarter that has ended (signed)")
@blp.alt_response(503, description="The centre has no signing key yet (`region keygen`)")
def standing():
    """Where the signing hospital stands for one indicator among the other hospitals of its level, over one quarter
    that has ended (`from` its first month, `to` its last; by default the last quarter ended): its own exact figures
    and rank among the `ranked` hospitals shown, the regional value (pooled over the hospitals shown), the others'
    values and denominators (2 significant figures), each value rounded so coarsely that at its rounded denominator
    it spans at least one whole case (docs/region.md, Standing) — never their codes, names, regions or numerators; a
    rate over fewer than k cases or with 1 to k − 1 events hidden; nothing about the others with fewer than 3
    hospitals (`too_few_hospitals`) — the funnel's limits around the regional value shown, and the target.
    Authenticated by the hospital's signature of the request (method, path with query, X-Qcflow-Signed-At); every
    answer, an error too, is signed by the centre; messages in the language asked (Accept-Language, default zh)."""
    at = now()
    try:
        keys.own_key()
    except RuntimeError:
        answer = jsonify(code="no_key", message=_("The centre has no signing key yet: run `region keygen` there."))
        answer.status_code = 503
        return answer
    try:
        hospital = keys.signed_request_hospital(at)
        try:
            args = CentreStandingArgs().load({key: value for key, value in request.args.items() if value != ""})
        except ValidationError as error:
            raise Unprocessable(errors=error.messages) from None
        start, end = protocol.check_quarter(args.get("from_"), args.get("to"), today(at))
        payload = cmp.standing(hospital, args["indicator"], start, end, at)
    except DomainError as error:
        return keys.signed_refusal(error)
    return keys.signed_json(payload)

