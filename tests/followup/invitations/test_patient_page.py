"""The patient's page (/f/<token>): one friendly page for every link that does not work, the second factor and
its lock, the questions with each field's error, the draft across reloads, the thank-you; no session, no
address, no token in any stored row or log line."""
from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
import time_machine

ANSWERS = {"respondent": "patient", "condition": "better", "complication": "0", "unplanned_readmission": "0",
           "reoperation": "0", "satisfaction": "5"}
SENTINEL_IP = "203.0.113.58"
SENTINEL_UA = "SentinelPhone/3.1"


@pytest.fixture(autouse=True)
def fresh_limits(monkeypatch):
    from qcflow.core.security import MemoryRateLimiter
    from qcflow.followup.invitations import views

    monkeypatch.setattr(views, "link_guesses", MemoryRateLimiter())
    monkeypatch.setattr(views, "link_clients", MemoryRateLimiter())


@pytest.fixture
def link(invited):
    from qcflow.followup.invitations import services

    return f"/f/{services.token_of(invited)}"


def csrf(response) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', response.get_data(as_text=True)).group(1)


def confirmed(app, link, factor="1961"):
    """A client that passed the second factor (its proof in the link's cookie)."""
    client = app.test_client()
    first = client.get(link)
    answer = client.post(link, data={"csrf_token": csrf(first), "action": "factor", "factor": factor})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return client, answer


def fresh(row):
    from qcflow.extensions import db

    db.session.refresh(row)
    return row


def without_tokens(response) -> str:
    return re.sub(r'name="csrf_token" value="[^"]+"', "", response.get_data(as_text=True))


def no_session_cookie(app, response):
    cookies = response.headers.getlist("Set-Cookie")
    return not any(c.startswith(app.config["SESSION_COOKIE_NAME"] + "=") for c in cookies)


def gone_text(response) -> str:
    html = response.get_data(as_text=True)
    return re.search(r'<section class="card" id="link-gone".*?</section>', html, re.S).group(0)


def test_every_link_that_does_not_work_gets_the_same_friendly_page(app, invited, link, frozen):
    from qcflow.extensions import db
    from qcflow.followup.invitations import services

    client = app.test_client()
    token = link.rsplit("/", 1)[1]
    unknown = client.get("/f/" + ("A" if token[0] != "A" else "B") + token[1:])
    malformed = client.get("/f/not-a-token")
    pages = [unknown, malformed]
    with time_machine.travel(invited.expires_at + timedelta(minutes=1), tick=False):  # the window has closed
        pages.append(client.get(link))
    services.check_factor(invited, "1961", now=frozen)
    services.answer(invited, {**{k: v for k, v in ANSWERS.items()}, "complication": False,
                              "unplanned_readmission": False, "reoperation": False, "satisfaction": 5}, now=frozen)
    db.session.commit()
    pages.append(client.get(link))  # answered, seen by anyone without the proof
    assert [p.status_code for p in pages] == [404] * 4
    assert len({gone_text(p) for p in pages}) == 1
    assert 'id="gone-title"' in gone_text(pages[0]) and "120" in gone_text(pages[0])
    assert all(no_session_cookie(app, p) and "Set-Cookie" not in p.headers for p in pages)


def test_a_flood_of_unknown_links_is_refused_but_the_right_link_still_works(app, invited, link):
    client = app.test_client()
    token = link.rsplit("/", 1)[1]
    prefix = token[:4]
    statuses = [client.get(f"/f/{prefix}{i:039d}").status_code for i in range(12)]
    assert statuses[:10] == [404] * 10 and statuses[10:] == [429, 429]
    refused = client.get(f"/f/{prefix}{99:039d}")
    assert refused.status_code == 429 and "Retry-After" in refused.headers and "120" in refused.get_data(as_text=True)
    right = client.get(link)
    assert right.status_code == 200 and 'name="factor"' in right.get_data(as_text=True)
    # another prefix is not held up by this flood
    other = ("Z" if prefix[0] != "Z" else "Y") + prefix[1:]
    assert client.get(f"/f/{other}{1:039d}").status_code == 404


