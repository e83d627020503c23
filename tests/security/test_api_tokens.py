"""API bearer tokens: the JSON API only (never a page), an expiry, the last use, listing and revocation
through the CLI and the admin page, each audited."""
from __future__ import annotations

import re
from datetime import timedelta

import sqlalchemy as sa
import time_machine

from qcflow.region.installation import CENTRE_ONLY
from tests.conftest import csrf_from
from tests.security.test_access_matrix import audit_length, object_ids, routes, url_for_objects

TOKEN_RE = re.compile(r'id="token-value">(qcf_[A-Za-z0-9_-]+)<')


def audit_actions() -> list[tuple[str, str, str]]:
    from qcflow.core.audit import AuditEntry
    from qcflow.extensions import db

    db.session.expire_all()
    return [tuple(row) for row in db.session.execute(
        sa.select(AuditEntry.actor, AuditEntry.action, AuditEntry.object_id).order_by(AuditEntry.seq))]


def create(runner, username, *extra) -> tuple[int, str]:
    result = runner.invoke(args=["qcflow", "tokens", "create", "--username", username, *extra])
    assert result.exit_code == 0, result.output
    token_id = int(re.match(r"token (\d+) ", result.output).group(1))
    return token_id, result.output.strip().splitlines()[-1]


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_a_quality_token_opens_no_page_not_even_the_confidential_reporter(app, world, token_for):
    """A token skipped the second factor of the web login: the quality office's token read the
    confidential reporter's name on the case page. Tokens open /api/ only."""
    from qcflow.auth.models import UserSession
    from qcflow.extensions import db

    headers = token_for("quality")
    client, event = app.test_client(), world["A"]["event"]
    before = audit_length()
    response = client.get(f"/events/{event.id}?show_reporter=1", headers=headers)
    page = response.get_data(as_text=True)
    assert response.status_code == 401
    assert world["users"]["doctor"].display_name not in page and "配药时发现" not in page
    assert "API 令牌只能用于 /api/ 下的 JSON 接口" in page
    assert "Set-Cookie" not in response.headers
    ids, wrong, checked = object_ids(world), [], 0
    for endpoint, rule, method, _access in routes(app):
        if rule.rule.startswith("/api/"):
            continue
        path = url_for_objects(rule, ids["A"])
        answer = client.open(path, method=method, headers=headers, data={"csrf_token": "x"})
        checked += 1
        absent = 404 if endpoint.split(".")[0] in CENTRE_ONLY else 401  # a centre's page does not exist here
        if answer.status_code != absent or "Set-Cookie" in answer.headers:
            wrong.append(f"{method} {path} → {answer.status_code}")
    assert checked > 50 and not wrong, "\n".join(wrong)
    assert audit_length() == before  # nothing read, nothing done
    assert db.session.scalar(sa.select(sa.func.count()).select_from(UserSession)) == 0
    assert client.get("/api/v1/me", headers=headers).json["username"] == "quality"  # the API still answers


def test_a_token_expires_after_its_days(app, runner, world):
    from qcflow.core.time import now

    start = now()
    with time_machine.travel(start, tick=False):
        _id, token = create(runner, "quality", "--days", "7")
    client = app.test_client()
    with time_machine.travel(start + timedelta(days=7, seconds=-1), tick=False):
        assert client.get("/api/v1/me", headers=bearer(token)).status_code == 200
    with time_machine.travel(start + timedelta(days=7), tick=False):
        refused = client.get("/api/v1/me?lang=en", headers=bearer(token))
    assert refused.status_code == 401 and refused.json["message"] == ("This API token has expired. Ask an "
                                                                      "administrator for a new one.")


def test_tokens_expire_after_api_token_days_unless_told(app, runner, world):
    from qcflow.auth.models import ApiToken
    from qcflow.extensions import db

    app.config["API_TOKEN_DAYS"] = 30
    first, _token = create(runner, "quality")
    second, _token = create(runner, "quality", "--days", "365")
    lifetimes = {row.id: row.expires_at - row.created_at for row in db.session.scalars(sa.select(ApiToken))}
    assert lifetimes == {first: timedelta(days=30), second: timedelta(days=365)}
    for days in ("0", "-3", "3651", "many"):
        result = runner.invoke(args=["qcflow", "tokens", "create", "--username", "quality", "--days", days])
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ApiToken)) == 2


