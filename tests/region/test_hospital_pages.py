"""The quality office's pages and API of what the hospital sent to its centre, and where it stands among its peers,
in Chinese and English, against a stand-in centre over real HTTP."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest

from tests.conftest import csrf_from
from tests.core.test_page_walk import VisibleText, findings_in
from tests.region.test_outbox import NOW, hospital_layout  # noqa: F401 (fixture)
from tests.region.test_sending import app, centre, centre_key, queued, send  # noqa: F401 (fixtures)

PAIN = "pain_assessment_rate"


def visible(html: str) -> str:
    parser = VisibleText()
    parser.feed(html)
    return parser.text


def rejected_row(centre):
    """A month the centre refused, with a reason for its first value."""
    row = queued()
    centre.mode = "reject"
    send()
    centre.mode = "accept"
    return row


def first_name(row, language):
    import json

    from qcflow.indicators import catalogue

    code = json.loads(row.document)["values"][0]["code"]
    return catalogue.entry(code).label(language), code


@pytest.mark.parametrize("language", ["zh", "en"])
def test_the_list_shows_each_submission_with_its_state_and_the_detail_the_centres_reason_by_indicator(
        ctx, centre, clients, language):
    rejected = rejected_row(centre)
    accepted = queued("2026-03")
    send()
    client = clients("quality")
    page = client.get(f"/region/submissions?lang={language}")
    assert page.status_code == 200
    text = visible(page.get_data(as_text=True))
    rejected_label = "Rejected by the centre" if language == "en" else "质控中心已退回"
    assert rejected_label in text and "2026-02" in text and "2026-03" in text
    assert findings_in(text, language, frozenset({"quality"})) == []
    only = visible(client.get(f"/region/submissions?state=accepted&lang={language}").get_data(as_text=True))
    assert "2026-03" in only and "2026-02" not in only

    detail = client.get(f"/region/submissions/{rejected.id}?lang={language}")
    html = detail.get_data(as_text=True)
    name, code = first_name(rejected, language)
    row = re.search(r'<tr id="value-0".*?</tr>', html, re.S).group(0)
    assert name in row and "分子不能大于分母" in row and code not in visible(row).replace(f"{code}:", "")
    text = visible(html)
    assert findings_in(text, language, frozenset({"quality"})) == []
    assert 'id="requeue"' in html and 'id="check-month"' in html and 'id="send-now"' not in html
    receipt = client.get(f"/region/submissions/{accepted.id}?lang={language}").get_data(as_text=True)
    assert 'id="receipt"' in receipt and accepted.digest in receipt


def test_the_quality_office_sends_a_rejected_version_again_and_sends_a_waiting_one_now(app, ctx, centre, clients):
    from qcflow.extensions import db

    row = rejected_row(centre)
    client = clients("quality")
    token = csrf_from(client, f"/region/submissions/{row.id}")
    stale = client.post(f"/region/submissions/{row.id}/requeue", data={"csrf_token": token, "version": row.version - 1})
    assert stale.status_code == 409
    done = client.post(f"/region/submissions/{row.id}/requeue", data={"csrf_token": token, "version": row.version})
    assert done.status_code == 302
    db.session.expire_all()
    assert row.state == "queued"
    sent = client.post(f"/region/submissions/{row.id}/send", data={"csrf_token": token, "version": row.version})
    assert sent.status_code == 302
    db.session.expire_all()
    assert row.state == "accepted" and len(centre.received) == 2
    page = client.get(sent.headers["Location"]).get_data(as_text=True)
    assert "质控中心已接收本次报送。" in page


def test_check_this_month_again_queues_nothing_when_unchanged_and_refuses_a_month_before_its_deadline(ctx, centre,
                                                                                                      clients):
    from qcflow.core.periods import month_start
    from qcflow.core.time import now, today

    row = queued("2026-02")
    client = clients("quality")
    token = csrf_from(client, "/region/submissions")
    same = client.post("/region/months/check", data={"csrf_token": token, "month": "2026-02"})
    assert same.status_code == 302 and same.headers["Location"].endswith(f"/region/submissions/{row.id}")
    this_month = f"{month_start(today(now())):%Y-%m}"
    early = client.post("/region/months/check?lang=en", data={"csrf_token": token, "month": this_month})
    assert early.status_code == 422 and "deadline" in early.get_data(as_text=True)


def test_the_pages_say_which_setting_is_missing_and_the_command_that_makes_the_key(app, ctx, clients):
    import os

    from qcflow.region import keys

    os.remove(keys.key_path())
    app.config["HOSPITAL_CODE"] = None
    html = clients("quality").get("/region/submissions?lang=zh").get_data(as_text=True)
    notice = re.search(r'<div class="card notice" id="region-setup".*?</div>', html, re.S).group(0)
    assert "<code>HOSPITAL_CODE</code>" in notice and "region keygen" in notice
    assert "REGION_CENTRE_URL" not in notice
    for path in ("/region/submissions", "/region/standing"):
        for language in ("zh", "en"):
            page = clients("quality").get(f"{path}?lang={language}")
            assert page.status_code == 200
            assert findings_in(visible(page.get_data(as_text=True)), language, frozenset({"quality"})) == []


@pytest.mark.parametrize("path", ["/region/submissions", "/region/standing", "/api/v1/region/submissions"])
@pytest.mark.parametrize("who", ["nurse", "head"])
def test_nurses_and_department_heads_may_not_see_the_submissions(clients, path, who):
    assert clients(who).get(path).status_code == 403


@pytest.mark.parametrize("path", ["/region/submissions", "/region/submissions/1", "/region/standing",
                                  "/api/v1/region/submissions", "/api/v1/region/submissions/1"])
def test_on_a_centre_the_hospital_side_does_not_exist(centre_app, hospital, path):
    from tests.conftest import logged_in

    # The centre app reads the same database here: the quality officer exists there too.
    assert logged_in(centre_app, hospital["quality"].username).get(path).status_code == 404


def test_the_api_lists_filters_shows_and_acts_on_submissions(ctx, centre, clients):
    rejected = rejected_row(centre)
    client = clients("quality")
    listed = client.get("/api/v1/region/submissions?state=rejected").get_json()
    assert [item["id"] for item in listed["items"]] == [rejected.id] and listed["next_cursor"] is None
    assert client.get("/api/v1/region/submissions?state=accepted").get_json()["items"] == []
    detail = client.get(f"/api/v1/region/submissions/{rejected.id}").get_json()
    assert detail["answer"]["errors"] and detail["document"]["month"] == "2026-02"
    headers = client.csrf
    again = client.post(f"/api/v1/region/submissions/{rejected.id}/requeue", json={"version": detail["version"]},
                        headers=headers)
    assert again.status_code == 200 and again.get_json()["state"] == "queued"
    sent = client.post(f"/api/v1/region/submissions/{rejected.id}/send", json={"version": again.get_json()["version"]},
                       headers=headers)
    assert sent.status_code == 200 and sent.get_json()["outcome"] == "accept"
    twice = client.post(f"/api/v1/region/submissions/{rejected.id}/send", json={"version": sent.get_json()["version"]},
                        headers=headers)
    assert twice.status_code == 409
    assert client.post("/api/v1/region/months/2026-13/queue", headers=headers).status_code == 422
    unchanged = client.post("/api/v1/region/months/2026-02/queue", headers=headers)
    assert unchanged.status_code == 200 and unchanged.get_json() == {"queued": None}
    assert client.get("/api/v1/region/submissions/99999").status_code == 404


def standing_answer(**own) -> dict:
    return {"schema": "qcflow.region-standing/1",
            "indicator": {"code": PAIN, "unit": "percent", "direction": "higher"},
            "from": "2026-01", "to": "2026-03", "level": "tertiary", "too_few_hospitals": False,
            "regional": {"value": 90.0}, "ranked": 5,
            "own": {"numerator": 171, "denominator": 180, "value": 95.0, "rank": 2, "small": False,
                    "outside": None, **own},
            "peers": [{"value": v, "denominator": d, "suppressed": False}
                      for v, d in ((97.0, 200), (91.0, 220), (85.0, 150), (80.0, 250))]
                     + [{"value": None, "denominator": None, "suppressed": True}],
            "limits": [{"denominator": d, "lower95": 90 - 60 / d ** 0.5, "upper95": 90 + 60 / d ** 0.5,
                        "lower998": 90 - 90 / d ** 0.5, "upper998": 90 + 90 / d ** 0.5} for d in (50, 100, 200, 300)],
            "target": {"comparison": "ge", "value": 90.0}, "k": 5, "generated_at": "2026-07-02T01:00:00Z"}


@pytest.mark.parametrize("language", ["zh", "en"])
def test_the_standing_page_shows_rank_regional_value_target_and_a_funnel_plot(centre, clients, language):
    centre.standing = standing_answer()
    page = clients("quality").get(f"/region/standing?indicator={PAIN}&from=2026-01&to=2026-03&lang={language}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    asked = centre.received[-1]
    assert asked["verified"] and asked["path"] == f"/api/v1/centre/standing?indicator={PAIN}&from=2026-01&to=2026-03"
    assert ("2 of 5" if language == "en" else "第 2 名（共 5 家）") in visible(html)
    assert "90.00%" in re.search(r'id="regional">(.*?)</dd>', html, re.S).group(1)
    target = re.search(r'id="target">(.*?)</dd>', html, re.S).group(1)
    assert ("Met" if language == "en" else "达标") in target and "90.00%" in target  # the target in its unit
    svg = re.search(r"<svg.*?</svg>", html, re.S).group(0)
    assert svg.count('fill="#9aa0a6"') == 4 and svg.count('class="own"') == 1 and "<script" not in html[
        html.index('id="standing"'):]
    assert findings_in(visible(html), language, frozenset({"quality"})) == []


def test_a_per_100_standing_gives_its_values_and_target_with_their_unit(centre, clients):
    centre.standing = standing_answer()
    code = "ae_per_100_discharges"
    centre.standing["indicator"] = {"code": code, "unit": "per100", "direction": "higher"}
    centre.standing["target"] = {"comparison": "gt", "value": 2.5}
    html = clients("quality").get(f"/region/standing?indicator={code}&from=2026-01&to=2026-03&lang=en").get_data(True)
    for part in ("own-value", "regional", "target"):
        assert "per 100 discharges" in re.search(rf'id="{part}">(.*?)</dd>', html, re.S).group(1), part


def test_without_a_regional_value_the_caption_does_not_describe_lines_that_are_not_drawn(centre, clients):
    centre.standing = standing_answer()
    centre.standing["regional"] = {"value": None}
    html = clients("quality").get(f"/region/standing?indicator={PAIN}&from=2026-01&to=2026-03&lang=en").get_data(True)
    caption = re.search(r"<figcaption[^>]*>(.*?)</figcaption>", html, re.S).group(1)
    assert "Blue line" not in caption and "too few hospitals" in caption


@pytest.mark.parametrize("mode", ["unsigned", "wrong_key", "error"])
def test_an_unsigned_or_failing_standing_is_an_error_never_data(centre, clients, mode):
    centre.standing, centre.mode = standing_answer(), mode
    page = clients("quality").get(f"/region/standing?indicator={PAIN}&from=2026-01&to=2026-03&lang=en")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'id="standing-problem"' in html and "<svg" not in html and 'id="rank"' not in html


def test_a_centre_that_cannot_be_reached_gives_a_friendly_message(app, clients):
    from tests.region.test_sending import closed_port_url

    app.config["REGION_CENTRE_URL"] = closed_port_url()
    page = clients("quality").get(f"/region/standing?indicator={PAIN}&lang=en")
    assert page.status_code == 200 and "could not be reached" in page.get_data(as_text=True)


def test_the_rank_counts_the_hospitals_ranked_this_one_included(centre, clients):
    """Five hospitals ranked (this one and four shown peers; a fifth peer hidden): 第 2 名（共 5 家）, not of the
    other hospitals' count."""
    centre.standing = standing_answer()
    html = clients("quality").get(f"/region/standing?indicator={PAIN}&from=2026-01&to=2026-03&lang=zh").get_data(
        as_text=True)
    assert visible(re.search(r'id="rank">(.*?)</dd>', html, re.S).group(1)).strip() == "第 2 名（共 5 家）"


