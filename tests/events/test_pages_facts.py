"""Issue 17 on the event pages: every fact a handler entered is on the case page, every code is shown as
its label, an anonymous form sent twice files one report, and the dialogue with an anonymous reporter
stays in order."""
import re

import sqlalchemy as sa

from tests.conftest import csrf_from
from tests.events.test_intake import csrf
from tests.events.test_session_free import form_of, report_form


def visible(html: str) -> str:
    """The page's text as read (tags dropped), for "is it shown" checks."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def closed_named_case(clients, hospital, report_body, act):
    """A named medication case worked through to closure with every field the handler sets."""
    doctor, quality = clients("clinician"), clients("quality")
    q = {"X-CSRFToken": csrf(quality)}
    filed = doctor.post("/api/v1/events", headers={"X-CSRFToken": csrf(doctor)}, json={
        **report_body(harm="moderate", patient_mrn="BA7788123"), "mode": "named"}).json
    event_id = filed["id"]
    r = act(quality, event_id, "triage", 2, q, confirmed_grade="II", handling_department_id=hospital["pharmacy"].id,
            external_severity="general").json
    r = act(quality, event_id, "start_investigation", r["version"], q).json
    action = quality.post(f"/api/v1/events/{event_id}/actions", headers=q, json={
        "title": "双人核对培训", "improvement_type": "training", "owner_department_id": hospital["pharmacy"].id,
        "due_on": "2026-04-30"}).json
    version = quality.get(f"/api/v1/events/{event_id}").json["version"]
    r = act(quality, event_id, "plan_actions", version, q, rca_cause_domains=["process", "practice"],
            rca_factors="双人核对未执行", analysis="夜班配药未执行双人核对，系统无剂量上限提醒。").json
    path = f"/api/v1/events/{event_id}/actions/{action['id']}/transitions"
    done = quality.post(path, headers=q, json={"action": "complete", "version": action["version"], "evidence": "签到表"})
    quality.post(path, headers=q, json={"action": "verify", "version": done.json["version"]})
    from qcflow.reactions import EXTENSION

    answers = quality.application.extensions[EXTENSION].answers
    real = answers["event.has_signed_case_review"]
    answers["event.has_signed_case_review"] = lambda event: True  # grade II: the discussion record is the MDT module's
    try:
        version = quality.get(f"/api/v1/events/{event_id}").json["version"]
        r = act(quality, event_id, "verify", version, q).json
        closed = act(quality, event_id, "close", r["version"], q, improvement_types=["training", "system_change"],
                     feedback="已培训。")
    finally:
        answers["event.has_signed_case_review"] = real
    assert closed.json["state"] == "closed", closed.json
    return event_id


def test_case_page_shows_every_fact_entered_as_labels(clients, hospital, report_body, act):
    event_id = closed_named_case(clients, hospital, report_body, act)
    page = visible(clients("quality").get(f"/events/{event_id}").get_data(as_text=True))
    for shown in ("普通外科",  # department where it happened
                  "药剂科",  # handling department
                  "中度",  # harm
                  "BA7788123",  # record number, for the quality office
                  "一般",  # external report level
                  "夜班配药未执行双人核对",  # analysis
                  "培训教育", "改变系统运行模式",  # improvement types chosen at closure
                  "药品事件", "剂量错误",  # category / subcategory
                  "问题所在：流程、实践",  # cause domains, with the Chinese colon
                  "分级 已于"):  # a deadline met says so instead of still showing its due time
        assert shown in page, shown
    for raw in ("medication", "wrong_dose", "process,practice", "training", "system_change", "None"):
        assert raw not in page, raw


def test_case_page_in_english_shows_english_labels(clients, hospital, report_body, act):
    event_id = closed_named_case(clients, hospital, report_body, act)
    page = visible(clients("quality").get(f"/events/{event_id}?lang=en").get_data(as_text=True))
    assert "Medication / Wrong dose" in page and "Process, Practice" in page and "Moderate" in page
    assert "wrong_dose" not in page and "process,practice" not in page


def test_department_head_sees_the_facts_but_not_the_record_number(clients, hospital, report_body, act):
    event_id = closed_named_case(clients, hospital, report_body, act)
    page = visible(clients("head").get(f"/events/{event_id}").get_data(as_text=True))
    assert "BA7788123" not in page and "仅质控办可见" in page
    assert "普通外科" in page and "药剂科" in page and "夜班配药未执行双人核对" in page


def test_inbox_and_my_reports_show_category_labels(clients, hospital, report_body, act):
    closed_named_case(clients, hospital, report_body, act)
    inbox = visible(clients("quality").get("/events").get_data(as_text=True))
    mine = visible(clients("clinician").get("/my/reports").get_data(as_text=True))
    for page in (inbox, mine):
        assert "药品事件 / 剂量错误" in page and "wrong_dose" not in page
    assert "Ⅱ级" in inbox or "II 级" in inbox


def post_anonymous(client, page_html, report_body, **fields):
    """Send the anonymous form as a browser does: with its CSRF token and its one-time key."""
    key = re.search(r'name="form_key" value="([^"]+)"', page_html).group(1)
    return client.post("/report", data=form_of(page_html, form_key=key, **report_form(report_body, **fields)))


def receipt_code_of(html: str) -> str:
    return re.search(r'data-code="([^"]+)"', html).group(1)


def test_anonymous_form_sent_again_shows_the_same_receipt_and_files_nothing(app, clients, report_body):
    from qcflow.events.models import AdverseEvent
    from qcflow.extensions import db

    anonymous = clients("anonymous")
    form = anonymous.get("/report").get_data(as_text=True)
    first = post_anonymous(anonymous, form, report_body)
    again = post_anonymous(anonymous, form, report_body)  # Back, then Submit once more; or a reload
    assert first.status_code == again.status_code == 200
    code = receipt_code_of(first.get_data(as_text=True))
    assert receipt_code_of(again.get_data(as_text=True)) == code
    assert "只登记了一次" in again.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(AdverseEvent)) == 1
    assert "Set-Cookie" not in first.headers and "Set-Cookie" not in again.headers
    other = post_anonymous(anonymous, anonymous.get("/report").get_data(as_text=True), report_body)
    assert receipt_code_of(other.get_data(as_text=True)) != code  # a new form is a new report


def test_anonymous_form_without_feedback_sent_again_files_nothing(app, clients, report_body):
    from qcflow.events.models import AdverseEvent
    from qcflow.extensions import db

    anonymous = clients("anonymous")
    form = anonymous.get("/report").get_data(as_text=True)
    first, again = (post_anonymous(anonymous, form, report_body, wants_feedback="0") for _ in range(2))
    assert first.status_code == 200 and "data-code" not in first.get_data(as_text=True)
    # Without a receipt code there is nothing to give back: the page that names no report.
    assert again.status_code == 409 and "data-code" not in again.get_data(as_text=True)
    assert "此表单已提交过" in again.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(AdverseEvent)) == 1


def test_receipt_address_page_is_the_same_for_everybody_and_sets_no_cookie(clients):
    for who in ("anonymous", "clinician"):
        page = clients(who).get("/report/received?lang=en")
        assert page.status_code == 200 and "Set-Cookie" not in page.headers
        html = page.get_data(as_text=True)
        assert "data-code" not in html and 'data-address="/report/received?lang=en"' in html


def test_named_form_sent_twice_files_one_report(app, clients, report_body):
    from qcflow.events.models import AdverseEvent
    from qcflow.extensions import db

    doctor = clients("clinician")
    html = doctor.get("/report/named").get_data(as_text=True)
    token = re.findall(r'name="csrf_token" value="([^"]+)"', html)[-1]
    key = re.search(r'name="form_key" value="([^"]+)"', html).group(1)
    body = {**report_form(report_body), "mode": "named", "csrf_token": token, "form_key": key}
    first, again = doctor.post("/report/named", data=body), doctor.post("/report/named", data=body)
    assert first.status_code == again.status_code == 302
    assert first.headers["Location"] == again.headers["Location"] and "filed=AE-" in again.headers["Location"]
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(AdverseEvent)) == 1


def test_anonymous_reply_is_shown_after_the_question_it_answers(app, clients, report_body):
    from datetime import datetime, timezone

    from qcflow.events import services
    from qcflow.events.models import AdverseEvent
    from qcflow.extensions import db

    anonymous, quality = clients("anonymous"), clients("quality")
    # Filed at 03:10 UTC, the question at 04:35 (hospital time 12:35), the reply at 04:50 (stored as 04:00).
    with app.app_context():
        from qcflow.auth.models import User
        from qcflow.core.actors import Actor

        body = report_body(occurred_at=datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc),
                           discovered_at=datetime(2026, 3, 2, 2, 0, tzinfo=timezone.utc))
        event, code = services.file_report(body, mode="anonymous", actor=Actor.anonymous(),
                                           now=datetime(2026, 3, 2, 3, 10, tzinfo=timezone.utc))
        user = db.session.scalar(sa.select(User).where(User.username == "quality"))
        services.transition_event(event, "request_info", {"message": "请问是哪个批次？"}, actor=Actor.for_user(user),
                                  now=datetime(2026, 3, 2, 4, 35, tzinfo=timezone.utc), expected_version=event.version)
        services.reply_by_receipt(code, "批号 2026A01。", now=datetime(2026, 3, 2, 4, 50, tzinfo=timezone.utc))
        db.session.commit()
        filed = {"id": event.id, "receipt_code": code}
    case = quality.get(f"/events/{filed['id']}").get_data(as_text=True)
    messages = visible(case[case.index('id="messages"'):case.index('id="timeline"')])
    assert messages.index("请问是哪个批次") < messages.index("批号 2026A01")
    assert "12:35–13:00" in messages  # the reply: after the question, within its stored hour
    timeline = visible(case[case.index('id="timeline"'):])
    # The timeline shows the reply as the message card does (its hour's span, from the question), after the
    # question; every anonymous entry shows its hour's span, and no time goes back.
    assert "12:35–13:00" in timeline and timeline.index("12:35 ") < timeline.index("12:35–13:00")
    assert "11:00–12:00" in timeline  # the anonymous report itself, filed at 11:10, stored as 11:00
    starts = re.findall(r"\d{4}-\d\d-\d\d (\d\d:\d\d)", timeline)
    assert starts == sorted(starts) and "12:00" not in starts, starts
    receipt = anonymous.post("/receipt", data={"csrf_token": csrf_from(anonymous, "/receipt"),
                                               "receipt_code": filed["receipt_code"]}).get_data(as_text=True)
    receipt = visible(receipt)
    assert receipt.index("请问是哪个批次") < receipt.index("批号 2026A01") and "12:35–13:00" in receipt


def codes_in(text: str, codes) -> list[str]:
    return sorted({code for code in codes if re.search(rf"(?<![\w/.-]){re.escape(code)}(?![\w/-])", text)})


def test_no_event_page_shows_a_raw_code_or_none(app, clients, hospital, report_body, act):
    """Every events page of every role, in both languages: no stored code, no Python None (the audit
    timeline, rendered elsewhere, is left out)."""
    from qcflow.events.models import (CARE_STAGES, CAUSE_DOMAINS, EXTERNAL_SEVERITY, HARM, IMPROVEMENT_TYPES,
                                      EventCategory, Mode)
    from qcflow.events.workflow import ActionState, EventState
    from qcflow.extensions import db

    closed = closed_named_case(clients, hospital, report_body, act)
    anonymous = clients("anonymous").post("/api/v1/events", json=report_body(harm="severe")).json
    with app.app_context():
        categories = [c.code for c in db.session.scalars(sa.select(EventCategory))]
    codes = {*categories, *CARE_STAGES, *HARM, *EXTERNAL_SEVERITY, *CAUSE_DOMAINS, *IMPROVEMENT_TYPES,
             *(s.value for s in EventState), *(s.value for s in ActionState), *(m.value for m in Mode), "None"}
    pages = {"quality": ["/events", f"/events/{closed}", f"/events/{anonymous['id']}"],
             "head": ["/events", f"/events/{closed}"],
             "clinician": ["/my/reports", "/report/named"],
             "anonymous": ["/report", "/report/received"]}
    for lang in ("zh", "en"):
        for who, paths in pages.items():
            for path in paths:
                html = clients(who).get(f"{path}?lang={lang}").get_data(as_text=True)
                html = re.sub(r'<ol class="timeline">.*?</ol>', "", html, flags=re.S)
                html = re.sub(r"<(script|option)[^>]*>.*?</\1>", "", html, flags=re.S)  # option values are codes
                text = visible(html)
                found = codes_in(text, codes if lang == "zh" else [c for c in codes if "_" in c or c == "None"])
                assert not found, (who, path, lang, found)
        receipt = clients("anonymous").post("/receipt", data={"csrf_token": csrf_from(clients("anonymous"), "/receipt"),
                                                              "receipt_code": anonymous["receipt_code"]})
        assert not codes_in(visible(receipt.get_data(as_text=True)), {"submitted", "None"})


def test_root_cause_step_waits_for_an_action_and_cancelling_one_states_the_consequence(clients, hospital, report_body,
                                                                                      act):
    doctor, quality = clients("clinician"), clients("quality")
    q = {"X-CSRFToken": csrf(quality)}
    event_id = doctor.post("/api/v1/events", headers={"X-CSRFToken": csrf(doctor)},
                           json={**report_body(), "mode": "named"}).json["id"]
    r = act(quality, event_id, "triage", 2, q, confirmed_grade="III", handling_department_id=hospital["pharmacy"].id,
            external_severity="none").json
    act(quality, event_id, "start_investigation", r["version"], q)
    page = quality.get(f"/events/{event_id}").get_data(as_text=True)
    step = page[page.index('id="step-plan_actions"'):page.index("</details>", page.index('id="step-plan_actions"'))]
    assert "请先至少添加一项整改措施" in step and 'name="rca_factors"' not in step  # said before the form
    assert 'href="#add-action-title"' in step
    quality.post(f"/api/v1/events/{event_id}/actions", headers=q, json={
        "title": "双人核对培训", "improvement_type": "training", "owner_department_id": hospital["pharmacy"].id,
        "due_on": "2026-04-30"})
    page = quality.get(f"/events/{event_id}").get_data(as_text=True)
    step = page[page.index('id="step-plan_actions"'):page.index("</details>", page.index('id="step-plan_actions"'))]
    assert 'name="rca_factors"' in step and "请先至少添加一项整改措施" not in step
    assert "取消后该措施不再跟踪" in visible(page[page.index('id="actions"'):])


def test_an_anonymous_reply_sent_again_from_the_same_page_is_added_once(app, clients, report_body):
    from qcflow.events.models import EventMessage
    from qcflow.extensions import db

    anonymous = clients("anonymous")
    code = anonymous.post("/api/v1/events", json=report_body()).json["receipt_code"]
    page = anonymous.post("/receipt", data={"csrf_token": csrf_from(anonymous, "/receipt"), "receipt_code": code})
    html = page.get_data(as_text=True)
    form = {"csrf_token": re.findall(r'name="csrf_token" value="([^"]+)"', html)[-1], "receipt_code": code,
            "seen": re.search(r'name="seen" value="(\d+)"', html).group(1), "message": "药品批号 2026A01。"}
    for _ in range(2):  # sent, then the page reloaded and sent again
        assert anonymous.post("/receipt", data=form).status_code == 200
    anonymous.post("/receipt", data={**form, "message": "另外，当时是夜班。"})
    with app.app_context():
        bodies = list(db.session.scalars(sa.select(EventMessage.body).order_by(EventMessage.number)))
    assert bodies == ["药品批号 2026A01。", "另外，当时是夜班。"]


def test_the_inbox_overdue_count_is_red_only_when_cases_are_overdue(clients, report_body):
    """A red "已超时 0" read as an alarm; at zero the count stays neutral, with one overdue case it is red."""
    quality = clients("quality")
    link = re.compile(r'<a href="\?overdue=1"[^>]*>')
    assert link.search(quality.get("/events").get_data(as_text=True)).group(0) == '<a href="?overdue=1">'
    from qcflow.events.models import AdverseEvent
    from qcflow.extensions import db

    filed = clients("clinician")
    event_id = filed.post("/api/v1/events", headers={"X-CSRFToken": csrf(filed)},
                          json={**report_body(), "mode": "named"}).json["id"]
    with quality.application.app_context():
        event = db.session.get(AdverseEvent, event_id)
        event.triage_due_at = event.submitted_at.replace(year=2000)
        db.session.commit()
    assert 'class="overdue"' in link.search(quality.get("/events").get_data(as_text=True)).group(0)
