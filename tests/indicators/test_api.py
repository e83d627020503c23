"""The indicator API: values, trend, drill-down, department scoping and bad input."""
from datetime import timedelta

import pytest

from tests.indicators.test_reference_month import EXPECTED

MARCH_QUERY = "from=2026-03-01&to=2026-03-31"


def test_list_for_a_period(clients, reference_month):
    response = clients("quality").get("/api/v1/indicators?from=2026-03-05&to=2026-03-31")
    assert response.status_code == 200
    body = response.get_json()
    assert isinstance(body, list)
    items = {item["code"]: item for item in body if item["method"] == "computed"}  # reported ones follow them
    assert set(items) == set(EXPECTED)
    first = items["preop_mdt_rate_level4"]
    assert {"code", "name", "unit", "value", "numerator", "denominator", "target", "met", "direction"} <= set(first)
    assert (first["numerator"], first["denominator"], first["value"]) == (1, 4, 25.0)
    assert (first["target"], first["met"]) == (100.0, False)
    assert first["frozen_at"] is None and first["differs"] is False


def test_whole_month_matches_the_reference(clients, reference_month):
    items = {i["code"]: i for i in clients("quality").get(f"/api/v1/indicators?{MARCH_QUERY}").get_json()}
    for code, (numerator, denominator, value, met) in EXPECTED.items():
        got = items[code]
        assert (got["numerator"], got["denominator"], got["met"]) == (numerator, denominator, met)
        assert items[code]["value"] == (pytest.approx(value) if value is not None else None)


def test_names_follow_the_language(clients, reference_month):
    zh = clients("quality").get(f"/api/v1/indicators?{MARCH_QUERY}").get_json()[0]
    en = clients("quality").get(f"/api/v1/indicators?{MARCH_QUERY}&lang=en").get_json()[0]
    assert zh["name"] == "每百出院人次主动报告不良事件例次"
    assert en["name"] == "Adverse events reported per 100 discharges"


def test_trend_has_twelve_months(clients, reference_month):
    response = clients("quality").get("/api/v1/indicators/preop_mdt_rate_level4?month=2026-04")
    assert response.status_code == 200
    body = response.get_json()
    assert [m["month"] for m in body["months"]] == [f"2025-{m:02d}" for m in range(5, 13)] + [
        f"2026-{m:02d}" for m in range(1, 5)]
    march = next(m for m in body["months"] if m["month"] == "2026-03")
    february = next(m for m in body["months"] if m["month"] == "2026-02")
    assert (march["numerator"], march["denominator"]) == (1, 4)
    assert (february["numerator"], february["denominator"]) == (0, 1)
    assert body["source"] and body["unit"] == "percent"


def test_drill_down_pages(clients, reference_month, hospital):
    client = clients("quality")
    seen, cursor = [], None
    while True:
        url = f"/api/v1/indicators/followup_rate_level4/cases?{MARCH_QUERY}&part=denominator&limit=4"
        response = client.get(url + (f"&cursor={cursor}" if cursor else ""))
        assert response.status_code == 200
        body = response.get_json()
        assert body["total"] == 6
        seen += body["items"]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert len(seen) == 6 and all(i["url"] == f"/followup/tasks/{i['id']}" for i in seen)
    numerator = client.get(f"/api/v1/indicators/followup_rate_level4/cases?{MARCH_QUERY}").get_json()
    assert numerator["part"] == "numerator" and numerator["total"] == 2 and len(numerator["items"]) == 2
    census = client.get(f"/api/v1/indicators/ae_per_100_discharges/cases?{MARCH_QUERY}&part=denominator").get_json()
    kinds = [(i["kind"], i["weight"]) for i in census["items"]]
    assert kinds.count(("encounter", 1)) == 6 and ("census", 200) in kinds and census["total"] == 206


