"""Follow-up pages as a nurse sees them, on a phone and at a desk, in Chinese and in English: the queue
as cards on a phone, pathway names instead of codes, a completed call showing what was recorded and
the prompt it raised, and cancelling a call asking for its reason and a confirmation."""
from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import E2E, check_no_horizontal_scroll, shot

pytestmark = E2E

CODES = re.compile(r"\b(day_surgery|four_level_surgery|cancer_[a-z]+|operation:\d+|encounter:\d+|None)\b")


@pytest.mark.parametrize("lang, pathway", [("zh", "日间手术随访"), ("en", "Day surgery follow-up")])
def test_the_queue_is_a_list_of_cards_on_a_phone(server, contexts, lang, pathway):
    page = contexts("phone", user="nurse").new_page()
    page.goto(f"/followup/queue?lang={lang}")
    rows = page.locator("#queue tbody tr")
    assert rows.count() >= 3
    text = page.inner_text("main")
    assert pathway in text and not CODES.search(text), CODES.search(text)
    assert not page.locator("#queue thead").is_visible() or page.locator("#queue thead").bounding_box()["height"] <= 1
    for i in range(rows.count()):
        card = rows.nth(i).bounding_box()
        assert card["width"] > 300, card  # a card across the screen, not a squeezed column
        name = rows.nth(i).locator("td").first.locator("a")
        height = name.bounding_box()["height"]
        line = float(name.evaluate("a => parseFloat(getComputedStyle(a).lineHeight) || 1.5 * parseFloat(getComputedStyle(a).fontSize)"))
        assert height < 1.5 * line, (name.inner_text(), height, line)  # the name on one line
        due = rows.nth(i).locator("td").nth(3)
        assert due.bounding_box()["height"] < 2.5 * line, due.inner_text()  # the date is not broken up
    # Each fact of a card carries its column's name.
    first = rows.nth(0).locator("td").nth(1)
    label = first.evaluate("td => getComputedStyle(td, '::before').content")
    assert ("随访路径" if lang == "zh" else "Pathway") in label
    assert check_no_horizontal_scroll(page)
    shot(page, f"followup-queue-phone-{lang}")


def test_the_queue_stays_a_table_at_a_desk(server, contexts):
    page = contexts("desktop", user="nurse").new_page()
    page.goto("/followup/queue")
    assert page.locator("#queue thead").is_visible()
    assert page.locator("#queue tbody tr").first.evaluate("tr => getComputedStyle(tr).display") == "table-row"
    options = page.locator("select[name=pathway] option").all_inner_texts()
    assert "四级手术随访" in options and not any(CODES.search(o) for o in options), options


@pytest.mark.parametrize("kind", ["phone", "desktop"])
def test_a_completed_call_shows_what_was_recorded(server, contexts, kind):
    patient = {"phone": "林秀英", "desktop": "黄国强"}[kind]
    page = contexts(kind, user="nurse").new_page()
    page.goto("/followup/queue")
    with page.expect_navigation():
        page.locator("#queue tbody tr", has_text=patient).locator("a").first.click()
    task_url = page.url.split("?")[0]
    with page.expect_navigation():
        page.click('form[action$="/claim"] button')
    complete = 'form[action$="/complete"]'
    page.click(f"details:has({complete}) > summary")
    page.select_option(f"{complete} select[name=respondent]", "family")
    for name, value in (("complication", "1"), ("unplanned_readmission", "0"), ("reoperation", "0"),
                        ("recurrence_metastasis", "0"), ("health_education_given", "1")):
        field = page.locator(f"{complete} input[name={name}][value='{value}']")
        if field.count():
            field.check()
    page.fill(f"{complete} textarea[name=complication_note]", "切口红肿渗液，已嘱门诊换药。")
    if page.locator(f"{complete} select[name=vital_status]").count():
        page.select_option(f"{complete} select[name=vital_status]", "alive")
    if page.locator(f"{complete} select[name=satisfaction]").count():
        page.select_option(f"{complete} select[name=satisfaction]", "4")
    with page.expect_navigation():
        page.click(f"{complete} button[type=submit]")

    heading = page.locator("h1")
    assert "已完成" in heading.inner_text() and heading.locator(".badge").count() == 0  # no 到期 on a closed call
    outcome = page.inner_text("#outcome-card")
    for fact in ("应答人", "家属", "并发症", "切口红肿渗液，已嘱门诊换药。", "有效随访"):
        assert fact in outcome, fact
    notice = page.inner_text("#prompt-notice")
    assert "并发症" in notice and "提醒质控办" in notice
    assert "切口红肿渗液" in page.inner_text("#plan")  # the plan's history
    assert not CODES.search(page.inner_text("main"))
    assert check_no_horizontal_scroll(page)
    shot(page, f"followup-completed-call-{kind}")

    page.goto(task_url + "?lang=en")
    outcome = page.inner_text("#outcome-card")
    assert "Who answered" in outcome and "Family member" in outcome and "Complication details" in outcome
    assert "passed to the quality office" in page.inner_text("#prompt-notice")
    page.goto(task_url + "?lang=zh")


