"""Reported values over the API: the HIS intake (good and bad rows, idempotence, an approved month), entering and
deciding values, and the indicator list, trend and drill-down of a reported indicator."""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from qcflow.core.periods import add_months, month_start
from qcflow.core.time import today
from tests.indicators.reporting_fixtures import reported  # noqa: F401

INTAKE = "/api/v1/intake/indicator_values"


@pytest.fixture
def hospital_layout(hospital_layout):
    departments, people = hospital_layout
    return departments, {**people, "his": ("his", "interface", "qc")}


@pytest.fixture
def last_month():
    return add_months(month_start(today()), -1)


def _row(month, **values):
    return {"code": "pain_assessment_rate", "month": f"{month:%Y-%m}", "department_code": "GS", "numerator": 45,
            "denominator": 50, **values}


def _reports():
    from qcflow.extensions import db
    from qcflow.indicators.models import IndicatorReport

    db.session.expire_all()
    return db.session.scalars(sa.select(IndicatorReport).order_by(IndicatorReport.id)).all()


def test_good_rows_land_and_bad_rows_get_their_errors(reported, tokens, last_month):
    body = {"items": [
        _row(last_month, note="HIS 月度统计"),
        _row(last_month, code="local_gs_operations", numerator=None, denominator=None, value=7),
        _row(last_month, department_code="CARD", numerator=60),                # numerator > denominator
        _row(last_month),                                                      # the same row again
        _row(last_month, code="ae_per_100_discharges"),                        # computed
        _row(last_month, department_code="NOPE"),                              # unknown department
        _row(add_months(last_month, 2)),                                       # the future
        {"code": "pain_assessment_rate", "month": "2026-13", "department_code": "GS"},  # not a month
        _row(last_month, code="local_gs_wait", numerator=None, denominator=None, value=12.5, extra=1),
    ]}
    response = reported_client_post(tokens("his"), body)
    assert response.status_code == 200, response.get_json()
    result = response.get_json()
    assert (result["created"], result["updated"], result["unchanged"], result["failed"]) == (2, 0, 0, 7)
    statuses = [r["status"] for r in result["results"]]
    assert statuses == ["created", "created"] + ["error"] * 7
    errors = [r["errors"] for r in result["results"]]
    assert "numerator" in errors[2] and "row" in errors[3] and "code" in errors[4] and "department_code" in errors[5]
    assert "month" in errors[6] and "month" in errors[7] and "extra" in errors[8]
    assert result["results"][0]["key"] == f"pain_assessment_rate/{last_month:%Y-%m}/GS"
    stored = _reports()
    assert [(r.code, r.state, r.channel, r.value) for r in stored] == [
        ("pain_assessment_rate", "submitted", "his", 90.0), ("local_gs_operations", "submitted", "his", 7.0)]
    assert stored[0].note == "HIS 月度统计"


def reported_client_post(headers, body):
    from flask import current_app

    return current_app.test_client().post(INTAKE, json=body, headers=headers)


def test_resending_the_same_values_changes_nothing_and_new_values_revise(reported, tokens, last_month):
    first = reported_client_post(tokens("his"), {"items": [_row(last_month)]})
    assert first.get_json()["created"] == 1
    again = reported_client_post(tokens("his"), {"items": [_row(last_month)]})
    assert again.status_code == 200 and again.get_json()["unchanged"] == 1
    assert _reports()[0].version == 1
    changed = reported_client_post(tokens("his"), {"items": [_row(last_month, numerator=40)]})
    assert changed.get_json()["updated"] == 1
    report = _reports()[0]
    assert (report.version, report.value, report.state) == (2, 80.0, "submitted")


def test_a_row_for_an_approved_month_is_that_rows_error(reported, tokens, clients, last_month):
    reported_client_post(tokens("his"), {"items": [_row(last_month)]})
    report = _reports()[0]
    approve = clients("quality").post(f"/api/v1/indicators/reports/{report.id}/transitions",
                                      json={"action": "approve", "version": report.version},
                                      headers=clients("quality").csrf)
    assert approve.status_code == 200 and approve.get_json()["state"] == "approved"
    response = reported_client_post(tokens("his"), {"items": [
        _row(last_month, numerator=40), _row(last_month, code="local_gs_operations", numerator=None,
                                             denominator=None, value=3)]})
    assert response.status_code == 200
    rows = response.get_json()["results"]
    assert rows[0]["status"] == "error" and "锁定" in " ".join(rows[0]["errors"]["row"])
    assert rows[1]["status"] == "created"
    assert _reports()[0].numerator == 45


