"""Z3 (BOPLA): request bodies cannot set state, department ownership, reporter, version or timestamps."""
from __future__ import annotations

import pytest

from tests.conftest import csrf_from

#: Properties the server owns. No request body of the API may carry them.
SERVER_OWNED = {
    "id", "state", "reference", "reporter_user_id", "reporter_id", "receipt_hash", "hospital_id",
    "created_at", "updated_at", "submitted_at", "triaged_at", "closed_at", "claimed_at", "completed_at",
    "done_at", "verified_at", "signed_at", "enrolled_at", "enrolled_by", "attempted_at", "author_user_id",
    "is_effective", "prev_hash", "hash", "seq", "password_hash", "token_hash",
}
#: The time a fact happened, which the step that records it late may give (within bounds the services
#: check: tests/*/test_backdating.py); every other body still refuses it.
GIVEN_BY_THE_STEP = {
    ("POST /api/v1/events", "ReportIn"): {"submitted_at"},
    ("POST /api/v1/events/{event_id}/transitions", "TransitionIn"): {"submitted_at"},
    ("POST /api/v1/mdt/discussions/{discussion_id}/transitions", "DiscussionTransitionIn"): {"signed_at"},
    ("POST /api/v1/followup/tasks/{task_id}/complete", "CompleteIn"): {"completed_at"},
    # What happened to the operation in the HIS, applied through the operation workflow's own steps.
    ("POST /api/v1/intake/operations", "OperationIn"): {"state"},
}


def request_schemas(spec):
    """(operation, schema name, property names) for every request body, nested schemas included."""
    components = spec["components"]["schemas"]

    def walk(schema, seen):
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[1]
            if name in seen:
                return
            seen.add(name)
            yield name, set(components[name].get("properties", {}))
            yield from walk(components[name], seen)
            return
        for prop in schema.get("properties", {}).values():
            yield from walk(prop, seen)
        if "items" in schema:
            yield from walk(schema["items"], seen)

    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            body = operation.get("requestBody") if isinstance(operation, dict) else None
            for media in (body or {}).get("content", {}).values():  # JSON, and a file upload's multipart form
                for name, props in walk(media["schema"], set()):
                    yield f"{method.upper()} {path}", name, props


def test_no_request_body_schema_accepts_a_server_owned_field(client):
    spec = client.get("/api/v1/openapi.json").json
    found = list(request_schemas(spec))
    assert len(found) > 25
    offending = [f"{op} {name}: {sorted(owned)}" for op, name, props in found
                 if (owned := props & SERVER_OWNED - GIVEN_BY_THE_STEP.get((op, name), set()))]
    assert offending == []


@pytest.fixture
def doctor(world, role_client):
    client = role_client("doctor")
    client.csrf = {"X-CSRFToken": csrf_from(client, "/account")}
    return client


def report(world, **extra):
    return {"category_code": "medication", "subcategory_code": "wrong_dose", "reporter_grade": "III",
            "care_stage": "medication", "occurred_at": "2026-03-01T09:30:00+08:00",
            "discovered_at": "2026-03-01T10:00:00+08:00", "location": "5病区",
            "department_id": world["A"]["department"].id, "description": "剂量错误。", **extra}


@pytest.mark.parametrize("field,value", [
    ("state", "closed"), ("reporter_user_id", 1), ("created_at", "2020-01-01T00:00:00+00:00"), ("version", 99),
    ("id", 1), ("hospital_id", 2), ("handling_department_id", 1), ("reference", "AE-1"), ("receipt_hash", "x"),
])
def test_filing_a_report_with_a_server_owned_field_is_422_and_files_nothing(world, client, field, value):
    from qcflow.events.models import AdverseEvent
    from qcflow.extensions import db

    before = db.session.query(AdverseEvent).count()
    response = client.post("/api/v1/events", json=report(world, **{field: value}))
    assert response.status_code == 422 and field in response.json["errors"]
    db.session.expire_all()
    assert db.session.query(AdverseEvent).count() == before