def test_a_used_token_notes_its_last_use_at_most_once_a_minute(app, runner, world):
    from qcflow.auth.models import ApiToken
    from qcflow.core.time import now
    from qcflow.extensions import db

    token_id, token = create(runner, "nurse")
    client, start = app.test_client(), now() + timedelta(minutes=5)

    def last_used():
        db.session.expire_all()
        return db.session.get(ApiToken, token_id).last_used_at

    assert last_used() is None
    with time_machine.travel(start, tick=False):
        assert client.get("/api/v1/me", headers=bearer(token)).status_code == 200
    assert last_used() == start
    with time_machine.travel(start + timedelta(seconds=59), tick=False):
        client.get("/api/v1/me", headers=bearer(token))
    assert last_used() == start  # no write for every call
    with time_machine.travel(start + timedelta(seconds=61), tick=False):
        client.get("/api/v1/me", headers=bearer(token))
    assert last_used() == start + timedelta(seconds=61)
    listed = runner.invoke(args=["qcflow", "tokens", "list", "--username", "nurse"]).output
    assert f"{(start + timedelta(seconds=61)):%Y-%m-%d %H:%M}" in listed


def test_tokens_are_listed_and_revoked_through_the_cli_and_refused_at_once(app, runner, world):
    his_id, his = create(runner, "admin", "--name", "his-interface")
    script_id, script = create(runner, "quality", "--name", "monthly-script")
    client = app.test_client()
    assert client.get("/api/v1/me", headers=bearer(his)).status_code == 200
    listed = runner.invoke(args=["qcflow", "tokens", "list"])
    assert listed.exit_code == 0
    assert "his-interface" in listed.output and "monthly-script" in listed.output
    assert his not in listed.output and script not in listed.output and his[:12] in listed.output
    only = runner.invoke(args=["qcflow", "tokens", "list", "--username", "quality"]).output
    assert "monthly-script" in only and "his-interface" not in only
    assert runner.invoke(args=["qcflow", "tokens", "list", "--username", "ghost"]).exit_code == 2

    revoked = runner.invoke(args=["qcflow", "tokens", "revoke", str(his_id)])
    assert revoked.exit_code == 0, revoked.output
    refused = client.get("/api/v1/me", headers=bearer(his))
    assert refused.status_code == 401 and "已被吊销" in refused.json["message"]
    assert client.get("/api/v1/me", headers=bearer(script)).status_code == 200
    line = next(l for l in runner.invoke(args=["qcflow", "tokens", "list"]).output.splitlines() if "his-interface" in l)
    assert "revoked" in line
    assert runner.invoke(args=["qcflow", "tokens", "revoke", str(his_id)]).exit_code == 2  # already revoked
    assert runner.invoke(args=["qcflow", "tokens", "revoke", "999999"]).exit_code == 2
    actions = [(a, o) for _actor, a, o in audit_actions() if a.startswith("token.")]
    assert actions == [("token.create", str(his_id)), ("token.create", str(script_id)), ("token.revoke", str(his_id))]


def test_a_disabled_users_token_is_refused_with_a_reason(app, runner, world):
    _id, token = create(runner, "nurse")
    assert runner.invoke(args=["qcflow", "users", "disable", "--username", "nurse"]).exit_code == 0
    refused = app.test_client().get("/api/v1/me?lang=en", headers=bearer(token))
    assert refused.status_code == 401
    assert refused.json["message"] == "The account this API token belongs to is disabled."
    assert runner.invoke(args=["qcflow", "tokens", "create", "--username", "nurse"]).exit_code == 2


