"""A used anonymous form key gives its receipt back only to the same report; a short reply repeated to a new
question is an answer, not a reload."""
import re
from datetime import datetime, timezone

import sqlalchemy as sa

from tests.events.test_session_free import page_token, report_form

KEY_RE = re.compile(r'name="form_key" value="([^"]+)"')


def fresh_form(client) -> dict:
    """The hidden fields of a freshly served anonymous form, as a browser sends them."""
    html = client.get("/report").get_data(as_text=True)
    return {"csrf_token": page_token(html), "form_key": KEY_RE.search(html).group(1)}


def event_count(app) -> int:
    from qcflow.events.models import AdverseEvent
    from qcflow.extensions import db

    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(AdverseEvent))


def receipt_of(html: str) -> tuple[str, str]:
    found = re.search(r'data-reference="([^"]+)" data-code="([^"]+)"', html)
    return found.group(1), found.group(2)


def test_a_used_form_key_with_other_content_files_nothing_and_names_no_report(app, clients, report_body):
    victim, other = clients("anonymous"), app.test_client()
    form = fresh_form(victim)
    sent = victim.post("/report", data={**form, **report_form(report_body, description="夜班给药剂量多配一倍，已拦截。")})
    reference, code = receipt_of(sent.get_data(as_text=True))
    # Whoever saw the form's key sends it with their own CSRF token and other content.
    answer = other.post("/report", data={**report_form(report_body, description="随便写的内容"),
                                         "form_key": form["form_key"], "csrf_token": fresh_form(other)["csrf_token"]})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 409
    assert reference not in html and code not in html and "data-code" not in html
    assert "此表单已提交过" in html and "请打开一份新表单" in html
    assert event_count(app) == 1
    english = other.post("/report?lang=en", data={**report_form(report_body, location="another ward"),
                                                  "form_key": form["form_key"],
                                                  "csrf_token": fresh_form(other)["csrf_token"]})
    assert english.status_code == 409 and "This form was already sent" in english.get_data(as_text=True)
    assert code not in english.get_data(as_text=True) and event_count(app) == 1


def test_the_same_report_sent_again_gets_its_receipt_back_whatever_the_spacing(app, clients, report_body):
    reporter = clients("anonymous")
    form = fresh_form(reporter)
    body = report_form(report_body, description="夜班给药剂量多配一倍，已拦截。")
    first = receipt_of(reporter.post("/report", data={**form, **body}).get_data(as_text=True))
    again = reporter.post("/report", data={**form, **body, "description": "  夜班给药剂量多配一倍，已拦截。\r\n",
                                           "csrf_token": fresh_form(reporter)["csrf_token"]})
    assert again.status_code == 200 and receipt_of(again.get_data(as_text=True)) == first
    assert "只登记了一次" in again.get_data(as_text=True) and event_count(app) == 1


def test_a_used_form_without_a_receipt_code_answers_without_naming_the_report(app, clients, report_body):
    reporter = clients("anonymous")
    form = fresh_form(reporter)
    body = report_form(report_body, wants_feedback="0")
    assert reporter.post("/report", data={**form, **body}).status_code == 200
    again = reporter.post("/report", data={**form, **body})
    assert again.status_code == 409 and "此表单已提交过" in again.get_data(as_text=True)
    assert "AE-" not in again.get_data(as_text=True) and event_count(app) == 1


def test_the_csrf_token_is_not_a_key_to_someone_elses_receipt(app, clients, report_body):
    """A post without the form's key (only a CSRF token) is a new report: the token is no key to another's."""
    victim, other = clients("anonymous"), app.test_client()
    token = fresh_form(victim)["csrf_token"]
    reference, code = receipt_of(victim.post("/report", data={**report_form(report_body), "csrf_token": token})
                                 .get_data(as_text=True))
    answer = other.post("/report", data={**report_form(report_body, description="别的内容"), "csrf_token": token})
    html = answer.get_data(as_text=True)
    assert reference not in html and code not in html
    assert event_count(app) == 2  # a post without a form key is a report of its own


def test_the_same_short_answer_to_a_second_question_is_added(app, report_body):
    from qcflow.auth.models import User
    from qcflow.core.actors import Actor
    from qcflow.events import services
    from qcflow.events.models import EventMessage
    from qcflow.extensions import db

    at = lambda hour: datetime(2026, 3, 2, hour, 10, tzinfo=timezone.utc)  # noqa: E731
    with app.app_context():
        quality = Actor.for_user(db.session.scalar(sa.select(User).where(User.username == "quality")))
        event, code = services.file_report(report_body(occurred_at=at(0), discovered_at=at(1)), mode="anonymous",
                                           actor=Actor.anonymous(), now=at(2))
        services.transition_event(event, "request_info", {"message": "当时是否已双人核对？"}, actor=quality,
                                  now=at(3), expected_version=event.version)
        services.reply_by_receipt(code, "是", now=at(4), seen=1)
        services.reply_by_receipt(code, "是", now=at(4), seen=1)  # the same page sent again: added once
        services.add_message(event, "to_reporter", "药品是否已送药剂科？", actor=quality, now=at(5))
        services.reply_by_receipt(code, "是", now=at(6), seen=1)  # an answer to the new question
        db.session.commit()
        bodies = list(db.session.scalars(sa.select(EventMessage.body).where(EventMessage.event_id == event.id)
                                          .order_by(EventMessage.number)))
    assert bodies == ["当时是否已双人核对？", "是", "药品是否已送药剂科？", "是"]