@pytest.mark.parametrize("field,value", [("state", "closed"), ("department_id_owner", 1),
                                         ("closed_at", "2026-03-01T00:00:00+00:00"), ("reporter_user_id", 9)])
def test_a_transition_cannot_smuggle_fields(world, role_client, field, value):
    quality = role_client("quality")
    event = world["A"]["event"]
    response = quality.post(f"/api/v1/events/{event.id}/transitions", headers={"X-CSRFToken": csrf_from(quality, "/account")},
                            json={"action": "reopen", "version": event.version, "reason": "x", field: value})
    assert response.status_code == 422 and field in response.json["errors"]


def test_a_draft_update_cannot_change_state_or_reporter(world, doctor):
    draft = doctor.post("/api/v1/events", json={**report(world), "mode": "named", "submit": False}, headers=doctor.csrf)
    assert draft.status_code == 201 and draft.json["state"] == "draft"
    for field, value in (("state", "submitted"), ("reporter_user_id", world["users"]["nurse"].id),
                         ("submitted_at", "2026-03-01T00:00:00+00:00")):
        response = doctor.patch(f"/api/v1/events/{draft.json['id']}", json={field: value, "version": 1},
                                headers=doctor.csrf)
        assert response.status_code == 422 and field in response.json["errors"], (field, response.json)
    # The version is a precondition, never a value to set.
    stale = doctor.patch(f"/api/v1/events/{draft.json['id']}", json={"version": 7}, headers=doctor.csrf)
    assert stale.status_code == 409
    from qcflow.events.models import AdverseEvent
    from qcflow.extensions import db

    db.session.expire_all()
    row = db.session.get(AdverseEvent, draft.json["id"])
    assert row.state == "draft" and row.reporter_user_id == world["users"]["doctor"].id and row.version == 1


def test_mdt_record_and_attempts_cannot_set_owner_state_or_times(world, role_client):
    head = role_client("dept_head")
    token = {"X-CSRFToken": csrf_from(head, "/account")}
    discussion = world["A"]["discussion"]
    for field, value in (("state", "signed"), ("department_id", world["B"]["department"].id),
                         ("signed_at", "2026-03-01T00:00:00+00:00")):
        response = head.patch(f"/api/v1/mdt/discussions/{discussion.id}", headers=token,
                              json={"version": discussion.version, "question": "x", field: value})
        assert response.status_code == 422 and field in response.json["errors"], field
    task = world["A"]["task"]
    for field, value in (("user_id", 1), ("attempted_at", "2020-01-01T00:00:00+00:00"), ("task_id", 5)):
        response = head.post(f"/api/v1/followup/tasks/{task.id}/attempts", headers=token,
                             json={"channel": "phone", "result": "busy", field: value})
        assert response.status_code == 422 and field in response.json["errors"], field


def test_a_stale_version_is_a_precondition_never_stored(world, role_client):
    """`version` in a body is the version the client read: a wrong one is 409 and changes nothing."""
    from qcflow.events.models import AdverseEvent
    from qcflow.extensions import db

    quality = role_client("quality")
    event = world["A"]["event"]
    response = quality.post(f"/api/v1/events/{event.id}/messages", headers={"X-CSRFToken": csrf_from(quality, "/account")},
                            json={"message": "x"})
    assert response.status_code in (200, 201)
    db.session.expire_all()
    version = db.session.get(AdverseEvent, event.id).version
    stale = quality.post(f"/api/v1/events/{event.id}/transitions", headers={"X-CSRFToken": csrf_from(quality, "/account")},
                         json={"action": "plan_actions", "version": version + 50, "rca_cause_domains": ["process"],
                               "rca_factors": "x"})
    assert stale.status_code == 409 and stale.json["current_version"] == version
    db.session.expire_all()
    row = db.session.get(AdverseEvent, event.id)
    assert row.version == version and row.state == "investigating"
