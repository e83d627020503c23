"""MDT and operation pages as a new user finds them: labels instead of codes, participants from the staff
list (account or not), a confirmation before removing one, readable tables on a phone, and minutes that
name specialties in words."""
from __future__ import annotations

import re
import subprocess

import pytest
import sqlalchemy as sa

from tests.e2e.conftest import E2E, check_no_horizontal_scroll, shot

pytestmark = E2E

#: Codes that must never reach a reader of these pages, in either language.
RAW = re.compile(r"\b([a-z]+_[a-z0-9_]+|anaesthesia|cardiology|oncology|None)\b")
#: In the Chinese interface, English state or role words are codes too.
RAW_ZH = re.compile(r"\b(requested|scheduled|planned|booked|performed|member|chair|invited)\b")


def raw_codes(text: str, language: str = "zh"):
    found = RAW.findall(text)
    return found + (RAW_ZH.findall(text) if language == "zh" else [])


@pytest.fixture(scope="module")
def arranged(server):
    """An oncologist from the staff list without a qcflow account, and the grade-4 operation's discussion."""
    from qcflow.auth.models import Department
    from qcflow.clinical.models import Staff
    from qcflow.extensions import db
    from qcflow.mdt.models import Discussion

    with server.db():
        onc = db.session.scalar(sa.select(Department.id).where(Department.code == "ONC"))
        db.session.add(Staff(his_id="E2E-ONC", name="王肿瘤", department_id=onc, specialty="oncology"))
        db.session.commit()
        discussion = db.session.scalar(sa.select(Discussion.id).where(
            Discussion.operation_id == server.facts["operation_id"]))
    return {"discussion_id": discussion}


def visible_text(page) -> str:
    return page.inner_text("main")


@pytest.mark.parametrize("language", ["zh", "en"])
def test_the_operation_page_names_the_mdt_state_and_the_operation_state(server, contexts, arranged, language):
    page = contexts("desktop", user="head").new_page()
    page.goto(f"/operations/{server.facts['operation_id']}?lang={language}")
    text = visible_text(page)
    assert raw_codes(text, language) == []
    expected = {"zh": ("已申请", "拟施行"), "en": ("Requested", "Planned")}[language]
    assert all(word in text for word in expected), text
    shot(page, f"mdt-operation-{language}")


@pytest.mark.parametrize("language", ["zh", "en"])
def test_participants_read_as_cards_on_a_phone_with_specialty_labels(server, contexts, arranged, language):
    page = contexts("phone", user="head").new_page()
    page.goto(f"/mdt/{arranged['discussion_id']}?lang={language}")
    table = page.locator("#participant-list")
    text = table.inner_text()
    assert ("麻醉科" if language == "zh" else "Anaesthesia") in text
    assert raw_codes(text, language) == []
    assert table.evaluate("t => t.scrollWidth <= t.clientWidth + 1")
    assert check_no_horizontal_scroll(page)
    first = page.locator("#participant-list tbody tr").first
    name_cell = first.locator("td").first
    # One card per person: the column's name is written above each value.
    assert name_cell.evaluate("td => getComputedStyle(td, '::before').content") == (
        '"参会人员："' if language == "zh" else '"Participant: "')
    assert first.evaluate("tr => getComputedStyle(tr).display") == "block"
    shot(page, f"mdt-participants-phone-{language}")


def test_a_staff_member_without_an_account_is_invited_and_removal_asks_first(server, contexts, arranged):
    page = contexts("desktop", user="head").new_page()
    page.goto(f"/mdt/{arranged['discussion_id']}")
    page.click("#invite > summary")
    page.locator("#invite select[name=staff_id]").select_option(label="王肿瘤 · 肿瘤科 · 肿瘤科")
    with page.expect_navigation():
        page.click("#invite button[type=submit]")
    row = page.locator("#participant-list tbody tr", has_text="王肿瘤")
    assert row.count() == 1
    assert "肿瘤科" in row.inner_text() and "无系统账号" in row.inner_text()
    shot(page, "mdt-participant-without-account")

    row.locator("details.confirm > summary").click()
    assert page.locator("#participant-list tbody tr", has_text="王肿瘤").count() == 1  # nothing removed yet
    assert row.locator("button", has_text="确认移除").is_visible()
    assert "确定将 王肿瘤 从参会人员中移除" in row.inner_text()
    with page.expect_navigation():
        row.locator("button", has_text="确认移除").click()
    assert page.locator("#participant-list tbody tr", has_text="王肿瘤").count() == 0


