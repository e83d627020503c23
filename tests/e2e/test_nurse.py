"""Follow-up nurse at a desk: today's queue most urgent first with the overdue call marked, a 24 h
day-surgery call claimed from the queue without a reload, a no-answer attempt with a call-back time,
the call completed with a complication (→ a possible-event prompt for the quality office), then a
cancer call."""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tests.e2e.conftest import E2E, check_accessible_form_fields, check_no_horizontal_scroll, login, shot

pytestmark = E2E


def local_input(hours_ahead: float) -> str:
    return (datetime.now(ZoneInfo("Asia/Shanghai")) + timedelta(hours=hours_ahead)).strftime("%Y-%m-%dT%H:%M")


def open_details(page, form_selector):
    page.click(f"details:has({form_selector}) > summary")


def test_nurse_works_the_daily_queue(server, contexts):
    page = contexts("desktop").new_page()
    login(page, "nurse")
    assert page.locator("#home-followup").count() == 1
    page.click("#nav-followup")
    page.wait_for_url("**/followup/queue")
    rows = page.locator("#queue tbody tr")
    names = [rows.nth(i).locator("td").first.inner_text() for i in range(rows.count())]
    assert len(names) == 5, names
    # The patient who answered online with alarming answers first, then the 24 h day-surgery calls (overdue on top).
    assert "郑桂兰" in names[0] and "吴丽" in names[1] and "陈建华" in names[2], names
    assert "is-alarm" in (rows.nth(0).get_attribute("class") or "")
    assert "is-overdue" in (rows.nth(1).get_attribute("class") or "")
    assert rows.nth(1).locator(".badge.overdue").count() == 1 and rows.nth(2).locator(".badge.overdue").count() == 0
    assert int(page.inner_text("#queue-counts li.overdue .count")) == 1
    assert check_accessible_form_fields(page) == []
    shot(page, "nurse-01-queue")

    # Claim the 24 h call from the queue: the row updates in place, the page is not reloaded.
    page.evaluate("window.__sameDocument = true")
    row = page.locator("#queue tbody tr", has_text="陈建华")
    row.locator("form[data-inline] button").click()
    page.locator("#queue tbody tr", has_text="陈建华").locator("td", has_text="李护士").wait_for()
    assert page.evaluate("window.__sameDocument === true")
    assert page.locator("#queue tbody tr", has_text="陈建华").locator("form[data-inline]").count() == 0

    # First attempt: no answer, call back in an hour.
    with page.expect_navigation():
        page.locator("#queue tbody tr", has_text="陈建华").locator("a").first.click()
    assert "13812340001" in page.inner_text("#patient-phone")  # the holder sees the full number
    attempt = 'form[action$="/attempts"]'
    page.select_option(f"{attempt} select[name=channel]", "phone")
    page.select_option(f"{attempt} select[name=result]", "no_answer")
    page.fill(f"{attempt} input[name=snooze_until]", local_input(1))
    with page.expect_navigation():
        page.click(f"{attempt} button[type=submit]")
    assert "无人接听" in page.inner_text("#attempts")
    assert check_accessible_form_fields(page) == []
    shot(page, "nurse-02-attempt-logged")

    # The snoozed call leaves today's working list until its call-back time.
    page.goto("/followup/queue")
    assert page.locator("#queue tbody tr", has_text="陈建华").count() == 0
    page.go_back()

    # Second attempt: reached; one complication ticked.
    page.reload()
    complete = 'form[action$="/complete"]'
    open_details(page, complete)
    page.select_option(f"{complete} select[name=respondent]", "patient")
    page.check(f"{complete} input[name=complication][value='1']")
    page.check(f"{complete} input[name=unplanned_readmission][value='0']")
    page.check(f"{complete} input[name=reoperation][value='0']")
    page.check(f"{complete} input[name=health_education_given][value='1']")
    page.fill(f"{complete} textarea[name=complication_note]", "切口红肿渗液，已嘱门诊换药。")
    page.select_option(f"{complete} select[name=satisfaction]", "4")
    with page.expect_navigation():
        page.click(f"{complete} button[type=submit]")
    assert "已完成" in page.inner_text("h1 .state")
    shot(page, "nurse-03-completed")

    # The quality office sees the possible event (提醒上报), and is told about it.
    office = contexts("desktop").new_page()
    login(office, "quality")
    assert office.locator("#nav-notifications .badge").count() == 1
    office.click("#nav-prompts")
    office.wait_for_url("**/followup/prompts")
    prompt = office.locator("#prompts li", has_text="陈建华")
    assert "并发症" in prompt.inner_text()
    assert prompt.locator("form[action$='/file'] button").count() == 1
    shot(office, "nurse-04-quality-prompt")

    # A cancer call: claim it on its page and complete it.
    page.goto("/followup/queue")
    with page.expect_navigation():
        page.locator("#queue tbody tr", has_text="黄国强").locator("a").first.click()
    with page.expect_navigation():
        page.click('form[action$="/claim"] button')
    open_details(page, complete)
    page.select_option(f"{complete} select[name=respondent]", "family")
    page.check(f"{complete} input[name=recurrence_metastasis][value='0']")
    page.select_option(f"{complete} select[name=vital_status]", "alive")
    with page.expect_navigation():
        page.click(f"{complete} button[type=submit]")
    assert "已完成" in page.inner_text("h1 .state")
    assert "是" in page.locator("dt:has-text('有效随访') + dd").inner_text()
    page.goto("/followup/queue")
    assert page.locator("#queue tbody tr", has_text="黄国强").count() == 0
    assert check_no_horizontal_scroll(page)


def test_the_queue_refreshes_in_place_when_a_colleague_claims_a_call(server, contexts):
    """Another nurse (here: the API) claims a call; the open queue shows it without a reload."""
    import sqlalchemy as sa

    from qcflow.auth.models import User
    from qcflow.clinical.models import Patient
    from qcflow.core.actors import Actor
    from qcflow.extensions import db
    from qcflow.followup import services
    from qcflow.followup.models import Task

    page = contexts("desktop").new_page()
    login(page, "nurse")
    page.goto("/followup/queue")
    row = page.locator("#queue tbody tr", has_text="林秀英")
    assert row.locator("form[data-inline]").count() == 1
    with server.db():
        head = db.session.scalar(sa.select(User).where(User.username == "head"))
        task = db.session.scalar(sa.select(Task).join(Patient, Patient.id == Task.patient_id)
                                 .where(Task.state == "pending", Patient.name == "林秀英"))
        services.claim_task(task, actor=Actor.for_user(head), now=datetime.now(ZoneInfo("UTC")))
        db.session.commit()
    page.evaluate("window.__sameDocument = true")
    assert page.evaluate("window.qcflow.refreshLive()") is True
    assert page.locator("#queue tbody tr", has_text="林秀英").locator("form[data-inline]").count() == 0
    assert "王主任" in page.locator("#queue tbody tr", has_text="林秀英").inner_text()
    assert page.evaluate("window.__sameDocument === true")
