"""Quality office at a desk: the inbox, an anonymous case from question to closure with two corrective
actions, and a grade-4 operation stopped by the MDT gate, then booked after the MDT is signed."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from tests.e2e.conftest import E2E, api_call, check_accessible_form_fields, check_no_horizontal_scroll, login, shot

pytestmark = E2E


def take_step(page, action, fields=None, checks=()):
    """Open a step of the case page's "Next steps", fill it in and submit it."""
    inner = f'form:has(input[name=action][value="{action}"])'
    form = f"#steps {inner}"
    page.click(f"#steps details:has({inner}) > summary")
    for name, value in (fields or {}).items():
        target = page.locator(f"{form} [name={name}]")
        if target.evaluate("el => el.tagName") == "SELECT":
            target.select_option(value)
        else:
            target.fill(value)
    for name, value in checks:
        page.check(f'{form} input[name={name}][value="{value}"]')
    with page.expect_navigation():
        page.click(f"{form} button[type=submit]")


def test_quality_office_handles_an_anonymous_case_to_closure(server, contexts):
    from qcflow.events.models import AdverseEvent
    from qcflow.extensions import db

    with server.db():
        event = db.session.scalar(sa.select(AdverseEvent).where(  # a staff's anonymous report, not a family's
            AdverseEvent.mode == "anonymous", AdverseEvent.public_role.is_(None)))
        event_id, reference = event.id, event.reference

    page = contexts("desktop").new_page()
    login(page, "quality")
    page.click("#nav-events")
    page.wait_for_url("**/events")
    counts = page.inner_text("ul.counts")
    assert "已提交" in counts or "待" in counts
    assert int(page.inner_text("ul.counts a.overdue .count")) >= 1
    assert page.locator("tr.is-overdue .badge.overdue").count() >= 1
    assert check_accessible_form_fields(page) == []
    shot(page, "quality-01-inbox")

    with page.expect_navigation():
        page.click(f"text={reference}")
    assert "匿名" in page.inner_text(".facts")
    take_step(page, "request_info", {"message": "请补充：患者当时是否使用了助行器？"})
    assert page.locator("#messages li", has_text="助行器").count() == 1

    status, body = api_call(server, "POST", "/api/v1/receipts/reply",
                            {"receipt_code": server.facts["receipt_code"], "message": "没有使用助行器，护工在旁。"})
    assert status in (200, 201), body
    page.reload()
    assert page.locator("#messages li", has_text="护工在旁").count() == 1
    shot(page, "quality-02-case-reply")

    take_step(page, "triage", {"confirmed_grade": "IV", "handling_department_id": page.locator(
        '#steps option', has_text="护理部").first.get_attribute("value"), "external_severity": "none"})
    take_step(page, "start_investigation")
    for title, kind in (("病区走廊加装防滑地垫", "system_change"), ("夜班如厕陪护培训", "training")):
        page.click("#add-action > summary")
        form = page.locator('#actions form[action$="/actions"]')
        form.locator("[name=title]").fill(title)
        form.locator("[name=improvement_type]").select_option(kind)
        form.locator("[name=owner_department_id]").select_option(label="护理部")
        form.locator("[name=due_on]").fill((date.today() + timedelta(days=14)).isoformat())
        with page.expect_navigation():
            form.locator("button[type=submit]").click()
    assert page.locator("#actions > ul > li").count() == 2
    take_step(page, "plan_actions", {"rca_factors": "地面湿滑、夜间照明不足。"}, checks=[("rca_cause_domains", "process")])
    for action in ("complete", "verify"):
        for i in range(2):
            item = page.locator("#actions > ul > li").nth(i)
            form = item.locator(f'form:has(input[name=action][value="{action}"])')
            if action == "complete":
                form.locator("input[name=evidence]").fill("照片与签到表已归档")
            with page.expect_navigation():
                form.locator("button[type=submit]").click()
    assert page.locator("#actions .state", has_text="已验证").count() == 2
    take_step(page, "verify")
    take_step(page, "close", {"feedback": "感谢上报：走廊已加装防滑地垫，夜班已培训如厕陪护。"},
              checks=[("improvement_types", "system_change"), ("improvement_types", "training")])
    assert "已结案" in page.inner_text("h1 .state")
    shot(page, "quality-03-case-closed")

    status, body = api_call(server, "POST", "/api/v1/receipts/lookup", {"receipt_code": server.facts["receipt_code"]})
    assert status == 200 and "防滑地垫" in body["feedback"], body


def test_grade_four_operation_is_stopped_by_the_mdt_gate_then_booked(server, contexts):
    page = contexts("desktop").new_page()
    login(page, "quality")
    operation = f"/operations/{server.facts['operation_id']}"
    page.goto(operation)
    assert page.locator("#gate [role=alert]").count() == 1
    response = None
    with page.expect_response(lambda r: r.url.endswith("/transitions")) as answer:
        page.click('#steps form:has(input[name=action][value="book"]) button.primary')
    response = answer.value
    page.wait_for_load_state()
    assert response.status == 409
    assert "多学科讨论" in page.inner_text("main")
    shot(page, "quality-04-mdt-gate")

    page.goto(operation)
    with page.expect_navigation():
        page.click("#gate a[href^='/mdt/']")
    assert page.locator("#quorum li").count() >= 1  # what still stops signing is listed
    for box in page.locator("#participants input[name=attended]").all():
        box.check()
    with page.expect_navigation():
        page.click('#participants form[action$="/attendance"] > button[type=submit]')
    record = page.locator("#record form")
    record.locator("[name=chair_user_id]").select_option(label="王主任 · 普通外科")
    record.locator("[name=summary]").fill("患者心肺功能可耐受，麻醉风险评估 ASA II 级。")
    record.locator("[name=conclusion]").fill("具备手术指征，同意按计划实施胰十二指肠切除术。")
    record.locator("input[name=decision][value=proceed]").check()
    with page.expect_navigation():
        record.locator("button[type=submit]").click()
    when = (datetime.now(ZoneInfo("Asia/Shanghai")) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    take_step(page, "schedule", {"scheduled_at": when})
    take_step(page, "hold")
    assert page.locator("#quorum").count() == 0, page.inner_text("#quorum")
    take_step(page, "sign")
    assert "已签署" in page.inner_text("h1 .state")
    assert check_accessible_form_fields(page) == []
    shot(page, "quality-05-mdt-signed")

    page.goto(operation)
    assert page.locator("#gate [role=alert]").count() == 0
    with page.expect_navigation():
        page.click('#steps form:has(input[name=action][value="book"]) button.primary')
    assert "已预约" in page.inner_text("h1 .state") or "booked" in page.inner_text("h1 .state")
    assert check_no_horizontal_scroll(page)
    shot(page, "quality-06-booked")
