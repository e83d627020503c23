"""The centre's comparison pages and their API: who may open them, what they show in Chinese and English."""
from __future__ import annotations

import pytest

from tests.core.test_page_walk import VisibleText, findings_in
from tests.region.test_comparisons import RATE, TIME, Factory  # noqa: F401 (fixtures below)
from tests.region.test_comparisons import app, factory, fixture, hospital_layout  # noqa: F401
from tests.region.test_standing import centre_key  # noqa: F401

PERIOD = "from=2026-01&to=2026-06"
PAGES = ["/centre/completeness?year=2026", f"/centre/indicators?{PERIOD}", f"/centre/indicators/{RATE}?{PERIOD}",
         f"/centre/indicators/{TIME}?{PERIOD}", f"/centre/profile/T2?{PERIOD}"]


def visible(html: str) -> str:
    parser = VisibleText()
    parser.feed(html)
    return parser.text


@pytest.mark.parametrize("path", PAGES)
def test_the_pages_read_in_chinese_and_english_without_codes(fixture, clients, path):
    client = clients("centre")
    zh = client.get(path)
    assert zh.status_code == 200, zh.get_data(as_text=True)[:2000]
    text = visible(zh.get_data(as_text=True))
    assert findings_in(text, "zh", frozenset({"centre"})) == []
    en = client.get(path + "&lang=en")
    assert en.status_code == 200
    assert findings_in(visible(en.get_data(as_text=True)), "en") == []


def test_the_indicator_page_shows_the_ranking_funnel_and_trend(fixture, clients):
    html = clients("centre").get(f"/centre/indicators/{RATE}?{PERIOD}&lang=en").get_data(as_text=True)
    tertiary = html.split('id="level-tertiary"')[1].split('id="level-secondary"')[0]
    assert tertiary.index("Hospital T1") < tertiary.index("Hospital T2")
    assert "85.00%" in tertiary and "55.00%" in tertiary and "70.00%" in tertiary
    assert '<svg' in tertiary and 'class="chart funnel"' in tertiary
    assert 'id="regional-trend"' in html
    assert "17/20" in tertiary and "11/20" in tertiary
    time_page = clients("centre").get(f"/centre/indicators/{TIME}?{PERIOD}").get_data(as_text=True)
    assert 'class="chart funnel"' not in time_page  # no funnel for a time


def test_the_completeness_page_shows_versions_and_overdue_months(fixture, clients):
    html = clients("centre").get("/centre/completeness?year=2026&level=tertiary&lang=en").get_data(as_text=True)
    assert "v2" in html and "Overdue" in html and "Hospital S1" not in html


def test_the_completeness_page_says_what_a_cells_date_is(fixture, clients):
    """Found walking the demo: cells read "第1版 12-06" with nothing saying what 12-06 is."""
    html = clients("centre").get("/centre/completeness?year=2026").get_data(as_text=True)
    assert "质控中心收到的日期（月-日）" in html


def test_a_refused_choice_names_the_choices_in_words_not_codes(fixture, clients):
    level = clients("centre").get(f"/centre/indicators/{RATE}?level=bogus").get_data(as_text=True)
    assert "三级医院" in level and "tertiary" not in level.split("<main")[1].split('name="level"')[0]
    half = clients("centre").get("/centre/evaluation.pdf?year=2026&half=3")
    assert half.status_code == 422 and "1, 2" not in half.get_data(as_text=True)


def test_a_refused_period_shows_the_default_with_the_reason(fixture, clients):
    response = clients("centre").get(f"/centre/indicators/{RATE}?from=2026-06&to=2026-01&lang=en")
    assert response.status_code == 422 and "The first month is after the last month." in response.get_data(True)
    assert clients("centre").get("/centre/indicators/no_such_code").status_code == 404
    assert clients("centre").get("/centre/profile/NOPE").status_code == 404


@pytest.mark.parametrize("who", ["quality", "admin", "anonymous"])
def test_only_the_centre_staff_may_compare(fixture, clients, who):
    for path in PAGES[:3] + [f"/api/v1/centre/indicators/{RATE}?{PERIOD}", "/api/v1/centre/completeness"]:
        response = clients(who).get(path)
        assert response.status_code in ((302, 401) if who == "anonymous" else (403,)), (path, response.status_code)


def test_on_a_hospital_installation_the_centre_pages_do_not_exist(hospital, database_url, tmp_path):
    from tests.conftest import logged_in, make_app

    hospital_app = make_app(database_url, str(tmp_path / "h"))  # the same database, installed as a hospital
    client = logged_in(hospital_app, hospital["centre"].username)
    for path in ("/centre/completeness", f"/api/v1/centre/indicators/{RATE}", "/api/v1/centre/standing"):
        assert client.get(path).status_code == 404, path


