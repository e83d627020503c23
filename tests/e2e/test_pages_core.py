"""Core pages as users meet them: English kept through the login steps, every kind of field put back
after a session ended, the API tokens page shown once per token and fitting a phone."""
from __future__ import annotations

import sqlalchemy as sa

from tests.e2e.conftest import (DEMO_PASSWORDS, E2E, check_no_horizontal_scroll, login, login_here,
                                pass_second_factor, sending_report, shot)

pytestmark = E2E


def test_english_chosen_at_login_stays_english_through_the_second_step(server, contexts):
    page = contexts("phone").new_page()
    page.goto("/login?lang=en")
    assert page.inner_text("h1") == "Log in"
    page.fill("#username", "quality")
    page.fill("#password", DEMO_PASSWORDS["quality"])
    with page.expect_navigation():
        page.click("form button[type=submit]")
    assert "/login/" in page.url  # the quality office's second step
    assert page.get_attribute("html", "lang") == "en", page.inner_text("main")
    shot(page, "core-login-second-step-en", full_page=False)
    pass_second_factor(page, "quality")
    assert page.url == server.url + "/", page.inner_text("main")
    assert page.inner_text("h1").startswith("Welcome")
    page.goto("/notifications")  # no ?lang= any more: the session remembers English
    assert page.get_attribute("html", "lang") == "en" and page.inner_text("h1") == "Notifications"


def held_task(server):
    """A follow-up call the nurse holds (claimed by the service), its id."""
    from qcflow.auth.models import User
    from qcflow.core.actors import Actor
    from qcflow.core.time import now
    from qcflow.extensions import db
    from qcflow.followup.models import Task
    from qcflow.followup.services import claim_task

    with server.db():
        nurse = db.session.scalar(sa.select(User).where(User.username == "nurse"))
        task = db.session.scalar(sa.select(Task).where(Task.state == "pending", Task.department_id == nurse.department_id)
                                 .order_by(Task.id))
        if task is None:
            task = db.session.scalar(sa.select(Task).where(Task.state == "in_progress",
                                                           Task.assignee_id == nurse.id).order_by(Task.id))
        else:
            claim_task(task, actor=Actor.for_user(nurse), now=now())
            db.session.commit()
        assert task is not None, "the demo data has a follow-up call for the nurse"
        return task.id


def end_sessions(server, username):
    from qcflow.auth import services
    from qcflow.auth.models import User
    from qcflow.core.time import now
    from qcflow.extensions import db

    with server.db():
        services.revoke_sessions(db.session.scalar(sa.select(User).where(User.username == username)), now())
        db.session.commit()
    server.states.pop(username, None)


def test_after_the_session_ended_selects_radios_and_text_all_come_back(server, contexts):
    """A nurse's "busy" must not come back as the first option ("reached"); radio buttons and the note too."""
    task_id = held_task(server)
    page = contexts("phone").new_page()
    login(page, "nurse")
    page.goto(f"/followup/tasks/{task_id}")
    attempt = 'form[action$="/attempts"]'
    page.select_option(f"{attempt} select[name=channel]", "wechat")
    page.select_option(f"{attempt} select[name=result]", "busy")
    page.fill(f"{attempt} textarea[name=note]", "占线，稍后再拨。")
    end_sessions(server, "nurse")
    with page.expect_navigation():
        page.click(f"{attempt} button[type=submit]")
    assert "/login" in page.url and "expired=1" in page.url
    login_here(page, "nurse")
    assert page.url.endswith(f"/followup/tasks/{task_id}"), page.url
    assert page.input_value(f"{attempt} select[name=result]") == "busy"
    assert page.input_value(f"{attempt} select[name=channel]") == "wechat"
    assert page.input_value(f"{attempt} textarea[name=note]") == "占线，稍后再拨。"
    assert page.is_visible("#restored-notice") and not page.is_visible("#not-restored-notice")
    shot(page, "core-restored-after-expiry-phone")

    # The completion form: radio buttons, a select left at "—" on purpose, a ticked "no".
    complete = 'form[action$="/complete"]'
    page.click(f"details:has({complete}) > summary")
    radios = page.locator(f"{complete} input[type=radio][value='0']")
    if radios.count() == 0:
        return  # this pathway records no yes/no items
    name = radios.first.get_attribute("name")
    page.check(f"{complete} input[name={name}][value='0']")
    page.select_option(f"{complete} select[name=respondent]", "family")
    end_sessions(server, "nurse")
    with page.expect_navigation():
        page.click(f"{complete} button[type=submit]")
    login_here(page, "nurse")
    assert page.is_checked(f"{complete} input[name={name}][value='0']")
    assert not page.is_checked(f"{complete} input[name={name}][value='1']")
    assert page.input_value(f"{complete} select[name=respondent]") == "family"


