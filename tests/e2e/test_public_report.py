"""A family member scans the ward poster's QR code on a phone, files a report in Chinese and keeps the receipt
code; the quality office sees it marked in the inbox, triages it (giving the category the family did not),
closes it with feedback, and the family reads the answer with the receipt code."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from tests.e2e.conftest import (E2E, check_accessible_form_fields, check_no_horizontal_scroll, login,
                                sending_report, shot)
from tests.e2e.test_quality import take_step

pytestmark = E2E


def test_a_family_files_from_the_posters_link_on_a_phone_and_reads_the_answer(server, contexts):
    desk = contexts("desktop").new_page()
    login(desk, "quality")
    desk.goto("/events")
    with desk.expect_navigation():
        desk.click("#posters-link")
    row = desk.locator("#posters tbody tr").first
    department = row.locator("td").first.inner_text().strip()
    link = row.locator("code.link").inner_text().strip()
    assert link.startswith(server.url + "/report/patient?d=")
    assert row.locator("a.poster-pdf").get_attribute("href").endswith(".pdf")

    phone = contexts("phone")
    page = phone.new_page()
    page.goto(link)
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    assert page.locator("#department_id option:checked").inner_text().strip() == department
    assert check_no_horizontal_scroll(page) and check_accessible_form_fields(page) == []
    assert page.locator("[name=category_code], [name=reporter_grade], [name=care_stage]").count() == 0
    shot(page, "public-01-form", full_page=True)

    page.check("input[name=public_role][value=family]")
    page.fill("#occurred_on", datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat())
    page.fill("#description", "我母亲夜里按呼叫铃，二十分钟没有人来，她自己下床时差点摔倒。")
    page.select_option("#harm", "none")
    page.fill("#contact_phone", "13800138000")
    with sending_report(page):
        page.click("form button.primary")
    assert page.locator("#receipt-code").count() == 1, page.inner_text("main")
    code = page.inner_text("#receipt-code").strip()
    reference = page.inner_text("#receipt-reference").strip()
    assert len(code) >= 20 and page.locator("#receipt-public-help").is_visible()
    assert phone.cookies() == []
    assert check_no_horizontal_scroll(page)
    shot(page, "public-02-receipt", full_page=False)

    desk.goto("/events?reported_by=public")
    listed = desk.locator("table.inbox-cases tr", has_text=reference)
    assert listed.locator(".badge.public-report").inner_text().strip() == "患者/家属"
    with desk.expect_navigation():
        listed.locator("a").first.click()
    facts = desk.inner_text(".facts")
    assert "患者/家属报告" in facts and "家属" in facts and "匿名" not in facts
    assert "13800138000" not in desk.content()
    with desk.expect_navigation():
        desk.click("#show-contact")
    assert "13800138000" in desk.inner_text("#fact-contact")
    take_step(desk, "triage", {"category_code": desk.locator('#steps [name=category_code] option').nth(1)
                               .get_attribute("value"), "confirmed_grade": "IV",
                               "handling_department_id": desk.locator('#steps option', has_text="护理部").first
                               .get_attribute("value"), "external_severity": "none"})
    assert "已分级" in desk.inner_text("h1 .state") or desk.locator("#step-close").count() == 1
    take_step(desk, "close", {"analysis": "夜间呼叫响应不及时。", "feedback": "感谢反馈：夜班已增加巡视，呼叫铃响应已纳入考核。"})
    assert "已结案" in desk.inner_text("h1 .state")

    page.goto("/receipt")
    page.fill("[name=receipt_code]", code)
    with page.expect_navigation():
        page.click("form button[type=submit]")
    assert "夜班已增加巡视" in page.inner_text("main")
    assert phone.cookies() == []
    shot(page, "public-03-answer", full_page=False)