def test_the_api_answers_the_comparison_profile_and_completeness(fixture, clients):
    client = clients("centre")
    body = client.get(f"/api/v1/centre/indicators/{RATE}?{PERIOD}").get_json()
    tertiary = next(level for level in body["levels"] if level["level"] == "tertiary")
    assert [(h["code"], h["rank"], h["met"]) for h in tertiary["hospitals"]] == [("T1", 1, True), ("T2", 2, False)]
    assert tertiary["regional"] == {"numerator": 28, "denominator": 40, "value": 70.0, "hospitals": 2}
    assert tertiary["target"] == {"comparison": "ge", "value": 85.0} and tertiary["limits"]
    assert body["from"] == "2026-01"
    profile = client.get(f"/api/v1/centre/profile/T2?{PERIOD}").get_json()
    row = next(r for r in profile["indicators"] if r["code"] == RATE)
    assert (row["rank"], row["ranked"], row["months"]) == (2, 2, 2)
    grid = client.get("/api/v1/centre/completeness?year=2026&limit=2").get_json()
    assert [h["code"] for h in grid["items"]] == ["T1", "T2"] and grid["next_cursor"] is not None
    rest = client.get(f"/api/v1/centre/completeness?year=2026&limit=2&cursor={grid['next_cursor']}").get_json()
    assert [h["code"] for h in rest["items"]] == ["S1"] and rest["next_cursor"] is None
    assert next(c for c in grid["counts"] if c["month"] == "2026-01")["sent"] == 3
    assert client.get("/api/v1/centre/completeness?level=quaternary").status_code == 422


def test_the_centre_api_conforms_to_its_document(fixture, tokens, centre_key):
    """Schemathesis over the centre's operations on a centre installation (the common fuzz test runs on a hospital,
    where they answer 404)."""
    from hypothesis import HealthCheck, Phase, given, settings
    from schemathesis import GenerationMode
    from schemathesis.openapi import from_wsgi

    from flask import current_app

    from tests.security.test_api_fuzz import CHECKS

    schema = from_wsgi("/api/v1/openapi.json", current_app._get_current_object())
    schema.config.generation.update(with_security_parameters=False)
    operations = [r.ok() for r in schema.get_all_operations() if r.ok().path.startswith("/api/v1/centre/")
                  and r.ok().path in ("/api/v1/centre/completeness", "/api/v1/centre/indicators/{code}",
                                      "/api/v1/centre/profile/{code}", "/api/v1/centre/standing")]
    assert len(operations) == 4
    headers = tokens("centre")
    failures = []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=15, deadline=None, database=None, derandomize=True,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            def run(case):
                case.validate_response(case.call(headers=headers), checks=CHECKS, headers=headers)

            try:
                run()
            except BaseException as error:  # noqa: BLE001 (collected, then failed once)
                if isinstance(error, KeyboardInterrupt):
                    raise
                failures.append(f"{operation.label} [{mode.value}]: {str(error)[:1500]}")
    assert failures == [], "\n\n".join(failures)


def test_the_centre_start_leads_to_completeness(fixture, clients):
    response = clients("centre").get("/centre")
    assert response.status_code == 302 and response.headers["Location"].endswith("/centre/completeness")


def test_a_status_reads_as_done_only_if_every_month_is(fixture, factory, clients):
    from datetime import date

    factory.month(fixture["S1"], date(2026, 2, 1), {"annual_work_plan_status": 1.0})
    factory.month(fixture["S1"], date(2026, 3, 1), {"annual_work_plan_status": 0.0})
    factory.month(fixture["T1"], date(2026, 3, 1), {"annual_work_plan_status": 1.0}, revision=1)
    factory.db.session.commit()
    html = clients("centre").get(f"/centre/indicators/annual_work_plan_status?{PERIOD}&lang=en").get_data(True)
    secondary = html.split('id="level-secondary"')[1]
    tertiary = html.split('id="level-tertiary"')[1].split('id="level-secondary"')[0]
    assert "Not done" in secondary and "Done" in tertiary and "Not done" not in tertiary


# Findings of the review ---------------------------------------------------------------------------------------------

def test_x_of_y_meeting_the_target_counts_the_same_hospitals_on_the_page_and_the_api(fixture, factory, clients):
    from datetime import date

    factory.month(factory.hospital("T3", "tertiary"), date(2026, 3, 1), {RATE: (3, 3)})  # met, but 3 cases < k
    factory.db.session.commit()
    client = clients("centre")
    html = client.get(f"/centre/indicators/{RATE}?{PERIOD}&lang=en").get_data(as_text=True)
    tertiary = html.split('id="level-tertiary"')[1].split('id="level-secondary"')[0]
    assert "1 of 2 hospitals meet it" in visible(tertiary)
    body = client.get(f"/api/v1/centre/indicators/{RATE}?{PERIOD}").get_json()
    level = next(lv for lv in body["levels"] if lv["level"] == "tertiary")
    assert (level["meeting"], level["judged"]) == (1, 2)