def test_the_invite_form_offers_specialties_as_words(server, contexts, arranged):
    page = contexts("desktop", user="head").new_page()
    page.goto(f"/mdt/{arranged['discussion_id']}?lang=en")
    options = page.locator("#invite select[name=specialty] option").evaluate_all("os => os.map(o => o.textContent)")
    assert "Anaesthesia" in options and "anaesthesia" not in options
    page.goto(f"/mdt/{arranged['discussion_id']}?lang=zh")
    options = page.locator("#invite select[name=specialty] option").evaluate_all("os => os.map(o => o.textContent)")
    assert "麻醉科" in options and "普通外科" in options


def test_the_minutes_name_specialties_in_words(server, contexts, arranged, tmp_path):
    context = contexts("desktop", user="head")
    page = context.new_page()
    page.goto(f"/mdt/{arranged['discussion_id']}")
    assert page.locator("a[href$='minutes.pdf']").count() == 1
    response = context.request.get(f"/mdt/{arranged['discussion_id']}/minutes.pdf?lang=zh")
    assert response.status == 200
    pdf = tmp_path / "minutes.pdf"
    pdf.write_bytes(response.body())
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "麻醉科" in text and "普通外科" in text
    assert not re.search(r"\b(anaesthesia|general_surgery|cardiology|requested|None)\b", text), text


def test_the_operations_list_reads_as_cards_on_a_phone(server, contexts, arranged):
    page = contexts("phone", user="head").new_page()
    page.goto("/operations")
    table = page.locator("#operations")
    assert table.evaluate("t => t.scrollWidth <= t.clientWidth + 1")
    assert check_no_horizontal_scroll(page)
    text = table.inner_text()
    assert "胰十二指肠切除术" in text and raw_codes(text) == [], text
    shot(page, "mdt-operations-phone")


@pytest.mark.parametrize("kind", ["staff", "authorisations"])
def test_reference_lists_show_every_stored_fact_on_a_phone(server, contexts, arranged, kind):
    page = contexts("phone", user="admin").new_page()
    page.goto(f"/admin/reference/{kind}")
    text = page.inner_text("#reference-rows")
    assert "None" not in text and not re.search(r"\b(anaesthesia|general_surgery)\b", text)
    assert ("ANES · 麻醉科" in text and "麻醉科" in text) if kind == "staff" else ("DEMO-S1 · 王主任" in text)
    assert check_no_horizontal_scroll(page)
    shot(page, f"mdt-reference-{kind}-phone")


@pytest.mark.parametrize("kind, language", [("desktop", "zh"), ("phone", "en")])
def test_the_chosen_chair_is_the_one_chair_of_the_page_and_stays_chosen(server, contexts, arranged, kind, language):
    page = contexts(kind, user="head").new_page()
    page.goto(f"/mdt/{arranged['discussion_id']}?lang={language}")
    chair = page.locator("#record [name=chair_user_id]")
    chair.select_option(label=f"王主任 · {'普通外科' if language == 'zh' else 'General Surgery'}")
    with page.expect_navigation():
        page.locator("#record form button[type=submit]").click()
    page.goto(f"/mdt/{arranged['discussion_id']}?lang={language}")
    chosen = page.locator("#record [name=chair_user_id] option:checked").inner_text()
    assert chosen.startswith("王主任"), chosen
    role = "主持人" if language == "zh" else "Chair"
    chair_rows = page.locator("#participant-list tbody tr", has_text=role)
    assert chair_rows.count() == 1 and "王主任" in chair_rows.first.inner_text()
    assert "刘外科" not in page.inner_text("main")
    shot(page, f"mdt-chair-{kind}-{language}")


@pytest.mark.parametrize("kind, language", [("phone", "zh"), ("desktop", "en")])
def test_the_home_page_tells_the_waiting_discussions_apart(server, contexts, arranged, kind, language):
    page = contexts(kind, user="head").new_page()
    page.goto(f"/?lang={language}")
    links = [a.inner_text() for a in page.locator("#home-mdt li a").all()]
    assert len(links) >= 2 and len(set(links)) == len(links), links
    assert "周明" in page.inner_text("#home-mdt") and "胰十二指肠切除术" in page.inner_text("#home-mdt")
    assert check_no_horizontal_scroll(page)
    shot(page, f"mdt-home-{kind}-{language}")


@pytest.mark.parametrize("user", ["anes", "cardio"])
def test_invited_colleagues_of_other_departments_read_the_procedure_without_a_dead_link(server, contexts, arranged,
                                                                                          user):
    page = contexts("desktop", user=user).new_page()
    page.goto(f"/mdt/{arranged['discussion_id']}")
    assert "胰十二指肠切除术" in page.inner_text("main")
    assert page.locator("main a[href^='/operations/']").count() == 0
    assert page.goto(f"/operations/{server.facts['operation_id']}").status == 404
