"""N3: quality-office, admin and export roles cannot complete a web login without a second factor.

The flows (enrolment, replay, throttling, reset, RFC 6238 vectors) are tested in
tests/auth/test_second_factor.py; this file proves that the password step alone reaches nothing, over
every route of the URL map, and that every role that may export is a role that needs the factor.
"""
from __future__ import annotations

import pytest

from qcflow.region.installation import CENTRE_ONLY
from tests.conftest import PASSWORD, csrf_from, login
from tests.security.test_access_matrix import object_ids, routes, send, url_for_objects

#: The CSV/XLSX exports and the monthly bulletin PDF (docs/exports.md).
EXPORT_ENDPOINTS = ("reports_api.export_events_csv", "reports_api.export_events_xlsx",
                    "reports_api.export_followup_csv", "reports_api.export_followup_xlsx",
                    "reports_api.monthly_bulletin")


def test_every_role_that_may_export_or_administer_needs_the_second_factor(app):
    from qcflow.auth.permissions import access_of

    required = set(app.config["MFA_REQUIRED_ROLES"])
    assert {"quality", "admin"} <= required
    exporters = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint in EXPORT_ENDPOINTS:
            with app.test_request_context(rule.rule):
                exporters |= access_of(rule.endpoint).roles
    assert exporters, "no export route found: update EXPORT_ENDPOINTS"
    assert exporters <= required, f"roles that may export without a second factor: {exporters - required}"


@pytest.mark.parametrize(("role", "enrolled"), [("quality", True), ("admin", False), ("dept_head", True)])
def test_after_the_password_alone_no_route_is_reachable(app, world, role, enrolled):
    """Every non-public route, every method, with the pending marker of a right password: the login
    page (pages) or 401 (API), never the route's answer, and no session row."""
    from qcflow.auth.models import UserSession
    from qcflow.extensions import db

    user = world["users"][role]
    if not enrolled:
        user.totp_secret = None
        db.session.commit()
    client = app.test_client()
    response = client.post("/login", data={"csrf_token": csrf_from(client), "username": user.username,
                                           "password": PASSWORD})
    assert response.status_code == 302 and response.headers["Location"] == "/login/second-factor"
    ids = object_ids(world)
    wrong, checked = [], 0
    for endpoint, rule, method, access in routes(app):
        if access.public:
            continue
        path = url_for_objects(rule, ids["A"])  # real objects the user could otherwise open
        answer = send(client, endpoint, path, method, token=None)
        checked += 1
        if endpoint.split(".")[0] in CENTRE_ONLY:  # a centre's route does not exist on a hospital
            ok = answer.status_code == 404
        elif rule.rule.startswith("/api/"):
            ok = answer.status_code == 401
        else:
            ok = answer.status_code in (302, 303) and answer.headers["Location"].startswith("/login")
        if not ok:
            wrong.append(f"{method} {path} → {answer.status_code}")
    assert checked > 100 and not wrong, "\n".join(wrong)
    db.session.expire_all()
    assert db.session.query(UserSession).count() == 0
    # The marker is still there, and it is only a marker: the second step still waits for the code.
    expected = ("/login/second-factor", 200) if enrolled else ("/login/enrol", 200)
    page = client.get(expected[0])
    assert page.status_code == expected[1] and "csrf_token" in page.get_data(as_text=True)


def test_with_the_second_factor_the_same_user_gets_in(app, world):
    client = app.test_client()
    assert login(client, world["users"]["quality"].username).headers["Location"] == "/"
    assert client.get("/api/v1/me").json["roles"] == ["quality"]


def test_api_bearer_tokens_stay_single_factor(client, world, token_for):
    """docs/decisions.md: bearer tokens are issued by an administrator on the server, for machines."""
    response = client.get("/api/v1/me", headers=token_for("quality"))
    assert response.status_code == 200 and response.json["username"] == "quality"