def test_a_flood_from_one_known_client_is_refused(app, invited, link):
    app.config["INVITATION_UNKNOWN_LINKS_PER_CLIENT_10_MIN"] = 3
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = "198.51.100.7"  # not a trusted proxy: a known client
    statuses = [client.get(f"/f/{i:04d}{'x' * 39}").status_code for i in range(4)]
    assert statuses == [404, 404, 404, 429]
    assert client.get(link).status_code == 200


def test_wrong_second_factor_five_times_locks_without_telling_whether_the_last_was_right(app, invited, link, frozen):
    client = app.test_client()
    token = csrf(client.get(link))
    wrong = [client.post(link, data={"csrf_token": token, "action": "factor", "factor": "1960"}) for _ in range(4)]
    assert {w.status_code for w in wrong} == {422}
    assert len({without_tokens(w) for w in wrong}) == 1  # one neutral message
    fifth = client.post(link, data={"csrf_token": token, "action": "factor", "factor": "1960"})
    assert fifth.status_code == 429 and 'id="factor-locked"' in fifth.get_data(as_text=True)
    assert "30" in fifth.get_data(as_text=True)
    right_while_locked = client.post(link, data={"csrf_token": token, "action": "factor", "factor": "1961"})
    assert right_while_locked.status_code == 429
    assert without_tokens(right_while_locked) == without_tokens(fifth)
    assert "fu_proof" not in right_while_locked.headers.get("Set-Cookie", "")
    assert client.get(link).status_code == 200 and 'id="factor-locked"' in client.get(link).get_data(as_text=True)


def test_the_right_factor_shows_the_questions_with_a_proof_limited_to_the_link(app, invited, link):
    client, page = confirmed(app, link)
    html = page.get_data(as_text=True)
    for name in ("respondent", "condition", "complication", "unplanned_readmission", "reoperation", "satisfaction"):
        assert f'name="{name}"' in html
    assert "recurrence_metastasis" not in html  # not a question of this pathway
    assert html.count('name="satisfaction"') == 5 and "<select" not in html
    cookie = page.headers["Set-Cookie"]
    assert cookie.startswith("fu_proof=") and f"Path={link}" in cookie and "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie and "Max-Age=3600" in cookie
    assert no_session_cookie(app, page)
    again = client.get(link)  # the cookie keeps the patient confirmed
    assert again.status_code == 200 and 'name="satisfaction"' in again.get_data(as_text=True)
    assert fresh(invited).state == "opened"
    english = client.get(link + "?lang=en")
    assert "How satisfied are you" in english.get_data(as_text=True)


