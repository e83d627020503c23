"""Event analysis: counts by every dimension against explicit rows, scoping, small cells, the page."""
from datetime import date

import pytest

from tests.conftest import sh as local

FEB = {"from": "2026-02-01", "to": "2026-02-28"}


@pytest.fixture
def february(hospital, create_report):
    """Ten reports submitted in February 2026 and five events that are not February reports."""
    from qcflow.extensions import db

    for _ in range(6):  # Monday 9 February, 23:30 local = 15:30 UTC (band 20–24 locally, 12–16 in UTC)
        create_report(occurred=local(2026, 2, 9, 23, 30), submitted=local(2026, 2, 10, 9, 0),
                      location="5病区护士站", clinical_state="术后第2天")
    for i in range(3):  # Saturday 14 February 02:00 local = Friday 18:00 UTC
        create_report(department=hospital["cardio"], mode="anonymous", category="fall", grade="II",
                      care_stage="nursing", harm="moderate", occurred=local(2026, 2, 14, 2, 0),
                      submitted=local(2026, 2, 14, 8, 20 + i), location="心内科走廊")
    create_report(department=hospital["ortho"], category="pressure_injury", grade="III", confirmed_grade="IV",
                  care_stage="nursing", occurred=local(2026, 1, 30, 14, 0), submitted=local(2026, 2, 2, 10, 0),
                  location="骨科3病区")
    create_report(state="duplicate")
    create_report(state="not_reportable")
    create_report(state="draft")
    create_report(state="withdrawn")
    create_report(submitted=local(2026, 3, 1, 0, 30))  # March, local time (still February in UTC)
    db.session.commit()


def dims(body):
    return {t["name"]: {r["code"]: r for r in t["rows"]} for t in body["dimensions"]}


def counts(table):
    return {code: row["count"] for code, row in table.items() if row["count"]}


def test_hospital_analysis_counts_each_dimension_from_the_rows(clients, february):
    response = clients("quality").get("/api/v1/reports/analysis", query_string=FEB)
    assert response.status_code == 200, response.json
    body = response.json
    assert body["total"] == {"count": 10, "display": "10", "suppressed": False}
    assert body["below_hospital_level"] is False
    d = dims(body)
    assert counts(d["category"]) == {"medication": 6, "fall": 3, "pressure_injury": 1}
    assert counts(d["grade"]) == {"III": 6, "II": 3, "IV": 1}  # the confirmed grade wins
    assert counts(d["care_stage"]) == {"medication": 6, "nursing": 4}
    assert counts(d["month"]) == {"2026-02": 9, "_other": 1}
    assert counts(d["weekday"]) == {"1": 6, "6": 3, "5": 1}  # local weekdays, Monday = 1
    assert counts(d["hour_band"]) == {"5": 6, "0": 3, "3": 1}  # local hours
    assert counts(d["location"]) == {"5病区护士站": 6, "心内科走廊": 3, "骨科3病区": 1}
    assert counts(d["clinical_state"]) == {"术后第2天": 6, "_none": 4}
    assert d["category"]["medication"]["share"] == 60.0
    assert body["harm"]["count"] == 3 and body["harm"]["share"] == 30.0


def test_department_table_hides_small_counts_even_for_the_quality_office(clients, february, hospital):
    body = clients("quality").get("/api/v1/reports/analysis", query_string=FEB).json
    departments = dims(body)["department"]
    assert departments[str(hospital["surgery"].id)]["display"] == "6"
    for name in ("cardio", "ortho", "qc"):
        row = departments[str(hospital[name].id)]
        assert row["display"] == "<5" and row["count"] is None and row["share"] is None
    table = next(t for t in body["dimensions"] if t["name"] == "department")
    assert table["total"]["display"] == "10"


def test_department_head_sees_own_department_with_small_cells_hidden(clients, february, hospital):
    body = clients("head").get("/api/v1/reports/analysis", query_string=FEB).json
    assert body["department"]["code"] == "GS" and body["below_hospital_level"] is True
    assert body["total"]["count"] == 6
    d = dims(body)
    assert "department" not in d
    assert d["category"]["medication"]["count"] == 6
    assert d["category"]["fall"]["display"] == "<5" and d["category"]["fall"]["count"] is None
    # A free-text value is listed below the hospital level only with k reports or more.
    assert d["location"]["5病区护士站"]["count"] == 6
    assert "<5" in str(body)


