"""N3: the TOTP second factor of the web login (enrolment, verification, replay, throttling, reset)."""
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
import time_machine

from tests.conftest import (
    CSRF_RE,
    ENROLMENT_RE,
    PASSWORD,
    SECRET_RE,
    TOTP_SECRET,
    csrf_from,
    login,
    make_app,
)

#: A frozen clock a day ahead (after the factories' real-clock timestamps), 10 s into a 30-s step.
T0 = datetime.fromtimestamp((int(datetime.now(timezone.utc).timestamp()) // 30 + 2880) * 30 + 10, timezone.utc)


def commit():
    from qcflow.extensions import db

    db.session.commit()


def audit_actions(prefix="user.second_factor"):
    from qcflow.core.audit import AuditEntry
    from qcflow.extensions import db

    db.session.expire_all()
    return [(e.action, e.detail) for e in db.session.scalars(
        sa.select(AuditEntry).where(AuditEntry.action.startswith(prefix)).order_by(AuditEntry.seq))]


def code(step_offset=0, at=T0, secret=TOTP_SECRET):
    from qcflow.auth import totp

    return totp.code_at(secret, totp.step_at(at) + step_offset)


def password_step(client, username, password=PASSWORD, path="/login"):
    token = csrf_from(client)
    return client.post(path, data={"csrf_token": token, "username": username, "password": password})


def submit_code(client, value, path="/login/second-factor"):
    html = client.get(path).get_data(as_text=True)
    return client.post(path, data={"csrf_token": CSRF_RE.search(html).group(1), "code": value})


# --- the TOTP arithmetic --------------------------------------------------------------------------

#: RFC 6238 appendix B, SHA-1 rows: the seed is the ASCII of "12345678901234567890", 8 digits.
RFC6238_SHA1 = [(59, "94287082"), (1111111109, "07081804"), (1111111111, "14050471"),
                (1234567890, "89005924"), (2000000000, "69279037"), (20000000000, "65353130")]


@pytest.mark.parametrize(("unix_time", "expected"), RFC6238_SHA1)
def test_rfc6238_test_vectors(unix_time, expected):
    import base64

    from qcflow.auth import totp

    at = datetime.fromtimestamp(unix_time, timezone.utc)
    assert totp.hotp(b"12345678901234567890", totp.step_at(at), digits=8) == expected
    # The 6-digit code is the same truncated value modulo 10^6, from the base32 form of the seed.
    secret = base64.b32encode(b"12345678901234567890").decode()
    assert totp.code_at(secret, totp.step_at(at)) == expected[-6:]


def test_codes_are_accepted_one_step_either_side_and_not_beyond():
    from qcflow.auth import totp

    step = totp.step_at(T0)
    for offset in (-1, 0, 1):
        assert totp.matching_step(TOTP_SECRET, code(offset), T0) == step + offset
    for offset in (-2, 2):
        assert totp.matching_step(TOTP_SECRET, code(offset), T0) is None
    assert totp.matching_step(TOTP_SECRET, code()[:3] + " " + code()[3:], T0) == step  # typed with a space
    for junk in ("", "12345", "1234567", "abcdef", "١٢٣٤٥٦"):
        assert totp.matching_step(TOTP_SECRET, junk, T0) is None


def test_new_secrets_are_160_bit_base32_and_the_uri_names_issuer_and_account():
    from qcflow.auth import totp

    secrets = {totp.new_secret() for _ in range(20)}
    assert len(secrets) == 20 and all(len(s) == 32 and s.isalnum() and s.isupper() for s in secrets)
    uri = totp.provisioning_uri("ABCDEFGH", "li", "qcflow")
    assert uri == "otpauth://totp/qcflow:li?secret=ABCDEFGH&issuer=qcflow&algorithm=SHA1&digits=6&period=30"


# --- services, with an explicit clock -------------------------------------------------------------

def test_a_code_is_accepted_once_and_earlier_steps_never_again(ctx, create_user):
    from qcflow.auth import services
    from qcflow.core.actors import Actor

    user = create_user(roles=("quality",))
    actor, limits = Actor.for_user(user), services.login_limits({rule: [50, 1, 1, 15] for rule in ("source", "address", "account")})

    def verify(value, at):
        attempt = services.record_login_attempt(user.username, now=at)
        return services.verify_second_factor(user, value, attempt_id=attempt, actor=actor, now=at, limits=limits)

    assert verify(code(0), T0)
    assert not verify(code(0), T0)  # the same code again: a replay
    assert not verify(code(-1), T0)  # an earlier step is refused too
    assert verify(code(1), T0)  # a phone running a little ahead
    assert not verify(code(1), T0 + timedelta(seconds=30))  # still within the window but already used
    assert verify(code(2), T0 + timedelta(seconds=30))
    reasons = [detail for action, detail in audit_actions() if action == "user.second_factor_failed"]
    assert len(reasons) == 3 and all('"replayed"' in r for r in reasons)
    assert all(code(n) not in detail for _action, detail in audit_actions() for n in (-1, 0, 1, 2))


# --- the login pages ------------------------------------------------------------------------------

@pytest.mark.parametrize("enrolled", [True, False], ids=["enrolled", "not-enrolled"])
@pytest.mark.parametrize("role", ["quality", "admin", "dept_head"])
def test_the_password_alone_starts_no_session_for_quality_admin_and_export_roles(client, create_user, role,
                                                                                 enrolled):
    from qcflow.auth.models import UserSession
    from qcflow.extensions import db

    create_user(username="mfa", roles=(role, "clinician"), totp_secret=TOTP_SECRET if enrolled else None)
    commit()
    response = password_step(client, "mfa")
    assert response.status_code == 302 and response.headers["Location"] == "/login/second-factor"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(UserSession)) == 0
    assert client.get("/api/v1/me").status_code == 401
    assert client.get("/").headers["Location"].startswith("/login")
    assert client.get("/account").headers["Location"].startswith("/login")


def test_clinicians_and_nurses_log_in_with_the_password_alone(client, app, create_user):
    create_user(username="doc", roles=("clinician",))
    create_user(username="nur", roles=("nurse",))
    commit()
    for name in ("doc", "nur"):
        browser = app.test_client()
        response = password_step(browser, name)
        assert response.status_code == 302 and response.headers["Location"] == "/"
        assert browser.get("/api/v1/me").json["username"] == name
    assert audit_actions() == []


def test_anyone_who_enrolled_is_asked_for_the_code_whatever_the_role(client, create_user):
    create_user(username="doc2", roles=("clinician",), totp_secret=TOTP_SECRET)
    commit()
    assert password_step(client, "doc2").headers["Location"] == "/login/second-factor"
    assert client.get("/api/v1/me").status_code == 401


def test_the_right_code_starts_the_session_and_goes_to_the_page_asked_for(client, create_user):
    create_user(username="q", roles=("quality",))
    commit()
    with time_machine.travel(T0, tick=False):
        response = password_step(client, "q", path="/login?next=/events")
        assert response.headers["Location"] == "/login/second-factor?next=/events"
        finished = submit_code(client, code(), response.headers["Location"])
    assert finished.status_code == 302 and finished.headers["Location"] == "/events"
    with time_machine.travel(T0 + timedelta(seconds=5), tick=False):
        assert client.get("/api/v1/me").json["username"] == "q"
    assert [a for a, _d in audit_actions()] == ["user.second_factor_passed"]


def test_the_pending_marker_holds_the_user_id_and_time_only_and_lasts_five_minutes(app, client, create_user):
    from flask.sessions import SecureCookieSessionInterface

    user = create_user(username="q5", roles=("quality",))
    commit()
    with time_machine.travel(T0, tick=False):
        password_step(client, "q5")
    cookie = client.get_cookie("qcflow_session").value
    contents = SecureCookieSessionInterface().get_signing_serializer(app).loads(cookie)
    assert contents == {"second_factor_pending": {"user_id": user.id, "at": int(T0.timestamp())}}
    later = T0 + timedelta(minutes=5, seconds=1)
    with time_machine.travel(later, tick=False):
        assert client.get("/login/second-factor").headers["Location"].startswith("/login")
        token = csrf_from(client, "/login")
        response = client.post("/login/second-factor", data={"csrf_token": token, "code": code(at=later)})
        assert response.status_code == 302 and response.headers["Location"].startswith("/login")
        assert client.get("/api/v1/me").status_code == 401


def test_wrong_codes_are_refused_and_count_towards_the_login_throttling(database_url, tmp_path, client, create_user,
                                                                         caplog):
    create_user(username="guess", roles=("admin",))
    commit()
    caplog.set_level("WARNING", logger="qcflow.auth.views")
    with time_machine.travel(T0, tick=False):
        password_step(client, "guess")
        wrong = code(5)  # a valid code of another time: wrong now
        for _ in range(5):
            response = submit_code(client, wrong)
            assert response.status_code == 401
            assert "验证码不正确或已被使用" in response.get_data(as_text=True)
        assert submit_code(client, code()).status_code == 429  # even the right code, now
        other_worker = make_app(database_url, str(tmp_path)).test_client()
        assert password_step(other_worker, "guess").status_code == 429  # the password too, in every worker
        assert other_worker.get("/api/v1/me").status_code == 401 and client.get("/api/v1/me").status_code == 401
    failures = [d for a, d in audit_actions() if a == "user.second_factor_failed"]
    assert len(failures) == 5 and all(wrong not in d and TOTP_SECRET not in d for d in failures)
    logged = [r.getMessage() for r in caplog.records if r.name == "qcflow.auth.views"]  # the security log
    assert logged.count("second factor failed: account guess") == 5
    assert logged.count("second factor refused, too many failures: account guess") == 1
    assert not any(wrong in line for line in caplog.messages)
    with time_machine.travel(T0 + timedelta(minutes=16), tick=False):
        later = T0 + timedelta(minutes=16)
        password_step(client, "guess")
        assert submit_code(client, code(at=later)).headers["Location"] == "/"


def test_a_replayed_code_is_refused(app, create_user):
    create_user(username="rep", roles=("quality",))
    commit()
    first, second = app.test_client(), app.test_client()
    with time_machine.travel(T0, tick=False):
        password_step(first, "rep")
        assert submit_code(first, code()).headers["Location"] == "/"
        password_step(second, "rep")  # someone who saw the code types it on another machine
        refused = submit_code(second, code())
        assert refused.status_code == 401 and second.get("/api/v1/me").status_code == 401
    with time_machine.travel(T0 + timedelta(seconds=30), tick=False):
        assert submit_code(second, code()).status_code == 401  # still inside the ±1 window, still used
        assert submit_code(second, code(1)).headers["Location"] == "/"
    failures = [d for a, d in audit_actions() if a == "user.second_factor_failed"]
    assert len(failures) == 2 and all('"replayed"' in d for d in failures)


def enrolment_page(client):
    response = client.get("/login/enrol")
    html = response.get_data(as_text=True)
    return response, html, SECRET_RE.search(html).group(1).replace(" ", ""), ENROLMENT_RE.search(html).group(1)


def test_enrolment_shows_the_secret_as_text_and_qr_and_stores_it_only_once_a_code_verifies(client, create_user,
                                                                                            caplog):
    from qcflow.auth.models import User
    from qcflow.extensions import db

    create_user(username="newq", roles=("quality",), totp_secret=None)
    commit()
    caplog.set_level("WARNING", logger="qcflow.auth.views")
    with time_machine.travel(T0, tick=False):
        response = password_step(client, "newq")
        assert client.get(response.headers["Location"]).headers["Location"] == "/login/enrol"
        page, html, secret, enrolment = enrolment_page(client)
        assert page.status_code == 200 and "<svg" in html and 'class="qr"' in html
        assert 'autocomplete="one-time-code"' in html and 'inputmode="numeric"' in html
        assert "设置第二重验证" in html
        token = CSRF_RE.search(html).group(1)

        wrong = client.post("/login/enrol", data={"csrf_token": token, "enrolment": enrolment,
                                                  "code": code(5, secret=secret)})
        assert wrong.status_code == 401 and secret in wrong.get_data(as_text=True).replace(" ", "")
        # A secret of the browser's choosing (not signed by the server) is never stored.
        forged = client.post("/login/enrol", data={"csrf_token": token, "enrolment": f'["{secret}"]',
                                                   "code": code(secret=TOTP_SECRET)})
        assert forged.status_code == 400
        db.session.expire_all()
        assert db.session.scalar(sa.select(User.totp_secret).where(User.username == "newq")) is None
        assert client.get("/api/v1/me").status_code == 401

        done = client.post("/login/enrol", data={"csrf_token": token, "enrolment": enrolment,
                                                 "code": code(secret=secret)})
        assert done.status_code == 302 and done.headers["Location"] == "/"
        assert client.get("/api/v1/me").json["username"] == "newq"
    db.session.expire_all()
    user = db.session.scalar(sa.select(User).where(User.username == "newq"))
    assert user.totp_secret == secret and user.totp_enrolled_at is not None
    actions = audit_actions()
    assert [a for a, _d in actions] == ["user.second_factor_failed", "user.second_factor_enrol"]
    assert all(secret not in d and code(secret=secret) not in d for _a, d in actions)
    logged = [r.getMessage() for r in caplog.records if r.name == "qcflow.auth.views"]  # the security log
    assert logged == ["second factor enrolment failed: account newq"]
    assert not any(secret in line for line in caplog.messages)


def test_enrolment_pages_need_the_password_step(client, create_user):
    create_user(username="nopw", roles=("quality",), totp_secret=None)
    commit()
    for path in ("/login/enrol", "/login/second-factor"):
        assert client.get(path).headers["Location"].startswith("/login")
        token = csrf_from(client, "/login")
        response = client.post(path, data={"csrf_token": token, "code": "123456", "enrolment": "x"})
        assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_an_enrolled_user_cannot_enrol_again(client, create_user):
    create_user(username="twice", roles=("quality",))
    commit()
    password_step(client, "twice")
    assert client.get("/login/enrol").headers["Location"] == "/login/second-factor"


def test_reset_clears_the_secret_ends_the_sessions_and_the_next_login_enrols(app, client, runner, create_user):
    from qcflow.auth.models import User
    from qcflow.extensions import db

    create_user(username="lost", roles=("admin",))
    commit()
    assert login(client, "lost").headers["Location"] == "/"
    assert client.get("/api/v1/me").status_code == 200
    result = runner.invoke(args=["qcflow", "users", "reset-2fa", "--username", "lost"])
    assert result.exit_code == 0, result.output
    assert "1 session(s) ended" in result.output
    assert client.get("/api/v1/me").status_code == 401
    db.session.expire_all()
    user = db.session.scalar(sa.select(User).where(User.username == "lost"))
    assert (user.totp_secret, user.totp_last_step, user.totp_enrolled_at) == (None, None, None)
    assert audit_actions()[-1][0] == "user.second_factor_reset"
    browser = app.test_client()
    response = password_step(browser, "lost")
    assert browser.get(response.headers["Location"]).headers["Location"] == "/login/enrol"
    assert runner.invoke(args=["qcflow", "users", "reset-2fa", "--username", "nobody"]).exit_code == 2


def test_a_password_change_voids_a_pending_second_step(app, client, create_user):
    from qcflow.auth.models import User
    from qcflow.extensions import db

    create_user(username="chg", roles=("quality",))
    commit()
    with time_machine.travel(T0, tick=False):
        password_step(client, "chg")
    db.session.execute(sa.update(User).where(User.username == "chg")
                       .values(password_changed_at=T0 + timedelta(seconds=20)))
    commit()
    with time_machine.travel(T0 + timedelta(seconds=40), tick=False):
        response = client.post("/login/second-factor", data={"csrf_token": csrf_from(client, "/login"),
                                                             "code": code(1)})
        assert response.status_code == 302 and response.headers["Location"].startswith("/login")
        assert client.get("/api/v1/me").status_code == 401


def test_second_factor_pages_work_in_english(client, create_user):
    create_user(username="en", roles=("quality",))
    commit()
    with time_machine.travel(T0, tick=False):
        password_step(client, "en")
        assert "登录第二步" in client.get("/login/second-factor").get_data(as_text=True)
        html = client.get("/login/second-factor?lang=en").get_data(as_text=True)
        assert "Second step of the login" in html and 'autocomplete="one-time-code"' in html
        response = client.post("/login/second-factor?lang=en", data={"csrf_token": CSRF_RE.search(html).group(1),
                                                                     "code": code(5)})
    assert response.status_code == 401 and "The code is not correct" in response.get_data(as_text=True)


def test_demo_users_have_no_preset_secret_and_the_office_enrols_at_first_login(app, runner):
    from qcflow.auth.models import User
    from qcflow.demo import DEMO_USERS
    from qcflow.extensions import db

    result = runner.invoke(args=["qcflow", "demo-data"])
    assert result.exit_code == 0 and "head, quality, quality2, admin set up an authenticator app" in result.output
    with app.app_context():
        assert db.session.scalars(sa.select(User.totp_secret)).all() == [None] * len(DEMO_USERS)
    browser = app.test_client()
    response = password_step(browser, "quality", "demo-quality-2025")
    assert browser.get(response.headers["Location"]).headers["Location"] == "/login/enrol"
    doctor = app.test_client()
    assert password_step(doctor, "doctor", "demo-doctor-2025").headers["Location"] == "/"
