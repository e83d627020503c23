"""Deny by default: every route declares who may use it; other departments' objects are 404."""
import pytest
from flask import Flask

from qcflow.auth.permissions import (
    authenticated,
    get_scoped_or_404,
    public,
    roles_required,
    undeclared_endpoints,
)
from qcflow.core.actors import Actor
from qcflow.core.errors import NotFound
from tests.conftest import PG_URL, login


def test_every_route_of_the_app_declares_its_access(app):
    assert undeclared_endpoints(app) == []


def test_the_route_walk_catches_an_undeclared_route(app):
    @app.get("/forgotten")
    def forgotten():
        return "secret"

    assert undeclared_endpoints(app) == ["GET /forgotten (forgotten)"]


def test_an_undeclared_route_is_refused_at_runtime(app, client):
    @app.get("/forgotten")
    def forgotten():
        return "secret"

    response = client.get("/forgotten")
    assert response.status_code == 403 and b"secret" not in response.data


def test_public_routes_are_an_allow_list(app):
    public_endpoints = set()
    for rule in app.url_map.iter_rules():
        with app.test_request_context(rule.rule):
            from qcflow.auth.permissions import access_of

            access = access_of(rule.endpoint)
            if access and access.public:
                public_endpoints.add(rule.endpoint)
    assert public_endpoints == {
        "static", "api-docs.openapi_json", "auth.login", "home.health", "home.api_docs",
        # The second login step: public routes, each refusing everything without a fresh password step.
        "auth.second_factor", "auth.enrol",
        # The anonymous reporting channel: the form, the receipt page and their API; the receipt read
        # back from the address's fragment (the same page for everybody).
        "events.report", "events.receipt", "events.report_received", "events_api.file_event",
        "events.receipt_file",  # a reporter's own file, served on a POST carrying the receipt code
        "events.report_public",  # the form of patients and families (a ward poster's QR code)
        "events_api.receipt_lookup", "events_api.receipt_reply",
        # The patient's follow-up page (its link and a second factor, no session)
        "invitations.page",
        # The SMS or WeChat gateway's delivery reports (authenticated by the signature of their body)
        "invitations_api.report_delivery",
        # A centre receives hospitals' submissions authenticated by their signature, not by a login.
        "centre_intake_api.receive_submission",
        "centre_api.standing",
    }


@pytest.fixture
def guarded_app(app):
    @app.get("/quality-only")
    @roles_required("quality")
    def quality_only():
        return "ok"

    @app.get("/api/v1/test-any-user")
    @authenticated
    def any_user():
        return {"ok": True}

    @app.get("/open")
    @public
    def open_page():
        return "open"

    return app


def test_wrong_role_is_403_right_role_passes(guarded_app, create_user):
    from qcflow.extensions import db

    create_user(username="n1", roles=("nurse",))
    create_user(username="q1", roles=("quality",))
    db.session.commit()
    nurse, quality = guarded_app.test_client(), guarded_app.test_client()
    login(nurse, "n1")
    login(quality, "q1")
    assert nurse.get("/quality-only").status_code == 403
    assert quality.get("/quality-only").status_code == 200


def test_anonymous_gets_401_on_api_and_login_redirect_on_pages(guarded_app):
    client = guarded_app.test_client()
    assert client.get("/api/v1/test-any-user").status_code == 401
    page = client.get("/quality-only")
    assert page.status_code == 302 and page.headers["Location"].startswith("/login?next=/quality-only")
    assert client.get("/open").status_code == 200


def test_roles_required_refuses_unknown_roles():
    with pytest.raises(ValueError):
        roles_required("superuser")


def test_scoping_turns_another_departments_object_into_404(ctx, create_user, create_department):
    from qcflow.auth.models import User

    surgery, cardiology = create_department(), create_department()
    colleague = create_user(department=surgery)
    stranger = create_user(department=cardiology)
    nurse = Actor("user:x", 0, surgery.id, frozenset({"nurse"}))
    assert get_scoped_or_404(User, colleague.id, nurse) is colleague
    with pytest.raises(NotFound):
        get_scoped_or_404(User, stranger.id, nurse)
    quality = Actor("user:q", 0, surgery.id, frozenset({"quality"}))
    assert get_scoped_or_404(User, stranger.id, quality) is stranger


def test_unknown_id_is_404_too(ctx, create_department):
    from qcflow.auth.models import User

    with pytest.raises(NotFound):
        get_scoped_or_404(User, 424242, Actor("user:q", 0, 1, frozenset({"quality"})))
