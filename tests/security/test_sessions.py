"""S1–S3 and N1–N2: session cookies, fixation, revocation by replay, throttling across real workers,
common passwords. Idle/absolute timeouts and revocation on logout, password change and disable are in
tests/auth/test_login.py (frozen clock, replayed cookies); this file adds what they do not cover."""
from __future__ import annotations

import threading
import urllib.error
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar

import pytest

from tests.conftest import PASSWORD, csrf_from, login, make_app
from tests.security.conftest import gunicorn


def set_cookie_header(response, name_part="qcflow_session"):
    cookies = [v for k, v in response.headers.items() if k == "Set-Cookie" and name_part in v]
    assert len(cookies) == 1, response.headers
    return cookies[0]


def test_development_cookie_is_httponly_and_samesite_lax(world, client):
    response = login(client, "doctor")
    cookie = set_cookie_header(response)
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain-HTTP development server


def test_production_cookie_is_secure_host_prefixed_httponly_lax(world, database_url, tmp_path):
    app = make_app(database_url, str(tmp_path), ENV="production", SECRET_KEY="a-long-random-production-secret")
    client = app.test_client()
    https = {"base_url": "https://qc.example-hospital.cn"}
    html = client.get("/login", **https).get_data(as_text=True)
    token = html.split('name="csrf_token"')[1].split('value="')[1].split('"')[0]
    response = client.post("/login", data={"csrf_token": token, "username": "doctor", "password": PASSWORD},
                           headers={"Referer": "https://qc.example-hospital.cn/login"}, **https)  # HTTPS: same-origin check
    assert response.status_code == 302
    cookie = set_cookie_header(response)
    assert cookie.startswith("__Host-qcflow_session=")
    for attribute in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/"):
        assert attribute in cookie
    assert "Domain" not in cookie
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    assert client.get("/api/v1/me", **https).status_code == 200


def test_session_fixation_a_planted_pre_login_cookie_never_becomes_a_login(world, app, client):
    """The cookie a visitor holds before login (e.g. planted by an attacker) is not the one after it."""
    client.get("/login")
    planted = client.get_cookie("qcflow_session").value
    login(client, "doctor")
    assert client.get_cookie("qcflow_session").value != planted
    attacker = app.test_client()
    attacker.set_cookie("qcflow_session", planted)
    assert attacker.get("/api/v1/me").status_code == 401
    assert attacker.get("/").status_code == 302


def test_cookie_is_bound_to_the_server_side_session_not_the_user(world, app, client):
    """A forged cookie with another session key, signed with the right secret, is still refused."""
    from flask.sessions import SecureCookieSessionInterface

    login(client, "doctor")
    serializer = SecureCookieSessionInterface().get_signing_serializer(app)
    forged = serializer.dumps({"_user_id": str(world["users"]["doctor"].id), "_fresh": True})
    other = app.test_client()
    other.set_cookie("qcflow_session", forged)
    assert other.get("/api/v1/me").status_code == 401


@pytest.mark.parametrize("password", ["password123", "12345678", "Qwertyuiop", "iloveyou", "woaini1314", " 88888888 "])
def test_common_passwords_are_refused_at_user_creation(world, runner, password):
    result = runner.invoke(args=["qcflow", "users", "create", "--username", "newbie", "--password", password,
                                 "--role", "nurse", "--department", "GS"])
    assert result.exit_code != 0
    assert "most common passwords" in result.output or "最常见的密码" in result.output


def test_an_uncommon_password_is_accepted_at_user_creation(world, runner):
    result = runner.invoke(args=["qcflow", "users", "create", "--username", "newbie", "--password",
                                 "绿色的桥-blue-7-river", "--role", "nurse", "--department", "GS"])
    assert result.exit_code == 0, result.output


def test_common_password_is_refused_at_password_change_with_a_translated_message(world, app, client):
    login(client, "nurse")
    token = csrf_from(client, "/account")
    response = client.post("/account", data={"csrf_token": token, "pw-current_password": PASSWORD,
                                             "pw-new_password": "iloveyou123"})
    assert response.status_code == 422
    assert "这个密码是最常见的密码之一" in response.get_data(as_text=True)
    english = client.post("/account?lang=en", data={"csrf_token": token, "pw-current_password": PASSWORD,
                                                    "pw-new_password": "Password1234"})
    assert english.status_code == 422 and "most common passwords" in english.get_data(as_text=True)
    assert client.get("/api/v1/me").status_code == 200  # nothing changed, session alive
    assert login(app.test_client(), "nurse").status_code == 302


def test_the_shipped_list_is_local_and_large(app):
    from qcflow.auth.services import COMMON_PASSWORDS_FILE, common_passwords

    assert COMMON_PASSWORDS_FILE.startswith(app.root_path)
    assert len(common_passwords()) > 8000 and "password" in common_passwords() and PASSWORD not in common_passwords()


def _post_login(base, username, password, address="203.0.113.9"):
    """One browser-like login from a fresh cookie jar (so requests spread over the workers), from
    `address` as the reverse proxy reports it to the login pages (deploy/nginx/qcflow.conf)."""
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect())
    opener.addheaders = [("X-Qcflow-Client", address)]
    html = opener.open(base + "/login", timeout=20).read().decode()
    token = html.split('name="csrf_token"')[1].split('value="')[1].split('"')[0]
    data = urllib.parse.urlencode({"csrf_token": token, "username": username, "password": password}).encode()
    try:
        return opener.open(base + "/login", data=data, timeout=30).status, None
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Retry-After")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_login_throttling_holds_across_four_gunicorn_workers(world, database_url, tmp_path):
    """N2: 24 concurrent wrong guesses from one address through 4 real workers: at most 5 are checked;
    from that address even the right password must then wait (429 with Retry-After) in every worker,
    while the account's owner gets in from another address at once: a wait, never a lock-out."""
    with gunicorn(database_url, tmp_path, tmp_path / "gunicorn.log", workers=4,
                  QCFLOW_SECRET_KEY="gunicorn-test-secret", QCFLOW_LOGIN_ADDRESS_HEADER="X-Qcflow-Client") as server:
        statuses: list[int] = []
        lock = threading.Lock()

        def guess(n):
            status, _wait = _post_login(server.base_url, "doctor", f"wrong-guess-{n}")
            with lock:
                statuses.append(status)

        threads = [threading.Thread(target=guess, args=(n,)) for n in range(24)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sorted(set(statuses)) <= [401, 429], statuses
        assert statuses.count(401) <= 5, statuses
        answers = [_post_login(server.base_url, "doctor", PASSWORD) for _ in range(4)]
        assert all(status == 429 and 0 < int(wait) <= 30 for status, wait in answers), answers
        assert _post_login(server.base_url, "doctor", PASSWORD, address="10.3.2.1")[0] == 302
        log = (tmp_path / "gunicorn.log").read_text()
        assert log.count("Booting worker") >= 4, log