def test_a_regional_value_of_one_small_hospital_is_hidden_on_the_page(fixture, clients):
    html = clients("centre").get(f"/centre/indicators/{RATE}?{PERIOD}&lang=en").get_data(as_text=True)
    secondary = html.split('id="level-secondary"')[1]
    regional = secondary.split('class="regional-value">')[1].split("</p>")[0]
    assert "75.00%" not in regional and "3/4" not in regional


def test_funnel_dots_on_the_better_side_are_green_and_small_rates_are_left_out(factory, clients):
    from datetime import date

    for code, parts in (("A", (95, 100)), ("B", (40, 100)), ("C", (60, 100)), ("D", (2, 2))):
        factory.month(factory.hospital(code, "tertiary"), date(2026, 3, 1), {RATE: parts})
    factory.db.session.commit()
    html = clients("centre").get(f"/centre/indicators/{RATE}?{PERIOD}&lang=en").get_data(as_text=True)
    svg = html.split('id="level-tertiary"')[1].split("</svg>")[0]
    dots = dict((outside, fill) for fill, outside in __import__("re").findall(
        r'<circle[^>]*fill="([^"]+)"[^>]*data-outside="([^"]*)"', svg))
    assert dots["above"] == "#1e8e3e" and dots["below"] == "#b3261e"  # higher is better: A green, B red
    assert svg.count("data-outside=") == 3  # D (2 cases) is not drawn
    assert "Better than the limits" in svg and "Worse than the limits" in svg


def test_every_chart_scrolls_sideways_in_one_box(fixture, clients):
    from pathlib import Path

    html = clients("centre").get(f"/centre/indicators/{RATE}?{PERIOD}&lang=en").get_data(as_text=True)
    assert html.count("<svg") == html.count('<div class="chart-scroll"><svg') >= 2
    css = Path(__file__).resolve().parents[2].joinpath("qcflow/static/css/app.css").read_text()
    assert ".chart-scroll { overflow-x:auto;" in css and "min-width:560px" in css


def test_the_centre_start_keeps_the_language(fixture, clients):
    response = clients("centre").get("/centre?lang=en")
    assert response.status_code == 302 and response.headers["Location"].endswith("/centre/completeness?lang=en")


def test_a_hospital_registered_now_owes_no_earlier_month_on_the_page_and_api(fixture, factory, clients):
    from tests.region.test_comparisons import AT

    factory.hospital("NEW", "tertiary", registered=AT, name="新医院")
    factory.db.session.commit()
    client = clients("centre")
    html = client.get("/centre/completeness?year=2026&lang=en").get_data(as_text=True)
    row = html.split("Hospital NEW")[1].split("</tr>")[0]
    before = row.split('data-label="2026-08"')[0]  # registered on 5 August 2026
    assert before.count("Not expected (before registration)") == 7 and "Overdue" not in before
    body = client.get("/api/v1/centre/completeness?year=2026").get_json()
    new = next(h for h in body["items"] if h["code"] == "NEW")
    assert {m["status"] for m in new["months"][:7]} == {"not_expected"}
    assert next(c for c in body["counts"] if c["month"] == "2026-01")["not_expected"] == 1


def test_a_profile_with_nothing_received_says_so_and_targets_carry_their_unit(fixture, factory, clients):
    factory.hospital("EMPTY", "tertiary")
    factory.db.session.commit()
    client = clients("centre")
    empty = client.get(f"/centre/profile/EMPTY?{PERIOD}").get_data(as_text=True)
    assert 'id="nothing-received"' in empty and "尚未收到" in visible(empty) and 'id="profile"' not in empty
    full = client.get(f"/centre/profile/T2?{PERIOD}&lang=en").get_data(as_text=True)
    assert "≥85.00%" in visible(full)


def test_a_ranking_row_better_than_the_region_is_not_painted_as_worse(factory, clients):
    """A hospital above the limits of a higher-is-better rate is better than the region: its row reads so."""
    import re
    from datetime import date

    for code, parts in (("A", (95, 100)), ("B", (40, 100)), ("C", (60, 100))):
        factory.month(factory.hospital(code, "tertiary"), date(2026, 3, 1), {RATE: parts})
    factory.db.session.commit()
    html = clients("centre").get(f"/centre/indicators/{RATE}?{PERIOD}&lang=en").get_data(as_text=True)
    table = html.split('id="level-tertiary"')[1].split("</table>")[0]
    rows = {code: row for row in table.split("<tr")[2:] for code in "ABC" if f"Hospital {code}<" in row}
    assert re.match(r'\s*class="is-better"', rows["A"]) and "Better than the region (above the control limit)" in rows["A"]
    assert re.match(r'\s*class="is-overdue"', rows["B"]) and "Worse than the region (below the control limit)" in rows["B"]
    assert "class=" not in rows["C"].split(">")[0]