def test_nothing_lands_is_422_and_strict_refuses_all(reported, tokens, last_month):
    bad = reported_client_post(tokens("his"), {"items": [_row(last_month, numerator=-1)]})
    assert bad.status_code == 422 and bad.get_json()["failed"] == 1
    strict = reported_client_post(tokens("his"), {"strict": True, "items": [_row(last_month),
                                                                              _row(last_month, denominator=0)]})
    assert strict.status_code == 422
    assert [r["status"] for r in strict.get_json()["results"]] == ["skipped", "error"]
    assert _reports() == []


def test_only_the_intake_roles_may_push(reported, tokens, last_month):
    assert reported_client_post(tokens("head"), {"items": [_row(last_month)]}).status_code == 403
    assert reported_client_post({}, {"items": [_row(last_month)]}).status_code == 401
    assert reported_client_post(tokens("quality"), {"items": [_row(last_month)]}).status_code == 200


def test_the_intake_is_in_the_openapi_document(app):
    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    post = spec["paths"]["/api/v1/intake/indicator_values"]["post"]
    assert "approved month" in post["description"]
    assert set(spec["components"]["schemas"]["IndicatorValueRowIn"]["properties"]) == {
        "code", "month", "department_code", "numerator", "denominator", "value", "note"}


def test_enter_and_decide_over_the_api(reported, tokens, last_month):
    from flask import current_app

    client = current_app.test_client()
    entered = client.post("/api/v1/indicators/reports", headers=tokens("head"), json={
        "code": "pain_assessment_rate", "month": f"{last_month:%Y-%m}-01", "numerator": 9, "denominator": 10})
    assert entered.status_code == 200, entered.get_json()
    report = entered.get_json()
    assert (report["state"], report["value"], report["month"]) == ("submitted", 90.0, f"{last_month:%Y-%m}")
    stale = client.post("/api/v1/indicators/reports", headers=tokens("head"), json={
        "code": "pain_assessment_rate", "month": f"{last_month:%Y-%m}", "numerator": 8, "denominator": 10,
        "version": 7})
    assert stale.status_code == 409
    not_head = client.post(f"/api/v1/indicators/reports/{report['id']}/transitions", headers=tokens("head"),
                           json={"action": "approve", "version": 1})
    assert not_head.status_code == 403
    no_reason = client.post(f"/api/v1/indicators/reports/{report['id']}/transitions", headers=tokens("quality"),
                            json={"action": "return", "version": 1})
    assert no_reason.status_code == 422
    returned = client.post(f"/api/v1/indicators/reports/{report['id']}/transitions", headers=tokens("quality"),
                           json={"action": "return", "version": 1, "reason": "请核对分母"})
    assert returned.status_code == 200 and returned.get_json()["reason"] == "请核对分母"
    mine = client.get(f"/api/v1/indicators/reports?month={last_month:%Y-%m}", headers=tokens("card_head"))
    assert mine.status_code == 200 and mine.get_json() == []
    other = client.get(f"/api/v1/indicators/reports?department={reported['surgery'].id}", headers=tokens("card_head"))
    assert other.status_code == 404


def test_reported_indicators_in_the_list_trend_and_drill_down(reported, tokens, clients, last_month):
    from flask import current_app

    from qcflow.extensions import db
    from qcflow.indicators.models import IndicatorSetup

    # Reported hospital-wide (no reporting department named): every department's value adds up.
    db.session.scalar(sa.select(IndicatorSetup).where(IndicatorSetup.code == "pain_assessment_rate")).department_id = None
    db.session.commit()
    reported_client_post(tokens("his"), {"items": [_row(last_month), _row(last_month, department_code="CARD",
                                                                          numerator=5, denominator=50)]})
    for report in _reports():
        clients("quality").post(f"/api/v1/indicators/reports/{report.id}/transitions",
                                json={"action": "approve", "version": report.version},
                                headers=clients("quality").csrf)
    client = current_app.test_client()
    period = f"from={last_month.isoformat()}&to={add_months(last_month, 1) - timedelta(days=1)}"
    items = {i["code"]: i for i in client.get(f"/api/v1/indicators?{period}", headers=tokens("quality")).get_json()}
    pain = items["pain_assessment_rate"]
    assert (pain["method"], pain["numerator"], pain["denominator"], pain["value"]) == ("reported", 50, 100, 50.0)
    assert items["ae_per_100_discharges"]["method"] == "computed"
    trend = client.get(f"/api/v1/indicators/pain_assessment_rate?month={last_month:%Y-%m}",
                       headers=tokens("quality")).get_json()
    assert len(trend["months"]) == 12 and trend["months"][-1]["value"] == 50.0
    cases = client.get(f"/api/v1/indicators/pain_assessment_rate/cases?{period}&part=denominator",
                       headers=tokens("quality")).get_json()
    assert cases["total"] == 100 and sorted(i["weight"] for i in cases["items"]) == [50, 50]
    own = {i["code"]: i for i in client.get(f"/api/v1/indicators?{period}", headers=tokens("head")).get_json()}
    assert own["pain_assessment_rate"]["value"] == 90.0
