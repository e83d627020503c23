"""Issue 17 on the event pages, in Chromium at phone and desktop widths, in Chinese and English: the
anonymous receipt survives a reload and a resent form files nothing twice; the receipt code wraps only
between its groups; the session-free pages keep the language; the case page shows every fact as labels;
steps that cannot be taken yet say why before the form; withdrawing asks first."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import E2E, sending_report, shot
from tests.e2e.test_clinician import local_input

pytestmark = E2E

TEXT = {
    "zh": {"received": "报告已收到", "again": "只登记了一次", "check": "查询回执"},
    "en": {"received": "Report received", "again": "filed once, not twice", "check": "Check a receipt"},
}
RAW_CODES = ("wrong_dose", "medication /", "process,practice", "rules,", "investigating", "None", "general_surgery")


def count_events(server) -> int:
    import sqlalchemy as sa

    from qcflow.events.models import AdverseEvent
    from qcflow.extensions import db

    with server.db():
        return db.session.scalar(sa.select(sa.func.count()).select_from(AdverseEvent))


def fill_report(page, description: str) -> None:
    page.select_option("#category_code", "fall")
    page.check("input[name=reporter_grade][value=IV]")
    page.select_option("#care_stage", "nursing")
    page.fill("#occurred_at", local_input(50))
    page.fill("#discovered_at", local_input(40))
    page.select_option("#department_id", index=1)
    page.fill("#location", "5病区走廊")
    page.fill("#description", description)


def groups_unbroken(page) -> bool:
    """Every group of the receipt code lies on one line (a group split over two lines has two boxes)."""
    return page.evaluate("""() => Array.from(document.querySelectorAll('#receipt-code .code-group'))
        .every(g => g.getClientRects().length === 1)""")


@pytest.mark.parametrize("kind, lang", [("phone", "zh"), ("phone", "en"), ("desktop", "zh"), ("desktop", "en")])
def test_anonymous_receipt_survives_reload_and_back_and_a_resent_form_files_nothing(server, contexts, kind, lang):
    context = contexts(kind, locale="zh-CN" if lang == "zh" else "en-GB")
    page = context.new_page()
    page.goto(f"/report?lang={lang}")
    before = count_events(server)
    fill_report(page, f"走廊地面湿滑，患者险些跌倒（{kind} {lang}）。")
    with sending_report(page):
        page.click("form button.primary")
    assert TEXT[lang]["received"] in page.inner_text("main")
    code = page.inner_text("#receipt-code").strip()
    assert re.fullmatch(r"[A-Z2-9]{4}(-[A-Z2-9]{1,4}){6}", code), code
    page.wait_for_url(re.compile(r"/report/received\?lang=" + lang + r"#AE-\d{4}-\d+/" + code))
    assert count_events(server) == before + 1
    assert groups_unbroken(page)
    assert context.cookies() == []  # the anonymous pages set no cookie
    shot(page, f"events-receipt-{kind}-{lang}", full_page=False)

    page.reload()  # a phone reloading the tab: the code is still there, no error
    assert page.inner_text("#receipt-code").strip() == code
    assert not page.locator(".error:visible").count()
    assert groups_unbroken(page)
    check = page.locator("main a", has_text=TEXT[lang]["check"])
    assert check.get_attribute("href") == f"/receipt?lang={lang}"

    page.go_back()  # Back shows the filled form again; sending it once more files nothing new
    page.wait_for_url(re.compile(r"/report\?lang="))
    expect(page.locator("#description")).not_to_have_value("")
    with sending_report(page):
        page.click("form button.primary")
    assert TEXT[lang]["again"] in page.inner_text("main")
    assert page.inner_text("#receipt-code").strip() == code
    assert count_events(server) == before + 1

    page.goto(f"/report?lang={lang}")  # a new, empty form is a new report
    fill_report(page, f"另一件事：治疗室门未关（{kind} {lang}）。")
    with sending_report(page):
        page.click("form button.primary")
    assert TEXT[lang]["again"] not in page.inner_text("main")
    assert page.inner_text("#receipt-code").strip() != code
    assert count_events(server) == before + 2


def test_a_form_sent_twice_shows_the_first_receipt_again(server, contexts):
    """A client that sends the same form twice (no JavaScript, a retry on a bad line) gets the same receipt."""
    context = contexts("phone")
    page = context.new_page()
    page.goto("/report")
    form = {"csrf_token": page.get_attribute("input[name=csrf_token]", "value"),
            "form_key": page.get_attribute("input[name=form_key]", "value"), "mode": "anonymous",
            "category_code": "other", "reporter_grade": "IV", "care_stage": "other",
            "occurred_at": local_input(30), "discovered_at": local_input(20),
            "department_id": page.locator("#department_id option").nth(1).get_attribute("value"),
            "location": "门诊大厅", "description": "地面湿滑未放警示牌。", "wants_feedback": "1"}
    before = count_events(server)
    first = context.request.post("/report", form=form)
    second = context.request.post("/report", form=form)
    code = re.search(r'data-code="([^"]+)"', first.text()).group(1)
    assert second.status == 200 and re.search(r'data-code="([^"]+)"', second.text()).group(1) == code
    assert "只登记了一次" in second.text()
    assert count_events(server) == before + 1


@pytest.mark.parametrize("kind, lang", [("phone", "zh"), ("desktop", "en")])
def test_a_sent_form_changed_after_back_files_nothing_and_shows_no_receipt(server, contexts, kind, lang):
    """Back, another text, Submit: the form's key was used, so nothing is filed and no receipt is shown
    (whoever holds a used form gets the receipt only for the same report); a fresh form is offered."""
    words = {"zh": ("此表单已提交过", "请打开一份新表单", "打开新表单"),
             "en": ("This form was already sent", "send it from a fresh form", "Open a fresh form")}[lang]
    page = contexts(kind, locale="zh-CN" if lang == "zh" else "en-GB").new_page()
    page.goto(f"/report?lang={lang}")
    before = count_events(server)
    fill_report(page, f"治疗室地面有水（{kind} {lang}）。")
    with sending_report(page):
        page.click("form button.primary")
    code = page.inner_text("#receipt-code").strip()
    reference = page.inner_text("#receipt-reference").strip()
    page.go_back()
    page.wait_for_url(re.compile(r"/report\?lang="))
    expect(page.locator("#description")).not_to_have_value("")
    page.fill("#description", f"换了一段文字（{kind} {lang}）。")
    with sending_report(page):
        page.click("form button.primary")
    main = page.inner_text("main")
    assert words[0] in main and words[1] in main
    assert code not in page.content() and reference not in main
    assert count_events(server) == before + 1
    shot(page, f"events-resent-{kind}-{lang}", full_page=False)
    with page.expect_navigation():
        page.click(f"main a:has-text('{words[2]}')")
    assert page.input_value("#description") == "" and count_events(server) == before + 1


def test_receipt_address_opened_elsewhere_explains_where_the_code_is(server, contexts):
    page = contexts("phone", locale="en-GB").new_page()
    page.goto("/report/received?lang=en")
    assert "address it was opened with" in page.inner_text("main")
    assert not page.locator("#receipt-code").is_visible()


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_session_free_pages_keep_the_language_on_their_links(server, contexts, lang):
    page = contexts("desktop").new_page()
    for path in ("/report", "/receipt", "/report/received"):
        page.goto(f"{path}?lang={lang}")
        hrefs = page.eval_on_selector_all(  # the page's own links and the section bar (the footer is the frame's)
            "main a[href^='/'], nav.sections a[href^='/'], #nav-login", "els => els.map(e => e.getAttribute('href'))")
        assert hrefs, path
        assert all(f"lang={lang}" in href for href in hrefs), (path, hrefs)


@pytest.fixture(scope="module")
def investigating_case(server):
    """A named medication case (wrong dose) triaged and under investigation, without corrective actions."""
    import sqlalchemy as sa

    from qcflow.auth.models import Department, User
    from qcflow.core.actors import Actor
    from qcflow.core.time import now
    from qcflow.events import services
    from qcflow.extensions import db

    at = now()
    with server.db():
        users = {u.username: u for u in db.session.scalars(sa.select(User))}
        departments = {d.code: d for d in db.session.scalars(sa.select(Department))}
        event, _code = services.file_report(
            {"category_code": "medication", "subcategory_code": "wrong_dose", "reporter_grade": "III",
             "care_stage": "medication", "occurred_at": at - timedelta(hours=3), "discovered_at": at - timedelta(hours=2),
             "location": "5病区治疗室", "department_id": departments["GS"].id, "harm": "mild",
             "patient_mrn": "BA260099", "description": "胰岛素剂量多抽 4 单位，双人核对时发现。"},
            mode="named", actor=Actor.for_user(users["doctor"]), now=at - timedelta(hours=1))
        quality = Actor.for_user(users["quality"])
        pharmacy = next(d for d in departments.values() if d.kind == "functional")
        services.transition_event(event, "triage", {"confirmed_grade": "III", "handling_department_id": pharmacy.id,
                                                    "external_severity": "general"}, actor=quality, now=at)
        services.transition_event(event, "start_investigation", {}, actor=quality, now=at)
        db.session.commit()
        return {"id": event.id, "handling": pharmacy.name, "handling_en": pharmacy.name_en or pharmacy.name,
                "department": departments["GS"].name, "department_en": departments["GS"].name_en or departments["GS"].name}


@pytest.mark.parametrize("kind, lang", [("phone", "zh"), ("phone", "en"), ("desktop", "zh"), ("desktop", "en")])
def test_case_page_shows_every_fact_as_labels_and_says_why_a_step_waits(server, contexts, investigating_case,
                                                                        kind, lang):
    page = contexts(kind, locale="zh-CN" if lang == "zh" else "en-GB", user="quality").new_page()
    page.goto(f"/events/{investigating_case['id']}?lang={lang}")
    facts = page.inner_text("#facts")
    case = investigating_case
    expected = {"zh": ("药品事件 / 剂量错误", case["department"], "轻度", "BA260099", "一般，15 日内上报", case["handling"]),
                "en": ("Medication / Wrong dose", case["department_en"], "Mild", "BA260099", "General (一般)",
                       case["handling_en"])}[lang]
    for shown in expected:
        assert shown in facts, (shown, facts)
    main = page.inner_text("main")
    for raw in RAW_CODES:
        assert raw not in main, raw
    # The root-cause step says, before any form, that it needs a corrective action, and offers to add one.
    step = page.locator("#step-plan_actions")
    step.locator("summary").click()
    assert ("请先至少添加一项整改措施" if lang == "zh" else "Add at least one corrective action first") in step.inner_text()
    assert step.locator("textarea").count() == 0
    assert not page.locator("#add-action-title").is_visible()
    step.locator("a[href='#add-action-title']").click()  # the browser opens the form around the field
    assert page.locator("#add-action input[name=title]").is_visible()
    shot(page, f"events-case-{kind}-{lang}")


def test_withdrawing_a_report_asks_first(server, contexts):
    import sqlalchemy as sa

    from qcflow.auth.models import Department, User
    from qcflow.core.actors import Actor
    from qcflow.core.time import now
    from qcflow.events import services
    from qcflow.events.models import AdverseEvent
    from qcflow.extensions import db

    at = now()
    with server.db():
        doctor = db.session.scalar(sa.select(User).where(User.username == "doctor"))
        department = db.session.scalar(sa.select(Department).where(Department.code == "GS"))
        event, _code = services.file_report(
            {"category_code": "fall", "reporter_grade": "IV", "care_stage": "nursing",
             "occurred_at": at - timedelta(hours=3), "discovered_at": at - timedelta(hours=2), "location": "走廊",
             "department_id": department.id, "description": "撤回测试：走廊积水。"},
            mode="named", actor=Actor.for_user(doctor), now=at)
        db.session.commit()
        event_id = event.id
    page = contexts("phone", user="doctor").new_page()
    page.goto("/my/reports")
    card = page.locator(f"#report-{event_id}")
    button = card.locator("button", has_text="撤回")
    assert not button.is_visible()  # one tap does not withdraw
    card.locator(f"#withdraw-{event_id} summary").click()
    assert "无法恢复" in card.inner_text() and button.is_visible()
    with page.expect_navigation():
        button.click()
    with server.db():
        assert db.session.get(AdverseEvent, event_id).state == "withdrawn"


def test_named_form_sent_again_after_back_files_nothing(server, contexts):
    page = contexts("phone", user="doctor").new_page()
    page.goto("/report/named")
    before = count_events(server)
    fill_report(page, "署名上报：治疗车未上锁。")
    with sending_report(page):
        page.click("form button.primary")
    page.wait_for_url("**/my/reports**")
    first = page.url
    page.go_back()
    expect(page.locator("#description")).not_to_have_value("")
    with sending_report(page):
        page.click("form button.primary")
    page.wait_for_url("**/my/reports**")
    assert page.url == first and "filed=AE-" in first
    assert count_events(server) == before + 1


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_inbox_on_a_phone_keeps_references_and_times_whole(server, contexts, investigating_case, lang):
    page = contexts("phone", locale="zh-CN" if lang == "zh" else "en-GB", user="quality").new_page()
    page.goto(f"/events?lang={lang}")
    whole = page.evaluate("""() => Array.from(document.querySelectorAll('.inbox-cases .case-ref a, .inbox-cases td.when'))
        .every(el => { const r = document.createRange(); r.selectNodeContents(el); return r.getClientRects().length <= 1; })""")
    assert whole
    assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth + 1")
    assert ("药品事件 / 剂量错误" if lang == "zh" else "Medication / Wrong dose") in page.inner_text("main")
    shot(page, f"events-inbox-phone-{lang}")
