"""Logging in and out, server-side sessions, throttling, tokens."""
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
import time_machine

from tests.conftest import PASSWORD, csrf_from, login, make_app


def commit():
    from qcflow.extensions import db

    db.session.commit()


def test_login_then_home_shows_the_user(client, create_user):
    create_user(username="li", display_name="李护士", roles=("nurse",))
    commit()
    response = login(client, "li")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert "李护士" in client.get("/").get_data(as_text=True)


def test_username_is_case_insensitive(client, create_user):
    create_user(username="zhao")
    commit()
    assert login(client, "ZHAO").status_code == 302


def test_wrong_password_and_unknown_user_get_the_same_answer(client, create_user):
    create_user(username="wang")
    commit()
    wrong = login(client, "wang", "not-the-password")
    unknown = login(client, "nobody", "not-the-password")
    assert wrong.status_code == unknown.status_code == 401
    strip = lambda r: r.get_data(as_text=True).split('name="csrf_token"')[0]  # noqa: E731
    assert "用户名或密码不正确" in wrong.get_data(as_text=True)
    assert strip(wrong).replace("wang", "") == strip(unknown).replace("nobody", "")


def test_failed_and_throttled_logins_reach_the_security_log(client, create_user, caplog):
    """ASVS 16.3.1: the throttling rows go after 15 minutes; the log line (kept 6 months) stays."""
    create_user(username="li")
    commit()
    with caplog.at_level("WARNING", logger="qcflow.auth.views"):
        for _ in range(6):
            login(client, "li", "not-the-password")
        login(client, "li")
    lines = [r.getMessage() for r in caplog.records if r.name == "qcflow.auth.views"]
    assert lines.count("login failed: account li") == 5
    assert lines.count("login refused, too many failures: account li") == 2
    assert not any("not-the-password" in line or "correct-horse" in line for line in caplog.messages)


def test_disabled_user_cannot_log_in(client, create_user):
    create_user(username="gone", is_active=False)
    commit()
    assert login(client, "gone").status_code == 401


def from_address(client, address):
    client.environ_base["REMOTE_ADDR"] = address
    return client


def test_five_failures_slow_this_address_down_across_workers_but_lock_nobody_out(database_url, tmp_path,
                                                                                 create_user):
    create_user(username="target")
    commit()
    # Two app instances on one database stand for two gunicorn workers.
    workers = [from_address(make_app(database_url, str(tmp_path)).test_client(), "203.0.113.9") for _ in range(2)]
    start = datetime.now(timezone.utc)
    with time_machine.travel(start, tick=False):
        for attempt in range(5):
            assert login(workers[attempt % 2], "target", "guess-%d" % attempt).status_code == 401
        slowed = login(workers[1], "target")  # from this address even the right password waits now
        assert slowed.status_code == 429 and slowed.headers["Retry-After"] == "30"
        assert "请等待 30 秒" in slowed.get_data(as_text=True)
        owner = from_address(make_app(database_url, str(tmp_path)).test_client(), "10.20.30.40")
        assert login(owner, "target").status_code == 302  # from another address at once
    with time_machine.travel(start + timedelta(seconds=31), tick=False):
        assert login(workers[0], "target").status_code == 302  # and from the same one after the wait


def test_twenty_guesses_at_the_admin_from_one_address_are_slowed_and_never_keep_the_admin_out(app, create_user):
    from qcflow.auth.models import LoginFailure
    from qcflow.extensions import db

    create_user(username="admin", roles=("admin",))
    commit()
    start = datetime.now(timezone.utc) + timedelta(days=1)
    attacker = from_address(app.test_client(), "198.51.100.23")
    with time_machine.travel(start, tick=False):
        answers = [login(attacker, "admin", f"guess-{n}") for n in range(20)]
    statuses = [a.status_code for a in answers]
    assert statuses.count(401) == 5 and statuses.count(429) == 15, statuses  # 15 of them never checked
    waits = [int(a.headers["Retry-After"]) for a in answers if a.status_code == 429]
    assert all(0 < wait <= 30 for wait in waits), waits
    with time_machine.travel(start + timedelta(seconds=1), tick=False):
        admin = from_address(app.test_client(), "10.8.0.5")
        assert login(admin, "admin").headers["Location"] == "/"
        assert admin.get("/api/v1/me").json["username"] == "admin"
        assert login(attacker, "admin").status_code == 429
    with time_machine.travel(start + timedelta(seconds=31), tick=False):
        later = from_address(app.test_client(), "198.51.100.23")
        assert login(later, "admin").headers["Location"] == "/"  # the same address, after the back-off
    stored = db.session.execute(sa.select(LoginFailure.address_hash, LoginFailure.username)).all()
    assert len(stored) == 5 and all(len(h) == 64 and "198.51" not in h for h, _name in stored)
    import hashlib

    assert hashlib.sha256(b"198.51.100.23").hexdigest() not in {h for h, _name in stored}  # keyed, not a bare hash


