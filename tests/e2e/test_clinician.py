"""Clinician on a phone, in Chinese: an anonymous report in a handful of taps, the receipt code, a
question from the quality office answered anonymously, the outcome read after closure; a named
reporter follows the same under 我的上报."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import (CJK, E2E, api_call, check_accessible_form_fields, check_no_horizontal_scroll, login,
                                sending_report, shot)

pytestmark = E2E

#: The most taps and keyboard entries the anonymous report may take (DESIGN: "in under a minute").
MAX_INTERACTIONS = 15


class Counted:
    """Drives a page and counts the interactions a person would make (taps, choices, typed fields)."""

    def __init__(self, page):
        self.page, self.count = page, 0

    def fill(self, selector, text):
        self.count += 1
        self.page.fill(selector, text)

    def select(self, selector, **option):
        self.count += 1
        self.page.select_option(selector, **option)

    def tap(self, selector):
        self.count += 1
        self.page.click(selector)

    def check(self, selector):
        self.count += 1
        self.page.check(selector)


def event_state(server, event_id):
    status, body = api_call(server, "GET", f"/api/v1/events/{event_id}", token=server.facts["quality_token"])
    assert status == 200, body
    return body


def step(server, event_id, action, **fields):
    """The quality office takes a workflow step through the API (as its own tools could)."""
    version = event_state(server, event_id)["version"]
    status, body = api_call(server, "POST", f"/api/v1/events/{event_id}/transitions",
                            {"action": action, "version": version, **fields}, token=server.facts["quality_token"])
    assert status == 200, body
    return body


def pharmacy_id(server):
    import sqlalchemy as sa

    from qcflow.auth.models import Department
    from qcflow.extensions import db

    with server.db():
        return db.session.scalar(sa.select(Department.id).where(Department.code == "PHA"))


def local_input(minutes_ago: int) -> str:
    """A datetime-local value in the hospital's time zone."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return (datetime.now(ZoneInfo("Asia/Shanghai")) - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M")


def test_anonymous_report_on_a_phone_receipt_question_answer_and_outcome(server, contexts):
    phone = contexts("phone")
    page = phone.new_page()
    page.goto("/report")
    assert page.get_attribute("html", "lang") == "zh-CN" and CJK.search(page.inner_text("h1"))
    assert check_accessible_form_fields(page) == []
    assert check_no_horizontal_scroll(page)
    assert page.is_checked("input[name=mode][value=anonymous]")  # not logged in: anonymous is the default
    shot(page, "clinician-01-report-form", full_page=False)

    taps = Counted(page)
    taps.select("#category_code", value="medication")
    taps.check("input[name=reporter_grade][value=III]")
    taps.select("#care_stage", value="medication")
    taps.fill("#occurred_at", local_input(90))
    taps.fill("#discovered_at", local_input(60))
    taps.select("#department_id", label="普通外科")
    taps.fill("#location", "5病区治疗室")
    taps.fill("#description", "发药时发现床号相近的两位患者口服药袋放反，核对腕带时发现，未服用。")
    with sending_report(page):
        taps.tap("form button.primary")
    assert taps.count <= MAX_INTERACTIONS, taps.count

    assert page.locator("#receipt-code").count() == 1, page.inner_text("main")
    code = page.inner_text("#receipt-code").strip()
    assert len(code) >= 20 and page.locator("[role=alert]").count() == 1
    assert phone.cookies() == []  # anonymous: no cookie at all, nothing kept in the browser
    assert page.evaluate("sessionStorage.length + localStorage.length") == 0
    shot(page, "clinician-02-receipt-code", full_page=False)
    reference = re.search(r"AE-\d{4}-\d+", page.inner_text("main h1 + p")).group()

    import sqlalchemy as sa

    from qcflow.events.models import AdverseEvent
    from qcflow.extensions import db

    with server.db():  # the demo and earlier journeys hold other anonymous reports: find this one by its reference
        event = db.session.scalar(sa.select(AdverseEvent).where(AdverseEvent.reference == reference))
        event_id = event.id
        assert (event.mode, event.category_code, event.reporter_user_id) == ("anonymous", "medication", None)

    step(server, event_id, "request_info", message="请问当时是否有双人核对？药袋上的床号是否清晰？")

    page.goto("/receipt")
    page.fill("#receipt_code", code)
    with page.expect_navigation():
        page.click("form button.primary")
    assert "请问当时是否有双人核对" in page.inner_text("main")
    page.fill("#message", "当时只有一人发药，药袋床号是手写的，字迹模糊。")
    with page.expect_navigation():
        page.click("form button.primary")
    assert "字迹模糊" in page.inner_text("main")
    assert event_state(server, event_id)["state"] == "submitted"
    shot(page, "clinician-03-receipt-answered")

    step(server, event_id, "triage", confirmed_grade="III", handling_department_id=pharmacy_id(server),
         external_severity="none")
    step(server, event_id, "close", analysis="手写床号不清，发药未执行双人核对。",
         feedback="感谢上报。药剂科已改为打印床号标签，并在病区开展发药双人核对培训。")

    page.goto("/receipt")
    page.fill("#receipt_code", code)
    with page.expect_navigation():
        page.click("form button.primary")
    assert "打印床号标签" in page.inner_text(".feedback")
    assert check_no_horizontal_scroll(page)
    shot(page, "clinician-04-outcome", full_page=False)