@pytest.mark.parametrize("language", ["zh", "en"])
def test_its_own_small_value_is_shown_and_too_few_hospitals_is_explained(centre, clients, language):
    centre.standing = {**standing_answer(numerator=2, denominator=3, value=66.666667, rank=None, small=True),
                       "too_few_hospitals": True, "regional": {"value": None}, "peers": [], "limits": [],
                       "ranked": 0}
    page = clients("quality").get(f"/region/standing?indicator={PAIN}&from=2026-01&to=2026-03&lang={language}")
    html = page.get_data(as_text=True)
    own = visible(re.search(r'id="own-value">(.*?)</dd>', html, re.S).group(1))
    assert "66.67%" in own and "2/3" in own and 'id="own-small"' in html
    assert 'id="too-few"' in html and "<svg" not in html
    assert findings_in(visible(html), language, frozenset({"quality"})) == []


def test_the_standing_form_offers_and_asks_only_one_quarter_that_has_ended(centre, clients):
    centre.standing = standing_answer()
    for period in ("from=2026-02&to=2026-04", "from=2026-01&to=2026-06", "from=2026-10&to=2026-12"):
        page = clients("quality").get(f"/region/standing?indicator={PAIN}&{period}&lang=en")
        assert page.status_code == 422, period
    assert "first month of a quarter" in clients("quality").get(
        f"/region/standing?indicator={PAIN}&from=2026-02&lang=en").get_data(as_text=True)
    assert "one quarter is compared at a time" in page.get_data(as_text=True) or "has not ended" in page.get_data(
        as_text=True)
    assert not any("/standing" in asked["path"] for asked in centre.received)
    form = clients("quality").get("/region/standing?lang=en").get_data(as_text=True)
    quarters = re.findall(r'<option value="(\d{4}-\d{2})"[^>]*>(\d{4}-Q\d)<',
                          re.search(r'name="from">(.*?)</select>', form, re.S).group(1))
    assert quarters and all(f"{q[:4]}-{int(q[-1]) * 3 - 2:02d}" == m for m, q in quarters)
    assert quarters[0][1] == "2026-Q3"  # today is after 2026-09, before 2027: the last quarter ended
    assert 'name="to"' not in form and "Shorter periods are not compared" not in form
    assert "Quarters do not overlap" in form


