"""The catalogue over the API: every role's access, the setup (409 on a stale version), departments' own
indicators, department targets through the targets API, and the precedence of targets."""
from __future__ import annotations

import pytest

from tests.conftest import make_app

REPORTED, NOT_APPLICABLE, COMPUTED = "pain_assessment_rate", "qc_centre_setup_rate", "followup_rate_level4"
#: Where the Yubei plan states the ≥ 90 % target of the four-level follow-up rate (its body and its annex).
YUBEI_SOURCE = "Yubei [002:426-428, 720]"
LOCAL = {"name": "术后镇痛满意度", "unit": "percent", "direction": "higher", "definition": "满意例数/同期调查例数"}


@pytest.fixture
def api(clients):
    """Send a JSON request as a person of the hospital (with the CSRF header a browser script sends)."""

    def send(who, method, path, body=None):
        client = clients(who)
        headers = client.csrf if method != "get" else {}
        return getattr(client, method)(path, json=body, headers=headers)

    return send


@pytest.mark.parametrize("who,status", [("nurse", 403), ("doctor", 403), ("head", 200), ("quality", 200),
                                        ("admin", 200)])
def test_who_reads_the_catalogue(api, who, status):
    assert api(who, "get", "/api/v1/indicators/catalogue").status_code == status
    assert api(who, "get", f"/api/v1/indicators/catalogue/{REPORTED}").status_code == status


def annex_codes(app, plan_key: str) -> list[str]:
    """The plan's indicators in its annex's order (each once), as the catalogue's data has them."""
    from qcflow.indicators import catalogue

    with app.app_context():
        return list(dict.fromkeys(code for row in catalogue.annex(plan_key) for code in row.codes))


def test_a_row_says_how_the_indicator_gets_its_value_and_where_it_comes_from(app, api):
    from qcflow.indicators import catalogue

    rows = api("quality", "get", "/api/v1/indicators/catalogue").get_json()
    by_code = {row["code"]: row for row in rows}
    assert {REPORTED, NOT_APPLICABLE, COMPUTED} <= set(by_code)
    pain = by_code[REPORTED]
    with app.app_context():
        shipped = catalogue.default_entry(REPORTED)
        annex = [{"plan": a.plan, "seq": a.seq, "wording": a.wording, "line": a.line}
                 for a in catalogue.annex_rows_of(REPORTED)]
    assert (pain["method"], pain["default_method"], pain["department_id"], pain["version"]) == (
        "reported", "reported", None, None)
    assert (pain["name"], pain["name_en"], pain["responsible"]) == (shipped.name, shipped.name_en,
                                                                    shipped.responsible)
    assert pain["annex"] == annex and annex
    assert by_code[NOT_APPLICABLE]["method"] == "not_applicable" and by_code[NOT_APPLICABLE]["reason"]
    # The installation's plan (henan) first, in its annex's order.
    henan = annex_codes(app, "henan")
    assert [row["code"] for row in rows[:len(henan)]] == henan


def test_filters(app, api, hospital):
    only = api("quality", "get", "/api/v1/indicators/catalogue?method=not_applicable").get_json()
    assert NOT_APPLICABLE in {row["code"] for row in only} and {row["method"] for row in only} == {"not_applicable"}
    every = {row["code"] for row in api("quality", "get", "/api/v1/indicators/catalogue").get_json()}
    for plan_key in ("henan", "yubei", "shaoxing"):  # another plan's annex first; every indicator all the same
        listed = [row["code"] for row in api("quality", "get", f"/api/v1/indicators/catalogue?plan={plan_key}")
                  .get_json()]
        first = annex_codes(app, plan_key)
        assert listed[:len(first)] == first and set(listed) == every and len(listed) == len(every)
    found = api("quality", "get", "/api/v1/indicators/catalogue?q=疼痛").get_json()
    assert REPORTED in {row["code"] for row in found} and all("疼痛" in row["name"] for row in found)
    english = api("quality", "get", "/api/v1/indicators/catalogue?q=PAIN%20ASSESSMENT").get_json()
    assert REPORTED in {row["code"] for row in english}
    assert all("pain assessment" in row["name_en"].lower() for row in english)
    assert api("quality", "get", "/api/v1/indicators/catalogue?department=GS").get_json() == []
    for bad in ("plan=beijing", "method=guessed", "department=NOPE", "year=1999", "colour=red"):
        assert api("quality", "get", f"/api/v1/indicators/catalogue?{bad}").status_code == 422, bad
    assert api("quality", "get", "/api/v1/indicators/catalogue/no_such_indicator").status_code == 404


