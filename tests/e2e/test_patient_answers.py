"""The patient answers their follow-up call on a 390 px phone, in Chinese: the link, the second factor, the
questions, the thank-you with the pathway's health education; once with JavaScript and once without."""
from __future__ import annotations

from datetime import date, timedelta
from itertools import count

from tests.e2e.conftest import E2E, PHONE, check_accessible_form_fields, check_no_horizontal_scroll, shot

pytestmark = E2E
_seq = count(1)


def invitation_link(server, birth_year: int) -> tuple[str, int]:
    """A four-level-surgery patient operated 30 days ago, invited by the real job step: (link path, its id)."""
    import sqlalchemy as sa

    from qcflow.auth.models import Department
    from qcflow.clinical.models import Patient
    from qcflow.core.actors import Actor
    from qcflow.core.time import now
    from qcflow.extensions import db
    from qcflow.followup import services as followup
    from qcflow.followup.invitations import queries, services
    from qcflow.followup.models import Task

    server.app.config.update(INVITATION_SENDERS=[{"channel": "sms", "url": "http://127.0.0.1:9/unused"}],
                             INVITATION_LINK_BASE=server.url, HOSPITAL_NAME="示范人民医院")
    at, n = now(), next(_seq)
    with server.db():
        department = db.session.scalar(sa.select(Department).where(Department.kind == "clinical")
                                       .order_by(Department.id).limit(1))
        patient = Patient(his_id=f"E2E-FU-{n}", mrn=f"E2EFU{n:03d}", name=f"网上随访{n}", sex="F",
                          birth_on=date(birth_year, 4, 2), phone="13900000000", created_at=at, updated_at=at)
        db.session.add(patient)
        db.session.flush()
        plan = followup.enrol(patient, "four_level_surgery", source_type="manual", source_id=None,
                              source_key=f"e2e-online:{n}", anchor_at=at - timedelta(days=30), department_id=department.id,
                              actor=Actor.system("e2e"), now=at)
        task = db.session.scalar(sa.select(Task).where(Task.plan_id == plan.id, Task.occurrence == 1))
        services.invite_due(at)
        invitation = queries.invitation_of(task)
        db.session.commit()
        return f"/f/{services.token_of(invitation)}", invitation.id


def state_of(server, invitation_id: int) -> str:
    from qcflow.extensions import db
    from qcflow.followup.invitations.models import Invitation

    with server.db():
        return db.session.get(Invitation, invitation_id).state


def confirm(page, link: str, birth_year: int, name: str) -> None:
    page.goto(link)
    assert "示范人民医院" in page.inner_text("#hospital-name")
    assert check_no_horizontal_scroll(page)
    page.fill("#factor", str(birth_year))
    with page.expect_navigation():
        page.click("#factor-submit")
    assert page.locator("input[name=satisfaction]").count() == 5
    assert check_no_horizontal_scroll(page) and check_accessible_form_fields(page) == []
    shot(page, f"{name}-questions")


def answer_here(page, name: str) -> None:
    box = page.locator("label.option").first.bounding_box()
    assert box["height"] >= 44 and box["width"] > 120, box  # big tap targets
    page.click("label.option:has(input[name=respondent][value=patient])")
    page.click("label.option:has(input[name=condition][value=better])")
    for question in ("complication", "unplanned_readmission", "reoperation"):
        page.click(f"label.option:has(input[name={question}][value='0'])")
    page.click("label.option:has(input[name=satisfaction][value='5'])")
    page.check("input[name=revisit_requested]")
    page.fill("#note", "恢复得不错，谢谢")
    with page.expect_navigation():
        page.click("#send-answers")
    assert page.locator("#thanks").is_visible() and page.locator("#education").is_visible()
    assert "120" in page.inner_text("main")
    assert check_no_horizontal_scroll(page)
    shot(page, f"{name}-thanks")
    page.reload()
    assert page.locator("#thanks").is_visible()


