"""A department head enters last month's value of a reported indicator on a phone; the quality office approves
it at a desk; the value then shows on /indicators (the demo leaves general surgery's checklist rate missing)."""
from __future__ import annotations

from datetime import date, timedelta

from tests.e2e.conftest import E2E, check_accessible_form_fields, check_no_horizontal_scroll, shot

pytestmark = E2E

CODE = "local_gs_safety_checklist"


def test_a_head_enters_a_month_and_the_quality_office_approves_it(server, contexts):
    last_day = date.today().replace(day=1) - timedelta(days=1)
    month = last_day.strftime("%Y-%m")

    phone = contexts("phone", user="head").new_page()
    phone.goto(f"/indicators/report?month={month}")
    form = phone.locator(f"#report-{CODE}")
    assert form.count() == 1, phone.inner_text("main")
    assert check_accessible_form_fields(phone) == []
    form.locator("input[name=numerator]").fill("120")
    form.locator("input[name=denominator]").fill("125")
    form.locator("input[name=note]").fill("按手术台次逐一核对")
    with phone.expect_navigation():
        form.locator("button[type=submit]").click()
    assert "已保存" in phone.inner_text("main") and "未知字段" not in phone.inner_text("main")
    assert "已提交" in phone.locator(f"#report-{CODE}").inner_text()
    assert check_no_horizontal_scroll(phone)
    shot(phone, "head-10-indicator-entered")

    desk = contexts("desktop", user="quality").new_page()
    desk.goto(f"/indicators/approvals?month={month}")
    row = desk.locator("#reports tbody tr", has_text="手术安全核查表规范执行率")
    assert row.count() == 1, desk.inner_text("main")
    assert "96.00%" in row.inner_text()
    with desk.expect_navigation():
        row.locator("button[value=approve]").click()
    assert desk.locator("#reports tbody tr", has_text="手术安全核查表规范执行率").count() == 0  # no longer awaiting
    shot(desk, "quality-10-indicator-approved")

    desk.goto(f"/indicators?from={last_day.replace(day=1).isoformat()}&to={last_day.isoformat()}")
    value = desk.locator(f"#ind-{CODE} td.value")
    assert value.count() == 1, desk.inner_text("main")
    assert "96.00%" in value.inner_text()
    shot(desk, "quality-11-indicator-reported-value")
