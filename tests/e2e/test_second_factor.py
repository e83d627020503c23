"""N3 in a browser: the quality office's first login sets up the authenticator app (QR code and key on a
phone-sized page), confirms with a code and lands on the home page; the next login asks for a code."""
from __future__ import annotations

import sqlalchemy as sa

from tests.e2e.conftest import AUTHENTICATORS, DEMO_PASSWORDS, E2E, check_accessible_form_fields, shot

pytestmark = E2E


def password_step(page, username):
    page.goto("/login")
    page.fill("#username", username)
    page.fill("#password", DEMO_PASSWORDS[username])
    with page.expect_navigation():
        page.click("form button[type=submit]")


def test_quality_office_enrols_at_first_login_and_lands_on_the_home_page(server, contexts):
    from qcflow.auth import totp
    from qcflow.auth.models import User
    from qcflow.extensions import db
    from tests.conftest import fresh_step

    page = contexts("phone").new_page()
    password_step(page, "quality")
    assert page.url.endswith("/login/enrol")
    assert page.is_visible("#totp-qr svg")
    code_field = page.locator("#code")
    assert code_field.get_attribute("autocomplete") == "one-time-code"
    assert code_field.get_attribute("inputmode") == "numeric"
    assert check_accessible_form_fields(page) == []
    shot(page, "second-factor-01-enrol")
    page.goto("/")  # the password alone opened nothing
    assert "/login" in page.url

    password_step(page, "quality")
    secret = page.inner_text("#totp-secret").replace(" ", "")
    assert len(secret) == 32
    step = fresh_step()
    page.fill("#code", totp.code_at(secret, step))
    with page.expect_navigation():
        page.click("form button[type=submit]")
    assert page.url == server.url + "/", page.inner_text("main")
    assert page.is_visible("#nav-events")  # the quality office's home page
    with server.db():
        user = db.session.scalar(sa.select(User).where(User.username == "quality"))
        assert user.totp_secret == secret and user.totp_enrolled_at is not None
    AUTHENTICATORS[(server.url, "quality")] = [secret, step]  # the phone now holds the account

    # The next login (another device) asks for the app's code, not for a new set-up.
    other = contexts("desktop").new_page()
    password_step(other, "quality")
    assert other.url.endswith("/login/second-factor")
    other.fill("#code", totp.code_at(secret, step + 20))  # a code of ten minutes from now
    with other.expect_navigation():
        other.click("form button[type=submit]")
    assert other.locator("[role=alert]").count() == 1 and "/login/second-factor" in other.url
    shot(other, "second-factor-02-wrong-code", full_page=False)
    step = fresh_step(step)
    other.fill("#code", totp.code_at(secret, step))
    with other.expect_navigation():
        other.click("form button[type=submit]")
    assert other.url == server.url + "/"
    AUTHENTICATORS[(server.url, "quality")] = [secret, step]