def test_guesses_from_many_addresses_slow_unknown_browsers_but_not_the_owners_known_browser(app, create_user):
    create_user(username="owner")
    commit()
    start = datetime.now(timezone.utc)
    known = from_address(app.test_client(), "10.1.1.1")
    with time_machine.travel(start, tick=False):
        assert login(known, "owner").status_code == 302  # a completed login marks this browser
    with time_machine.travel(start + timedelta(minutes=1), tick=False):
        for n in range(12):  # a botnet: every guess from another address
            assert login(from_address(app.test_client(), f"192.0.2.{n}"), "owner", "wrong").status_code in (401, 429)
        stranger = login(from_address(app.test_client(), "192.0.2.200"), "owner")
        assert stranger.status_code == 429 and int(stranger.headers["Retry-After"]) <= 300
        assert login(known, "owner").status_code == 302  # the owner's browser is not held back


def test_the_wait_doubles_from_thirty_seconds_and_stops_at_fifteen_minutes(ctx, create_user):
    """The account + address rule with an explicit clock: each guess after the fifth must wait twice as
    long as the one before, never more than 15 minutes (a wait, not a lock-out)."""
    from flask import current_app

    from qcflow.auth import services
    from qcflow.core.errors import TooManyRequests
    from qcflow.core.time import now as clock_now

    limits = services.login_limits(current_app.config["LOGIN_THROTTLE"])
    at, waits = clock_now(), []
    for _ in range(12):
        while True:
            attempt = services.record_login_attempt("nobody", now=at, address_hash="a" * 64)
            try:
                assert services.authenticate("nobody", "guess", attempt_id=attempt, now=at, limits=limits) is None
                break
            except TooManyRequests as refused:
                wait = int(refused.extra["headers"]["Retry-After"])
                waits.append(wait)
                at += timedelta(seconds=wait)
    assert waits == [30, 60, 120, 240, 480, 900, 900], waits


def test_guesses_from_any_number_of_addresses_check_fewer_than_100_passwords_an_hour(ctx, create_user):
    """ASVS 2.2.1 (4.0.3): never more than 100 failed attempts per hour on one account. The attacker
    here has a new address for every guess and tries again exactly when the wait is over."""
    from flask import current_app

    from qcflow.auth import services
    from qcflow.core.errors import TooManyRequests
    from qcflow.core.time import now as clock_now

    limits = services.login_limits(current_app.config["LOGIN_THROTTLE"])
    start = at = clock_now()
    checked = 0
    while at < start + timedelta(hours=1):
        attempt = services.record_login_attempt("victim", now=at, address_hash=f"{checked:064d}")
        try:
            services.authenticate("victim", "guess", attempt_id=attempt, now=at, limits=limits)
            checked += 1
        except TooManyRequests as refused:
            at += timedelta(seconds=int(refused.extra["headers"]["Retry-After"]))
    assert 10 < checked < 100, checked


def test_a_client_cannot_choose_its_address_unless_the_proxy_header_is_configured(app, create_user):
    create_user(username="spoof")
    commit()
    client = app.test_client()
    statuses = [client.post("/login", data={"csrf_token": csrf_from(client), "username": "spoof", "password": "x"},
                            headers={"X-Qcflow-Client": f"10.0.0.{n}"}).status_code for n in range(8)]
    assert statuses == [401] * 5 + [429] * 3  # the header is ignored: one address
    app.config["LOGIN_ADDRESS_HEADER"] = "X-Qcflow-Client"
    answer = client.post("/login", data={"csrf_token": csrf_from(client), "username": "spoof", "password": PASSWORD},
                         headers={"X-Qcflow-Client": "10.9.9.9"})
    assert answer.status_code == 302  # behind the proxy that sets it, it is the address


def test_the_known_browser_mark_is_a_signed_http_only_cookie_of_the_login_pages(client, create_user):
    create_user(username="mark")
    commit()
    login(client, "mark")
    cookie = client.get_cookie("qcflow_known_browser", path="/login")
    assert cookie is not None and cookie.http_only and cookie.path == "/login"
    assert PASSWORD not in cookie.value
    from qcflow.auth import throttling

    tampered = f"qcflow_known_browser={cookie.value[:-3]}xyz"
    with client.application.test_request_context("/login", headers={"Cookie": tampered}):
        assert throttling.attempt_source("mark")["browser_hash"] is None  # an unknown browser
    with client.application.test_request_context("/login", headers={"Cookie": f"qcflow_known_browser={cookie.value}"}):
        assert throttling.attempt_source("mark")["browser_hash"] is not None
        assert throttling.attempt_source("someone-else")["browser_hash"] is None


def test_session_key_changes_at_every_login(app, client, create_user):
    from qcflow.auth.models import UserSession
    from qcflow.extensions import db

    create_user(username="rot")
    commit()
    login(client, "rot")
    first_cookie = client.get_cookie("qcflow_session").value
    login(client, "rot")
    second_cookie = client.get_cookie("qcflow_session").value
    assert first_cookie != second_cookie
    assert db.session.scalar(sa.select(sa.func.count()).select_from(UserSession)) == 2