def test_missing_answers_are_marked_next_to_their_field_and_the_values_are_kept(app, invited, link):
    client, page = confirmed(app, link)
    response = client.post(link, data={"csrf_token": csrf(page), "action": "answer", "respondent": "patient",
                                       "condition": "worse", "note": "伤口有点痒"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    for name in ("complication", "unplanned_readmission", "reoperation", "satisfaction"):
        assert f'id="{name}-error"' in html
    assert 'id="condition-error"' not in html and 'id="respondent-error"' not in html
    assert re.search(r'name="condition" value="worse" checked', html) and "伤口有点痒" in html
    assert fresh(invited).state == "opened"


def test_out_of_range_and_mistyped_answers_are_their_fields_errors(app, invited, link):
    client, page = confirmed(app, link)
    response = client.post(link, data={**ANSWERS, "csrf_token": csrf(page), "action": "answer", "satisfaction": "9"})
    assert response.status_code == 422 and 'id="satisfaction-error"' in response.get_data(as_text=True)


def test_a_date_of_death_in_the_future_is_its_fields_error(app, invited, link, frozen):
    client, page = confirmed(app, link)
    future = (frozen + timedelta(days=3)).date().isoformat()
    response = client.post(link, data={**ANSWERS, "csrf_token": csrf(page), "action": "answer",
                                       "respondent": "family", "vital_status": "dead", "died_on": future})
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and 'id="died_on-error"' in html and f'value="{future}"' in html
    missing = client.post(link, data={**ANSWERS, "csrf_token": csrf(page), "action": "answer",
                                      "respondent": "family"})
    assert missing.status_code == 422 and 'id="vital_status-error"' in missing.get_data(as_text=True)


def test_a_saved_draft_survives_a_reload(app, invited, link):
    client, page = confirmed(app, link)
    saved = client.post(link, data={"csrf_token": csrf(page), "action": "draft", "respondent": "family",
                                    "vital_status": "alive", "satisfaction": "4", "note": "下周复查"})
    assert saved.status_code == 303 and saved.headers["Location"].endswith("?saved=1")
    reloaded = client.get(saved.headers["Location"])
    html = reloaded.get_data(as_text=True)
    assert 'id="draft-saved"' in html and "下周复查" in html
    assert re.search(r'name="satisfaction" value="4" checked', html)
    assert re.search(r'name="respondent" value="family" checked', html)
    assert app.test_client().get(link).get_data(as_text=True).count("下周复查") == 0  # only after the factor
    autosaved = client.post(link, data={"csrf_token": csrf(page), "action": "draft", "autosave": "1",
                                        "satisfaction": "3"})
    assert autosaved.status_code == 204


def test_answers_are_sent_once_and_a_reload_shows_the_thank_you(app, invited, link):
    client, page = confirmed(app, link)
    sent = client.post(link, data={**ANSWERS, "csrf_token": csrf(page), "action": "answer", "revisit_requested": "1"})
    assert sent.status_code == 303 and no_session_cookie(app, sent)
    assert fresh(invited).state == "answered" and invited.answers["revisit_requested"] is True
    thanks = client.get(sent.headers["Location"])
    html = thanks.get_data(as_text=True)
    assert thanks.status_code == 200 and 'id="thanks"' in html and 'id="education"' in html and "120" in html
    assert client.get(link).get_data(as_text=True) == html  # a reload
    again = client.post(link, data={**ANSWERS, "csrf_token": csrf(page), "action": "answer"})
    assert again.status_code == 200 and 'id="thanks"' in again.get_data(as_text=True)


def test_a_browser_without_the_cookie_answers_with_the_hidden_proof(app, invited, link):
    client, page = confirmed(app, link)
    proof = re.search(r'name="proof" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    bare = app.test_client()  # refuses cookies: nothing from the first client
    sent = bare.post(link, data={**ANSWERS, "csrf_token": csrf(page), "action": "answer", "proof": proof})
    assert sent.status_code == 200 and 'id="thanks"' in sent.get_data(as_text=True)
    assert bare.get(link).status_code == 404  # without the proof, the used link shows nothing
    forged = app.test_client().post(link, data={**ANSWERS, "csrf_token": csrf(page), "action": "answer",
                                                "proof": proof[:-2] + "xx"})
    assert forged.status_code == 404


def test_a_post_without_the_proof_asks_the_factor_again(app, invited, link):
    client = app.test_client()
    page = client.get(link)
    response = client.post(link, data={**ANSWERS, "csrf_token": csrf(page), "action": "answer"})
    assert response.status_code == 403 and 'name="factor"' in response.get_data(as_text=True)
    assert fresh(invited).state == "sent"


def test_a_form_without_its_token_is_refused(app, invited, link):
    client, _page = confirmed(app, link)
    assert client.post(link, data={**ANSWERS, "action": "answer"}).status_code == 400


def test_no_row_and_no_log_line_holds_the_token_or_the_phones_address(app, invited, link, caplog):
    from qcflow.core.db import Base
    from qcflow.extensions import db

    token = link.rsplit("/", 1)[1]
    caplog.set_level(logging.DEBUG)
    for name in ("werkzeug", "qcflow", "flask.app"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        client = app.test_client()
        client.environ_base.update(REMOTE_ADDR=SENTINEL_IP, HTTP_USER_AGENT=SENTINEL_UA)
        page = client.get(link)
        client.post(link, data={"csrf_token": csrf(page), "action": "factor", "factor": "1900"})
        client.post(link, data={"csrf_token": csrf(page), "action": "factor", "factor": "1961"})
        client.post(link, data={**ANSWERS, "csrf_token": csrf(page), "action": "answer"})
        client.get("/f/" + token[::-1])
    finally:
        for name in ("werkzeug", "qcflow", "flask.app"):
            logging.getLogger(name).setLevel(logging.NOTSET)
    db.session.expire_all()
    assert invited.state == "answered"
    stored = []
    for table in Base.metadata.sorted_tables:
        for row in db.session.execute(sa.select(table)):
            stored.extend(str(v) for v in row if v is not None)
    stored = "\n".join(stored)
    logged = "\n".join(r.getMessage() + repr(r.__dict__) for r in caplog.records)
    for secret in (token, token[::-1], SENTINEL_IP, SENTINEL_UA):
        assert secret not in stored and secret not in logged


def test_education_by_pathway():
    from qcflow.followup.invitations.education import kind_of

    assert [kind_of(p) for p in ("day_surgery", "four_level_surgery", "cancer_lung", "heart_failure", "")] == [
        "day_surgery", "surgery", "cancer", "general", "general"]


# -- review findings: the patient's own error page, the family reporting a death, the factor's typing slip… --

STAFF_WORDS = ("工作人员入口", "上报不良事件", "Staff pages", "Report an event")


def patients_own_page(response) -> str:
    html = response.get_data(as_text=True)
    assert 'class="patient-page"' in html and not any(word in html for word in STAFF_WORDS), html
    assert 'href="/"' not in html
    return html


def test_an_expired_form_shows_the_patients_own_page_with_a_way_back(app, invited, link):
    client, page = confirmed(app, link)
    for lang in ("", "?lang=en"):
        expired = client.post(link + lang, data={**ANSWERS, "action": "answer", "csrf_token": "expired.token"})
        html = patients_own_page(expired)
        assert expired.status_code == 400 and 'id="trouble"' in html and f'href="{link}{lang}"' in html
    assert "the form has expired" in html
    dead = app.test_client().post("/f/" + "Q" * 43, data={"action": "factor"})  # no link back where none works
    assert dead.status_code == 400 and 'id="link-gone"' in patients_own_page(dead)


def test_a_double_tap_on_send_lands_on_the_thank_you(app, invited, link, monkeypatch):
    from sqlalchemy.orm.exc import StaleDataError

    from qcflow.extensions import db
    from qcflow.followup.invitations import services

    client, page = confirmed(app, link)
    first_tap = services.answer

    def second_tap(invitation, data, *, now):  # the first tap's request wins the race for the version
        first_tap(invitation, data, now=now)
        db.session.commit()
        raise StaleDataError("UPDATE statement on table 'followup_invitation' expected to update 1 row(s)")

    monkeypatch.setattr(services, "answer", second_tap)
    response = client.post(link, data={**ANSWERS, "csrf_token": csrf(page), "action": "answer"})
    assert response.status_code == 200 and 'id="thanks"' in patients_own_page(response)
    assert fresh(invited).state == "answered"


@pytest.mark.parametrize("failure, status", [("stale", 409), ("limit", 429), ("bug", 500)])
def test_any_other_failure_shows_the_patients_own_page(app, invited, link, monkeypatch, caplog, failure, status):
    from sqlalchemy.orm.exc import StaleDataError

    from qcflow.core.errors import TooManyRequests
    from qcflow.followup.invitations import services

    def fail(*args, **kwargs):
        raise {"stale": StaleDataError("version moved"), "bug": RuntimeError("a bug"),
               "limit": TooManyRequests(headers={"Retry-After": "60"})}[failure]

    client = app.test_client()
    page = client.get(link)
    monkeypatch.setattr(services, "check_factor", fail)  # a double tap on "continue", a limit, a bug
    response = client.post(link + "?lang=en", data={"csrf_token": csrf(page), "action": "factor", "factor": "1961"})
    html = patients_own_page(response)
    assert response.status_code == status and 'id="trouble"' in html and f'href="{link}?lang=en"' in html
    assert ("arrived twice" in html) == (status == 409)
    assert (response.headers.get("Retry-After") == "60") == (status == 429)


def test_a_family_reporting_a_death_is_asked_only_the_date(app, invited, link, frozen):
    client, page = confirmed(app, link)
    english = client.get(link + "?lang=en").get_data(as_text=True)
    assert re.search(r"how is the patient(&#39;|&#x27;|')s health now\?", english) and "how do you feel" not in english
    assert "not needed if the patient has passed away" in english
    assert re.search(r'class="condolence js-hidden" id="condolence"', english)  # shown by the script when chosen
    no_date = client.post(link + "?lang=en", data={"csrf_token": csrf(page), "action": "answer",
                                                   "respondent": "family", "vital_status": "dead"})
    html = no_date.get_data(as_text=True)
    assert no_date.status_code == 422 and "Please give the date the patient passed away." in html
    assert 'id="condition-error"' not in html and 'id="satisfaction-error"' not in html
    assert re.search(r'class="condolence" id="condolence"', html)
    sent = client.post(link + "?lang=en", data={"csrf_token": csrf(page), "action": "answer", "respondent": "family",
                                                "vital_status": "dead",
                                                "died_on": (frozen - timedelta(days=5)).date().isoformat()})
    assert sent.status_code == 303 and fresh(invited).state == "answered"
    thanks = client.get(link + "?lang=en").get_data(as_text=True)
    assert 'id="condolence"' in thanks and 'id="education"' not in thanks and "nurse will call you" not in thanks


def test_recurrence_is_yes_no_or_not_known_yet(app, invited, link):
    from qcflow.extensions import db
    from qcflow.followup.models import Protocol

    protocol = db.session.get(Protocol, invited.task.protocol_id)
    protocol.outcome_items = [*protocol.outcome_items, "recurrence_metastasis"]
    db.session.commit()
    client, page = confirmed(app, link)
    html = page.get_data(as_text=True)
    assert [v for v in re.findall(r'name="recurrence_metastasis" value="([^"]+)"', html)] == ["yes", "no", "unknown"]
    sent = client.post(link, data={**ANSWERS, "csrf_token": csrf(page), "action": "answer",
                                   "recurrence_metastasis": "unknown"})
    assert sent.status_code == 303 and fresh(invited).answers["recurrence_metastasis"] == "unknown"


def test_the_gone_page_says_there_is_nothing_more_to_do(app, invited, link):
    gone = app.test_client().get("/f/" + "Q" * 43 + "?lang=en")
    assert "If you have already sent your answers, there is nothing more to do. Thank you." in gone_text(gone)


def test_the_follow_up_number_is_given_where_the_pages_say_to_call(app, invited, link):
    assert "0851-12345678" not in app.test_client().get("/f/" + "Q" * 43).get_data(as_text=True)
    app.config["FOLLOWUP_CONTACT_PHONE"] = "0851-12345678"
    assert "0851-12345678" in gone_text(app.test_client().get("/f/" + "Q" * 43))
    client, page = confirmed(app, link)
    assert "0851-12345678" in re.search(r'<p class="urgent" id="urgent">.*?</p>', page.get_data(as_text=True)).group(0)
    client.post(link, data={**ANSWERS, "csrf_token": csrf(page), "action": "answer", "revisit_requested": "1"})
    thanks = client.get(link + "?lang=en").get_data(as_text=True)
    assert "0851-12345678" in thanks and "The department will contact you to arrange a time." in thanks


def test_a_factor_that_cannot_be_one_is_the_fields_error_not_a_try(app, invited, link):
    client = app.test_client()
    slip = client.post(link + "?lang=en", data={"csrf_token": csrf(client.get(link)), "action": "factor",
                                                "factor": "abcd"})
    html = slip.get_data(as_text=True)
    assert slip.status_code == 422 and re.search(r'id="factor-error"[^>]*>Enter the year of birth as four digits', html)
    assert fresh(invited).wrong_factors == 0


def test_the_link_closes_after_ten_wrong_tries_in_all(app, invited, link):
    from qcflow.extensions import db

    invited.wrong_factors = 9
    db.session.commit()
    client = app.test_client()
    tenth = client.post(link, data={"csrf_token": csrf(client.get(link)), "action": "factor", "factor": "1960"})
    assert tenth.status_code == 404 and 'id="link-gone"' in tenth.get_data(as_text=True)
    assert fresh(invited).state == "closed"
    assert client.get(link).status_code == 404


def test_a_dead_known_link_repeated_is_never_refused_but_unknown_links_are(app, invited, link, frozen):
    """What views._guessing says: only unknown links are counted (a dead link opens nothing; nginx limits floods)."""
    from qcflow.extensions import db
    from qcflow.followup.invitations import services

    services.check_factor(invited, "1961", now=frozen)
    services.answer(invited, {"respondent": "patient", "condition": "same", "complication": False,
                              "unplanned_readmission": False, "reoperation": False, "satisfaction": 4}, now=frozen)
    db.session.commit()
    client = app.test_client()
    assert {client.get(link).status_code for _ in range(15)} == {404}
    prefix = link.rsplit("/", 1)[1][:4]
    assert [client.get(f"/f/{prefix}{i:039d}").status_code for i in range(11)][-1] == 429