def test_nurse_and_head_see_their_department_only(clients, reference_month, hospital):
    gs, card = hospital["surgery"].id, hospital["cardio"].id
    for name in ("nurse", "head"):
        body = clients(name).get(f"/api/v1/indicators?{MARCH_QUERY}").get_json()
        items = {i["code"]: i for i in body}
        assert (items["ae_per_100_discharges"]["numerator"], items["ae_per_100_discharges"]["denominator"]) == (4, 200)
        assert clients(name).get(f"/api/v1/indicators?{MARCH_QUERY}&department={gs}").status_code == 200
        assert clients(name).get(f"/api/v1/indicators?{MARCH_QUERY}&department={card}").status_code == 404
        assert clients(name).get(f"/api/v1/indicators/preop_mdt_rate_level4?department={card}").status_code == 404
        assert clients(name).get(
            f"/api/v1/indicators/preop_mdt_rate_level4/cases?{MARCH_QUERY}&department={card}").status_code == 404
        cases = clients(name).get(f"/api/v1/indicators/preop_mdt_rate_level4/cases?{MARCH_QUERY}&part=denominator")
        assert cases.get_json()["total"] == 3 and len(cases.get_json()["items"]) == 3
    card_head = clients("card_head").get(
        f"/api/v1/indicators/preop_mdt_rate_level4/cases?{MARCH_QUERY}&part=denominator")
    assert card_head.get_json()["total"] == 1
    quality = clients("quality").get(f"/api/v1/indicators/preop_mdt_rate_level4/cases?{MARCH_QUERY}&department={card}")
    assert quality.status_code == 200 and quality.get_json()["total"] == 0


@pytest.mark.parametrize("name", ["doctor", "admin"])
def test_other_roles_are_refused(clients, hospital, name):
    assert clients(name).get("/api/v1/indicators").status_code == 403
    assert clients(name).get("/api/v1/indicators/preop_mdt_rate_level4").status_code == 403
    assert clients(name).get("/api/v1/indicators/preop_mdt_rate_level4/cases").status_code == 403


def test_anonymous_is_refused(app, hospital):
    assert app.test_client().get("/api/v1/indicators").status_code == 401


def test_bad_input(clients, hospital):
    from qcflow.core.time import today

    client = clients("quality")
    tomorrow = (today() + timedelta(days=1)).isoformat()
    reversed_period = client.get("/api/v1/indicators?from=2026-03-31&to=2026-03-01")
    assert reversed_period.status_code == 422
    assert reversed_period.get_json()["errors"]["from"] == ["开始日期晚于结束日期。"]
    future = client.get(f"/api/v1/indicators?to={tomorrow}&lang=en")
    assert future.status_code == 422 and "future" in future.get_json()["errors"]["to"][0]
    unknown = client.get("/api/v1/indicators?department=99999&lang=en")
    assert unknown.status_code == 422 and unknown.get_json()["errors"]["department"] == ["No such department."]
    assert client.get("/api/v1/indicators?department=abc").status_code == 422
    assert client.get("/api/v1/indicators?colour=blue").status_code == 422
    next_month = (today().replace(day=1) + timedelta(days=32)).strftime("%Y-%m")
    future_month = client.get(f"/api/v1/indicators/preop_mdt_rate_level4?month={next_month}&lang=en")
    assert future_month.status_code == 422 and future_month.get_json()["message"] == "This month is in the future."
    assert client.get("/api/v1/indicators/preop_mdt_rate_level4?month=2026-13").status_code == 422
    missing = client.get("/api/v1/indicators/no_such_indicator?lang=en")
    assert missing.status_code == 404 and missing.get_json()["message"] == "No indicator no_such_indicator."
    assert client.get("/api/v1/indicators/no_such_indicator/cases").status_code == 404
    assert client.get("/api/v1/indicators/preop_mdt_rate_level4/cases?part=both").status_code == 422
    assert client.get("/api/v1/indicators/preop_mdt_rate_level4/cases?cursor=xyz").status_code == 422
    assert client.get("/api/v1/indicators/preop_mdt_rate_level4/cases?from=2026-03-31&to=2026-03-01").status_code == 422


def test_openapi_documents_the_routes(app):
    paths = app.test_client().get("/api/v1/openapi.json").get_json()["paths"]
    assert {"/api/v1/indicators", "/api/v1/indicators/{code}", "/api/v1/indicators/{code}/cases"} <= set(paths)