def test_a_malformed_signed_answer_is_a_message_never_a_500(centre, clients):
    """Found by review: peers with string values, limits with strings, peers that are not a list broke the page."""
    for broken in ({"peers": [{"value": "12", "denominator": 10, "suppressed": False}]},
                   {"limits": [{"denominator": "a", "lower95": 1, "upper95": 2, "lower998": 0, "upper998": 3}]},
                   {"peers": "abc"}, {"own": None}, {"regional": {"value": True}}):
        centre.standing = {**standing_answer(), **broken}
        page = clients("quality").get(f"/region/standing?indicator={PAIN}&from=2026-01&to=2026-03&lang=en")
        assert page.status_code == 200, broken
        html = page.get_data(as_text=True)
        assert "The centre&#39;s answer could not be read" in html and "<svg" not in html, broken


def test_the_standing_form_refuses_an_unknown_indicator_and_a_reversed_period(clients):
    page = clients("quality").get("/region/standing?indicator=nope&from=2026-06&to=2026-01&lang=en")
    assert page.status_code == 422
    assert clients("quality").get("/region/standing?lang=en").status_code == 200


def test_the_back_off_is_shown_with_the_next_attempt(app, ctx, clients):
    from tests.region.test_sending import closed_port_url

    row = queued()
    app.config["REGION_CENTRE_URL"] = closed_port_url()
    send()
    html = clients("quality").get(f"/region/submissions/{row.id}?lang=en").get_data(as_text=True)
    assert "The centre could not be reached" in html and 'id="send-now"' in html
    assert row.next_attempt_at == NOW + timedelta(minutes=1)