def replay(app, cookie_value):
    other = app.test_client()
    other.set_cookie("qcflow_session", cookie_value)
    return other


def test_logout_ends_the_session_on_the_server(app, client, create_user):
    create_user(username="out")
    commit()
    login(client, "out")
    stolen = client.get_cookie("qcflow_session").value
    token = csrf_from(client, "/account")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    copy = replay(app, stolen)
    assert copy.get("/api/v1/me").status_code == 401
    assert copy.get("/").status_code == 302  # back to the login page


def test_password_change_ends_every_session(app, client, create_user):
    create_user(username="pw")
    commit()
    login(client, "pw")
    other_device = app.test_client()
    login(other_device, "pw")
    token = csrf_from(client, "/account")
    response = client.post("/account", data={"csrf_token": token, "pw-current_password": PASSWORD,
                                             "pw-new_password": "a-brand-new-pass"})
    assert response.status_code == 302
    assert other_device.get("/api/v1/me").status_code == 401
    assert login(app.test_client(), "pw", "a-brand-new-pass").status_code == 302


def test_password_change_with_wrong_current_password_changes_nothing(app, client, create_user):
    create_user(username="pw2")
    commit()
    login(client, "pw2")
    token = csrf_from(client, "/account")
    response = client.post("/account", data={"csrf_token": token, "pw-current_password": "wrong-one",
                                             "pw-new_password": "a-brand-new-pass"})
    assert response.status_code == 422
    assert client.get("/api/v1/me").status_code == 200
    assert login(app.test_client(), "pw2").status_code == 302


def test_disabling_a_user_ends_their_sessions(app, client, runner, create_user):
    create_user(username="dis")
    commit()
    login(client, "dis")
    assert client.get("/api/v1/me").status_code == 200
    result = runner.invoke(args=["qcflow", "users", "disable", "--username", "dis"])
    assert result.exit_code == 0, result.output
    assert client.get("/api/v1/me").status_code == 401


def test_idle_session_expires_after_thirty_minutes(client, create_user):
    create_user(username="idle")
    commit()
    start = datetime.now(timezone.utc)
    with time_machine.travel(start, tick=False):
        login(client, "idle")
    with time_machine.travel(start + timedelta(minutes=29), tick=False):
        assert client.get("/api/v1/me").status_code == 200  # activity keeps it alive
    with time_machine.travel(start + timedelta(minutes=58), tick=False):
        assert client.get("/api/v1/me").status_code == 200
    with time_machine.travel(start + timedelta(minutes=89), tick=False):
        assert client.get("/api/v1/me").status_code == 401


def test_session_ends_after_twelve_hours_even_when_active(client, create_user):
    create_user(username="long")
    commit()
    start = datetime.now(timezone.utc)
    with time_machine.travel(start, tick=False):
        login(client, "long")
    for minutes in range(25, 12 * 60, 25):
        with time_machine.travel(start + timedelta(minutes=minutes), tick=False):
            assert client.get("/api/v1/me").status_code == 200
    with time_machine.travel(start + timedelta(hours=12, minutes=1), tick=False):
        assert client.get("/api/v1/me").status_code == 401


def test_login_form_without_csrf_token_is_refused(client, create_user):
    create_user(username="csrf")
    commit()
    response = client.post("/login", data={"username": "csrf", "password": PASSWORD})
    assert response.status_code == 400


def test_next_parameter_cannot_leave_the_site(client, create_user):
    create_user(username="nx")
    commit()
    token = csrf_from(client)
    response = client.post("/login?next=//evil.example/x", data={"csrf_token": token, "username": "nx", "password": PASSWORD})
    assert response.headers["Location"] == "/"


def test_bearer_token_authenticates_api_calls_and_is_stored_hashed(app, client, runner, create_user):
    from qcflow.auth.models import ApiToken
    from qcflow.extensions import db

    create_user(username="his", roles=("admin",))
    commit()
    result = runner.invoke(args=["qcflow", "tokens", "create", "--username", "his", "--name", "his-interface"])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200 and response.json["username"] == "his"
    assert response.json["roles"] == ["admin"]
    assert "Set-Cookie" not in response.headers
    stored = db.session.scalars(sa.select(ApiToken.token_hash)).all()
    assert token not in stored and len(stored) == 1


def test_wrong_bearer_token_is_401(client):
    response = client.get("/api/v1/me", headers={"Authorization": "Bearer qcf_made-up"})
    assert response.status_code == 401 and response.json["code"] == "not_authenticated"


def test_the_his_interface_account_cannot_log_into_the_pages(client, create_user):
    """The HIS's account works with API tokens only; its password opens no session."""
    create_user(username="his", roles=("interface",))
    commit()
    response = login(client, "his")
    assert response.status_code == 403 and "API" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302  # still logged out: the home page sends to the login