def test_cancelling_a_call_asks_for_its_reason_and_a_confirmation(server, contexts):
    page = contexts("phone", user="nurse").new_page()
    page.goto("/followup/queue")
    with page.expect_navigation():
        page.locator("#queue tbody tr").first.locator("a").first.click()
    if page.locator('form[action$="/claim"] button').count():
        with page.expect_navigation():
            page.click('form[action$="/claim"] button')
    # The reason box belongs to the cancel form only, not to the release button beside it.
    assert page.locator('form[action$="/release"] input[name=reason]').count() == 0
    cancel = 'form[action$="/cancel"]'
    assert page.locator(cancel).is_hidden()  # behind its own summary
    page.click(f"details:has({cancel}) > summary")
    page.fill(f"{cancel} input[name=reason]", "患者已在外院复诊")
    page.click(f"{cancel} button[type=submit]")
    # Not confirmed: the browser keeps the form and nothing is cancelled.
    assert page.locator(f"{cancel} input[name=confirmed]").evaluate("box => !box.validity.valid")
    assert "已取消" not in page.inner_text("h1")
    page.check(f"{cancel} input[name=confirmed]")
    with page.expect_navigation():
        page.click(f"{cancel} button[type=submit]")
    assert "已取消" in page.inner_text("h1")
    assert "患者已在外院复诊" in page.inner_text("main")
    assert page.locator("h1 .badge").count() == 0


RAW = re.compile(r"\b(day_surgery|four_level_surgery|cancer_[a-z]+|operation:\d+|encounter:\d+|diagnosis:\d+|"
                 r"manual:\S+|None|pending|in_progress|completed|cancelled|unreachable|not_open|overdue|"
                 r"complication|unplanned_readmission|reoperation|vital_status|operation_at|discharge_at|"
                 r"diagnosis_on|plan_paused|protocol_changed)\b")
ENGLISH_WORD = re.compile(r"\b[A-Za-z]{4,}\b")
#: Words that stay as they are in Chinese text (the product's name, units, abbreviations, and the demo HIS's
#: record ids, e.g. DEMO-O39, which the possible events' facts quote).
ALLOWED = {"qcflow", "MRN", "yyyy", "mmol", "DEMO"}


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_followup_page_reads_without_codes(server, contexts, lang):
    """Each follow-up page of each role, in each language: no raw code, no None, no English in Chinese."""
    pages = {
        "nurse": ["/followup/queue", "/followup/plans", "/followup/enrol"],
        "head": ["/followup/plans"],
        "quality": ["/followup/prompts", "/followup/prompts?state=filed", "/followup/prompts?state=dismissed"],
        "admin": ["/admin/followup/protocols", "/admin/followup/protocols/new",
                  "/admin/followup/protocols/new?code=four_level_surgery"],
    }
    problems = []
    for user, paths in pages.items():
        page = contexts("desktop", user=user).new_page()
        found = list(paths)
        seen = set()
        while found:
            path = found.pop(0)
            if path in seen:
                continue
            seen.add(path)
            page.goto(path + ("&" if "?" in path else "?") + f"lang={lang}")
            text = page.inner_text("main")
            raw = RAW.findall(text)
            english = [w for w in ENGLISH_WORD.findall(text) if w not in ALLOWED] if lang == "zh" else []
            if raw or english:
                problems.append((user, path, raw, english[:10]))
            # Follow the plan, task and protocol pages listed here (a few of each).
            for href in page.eval_on_selector_all(
                    "main a[href^='/followup/plans/'], main a[href^='/followup/tasks/'], "
                    "main a[href^='/admin/followup/protocols/']", "links => links.map(a => a.getAttribute('href'))"):
                href = href.split("#")[0]
                if href.split("?")[0] not in seen and len(seen) < 25 and not href.endswith(".pdf"):
                    found.append(href.split("?")[0])
        page.close()
    assert not problems, problems


def test_withdrawing_a_plan_asks_for_confirmation(server, contexts):
    import sqlalchemy as sa

    from qcflow.extensions import db
    from qcflow.followup.models import Plan

    with server.db():
        plan_id = db.session.scalar(sa.select(Plan.id).where(Plan.state == "active", Plan.pathway.like("cancer_%"))
                                    .order_by(Plan.id))
    page = contexts("phone", user="head").new_page()
    page.goto(f"/followup/plans/{plan_id}")
    withdraw = 'form[action$="/withdraw"]'
    assert page.locator(withdraw).is_hidden()  # behind its own summary, away from the pause button
    page.click(f"details:has({withdraw}) > summary")
    page.fill(f"{withdraw} input[name=reason]", "患者转至外院随访")
    page.click(f"{withdraw} button[type=submit]")
    assert page.locator(f"{withdraw} input[name=confirmed]").evaluate("box => !box.validity.valid")
    assert "进行中" in page.inner_text("h1")
    page.check(f"{withdraw} input[name=confirmed]")
    with page.expect_navigation():
        page.click(f"{withdraw} button[type=submit]")
    assert "已撤销随访" in page.inner_text("h1"), page.inner_text("h1")
    assert "患者转至外院随访" in page.inner_text("main")
    assert not CODES.search(page.inner_text("main"))