@pytest.mark.parametrize("who,status", [("nurse", 403), ("doctor", 403), ("head", 403), ("quality", 200),
                                        ("admin", 200)])
def test_who_sets_up_an_indicator(api, hospital, who, status):
    body = {"method": "reported", "department": "GS", "version": None}
    response = api(who, "patch", f"/api/v1/indicators/catalogue/{REPORTED}", body)
    assert response.status_code == status
    if status == 200:
        row = response.get_json()
        assert (row["department_id"], row["version"]) == (hospital["surgery"].id, 1)
        assert [r["code"] for r in api(who, "get", "/api/v1/indicators/catalogue?department=GS").get_json()] == [
            REPORTED]


def test_setup_refusals_and_the_stale_version(api, hospital):
    path = f"/api/v1/indicators/catalogue/{REPORTED}"
    cannot = api("quality", "patch", path, {"method": "computed", "version": None})
    assert cannot.status_code == 422 and "method" in cannot.get_json()["errors"]
    no_reason = api("quality", "patch", path, {"method": "not_applicable", "reason": "", "version": None})
    assert no_reason.status_code == 422 and "reason" in no_reason.get_json()["errors"]
    assert api("quality", "patch", path, {"method": "reported"}).status_code == 422  # the version is required
    saved = api("quality", "patch", path, {"method": "not_applicable", "reason": "本院无病房", "version": None})
    assert saved.status_code == 200 and saved.get_json()["reason"] == "本院无病房"
    stale = api("quality", "patch", path, {"method": "reported", "version": None})
    assert stale.status_code == 409 and stale.get_json()["current_version"] == 1
    # Fields left out stay: only the department changes.
    moved = api("quality", "patch", path, {"method": "reported", "department": "CARD", "version": 1}).get_json()
    assert (moved["method"], moved["department_id"], moved["reason"]) == ("reported", hospital["cardio"].id, "")
    chinese = api("quality", "patch", path + "?lang=zh", {"method": "computed", "version": 2}).get_json()
    assert "qcflow" in chinese["errors"]["method"][0]
    assert api("quality", "patch", "/api/v1/indicators/catalogue/nope", {"version": None}).status_code == 404


def test_the_detail_has_the_definition_the_plans_targets_and_the_hospitals(api, hospital):
    body = {"code": COMPUTED, "level": "tertiary", "year": 2026, "comparison": "ge", "value": 95}
    assert api("admin", "put", "/api/v1/indicators/targets", body).status_code == 200
    detail = api("head", "get", f"/api/v1/indicators/catalogue/{COMPUTED}").get_json()
    assert detail["definition"] and detail["definition_en"]
    assert {"plan": "yubei", "level": "tertiary", "year": 2025, "comparison": "ge", "value": 90.0,
            "source": YUBEI_SOURCE} in detail["plan_targets"]
    # The migration's seeded row (2025) and the one just set.
    assert [(t["year"], t["value"], t["department_id"]) for t in detail["own_targets"]] == [
        (2025, 90.0, None), (2026, 95.0, None)]


# -- departments' own indicators


@pytest.mark.parametrize("who,department,status", [
    ("nurse", None, 403), ("doctor", None, 403), ("admin", "GS", 403), ("head", None, 201), ("head", "GS", 201),
    ("head", "CARD", 403), ("quality", "CARD", 201)])