def test_a_form_that_changed_meanwhile_is_not_put_back_half(server, contexts):
    """A saved choice the page no longer offers: nothing is filled in, and the user is told to enter it again."""
    task_id = held_task(server)
    page = contexts("desktop").new_page()
    login(page, "nurse")
    page.goto(f"/followup/tasks/{task_id}")
    attempt = 'form[action$="/attempts"]'
    page.fill(f"{attempt} textarea[name=note]", "对方挂断")
    page.select_option(f"{attempt} select[name=result]", "busy")
    end_sessions(server, "nurse")
    with page.expect_navigation():
        page.click(f"{attempt} button[type=submit]")
    # The option the nurse chose is gone when the page comes back (as after an update of the pathway).
    page.evaluate("""() => {
        const p = JSON.parse(sessionStorage.getItem('qcflow.pendingForm'));
        p.fields.forEach(f => { if (f.name === 'result') { f.values = ['no_longer_offered']; } });
        sessionStorage.setItem('qcflow.pendingForm', JSON.stringify(p));
    }""")
    login_here(page, "nurse")
    assert page.is_visible("#not-restored-notice") and not page.is_visible("#restored-notice")
    assert page.input_value(f"{attempt} textarea[name=note]") == ""


def test_a_new_api_token_is_shown_once_and_a_reload_creates_no_second_one(server, contexts):
    from qcflow.auth.models import ApiToken
    from qcflow.extensions import db

    with server.db():
        before = db.session.scalar(sa.select(sa.func.count()).select_from(ApiToken))
    page = contexts("phone").new_page()
    login(page, "admin")
    page.goto("/admin/tokens")
    page.fill("#username", "quality")
    page.fill("#name", "his-interface")
    with page.expect_navigation():
        page.click("form button.primary")
    assert page.url.endswith("/admin/tokens")  # redirected: the address bar holds no post and no token
    token = page.inner_text("#token-value")
    assert token.startswith("qcf_") and "his-interface" in page.inner_text("#new-token")
    assert check_no_horizontal_scroll(page)
    shot(page, "core-tokens-new-phone")
    page.reload()
    assert page.locator("#new-token").count() == 0 and token not in page.content()
    with server.db():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ApiToken)) == before + 1
    row = page.locator("#tokens tbody tr", has_text="his-interface")
    assert row.count() == 1
    width = page.evaluate("() => document.documentElement.clientWidth")
    box = row.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= width  # a card within the screen, not a wide table
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width
    shot(page, "core-tokens-list-phone")


def test_case_timeline_reads_as_words_and_names_in_both_languages(server, contexts):
    import re

    event_id = server.facts["overdue_event_id"]
    page = contexts("phone", user="quality").new_page()
    page.goto(f"/events/{event_id}?lang=zh")
    timeline = page.inner_text("#timeline")
    # The head filed it: the reporter's identity stays behind the recorded "show reporter" step.
    assert "提交报告" in timeline and "报告人" in timeline and "王主任" not in timeline
    assert not re.search(r"\b(event|user|system)[.:]\w", timeline), timeline
    page.goto(f"/events/{event_id}?lang=en")
    timeline = page.inner_text("#timeline")
    assert "Report submitted" in timeline and "提交报告" not in timeline
    shot(page, "core-case-timeline-en-phone")
    page.goto(f"/events/{event_id}?lang=zh&show_reporter=1")
    assert "王主任 · " in page.inner_text("#timeline")


