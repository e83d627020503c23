"""The API base: OpenAPI document, JSON errors, body checks, translated error pages."""
import pytest
import sqlalchemy as sa

from qcflow.auth.permissions import public
from tests.conftest import login


@pytest.fixture
def token(runner, create_user):
    from qcflow.extensions import db

    create_user(username="api", roles=("quality",))
    db.session.commit()
    result = runner.invoke(args=["qcflow", "tokens", "create", "--username", "api"])
    return result.output.strip().splitlines()[-1]


def test_openapi_document_is_served_and_names_bearer_auth(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    spec = response.json
    assert spec["openapi"].startswith("3.") and "/api/v1/me" in spec["paths"]
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_the_document_read_first_by_several_threads_at_once_describes_every_api_route_once(app):
    """The document is written at its first reading (qcflow.core.api.QcApi.spec): a worker's threads reading it
    at once each get the whole of it, every operation of every API blueprint, none twice."""
    import re
    import threading

    from qcflow.extensions import api

    documents = []

    def read():
        documents.append(app.test_client().get("/api/v1/openapi.json").get_data())

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(documents) == 4 and len(set(documents)) == 1
    paths = app.test_client().get("/api/v1/openapi.json").json["paths"]
    blueprints = app.extensions["flask-smorest"]["blp_name_to_api"]
    # /a/<int:id> as the document writes it: /a/{id}
    routes = {(re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule), method.lower())
              for rule in app.url_map.iter_rules() if rule.endpoint.split(".")[0] in blueprints
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    documented = {(path, method) for path, operations in paths.items() for method in operations
                  if method in {"get", "post", "put", "patch", "delete"}}
    assert len(routes) > 100 and routes == documented
    assert api.spec.to_dict()["tags"] == [{"name": name, "description": app.blueprints[name].description}
                                          for name in blueprints]


def test_api_docs_page_lists_the_endpoints(client):
    html = client.get("/api/v1/docs").get_data(as_text=True)
    assert "GET /api/v1/me" in html and "openapi.json" in html


def test_api_docs_page_shows_each_bodys_fields_down_to_the_rows(client):
    """An integrator reads a row's fields on the page, without generating a client from openapi.json."""
    import re

    html = client.get("/api/v1/docs?lang=en").get_data(as_text=True)
    section = html[html.index("POST /api/v1/intake/encounters"):]
    section = section[:section.index("</section>")]
    cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", section, re.S)]
    assert {"items[].his_id*", "items[].is_day_surgery", "items[].admitted_at*", "strict"} <= set(cells)
    booking = html[html.index("POST /api/v1/operations/booking-check"):]
    assert "operation_his_id*" in re.sub(r"<[^>]+>", "", booking[:booking.index("</section>")])


def test_405_is_json_and_keeps_the_allow_header(client):
    response = client.delete("/api/v1/me")
    assert response.status_code == 405
    assert response.json["code"] == "method_not_allowed"
    assert "GET" in response.headers["Allow"]


def test_unknown_api_path_is_json_404(client):
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404 and response.json["code"] == "not_found"
    assert response.json["message"]


def test_malformed_json_is_400_with_a_clear_message(client, token):
    response = client.post("/api/v1/notifications/1/read", data="{not json",
                           headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json["code"] == "bad_request" and "JSON" in response.json["message"]


def test_wrong_content_type_is_400(client, token):
    response = client.post("/api/v1/notifications/1/read", data="a=1",
                           headers={"Authorization": f"Bearer {token}", "Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 400 and "Content-Type" in response.json["message"]


def test_oversize_body_is_413(client, token):
    response = client.post("/api/v1/notifications/1/read", data="x" * (1024 * 1024 + 1),
                           headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    assert response.status_code == 413 and response.json["code"] == "request_entity_too_large"


def test_unknown_query_fields_are_422_with_field_errors(client, token):
    response = client.get("/api/v1/notifications?limit=500&colour=red", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 422
    assert set(response.json["errors"]) == {"limit", "colour"}


def test_integrity_error_becomes_409(app, create_department):
    from qcflow.auth.models import Department
    from qcflow.core.time import now
    from qcflow.extensions import db

    create_department(code="DUP")
    db.session.commit()

    @app.post("/api/v1/test-duplicate")
    @public
    def duplicate():
        db.session.add(Department(code="DUP", name="重复", kind="clinical", created_at=now()))
        db.session.flush()
        return {}

    response = app.test_client().post("/api/v1/test-duplicate")
    assert response.status_code == 409 and response.json["code"] == "conflict"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Department)) == 1


def test_error_pages_are_translated(client):
    assert "未找到" in client.get("/no-such-page").get_data(as_text=True)
    assert "Not found" in client.get("/no-such-page?lang=en").get_data(as_text=True)


def test_api_error_messages_follow_the_language(client):
    # A client program is told how to authenticate, not only to log in.
    assert client.get("/api/v1/me").json["message"] == "请发送 API 令牌（请求头“Authorization: Bearer <令牌>”），或先登录。"
    assert client.get("/api/v1/me?lang=en").json["message"] == (
        "Send an API token (header “Authorization: Bearer <token>”), or log in first.")


def test_api_with_session_cookie_needs_csrf_token_for_posts(client, create_user):
    from qcflow.extensions import db

    create_user(username="cookie")
    db.session.commit()
    login(client, "cookie")
    response = client.post("/api/v1/notifications/1/read")
    assert response.status_code == 400  # a cross-site form could not do this with the user's cookie
