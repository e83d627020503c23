"""Trigger statistics: firings, reviews, positive predictive value and median time to review per trigger,
harm found by the system that nobody reported per department, period edges, department scoping, and
the analysis page in both languages with its drill-down links to the firings."""
from datetime import date

import pytest

from tests.conftest import sh as local
from tests.reports.conftest import INR, RTT

FEB = {"from": "2026-02-01", "to": "2026-02-28"}


def opened(client, link):
    """The firings a drill-down link opens, read through the API behind the page (every page of them; an empty
    filter is no filter, as on the page)."""
    from urllib.parse import parse_qsl, urlencode

    assert link.startswith("/followup/prompts?"), link
    link = "/followup/prompts?" + urlencode([(k, v) for k, v in parse_qsl(link.split("?", 1)[1]) if v])
    got, cursor = [], None
    while True:
        page = client.get("/api/v1" + link + (f"&cursor={cursor}" if cursor else "")).json
        got += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return got


def hrefs(html):
    import re

    return [h.replace("&amp;", "&") for h in re.findall(r'href="(/followup/prompts\?[^"]*)"', html)]


def february():
    from qcflow.core.periods import Period

    return Period(date(2026, 2, 1), date(2026, 2, 28))


def by_code(table):
    return {row["code"]: row for row in table["rows"]}


def test_ppv_and_median_time_to_review_from_hand_made_rows(ctx, firings):
    from qcflow.reports import trigger_stats as stats

    table = stats.by_trigger(february())
    rtt = by_code(table)[RTT]
    assert (rtt["firings"], rtt["reviewed"], rtt["confirmed"], rtt["filed"], rtt["linked"], rtt["dismissed"],
            rtt["open"]) == (5, 4, 2, 1, 1, 2, 1)
    assert rtt["ppv"] == 50.0
    assert rtt["median_review_hours"] == 7.0  # median of 2, 4, 10 and 30 hours: the mean of the middle two
    inr = by_code(table)[INR]
    assert (inr["firings"], inr["reviewed"], inr["confirmed"], inr["ppv"], inr["median_review_hours"]) == (
        1, 1, 1, 100.0, 3.0)
    total = table["total"]
    assert (total["firings"], total["reviewed"], total["confirmed"], total["ppv"]) == (6, 5, 3, 60.0)
    assert total["median_review_hours"] == 4.0  # median of 2, 3, 4, 10 and 30 hours


def test_a_trigger_that_never_fired_is_listed_with_no_ppv(ctx, firings, default_trigger):
    from qcflow.reports import trigger_stats as stats

    default_trigger("death_30d_after_operation")
    quiet = by_code(stats.by_trigger(february()))["death_30d_after_operation"]
    assert quiet["firings"] == 0 and quiet["reviewed"] == 0
    assert quiet["ppv"] is None and quiet["median_review_hours"] is None


def test_open_firings_give_no_ppv_and_no_median(ctx, hospital, default_trigger, create_firing):
    from qcflow.reports import trigger_stats as stats

    create_firing(default_trigger(RTT), hospital["surgery"], local(2026, 2, 10, 8, 0))
    rtt = by_code(stats.by_trigger(february()))[RTT]
    assert (rtt["firings"], rtt["open"], rtt["reviewed"], rtt["ppv"], rtt["median_review_hours"]) == (
        1, 1, 0, None, None)


def test_a_follow_up_calls_finding_is_not_a_firing(ctx, firings, hospital):
    from qcflow.extensions import db
    from qcflow.reports import trigger_stats as stats
    from qcflow.followup.models import EventPrompt
    from tests.indicators.conftest import Builder

    call = Builder(hospital, reference_data=False).task(
        "four_level_surgery", hospital["surgery"], local(2026, 2, 1, 0, 0), local(2026, 2, 20, 0, 0), "completed",
        closed_at=local(2026, 2, 10, 9, 0), is_effective=True)
    db.session.add(EventPrompt(task_id=call.id, patient_id=call.patient_id, department_id=hospital["surgery"].id,
                               findings="reoperation", state="dismissed", dismiss_code="already_handled",
                               created_at=local(2026, 2, 10, 9, 0), handled_at=local(2026, 2, 10, 10, 0)))
    db.session.commit()
    assert stats.by_trigger(february())["total"]["firings"] == 6
    surgery = next(r for r in stats.by_department(february(), k=5)["rows"] if r["department"]["code"] == "GS")
    assert surgery["firings"] == 5


@pytest.mark.parametrize("at, counted", [
    (local(2026, 1, 31, 23, 59, 59), False),
    (local(2026, 2, 1, 0, 0), True),
    (local(2026, 2, 28, 23, 59, 59), True),
    (local(2026, 3, 1, 0, 0), False),
])
def test_a_firing_belongs_to_the_month_it_fired_in_hospital_time(ctx, hospital, default_trigger, create_firing,
                                                                 at, counted):
    from qcflow.reports import trigger_stats as stats

    create_firing(default_trigger(INR), hospital["cardio"], at, state="dismissed", review_hours=1)
    assert by_code(stats.by_trigger(february()))[INR]["firings"] == (1 if counted else 0)