def test_named_reporter_sees_question_and_feedback_under_my_reports(server, contexts):
    import sqlalchemy as sa

    from qcflow.auth.models import User
    from qcflow.events.models import AdverseEvent
    from qcflow.extensions import db

    with server.db():
        doctor = db.session.scalar(sa.select(User.id).where(User.username == "doctor"))
        event_id = db.session.scalar(sa.select(AdverseEvent.id).where(AdverseEvent.reporter_user_id == doctor))
    step(server, event_id, "request_info", message="胰岛素是哪一种剂型？")

    page = contexts("phone").new_page()
    login(page, "doctor")
    assert page.inner_text("#nav-notifications .badge") == "1"
    page.click("#nav-my-reports")
    page.wait_for_url("**/my/reports")
    assert page.inner_text("h1") == "我的上报"
    report = page.locator(f"#report-{event_id}")
    assert "胰岛素是哪一种剂型" in report.inner_text()
    report.locator("textarea[name=message]").fill("速效胰岛素笔芯。")
    with page.expect_navigation():
        report.locator("button[type=submit]").click()
    assert event_state(server, event_id)["state"] == "submitted"

    step(server, event_id, "triage", confirmed_grade="III", handling_department_id=pharmacy_id(server),
         external_severity="none")
    step(server, event_id, "close", analysis="抽药未核对单位。", feedback="已在病区推行高警示药品双人核对。")
    page.reload()
    report = page.locator(f"#report-{event_id}")
    assert "双人核对" in report.locator(".feedback").inner_text() and "速效胰岛素笔芯" in report.inner_text()
    assert check_no_horizontal_scroll(page)
    shot(page, "clinician-05-my-reports", full_page=False)


def test_logged_in_doctor_reports_anonymously_without_the_login_then_by_name_on_a_phone(server, contexts):
    """A2 in a browser holding a login: /report opens no session (neutral top bar, cookie untouched); the
    named report is one tap away, on the logged-in form."""
    import sqlalchemy as sa

    from qcflow.auth.models import User
    from qcflow.events.models import AdverseEvent
    from qcflow.extensions import db

    phone = contexts("phone", user="doctor")
    page = phone.new_page()
    page.goto("/")
    with page.expect_navigation():
        page.click("#nav-report")  # staff who are logged in start on the named form
    assert page.url.endswith("/report/named") and page.is_checked("input[name=mode][value=named]")
    with page.expect_navigation():
        page.click("#anonymous-form")
    assert page.locator("#nav-account").count() == 0 and page.locator("#nav-notifications").count() == 0
    assert page.is_checked("input[name=mode][value=anonymous]") and page.is_disabled("input[name=mode][value=named]")
    cookies = phone.cookies()

    def fill(taps, description):
        taps.select("#category_code", value="fall")
        taps.check("input[name=reporter_grade][value=IV]")
        taps.select("#care_stage", value="nursing")
        taps.fill("#occurred_at", local_input(50))
        taps.fill("#discovered_at", local_input(40))
        taps.select("#department_id", label="普通外科")
        taps.fill("#location", "5病区走廊")
        taps.fill("#description", description)
        with sending_report(page):
            taps.tap("form button.primary")

    fill(Counted(page), "患者夜间如厕时在走廊滑倒，未受伤。")
    assert page.locator("#receipt-code").count() == 1, page.inner_text("main")
    assert phone.cookies() == cookies  # the login's cookie was neither read into a session nor refreshed
    with server.db():
        event = db.session.scalar(sa.select(AdverseEvent).where(AdverseEvent.description.like("%走廊滑倒%")))
        assert event.mode == "anonymous" and event.reporter_user_id is None

    page.goto("/report")
    taps = Counted(page)
    with page.expect_navigation():
        taps.tap("#named-form")
    fill(taps, "床栏未拉起，患者坠床，轻度擦伤。")
    assert taps.count <= MAX_INTERACTIONS, taps.count
    page.wait_for_url("**/my/reports**")
    with server.db():
        doctor = db.session.scalar(sa.select(User.id).where(User.username == "doctor"))
        event = db.session.scalar(sa.select(AdverseEvent).where(AdverseEvent.description.like("%患者坠床%")))
        assert event.mode == "named" and event.reporter_user_id == doctor