def test_who_creates_a_departments_own_indicator(api, hospital, who, department, status):
    body = {**LOCAL, **({"department": department} if department else {})}
    response = api(who, "post", "/api/v1/indicators/local", body)
    assert response.status_code == status, response.get_json()
    if status == 201:
        made = response.get_json()
        expected = hospital["cardio"] if department == "CARD" else hospital["surgery"]
        assert made["department_id"] == expected.id and made["code"] == f"local_{expected.code.lower()}_1"


def test_local_indicator_bad_input(api):
    for body in ({**LOCAL, "unit": "kg"}, {**LOCAL, "name": ""}, {k: v for k, v in LOCAL.items() if k != "definition"},
                 {**LOCAL, "code": "local_mine"}, {**LOCAL, "department": "NOPE"}):
        assert api("head", "post", "/api/v1/indicators/local", body).status_code == 422, body


def test_editing_a_local_indicator_over_the_api(api, hospital):
    code = api("head", "post", "/api/v1/indicators/local", LOCAL).get_json()["code"]
    path = f"/api/v1/indicators/local/{code}"
    assert api("card_head", "patch", path, {"name": "改名", "version": 1}).status_code == 403
    assert api("nurse", "patch", path, {"name": "改名", "version": 1}).status_code == 403
    changed = api("head", "patch", path, {"name": "改名", "version": 1})
    assert changed.status_code == 200 and changed.get_json()["version"] == 2
    assert api("head", "patch", path, {"name": "再改", "version": 1}).status_code == 409
    off = api("quality", "patch", path, {"is_active": False, "version": 2}).get_json()
    assert off["is_active"] is False
    listed = api("quality", "get", "/api/v1/indicators/catalogue").get_json()
    assert code not in {row["code"] for row in listed}
    assert api("head", "patch", "/api/v1/indicators/local/local_gs_99", {"version": 1}).status_code == 404


def test_a_local_indicator_is_listed_with_its_department(api, hospital):
    code = api("head", "post", "/api/v1/indicators/local", LOCAL).get_json()["code"]
    [row] = api("head", "get", "/api/v1/indicators/catalogue?department=GS").get_json()
    assert (row["code"], row["is_local"], row["method"], row["department_id"]) == (
        code, True, "reported", hospital["surgery"].id)
    # Every reader sees the whole catalogue, another department's own indicators included; filtering by another
    # department follows the one department rule (404), as every department filter does.
    assert code in {r["code"] for r in api("card_head", "get", "/api/v1/indicators/catalogue").get_json()}
    assert api("card_head", "get", "/api/v1/indicators/catalogue?department=GS").status_code == 404


# -- department targets through the targets API


@pytest.mark.parametrize("who,department,status", [
    ("nurse", "GS", 403), ("doctor", "GS", 403), ("head", "GS", 200), ("head", "CARD", 403),
    ("card_head", "GS", 403), ("quality", "GS", 200), ("quality", None, 403), ("admin", None, 200),
    ("admin", "GS", 403)])
def test_who_sets_a_departments_target(api, hospital, who, department, status):
    code = api("quality", "post", "/api/v1/indicators/local", {**LOCAL, "department": "GS"}).get_json()["code"]
    body = {"code": code, "level": "tertiary", "year": 2026, "comparison": "ge", "value": 90,
            **({"department": department} if department else {})}
    response = api(who, "put", "/api/v1/indicators/targets", body)
    assert response.status_code == status, response.get_json()
    if status == 200:
        assert response.get_json()["department_id"] == (hospital["surgery"].id if department else None)


def test_a_head_sets_targets_of_the_plan_indicators_the_department_reports(api, hospital):
    body = {"code": REPORTED, "level": "tertiary", "year": 2026, "comparison": "ge", "value": 95,
            "department": "GS"}
    assert api("head", "put", "/api/v1/indicators/targets", body).status_code == 403
    api("quality", "patch", f"/api/v1/indicators/catalogue/{REPORTED}", {"department": "GS", "version": None})
    saved = api("head", "put", "/api/v1/indicators/targets", body)
    assert saved.status_code == 200
    assert api("head", "put", "/api/v1/indicators/targets", {**body, "value": 96}).status_code == 409
    again = api("head", "put", "/api/v1/indicators/targets", {**body, "value": 96, "version": 1})
    assert again.status_code == 200 and again.get_json()["version"] == 2


