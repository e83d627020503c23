"""Indicators count a fact recorded late when it happened: a paper report handed in on 31 March and
typed in on 2 April is one of March's reports in the indicator and its drill-down, not April's."""
import time_machine

from tests.conftest import sh

TYPED = sh(2026, 4, 2, 10, 0)


def cases(client, code, period):
    response = client.get(f"/api/v1/indicators/{code}/cases?{period}")
    assert response.status_code == 200, response.json
    return [item["id"] for item in response.json["items"]]


def test_a_paper_report_counts_in_the_month_it_was_handed_in(clients, hospital):
    with time_machine.travel(TYPED, tick=False):
        doctor, quality = clients("doctor"), clients("quality")
        filed = doctor.post("/api/v1/events", headers=doctor.csrf, json={
            "mode": "named", "category_code": "medication", "reporter_grade": "III", "care_stage": "medication",
            "occurred_at": "2026-03-31T14:00:00+08:00", "discovered_at": "2026-03-31T15:00:00+08:00",
            "location": "5病区", "department_id": hospital["surgery"].id, "description": "纸质报告补录。",
            "submitted_at": "2026-03-31T17:20:00+08:00"})
        assert filed.status_code == 201, filed.json
        typed_now = doctor.post("/api/v1/events", headers=doctor.csrf, json={
            "mode": "named", "category_code": "medication", "reporter_grade": "III", "care_stage": "medication",
            "occurred_at": "2026-03-31T14:00:00+08:00", "discovered_at": "2026-03-31T15:00:00+08:00",
            "location": "5病区", "department_id": hospital["surgery"].id, "description": "当天上报。"}).json
        march = cases(quality, "ae_per_100_discharges", "from=2026-03-01&to=2026-03-31")
        april = cases(quality, "ae_per_100_discharges", "from=2026-04-01&to=2026-04-02")
        listed = {i["code"]: i for i in quality.get("/api/v1/indicators?from=2026-03-01&to=2026-03-31").json}
    assert march == [filed.json["id"]] and april == [typed_now["id"]]
    assert listed["ae_per_100_discharges"]["numerator"] == 1