#: What a person should never read on a page: Python's None, snake_case or dotted codes, "(404)".
RAW = r"\bNone\b|\b[a-z]+_[a-z0-9_]+\b|\b[a-z]+\.[a-z_]+\b|\(\d{3}\)"


def test_home_notifications_account_and_error_pages_show_no_raw_codes_for_any_role(server, contexts):
    import re

    pages = ["/", "/notifications", "/account", "/no-such-page"]
    for role in ("doctor", "nurse", "head", "quality", "admin"):
        page = contexts("phone", user=role).new_page()
        for lang in ("zh", "en"):
            for path in pages + (["/admin/tokens"] if role == "admin" else []):
                page.goto(f"{path}?lang={lang}")
                text = page.inner_text("main")
                if path == "/admin/tokens":
                    text = re.sub(r"qcf_\S+", "", text)  # token prefixes are what they are
                assert not re.findall(RAW, text), (role, lang, path, re.findall(RAW, text))
                assert check_no_horizontal_scroll(page), (role, lang, path)
        page.close()


def test_a_report_typed_before_the_session_ended_is_never_shown_to_the_next_user_of_the_tab(server, contexts):
    """The doctor's confidential report (with a record number) is put back for the doctor only: the nurse
    who logs in next on the same tab finds an empty form, and nothing of it is left in the tab."""
    for kind in ("phone", "desktop"):
        page = contexts(kind).new_page()
        login(page, "doctor")
        page.goto("/report/named")
        page.fill("#patient_mrn", "MRN-0042917")
        page.fill("#description", "术后第二天给错药，患者王某血压下降。")
        end_sessions(server, "doctor")
        with sending_report(page):
            page.click("form button.primary[type=submit]")
        assert "/login" in page.url and "expired=1" in page.url
        login_here(page, "nurse")
        assert page.url.endswith("/report/named"), page.url
        assert page.input_value("#description") == "" and page.input_value("#patient_mrn") == ""
        assert not page.is_visible("#restored-notice") and not page.is_visible("#not-restored-notice")
        assert page.evaluate("() => sessionStorage.getItem('qcflow.pendingForm')") is None
        shot(page, f"core-not-restored-for-another-user-{kind}", full_page=False)


def test_the_doctor_gets_their_own_report_back_after_the_session_ended_in_english(server, contexts):
    page = contexts("desktop").new_page()
    login(page, "doctor")
    page.goto("/report/named?lang=en")
    page.fill("#description", "Wrong dose given on day 2.")
    end_sessions(server, "doctor")
    with sending_report(page):
        page.click("form button.primary[type=submit]")
    page.fill("#username", "doctor")
    page.fill("#password", DEMO_PASSWORDS["doctor"])
    with page.expect_navigation():
        page.click("form button[type=submit]")
    assert "/report/named" in page.url, page.url
    assert page.input_value("#description") == "Wrong dose given on day 2."
    assert page.is_visible("#restored-notice")
    assert "What you typed has been put back" in page.inner_text("#restored-notice")


def test_logging_out_forgets_what_was_typed_even_when_the_logout_page_never_arrives(server, contexts):
    """A form refused by the server (kept for the way back to it) is forgotten at logout: the next user
    of the tab cannot get it back, even if the answer to the logout was lost on the way."""
    page = contexts("desktop").new_page()
    login(page, "doctor")
    page.goto("/report/named")
    page.fill("#description", "患者李某跌倒")
    page.evaluate("""() => {
        const form = document.querySelector('form button.primary').form;
        form.addEventListener('submit', e => e.preventDefault());  // as if the server refused it
        form.requestSubmit(form.querySelector('button.primary'));
    }""")
    assert page.evaluate("() => sessionStorage.getItem('qcflow.pendingForm')") is not None
    page.route("**/logout", lambda route: route.fulfill(status=204))  # the page stays
    page.click("form[action$='/logout'] button[type=submit]")
    page.wait_for_timeout(300)
    assert page.evaluate("() => sessionStorage.getItem('qcflow.pendingForm')") is None
