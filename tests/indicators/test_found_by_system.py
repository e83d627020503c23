"""每百出院人次主动报告不良事件例次 counts only reports made by staff: a report filed from a trigger's firing
(系统发现) is counted apart, shown beside the indicator, and never in its numerator or drill-down."""
from datetime import date

import pytest

from tests.conftest import sh
from tests.indicators.conftest import Builder

NOW = sh(2026, 3, 10, 9, 0)
FEB = {"from": "2026-02-01", "to": "2026-02-28"}


@pytest.fixture
def february(hospital):
    """February 2026 in general surgery: 200 discharges, two reports by staff and one found by the system."""
    from qcflow.extensions import db

    b = Builder(hospital, reference_data=False)
    surgery = hospital["surgery"]
    b.census(surgery, date(2026, 2, 1), 200)
    staff = [b.event(surgery, "submitted", sh(2026, 2, day, 9, 0)) for day in (3, 4)]
    system = b.event(surgery, "triaged", sh(2026, 2, 5, 9, 0), found_by="trigger")
    db.session.commit()
    return {"staff": staff, "system": system}


def test_the_reporting_rate_leaves_out_a_report_found_by_the_system(ctx, february):
    from qcflow.indicators.queries import compute, found_by_system

    [value] = compute(date(2026, 2, 1), date(2026, 2, 28), codes=["ae_per_100_discharges"], now=NOW)
    assert (value.numerator, value.denominator, value.value) == (2, 200, 1.0)
    assert found_by_system(date(2026, 2, 1), date(2026, 2, 28)) == 1


def test_the_drill_down_lists_only_reports_made_by_staff(clients, february):
    body = clients("quality").get("/api/v1/indicators/ae_per_100_discharges/cases",
                                  query_string={**FEB, "part": "numerator"}).json
    listed = {item["label"] for item in body["items"]}
    assert listed == {e.reference for e in february["staff"]}, body


def test_indicator_page_shows_the_reports_found_by_the_system_beside_the_rate(clients, february):
    client = clients("quality")
    html = client.get("/indicators", query_string=FEB).get_data(as_text=True)
    assert "系统发现（不计入本指标）：1 例" in html
    english = client.get("/indicators", query_string={**FEB, "lang": "en"}).get_data(as_text=True)
    assert "Reports found by the system (not counted here): 1" in english


def test_department_head_sees_their_own_departments_count(clients, february):
    html = clients("card_head").get("/indicators", query_string=FEB).get_data(as_text=True)
    assert "系统发现（不计入本指标）：0 例" in html
    html = clients("head").get("/indicators", query_string=FEB).get_data(as_text=True)
    assert "系统发现（不计入本指标）：1 例" in html


def test_api_gives_the_count_beside_the_reporting_rate_only(clients, february):
    body = clients("quality").get("/api/v1/indicators", query_string=FEB).json
    rate = next(v for v in body if v["code"] == "ae_per_100_discharges")
    assert (rate["numerator"], rate["found_by_system"]) == (2, 1)
    assert all("found_by_system" not in v for v in body if v["code"] != "ae_per_100_discharges")