def test_harm_nobody_reported_per_department_beside_the_voluntary_reports(ctx, firings, hospital, create_report):
    from qcflow.extensions import db
    from qcflow.reports import trigger_stats as stats

    for day in range(1, 6):  # five more reports by surgery staff: six in all, at least k
        create_report(department=hospital["surgery"], submitted=local(2026, 2, day + 10, 9, 0))
    db.session.commit()
    table = stats.by_department(february(), k=5)
    rows = {row["department"]["code"]: row for row in table["rows"]}
    assert set(rows) == {"GS", "CARD"}
    gs, card = rows["GS"], rows["CARD"]
    assert (gs["firings"], gs["filed"], gs["linked"], gs["unreported_share"]) == (5, 1, 1, 50.0)
    assert gs["reports"] == 6 and gs["reports_display"] == "6"  # the report filed from a firing is not one of them
    assert (card["firings"], card["filed"], card["linked"], card["unreported_share"]) == (1, 1, 0, 100.0)
    # Cardiology's voluntary reports (none) are below k: shown as <5, as on the funnel plot.
    assert card["reports"] is None and card["reports_display"] == "<5"
    assert table["total"] == {"firings": 6, "filed": 2, "linked": 1, "unreported_share": 66.7}
    assert "state=filed" in gs["links"]["filed"] and f"department={hospital['surgery'].id}" in gs["links"]["filed"]


def test_department_head_sees_only_own_departments_firings(clients, firings, hospital):
    body = clients("head").get("/api/v1/reports/analysis", query_string=FEB).json
    triggers = body["triggers"]
    assert [row["department"]["code"] for row in triggers["departments"]["rows"]] == ["GS"]
    assert by_code(triggers["triggers"])[INR]["firings"] == 0  # cardiology's INR firing is not theirs
    assert by_code(triggers["triggers"])[RTT]["firings"] == 5
    rtt = by_code(triggers["triggers"])[RTT]
    # every count opens the list it counts: the same period, state, trigger and department
    for state in ("firings", "dismissed", "filed", "linked", "open"):
        assert len(opened(clients("head"), rtt["links"][state])) == rtt[state], state
    assert clients("head").get("/api/v1/reports/analysis", query_string={
        **FEB, "department": hospital["cardio"].id}).status_code == 404


def test_quality_office_sees_every_department_and_may_pick_one(clients, firings, hospital):
    client = clients("quality")
    body = client.get("/api/v1/reports/analysis", query_string=FEB).json
    # most unreported harm first; equal counts by department code
    assert [row["department"]["code"] for row in body["triggers"]["departments"]["rows"]] == ["CARD", "GS"]
    assert body["triggers"]["triggers"]["total"]["firings"] == 6
    assert body["found_by"]["reporter"]["count"] == 1 and body["found_by"]["trigger"]["count"] == 2
    cardio = client.get("/api/v1/reports/analysis", query_string={**FEB, "department": hospital["cardio"].id}).json
    assert [row["department"]["code"] for row in cardio["triggers"]["departments"]["rows"]] == ["CARD"]
    assert cardio["triggers"]["triggers"]["total"]["firings"] == 1


def test_analysis_page_shows_both_tables_with_drill_down_links_in_chinese(clients, firings):
    html = clients("quality").get("/reports/analysis", query_string=FEB).get_data(as_text=True)
    assert "自动提取：触发器统计" in html and "系统发现但无人上报的损害" in html
    assert "术后48小时内非计划重返手术室" in html and "阳性预测值" in html and "50.0 % (2/4)" in html
    assert "7.0 小时" in html
    links = hrefs(html)
    for state in ("filed", "dismissed"):
        assert any(f"trigger={RTT}" in h and f"state={state}" in h and "from=2026-02-01" in h and "to=2026-02-28" in h
                   for h in links), (state, links)
    assert any("state=filed" in h and "department=" in h for h in links)
    assert "Positive predictive value" not in html and RTT + "<" not in html


def test_analysis_page_in_english(clients, firings):
    html = clients("quality").get("/reports/analysis", query_string={**FEB, "lang": "en"}).get_data(as_text=True)
    assert "Automatic extraction: trigger statistics" in html and "Harm found by the system that nobody reported" in html
    assert "Return to theatre within 48 h" in html and "Positive predictive value" in html
    assert "7.0 h" in html and any(f"trigger={RTT}" in h and "state=linked" in h for h in hrefs(html))
    assert "Found by the system" in html and "Reported by staff" in html