def test_small_department_shows_no_number_at_all(clients, february, hospital):
    body = clients("cardhead").get("/api/v1/reports/analysis", query_string=FEB).json
    assert body["total"] == {"count": None, "display": "<5", "suppressed": True}
    assert all(row["count"] is None for t in body["dimensions"] for row in t["rows"])
    assert body["harm"]["count"] is None and body["harm"]["share"] is None
    assert {row["display"] for t in body["dimensions"] for row in t["rows"]} == {"<5"}


def test_department_head_cannot_analyse_another_department(clients, february, hospital):
    response = clients("head").get("/api/v1/reports/analysis",
                                   query_string={**FEB, "department": hospital["cardio"].id})
    assert response.status_code == 404


@pytest.mark.parametrize("user", ["anonymous", "doctor", "nurse"])
def test_analysis_is_for_heads_and_quality_only(clients, february, user):
    response = clients(user).get("/api/v1/reports/analysis", query_string=FEB)
    assert response.status_code == (401 if user == "anonymous" else 403)


def test_reversed_period_is_422(clients, hospital):
    response = clients("quality").get("/api/v1/reports/analysis", query_string={"from": "2026-03-01", "to": "2026-02-01"})
    assert response.status_code == 422
    assert "from" in response.json["errors"]


def test_quality_can_pick_a_department(clients, february, hospital):
    body = clients("quality").get("/api/v1/reports/analysis",
                                  query_string={**FEB, "department": hospital["ortho"].id}).json
    assert body["department"]["code"] == "ORTH" and body["total"]["display"] == "<5"


def test_analysis_page_renders_charts_as_images_without_scripts(clients, february):
    response = clients("quality").get("/reports/analysis?from=2026-02-01&to=2026-02-28")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.count('src="data:image/svg+xml;base64,') >= 9
    assert "<script>" not in html and "pygal" not in html
    assert "<?xml" not in html


def test_reports_page_links_the_bulletin_for_quality(clients, hospital):
    html = clients("quality").get("/reports").get_data(as_text=True)
    assert "/api/v1/reports/monthly.pdf?month=" in html
    head = clients("head").get("/reports").get_data(as_text=True)
    assert "monthly.pdf" not in head and "/api/v1/exports/events.csv" in head


def test_chart_svg_has_no_script_and_no_xml_declaration(app):
    from qcflow.reports import charts

    with app.test_request_context("/"):
        svg = str(charts.bars("类别", [{"label": "用药", "count": 3, "display": "3"},
                                      {"label": "跌倒", "count": None, "display": "<5"}]))
    assert svg.startswith("<svg") and "<script" not in svg and "<?xml" not in svg
    assert "http://" not in svg.replace("http://www.w3.org/", "")


def test_period_months_and_default(app):
    from qcflow.core.periods import REPORT_PERIODS, Period, check_period

    assert Period(date(2025, 11, 15), date(2026, 2, 3)).months() == [
        date(2025, 11, 1), date(2025, 12, 1), date(2026, 1, 1), date(2026, 2, 1)]
    assert check_period(None, None, date(2026, 3, 17), REPORT_PERIODS) == Period(date(2026, 3, 1), date(2026, 3, 17))


def test_analysis_page_explains_a_reversed_period(clients, hospital):
    response = clients("quality").get("/reports/analysis?from=2026-03-01&to=2026-02-01&lang=en")
    assert response.status_code == 422
    assert "The start date is after the end date." in response.get_data(as_text=True)


def test_analysis_page_of_another_department_is_404_for_a_head(clients, february, hospital):
    assert clients("head").get(f"/reports/analysis?department={hospital['cardio'].id}").status_code == 404
    html = clients("head").get("/reports/analysis?from=2026-02-01&to=2026-02-28").get_data(as_text=True)
    assert "普通外科" in html and 'name="department"' not in html