def test_a_patient_answers_on_a_phone_in_chinese(server, contexts):
    link, invitation_id = invitation_link(server, 1961)
    page = contexts("phone").new_page()
    page.goto(link)
    assert "姓名" not in page.inner_text("main") and "网上随访" not in page.content()  # nothing about the patient
    confirm(page, link, 1961, "patient-answers-phone")
    answer_here(page, "patient-answers-phone")
    assert state_of(server, invitation_id) == "answered"


def test_a_patient_answers_without_javascript(server, browser):
    link, invitation_id = invitation_link(server, 1958)
    context = browser.new_context(base_url=server.url, locale="zh-CN", java_script_enabled=False, **PHONE)
    try:
        page = context.new_page()
        # a first try without answering everything: each question's error beside it, the values kept
        confirm(page, link, 1958, "patient-answers-nojs")
        page.click("label.option:has(input[name=condition][value=worse])")
        with page.expect_navigation():
            page.click("#send-answers")
        assert page.locator("#satisfaction-error").is_visible() and page.locator("#respondent-error").is_visible()
        assert page.is_checked("input[name=condition][value=worse]")
        shot(page, "patient-answers-nojs-errors")
        page.click("label.option:has(input[name=condition][value=better])")
        answer_here(page, "patient-answers-nojs")
    finally:
        context.close()
    assert state_of(server, invitation_id) == "answered"


def test_what_is_written_is_kept_without_pressing_save(server, contexts):
    """The script keeps the draft as the patient writes: a POST to the page's own address, answered 204; a reload
    without pressing anything shows the answers again (in English here)."""
    from urllib.parse import urlsplit

    link, _invitation_id = invitation_link(server, 1963)
    page = contexts("phone").new_page()
    page.goto(link + "?lang=en")
    page.fill("#factor", "1963")
    with page.expect_navigation():
        page.click("#factor-submit")
    page.click("label.option:has(input[name=respondent][value=patient])")
    with page.expect_response(lambda r: r.request.method == "POST" and r.status == 204
                              and urlsplit(r.url).path == link) as saved:
        page.fill("#note", "Walking every day")
    assert saved.value.ok
    page.wait_for_function("document.getElementById('autosave-status').textContent.length > 0")
    shot(page, "patient-answers-autosave-en")
    page.reload()
    assert page.input_value("#note") == "Walking every day"
    assert page.is_checked("input[name=respondent][value=patient]")
    assert not page.locator("#family-questions").is_visible()


def test_a_family_member_reports_that_the_patient_has_passed_away(server, contexts):
    """Only the date is asked, with a line of condolence; the thank-you offers no health advice."""
    from qcflow.core.time import local, now

    link, invitation_id = invitation_link(server, 1950)
    page = contexts("phone").new_page()
    confirm(page, link, 1950, "patient-answers-family")
    page.click("label.option:has(input[name=respondent][value=family])")
    assert page.locator("#field-vital_status").is_visible() and not page.locator("#field-died_on").is_visible()
    assert page.locator("#field-condition").is_visible() and not page.locator("#condolence").is_visible()
    page.click("label.option:has(input[name=vital_status][value=dead])")
    assert page.locator("#condolence").is_visible() and page.locator("#field-died_on").is_visible()
    assert not page.locator("#health-questions").is_visible() and page.locator("#note").is_visible()
    page.fill("#died_on", (local(now()).date() - timedelta(days=5)).isoformat())
    assert check_no_horizontal_scroll(page)
    shot(page, "patient-answers-family-death")
    with page.expect_navigation():
        page.click("#send-answers")
    assert page.locator("#thanks").is_visible() and page.locator("#condolence").is_visible()
    assert not page.locator("#education").count()
    shot(page, "patient-answers-family-death-thanks")
    page.goto(link + "?lang=en")
    shot(page, "patient-answers-family-death-thanks-en")
    assert state_of(server, invitation_id) == "answered"