def flat(html: str) -> str:
    return " ".join(visible(html).split())


def test_every_value_and_target_carries_its_unit_and_a_status_reads_as_done(fixture, factory, clients):
    """13.73 alone does not say minutes; a status sent as 1 reads as done on the submission's page too."""
    from datetime import date

    sent = factory.month(fixture["T1"], date(2026, 3, 1), {TIME: 13.73, "annual_work_plan_status": 1.0,
                                                           "ae_per_100_discharges": (3, 200), "cmi": 1.11,
                                                           "mdt_clinic_count": 6.0})
    factory.db.session.commit()
    client = clients("centre")
    detail = flat(client.get(f"/centre/hospitals/T1/submissions/{sent.id}?lang=en").get_data(as_text=True))
    assert "13.73 minutes" in detail and "1.50 per 100 discharges" in detail and "1.11 ratio" in detail
    assert "6 count" in detail and "Done" in detail
    profile = flat(client.get(f"/centre/profile/T1?from=2026-03&to=2026-03&lang=en").get_data(as_text=True))
    assert "13.73 minutes" in profile and ">2.50 per 100 discharges" in profile
    listed = flat(client.get(f"/centre/indicators?{PERIOD}&lang=en").get_data(as_text=True))
    assert "1.50 per 100 discharges" in listed
    zh = flat(client.get(f"/centre/indicators/{TIME}?{PERIOD}&lang=zh").get_data(as_text=True))
    assert "分钟" in zh.split("三级医院")[-1]


def test_a_rate_over_fewer_than_k_cases_is_not_judged_against_the_target(fixture, factory, clients):
    """The rows marked met agree with "X of Y meet it": a small rate reads "not judged", on the profile too."""
    from datetime import date

    factory.month(factory.hospital("T3", "tertiary"), date(2026, 3, 1), {RATE: (3, 3)})  # 100 %, 3 cases < k
    factory.db.session.commit()
    client = clients("centre")
    html = client.get(f"/centre/indicators/{RATE}?{PERIOD}&lang=en").get_data(as_text=True)
    tertiary = html.split('id="level-tertiary"')[1].split('id="level-secondary"')[0]
    row = flat(tertiary.split("Hospital T3")[1].split("</tr>")[0])
    assert "fewer than 5 cases, not judged" in row and "Met" not in row
    assert flat(tertiary).count("Met") == 1  # "1 of 2 hospitals meet it": one row says met
    profile = client.get(f"/centre/profile/T3?{PERIOD}&lang=en").get_data(as_text=True)
    line = flat(profile.split(f"/centre/indicators/{RATE}")[1].split("</tr>")[0])
    assert "fewer than 5 cases, not judged" in line and "Met" not in line


def test_completeness_can_show_only_the_hospitals_owing_a_month(fixture, factory, clients):
    """With a province's hundred hospitals, the ones to call: a missing or overdue month (off by default)."""
    from datetime import datetime, timezone

    factory.hospital("DONE", "tertiary", registered=datetime.now(timezone.utc))  # owes nothing yet
    factory.db.session.commit()
    client = clients("centre")
    everyone = client.get("/centre/completeness?year=2026&lang=en").get_data(as_text=True)
    assert "Hospital DONE" in everyone and "Hospital T1" in everyone
    gaps = client.get("/centre/completeness?year=2026&gaps=1&lang=en").get_data(as_text=True)
    table = gaps.split('id="completeness"')[1].split("</table>")[0]
    assert "Hospital DONE" not in table and "Hospital T1" in table
    assert 'name="gaps" value="1" checked' in gaps
    assert 'id="completeness-counts"' in gaps


def test_completeness_lists_the_reminders_sent_for_the_year_with_the_hospitals_named(fixture, clients):
    from datetime import datetime, timezone

    from qcflow.extensions import db
    from qcflow.region.centre_jobs import remind_missing

    assert remind_missing(datetime(2026, 8, 15, 2, tzinfo=timezone.utc)).startswith("2026-07: 3 hospitals")
    db.session.commit()
    html = clients("centre").get("/centre/completeness?year=2026&lang=en").get_data(as_text=True)
    panel = flat(html.split('id="reminders"')[1].split("</section>")[0])
    assert "2026-07" in panel and "Hospital T1" in panel and "Hospital S1" in panel
    assert "No reminder" in flat(clients("centre").get("/centre/completeness?year=2025&lang=en").get_data(True))