def test_the_standing_chart_scrolls_in_its_box_and_draws_its_last_dot_whole(centre, clients):
    centre.standing = standing_answer(denominator=400)  # this hospital is the largest: the rightmost dot
    html = clients("quality").get(f"/region/standing?indicator={PAIN}&from=2026-01&to=2026-03&lang=en").get_data(
        as_text=True)
    assert '<div class="chart-scroll"><svg' in html
    svg = re.search(r"<svg.*?</svg>", html, re.S).group(0)
    width = float(re.search(r'viewBox="0 0 (\d+)', svg).group(1))
    right_edge = max(float(cx) + float(r) for cx, r in re.findall(r'<circle cx="([\d.]+)" cy="[\d.]+" r="([\d.]+)"',
                                                                   svg))
    assert right_edge <= width - 16  # inside the plot's frame


def test_a_regional_value_withheld_for_lack_of_pooled_hospitals_says_why(centre, clients):
    """Found walking the demo: three hospitals of the level, this one under k cases: the peers are shown but the
    regional value is withheld (two hospitals to pool), and the page showed a bare "—"."""
    centre.standing = {**standing_answer(numerator=3, denominator=3, value=100.0, rank=None, small=True),
                       "regional": {"value": None}, "ranked": 2}
    html = clients("quality").get(f"/region/standing?indicator={PAIN}&from=2026-01&to=2026-03").get_data(as_text=True)
    regional = visible(re.search(r'id="regional">(.*?)</dd>', html, re.S).group(1))
    assert "不足 3 家" in regional