def test_the_admin_page_creates_a_token_shown_once_and_revokes_it(app, world, role_client):
    from qcflow.auth.models import ApiToken
    from qcflow.extensions import db

    admin = role_client("admin")
    page = admin.get("/admin/tokens")
    assert page.status_code == 200 and "API 令牌" in page.get_data(as_text=True)
    created = admin.post("/admin/tokens", data={"csrf_token": csrf_from(admin, "/admin/tokens"), "username": "quality",
                                                "name": "indicator-script", "days": "30"})
    assert created.status_code == 303 and created.headers["Location"] == "/admin/tokens"  # reloading posts nothing
    token = TOKEN_RE.search(admin.get("/admin/tokens").get_data(as_text=True)).group(1)
    api = app.test_client()
    assert api.get("/api/v1/me", headers=bearer(token)).json["username"] == "quality"
    again = admin.get("/admin/tokens").get_data(as_text=True)
    assert token not in again and token[:12] in again and "indicator-script" in again  # shown once
    assert token not in db.session.scalars(sa.select(ApiToken.token_hash)).all()
    row = db.session.scalars(sa.select(ApiToken)).one()
    assert row.expires_at - row.created_at == timedelta(days=30)

    no_csrf = admin.post(f"/admin/tokens/{row.id}/revoke", data={})
    assert no_csrf.status_code == 400
    assert api.get("/api/v1/me", headers=bearer(token)).status_code == 200
    revoked = admin.post(f"/admin/tokens/{row.id}/revoke", data={"csrf_token": csrf_from(admin, "/admin/tokens")})
    assert revoked.status_code == 302 and revoked.headers["Location"] == "/admin/tokens"
    assert api.get("/api/v1/me", headers=bearer(token)).status_code == 401  # at once
    assert "已于" in admin.get("/admin/tokens").get_data(as_text=True)
    admin_actor = f"user:{world['users']['admin'].id}"
    assert [(actor, action) for actor, action, _o in audit_actions() if action.startswith("token.")] == [
        (admin_actor, "token.create"), (admin_actor, "token.revoke")]


def test_the_admin_page_refuses_bad_input_with_a_message_and_creates_nothing(app, world, role_client):
    from qcflow.auth.models import ApiToken
    from qcflow.extensions import db

    admin = role_client("admin")
    for data, status, message in [
        ({"username": "ghost", "name": "x", "days": "30"}, 404, "没有用户"),
        ({"username": "quality", "name": "x", "days": "0"}, 400, None),
        ({"username": "quality", "name": "", "days": "30"}, 400, None),
    ]:
        answer = admin.post("/admin/tokens", data={"csrf_token": csrf_from(admin, "/admin/tokens"), **data})
        assert answer.status_code == status, (data, answer.status_code)
        assert "token-value" not in answer.get_data(as_text=True)
        if message:
            assert message in answer.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ApiToken)) == 0
    assert role_client("quality").get("/admin/tokens").status_code == 403


def test_a_bearer_header_on_the_api_is_the_only_credential_even_beside_a_session_cookie(app, world, role_client,
                                                                                     token_for):
    """A logged-in browser's cookie with `Authorization: Bearer <junk>` was acted on as the session's
    user, without the CSRF check the cookie needs; a valid token beside the cookie filed as the cookie's user."""
    from qcflow.events.models import AdverseEvent
    from qcflow.extensions import db

    doctor = role_client("doctor")  # logged in: its cookie goes with every request
    body = {"mode": "named", "category_code": "fall", "reporter_grade": "IV", "care_stage": "nursing",
            "occurred_at": "2026-03-01T09:00:00+08:00", "discovered_at": "2026-03-01T09:30:00+08:00",
            "location": "5病区", "department_id": world["A"]["department"].id, "description": "险些跌倒。"}
    before = db.session.scalar(db.select(db.func.count()).select_from(AdverseEvent))
    junk = doctor.post("/api/v1/events", json=body, headers={"Authorization": "Bearer not-a-token"})
    assert junk.status_code == 401 and "set-cookie" not in {k.lower() for k in junk.headers.keys()}
    filed = doctor.post("/api/v1/events", json=body, headers=token_for("quality"))
    assert filed.status_code == 201, filed.json
    db.session.expire_all()
    assert db.session.scalar(db.select(db.func.count()).select_from(AdverseEvent)) == before + 1
    assert db.session.get(AdverseEvent, filed.json["id"]).reporter_user_id == world["users"]["quality"].id


def test_a_token_request_renders_the_api_reference_and_ignores_stray_cookies(app, world, token_for):
    """The HTML API reference with a token answered 500 (its top bar wrote a CSRF token into the
    session a token request does not open); a stray remember-me cookie made a valid token a 401."""
    client = app.test_client()
    headers = token_for("quality")
    docs = client.get("/api/v1/docs", headers=headers)
    assert docs.status_code == 200 and "set-cookie" not in {k.lower() for k in docs.headers.keys()}
    client.set_cookie("remember_token", "left-by-another-app")
    assert client.get("/api/v1/me", headers=headers).status_code == 200