def test_targets_api(clients, hospital):
    from tests.conftest import csrf_from

    listed = clients("quality").get("/api/v1/indicators/targets").get_json()
    assert {"code": "ae_per_100_discharges", "level": "tertiary", "year": 2025, "comparison": "gt", "value": 2.5} \
        .items() <= next(t for t in listed if t["code"] == "ae_per_100_discharges" and t["year"] == 2025
                         and t["level"] == "tertiary").items()
    body = {"code": "day_surgery_share", "level": "tertiary", "year": 2026, "comparison": "ge", "value": 12.5}
    quality = clients("quality")
    refused = quality.put("/api/v1/indicators/targets", json=body, headers={"X-CSRFToken": csrf_from(quality, "/")})
    assert refused.status_code == 403
    admin = clients("admin")
    headers = {"X-CSRFToken": csrf_from(admin, "/admin/indicators/targets")}
    saved = admin.put("/api/v1/indicators/targets", json=body, headers=headers)
    assert saved.status_code == 200 and saved.get_json()["updated_by"].startswith("user:")
    wrong = admin.put("/api/v1/indicators/targets", json={**body, "code": "nope"}, headers=headers)
    assert wrong.status_code == 422 and "code" in wrong.get_json()["errors"]
    values = clients("quality").get("/api/v1/indicators?lang=en").get_json()
    assert next(v for v in values if v["code"] == "day_surgery_share")["target"] == 12.5


def test_targets_page(clients, hospital):
    from tests.conftest import csrf_from

    admin = clients("admin")
    page = admin.get("/admin/indicators/targets")
    assert page.status_code == 200 and "ae_per_100_discharges" in page.get_data(as_text=True)
    token = csrf_from(admin, "/admin/indicators/targets")
    posted = admin.post("/admin/indicators/targets", data={"csrf_token": token, "code": "day_surgery_share",
                                                           "level": "tertiary", "year": "2026", "comparison": "ge",
                                                           "value": "10"})
    assert posted.status_code == 302
    bad = admin.post("/admin/indicators/targets", data={"csrf_token": token, "code": "day_surgery_share",
                                                        "level": "tertiary", "year": "1900", "comparison": "ge",
                                                        "value": "10"})
    assert bad.status_code == 422
    assert clients("quality").get("/admin/indicators/targets").status_code == 403


def test_replacing_a_target_needs_the_version_seen(clients, hospital):
    """Two administrators: the second, who has not seen the first one's target, must not overwrite it."""
    from tests.conftest import csrf_from

    admin = clients("admin")
    headers = {"X-CSRFToken": csrf_from(admin, "/admin/indicators/targets")}
    body = {"code": "day_surgery_share", "level": "tertiary", "year": 2027, "comparison": "ge", "value": 12.5}
    first = admin.put("/api/v1/indicators/targets", json=body, headers=headers)
    assert first.status_code == 200 and first.get_json()["version"] == 1
    blind = admin.put("/api/v1/indicators/targets", json={**body, "value": 20}, headers=headers)
    assert blind.status_code == 409 and blind.get_json()["current_version"] == 1
    replaced = admin.put("/api/v1/indicators/targets", json={**body, "value": 15, "version": 1}, headers=headers)
    assert replaced.status_code == 200 and replaced.get_json()["version"] == 2
    stale = admin.put("/api/v1/indicators/targets", json={**body, "value": 20, "version": 1}, headers=headers)
    assert stale.status_code == 409
    listed = clients("quality").get("/api/v1/indicators/targets").get_json()
    assert next(t for t in listed if t["code"] == "day_surgery_share" and t["year"] == 2027)["value"] == 15


def test_the_targets_page_replaces_a_target_from_its_edit_link(clients, hospital):
    from tests.conftest import csrf_from
    from qcflow.extensions import db
    from qcflow.indicators.models import IndicatorTarget
    import sqlalchemy as sa

    admin = clients("admin")
    row = db.session.scalar(sa.select(IndicatorTarget).where(IndicatorTarget.code == "ae_per_100_discharges",
                                                              IndicatorTarget.hospital_level == "tertiary"))
    form = {"csrf_token": csrf_from(admin, "/admin/indicators/targets"), "code": row.code, "level": "tertiary",
            "year": str(row.year), "comparison": "gt", "value": "3"}
    assert admin.post("/admin/indicators/targets", data=form).status_code == 409
    page = admin.get(f"/admin/indicators/targets?edit={row.id}").get_data(as_text=True)
    assert f'name="version" value="{row.version}"' in page
    assert admin.post("/admin/indicators/targets", data={**form, "version": str(row.version)}).status_code == 302
    db.session.expire_all()
    assert db.session.get(IndicatorTarget, row.id).value == 3