def target_of(api, query: str) -> dict | None:
    [listed] = [r for r in api("quality", "get", f"/api/v1/indicators/catalogue?{query}").get_json()
                if r["code"] == COMPUTED] or [None]
    detail = api("quality", "get", f"/api/v1/indicators/catalogue/{COMPUTED}?{query}").get_json()
    if listed is not None:  # the list (its department filter lists what the department reports) agrees
        assert listed["target"] == detail["target"]
    return detail["target"]


@pytest.fixture
def no_hospital_targets(app, hospital):
    """A hospital that has not set (or been seeded with) its own targets for the indicator."""
    import sqlalchemy as sa

    from qcflow.extensions import db
    from qcflow.indicators.models import IndicatorTarget

    db.session.execute(sa.delete(IndicatorTarget).where(IndicatorTarget.code == COMPUTED))
    db.session.commit()


def test_precedence_of_targets_department_hospital_plan_and_the_latest_year(api, no_hospital_targets):
    """A department's own target beats the hospital's, which beats the plan's; a later year beats them all."""
    yubei = "plan=yubei&year=2026"
    assert target_of(api, "plan=henan&year=2026") is None  # Henan states no number for it
    assert target_of(api, yubei) == {"comparison": "ge", "value": 90.0, "source": YUBEI_SOURCE,
                                     "set": "yubei", "year": 2025}
    assert target_of(api, "plan=yubei&year=2024") is None  # before the plan's first year
    hospital_2025 = {"code": COMPUTED, "level": "tertiary", "year": 2025, "comparison": "ge", "value": 92}
    assert api("admin", "put", "/api/v1/indicators/targets", hospital_2025).status_code == 200
    assert target_of(api, yubei) | {"source": None} == {"comparison": "ge", "value": 92.0, "source": None,
                                                        "set": "hospital", "year": 2025}
    assert api("quality", "put", "/api/v1/indicators/targets",
               {**hospital_2025, "value": 94, "department": "GS"}).status_code == 200
    assert (target_of(api, yubei + "&department=GS")["set"], target_of(api, yubei + "&department=GS")["value"]) == (
        "department", 94.0)
    assert target_of(api, yubei + "&department=CARD")["set"] == "hospital"  # another department's is not theirs
    assert target_of(api, yubei)["set"] == "hospital"  # the whole hospital's
    # A later year's hospital target holds from that year, over the department's older one.
    assert api("admin", "put", "/api/v1/indicators/targets",
               {**hospital_2025, "year": 2026, "value": 93}).status_code == 200
    latest = target_of(api, yubei + "&department=GS")
    assert (latest["set"], latest["year"], latest["value"]) == ("hospital", 2026, 93.0)
    assert target_of(api, "plan=yubei&year=2025&department=GS")["set"] == "department"


def test_an_unknown_plan_refuses_to_start(database_url, tmp_path):
    with pytest.raises(RuntimeError, match="INDICATOR_PLAN.*henan, yubei, shaoxing, guizhou"):
        make_app(database_url, str(tmp_path), INDICATOR_PLAN="hubei")
    assert make_app(database_url, str(tmp_path), INDICATOR_PLAN="guizhou").config["INDICATOR_PLAN"] == "guizhou"


def test_the_catalogue_is_in_the_openapi_document(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert {"get", "patch"} <= set(paths["/api/v1/indicators/catalogue/{code}"])
    assert "post" in paths["/api/v1/indicators/local"] and "patch" in paths["/api/v1/indicators/local/{code}"]
    assert "department" in str(paths["/api/v1/indicators/targets"]["put"])