@pytest.mark.parametrize("lang, required", [("zh", "必填"), ("en", "required")])
def test_field_errors_are_in_the_page_language_next_to_the_field_and_keep_the_typed_text(server, contexts, lang, required):
    page = contexts("phone", locale="zh-CN" if lang == "zh" else "en-GB").new_page()
    page.goto(f"/report?lang={lang}")
    page.fill("#location", "3号手术间")
    page.fill("#description", "器械清点数目不符，术中找到。")
    with sending_report(page):
        page.click("form button.primary")
    error = page.locator("#category_code-error")
    assert required in error.inner_text().lower()
    assert page.get_attribute("#category_code", "aria-describedby") == "category_code-error"
    assert page.get_attribute("#category_code", "aria-invalid") == "true"
    assert page.input_value("#description") == "器械清点数目不符，术中找到。"
    assert page.input_value("#location") == "3号手术间"
    # focus on the first error (the page's script moves it there once loaded; a busy machine may take a moment)
    # (a locator assertion: a string predicate would be polled through eval, which the page's CSP refuses)
    expect(page.locator("[aria-invalid=true]").first).to_be_focused(timeout=5000)
    if lang == "zh":
        shot(page, "clinician-06-field-errors", full_page=False)


def test_a_double_click_on_submit_files_one_report(server, contexts):
    import sqlalchemy as sa

    from qcflow.events.models import AdverseEvent
    from qcflow.extensions import db

    def count():
        with server.db():
            return db.session.scalar(sa.select(sa.func.count()).select_from(AdverseEvent))

    before = count()
    page = contexts("phone").new_page()
    page.goto("/report")
    page.select_option("#category_code", "device")
    page.check("input[name=reporter_grade][value=IV]")
    page.select_option("#care_stage", "surgery_anaesthesia")
    page.fill("#occurred_at", local_input(30))
    page.fill("#discovered_at", local_input(20))
    page.select_option("#department_id", label="普通外科")
    page.fill("#location", "手术室 2 号间")
    page.fill("#description", "电刀回路垫报警，更换后正常。")
    with sending_report(page):
        page.dblclick("form button.primary")
    page.wait_for_selector("#receipt-code")
    assert count() == before + 1


def test_the_server_also_refuses_the_same_form_twice(server, contexts):
    """Without JavaScript (or with a client that retries), the form's one-time token makes the second post a no-op."""
    import sqlalchemy as sa

    from qcflow.events.models import AdverseEvent
    from qcflow.extensions import db

    context = contexts("phone")
    page = context.new_page()
    page.goto("/report")
    form = {name: page.get_attribute(f"input[name={name}]", "value") for name in ("csrf_token", "form_key")}
    form.update({"mode": "anonymous", "category_code": "other", "reporter_grade": "IV", "care_stage": "other",
                 "occurred_at": local_input(30), "discovered_at": local_input(20), "department_id": page.locator("#department_id option", has_text="普通外科").get_attribute("value"),
                 "location": "门诊大厅", "description": "地面湿滑未放警示牌。", "wants_feedback": "1"})
    with server.db():
        before = db.session.scalar(sa.select(sa.func.count()).select_from(AdverseEvent))
    first = context.request.post("/report", form=form)
    second = context.request.post("/report", form=form)
    assert first.status == 200 and "receipt-code" in first.text()
    code = re.search(r'data-code="([^"]+)"', first.text()).group(1)
    # the second post files nothing and answers with the first report's receipt (issue 17)
    assert second.status == 200 and re.search(r'data-code="([^"]+)"', second.text()).group(1) == code
    with server.db():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(AdverseEvent)) == before + 1
