"""A centre is the same software with INSTALLATION_ROLE=centre: it serves only its own pages (a centre never
receives patient-level data), runs only its own jobs, and refuses an unknown role at start-up."""
from __future__ import annotations

import pytest

from tests.conftest import make_app


@pytest.fixture
def app(centre_app):
    return centre_app


@pytest.fixture
def hospital_layout():
    departments = {"centre": {"code": "QCC", "name": "质控中心", "kind": "functional"}}
    people = {"centre": ("centre", "centre", "centre"), "admin": ("admin", "admin", "centre")}
    return departments, people


@pytest.mark.parametrize("method, path", [
    ("GET", "/report"), ("POST", "/api/v1/events"), ("GET", "/receipt"),
    ("POST", "/api/v1/intake/patients"), ("POST", "/api/v1/intake/indicator_values"),
])
def test_the_hospitals_patient_routes_do_not_exist_on_a_centre(client, method, path):
    response = client.open(path, method=method, json={})
    assert response.status_code in (401, 404), response.get_data(as_text=True)[:300]
    assert response.status_code == 404 or path.startswith("/api/v1/intake")


def test_even_an_administrator_cannot_push_patients_into_a_centre(app, tokens):
    # An administrator may use the HIS intake at a hospital; a centre has no such door.
    response = app.test_client().post("/api/v1/intake/patients", json={"rows": []}, headers=tokens("admin"))
    assert response.status_code == 404


@pytest.mark.parametrize("who", ["centre", "admin"])
@pytest.mark.parametrize("path", ["/events", "/api/v1/events", "/region/submissions", "/api/v1/region/submissions",
                                  "/indicators", "/mdt", "/followup/queue"])
def test_the_hospitals_routes_are_404_for_the_centres_logged_in_users_too(clients, who, path):
    """Not 403: a refusal would tell that the route exists here, and so which side this installation is."""
    assert clients(who).get(path).status_code == 404


def test_the_centres_staff_start_from_completeness_and_its_administrators_from_the_hospitals(clients):
    assert clients("centre").get("/").headers["Location"].endswith("/centre/completeness")
    assert clients("admin").get("/").headers["Location"].endswith("/centre/hospitals")


def test_the_navigation_of_a_centre_names_only_the_centres_pages(clients):
    html = clients("centre").get("/centre/completeness").get_data(as_text=True)
    for link in ('id="nav-centre-completeness"', 'id="nav-centre-indicators"'):
        assert link in html
    for hospital_link in ('id="nav-report"', 'id="nav-events"', 'id="nav-indicators"', 'id="nav-region"'):
        assert hospital_link not in html
    # nor does the footer offer the hospital's reporting pages (404 here)
    assert 'href="/report' not in html and 'href="/receipt' not in html


def test_a_centre_runs_only_its_own_jobs():
    from qcflow.scheduling.jobs import jobs_of

    centre = {spec.id for spec in jobs_of("centre")}
    hospital = {spec.id for spec in jobs_of("hospital")}
    assert centre == {"housekeeping.purge_sessions", "housekeeping.purge_token_reveals",
                      "housekeeping.purge_idempotency_keys", "audit.anchor", "region.remind_missing"}
    assert {"followup.generate_tasks", "reports.monthly_bulletin", "region.send_submissions"} <= hospital
    assert "region.remind_missing" not in hospital


def test_an_unknown_installation_role_refuses_to_start(database_url, tmp_path):
    with pytest.raises(RuntimeError, match="INSTALLATION_ROLE"):
        make_app(database_url, str(tmp_path / "x"), INSTALLATION_ROLE="province")


def test_every_centre_page_sends_the_security_headers_and_no_store(app, clients):
    """The centre's pages (walked here on a centre; the hospital's walk in tests/security/test_web.py skips them)."""
    from qcflow.auth.permissions import access_of

    checked = 0
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/centre") or "GET" not in (rule.methods or ()) or rule.arguments - {"code"}:
            continue
        with app.test_request_context(rule.rule):
            access = access_of(rule.endpoint)
        user = "centre" if "centre" in access.roles else "admin"
        path = rule.build({"code": "NOBODY"} if "code" in rule.arguments else {}, append_unknown=False)[1]
        response = clients(user).get(path)
        checked += 1
        # 404: no hospital of that code; 422: a download asked without its period
        assert response.status_code in (200, 302, 404, 422), (path, response.status_code)
        csp = response.headers.get("Content-Security-Policy", "")
        assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp, path
        assert "no-store" in response.headers.get("Cache-Control", ""), path
    assert checked >= 8
