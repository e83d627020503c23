"""The HIS asks before it books: allowed, or refused with coded reasons in Chinese and English; nothing changes
but the audit trail."""
import json
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from tests.clinical.test_booking_gate import PLANNED_AT, mark_signed, push_operation


def ask(client, headers=None, **body):
    return client.post("/api/v1/operations/booking-check", json=body, headers={**client.auth, **(headers or {})})


def checks():
    """The audited booking decisions, oldest first."""
    from qcflow.core.audit import AuditEntry
    from qcflow.extensions import db

    entries = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "operation.booking_check")
                                 .order_by(AuditEntry.seq)).all()
    return [json.loads(entry.detail) | {"object_id": entry.object_id, "actor": entry.actor} for entry in entries]


def stored(operation_id):
    from qcflow.clinical.models import Operation
    from qcflow.extensions import db

    db.session.expire_all()
    operation = db.session.get(Operation, operation_id)
    return operation.state, operation.version, operation.planned_at, operation.surgeon.his_id


def test_a_grade_four_operation_without_a_signed_discussion_is_refused_in_both_languages(ctx, reference):
    operation_id = push_operation(reference, "O4", "52.7001")
    before = stored(operation_id)
    response = ask(reference, operation_his_id="O4")
    assert response.status_code == 200
    answer = response.json
    assert answer["allowed"] is False and answer["operation_id"] == operation_id
    [reason] = answer["reasons"]
    assert reason["code"] == "mdt_missing"
    assert "术前多学科讨论" in reason["message"]["zh"] and "pre-operative MDT" in reason["message"]["en"]
    assert "30" in reason["next_step"]["zh"] and "30 days" in reason["next_step"]["en"]
    assert answer["emergency_override_possible"] is True
    assert stored(operation_id) == before
    [entry] = checks()
    assert entry["object_id"] == str(operation_id) and entry["actor"].startswith("user:")
    assert entry["allowed"] is False and entry["reasons"] == ["mdt_missing"]
    assert entry["surgeon_his_id"] == "S1" and datetime.fromisoformat(entry["planned_at"]) == PLANNED_AT


def test_the_asked_date_decides_not_the_stored_one(ctx, reference):
    operation_id = push_operation(reference, "O4", "52.7001")
    mark_signed(operation_id, PLANNED_AT - timedelta(days=2))
    assert ask(reference, operation_his_id="O4").json["allowed"] is True
    later = (PLANNED_AT + timedelta(days=40)).isoformat()
    answer = ask(reference, operation_his_id="O4", planned_at=later).json
    assert answer["allowed"] is False and [r["code"] for r in answer["reasons"]] == ["mdt_too_old"]
    assert "2026-03-18" in answer["reasons"][0]["message"]["en"]
    assert datetime.fromisoformat(answer["planned_at"]) == datetime.fromisoformat(later)
    assert stored(operation_id)[2] == PLANNED_AT
    assert [datetime.fromisoformat(entry["planned_at"]) for entry in checks()] == [PLANNED_AT, datetime.fromisoformat(later)]


def test_a_date_before_the_signature_has_no_discussion_for_it(ctx, reference):
    operation_id = push_operation(reference, "O4", "52.7001")
    mark_signed(operation_id, PLANNED_AT - timedelta(days=2))
    answer = ask(reference, operation_his_id="O4", planned_at=(PLANNED_AT - timedelta(days=5)).isoformat()).json
    assert [r["code"] for r in answer["reasons"]] == ["mdt_missing"]


def test_the_asked_surgeon_decides_and_an_expired_authorisation_is_told_apart(ctx, reference):
    operation_id = push_operation(reference, "O4", "52.7001")
    mark_signed(operation_id, PLANNED_AT - timedelta(days=2))
    answer = ask(reference, operation_his_id="O4", surgeon_his_id="S2").json
    assert [r["code"] for r in answer["reasons"]] == ["not_authorised"]
    assert "赵麻" in answer["reasons"][0]["message"]["zh"] and answer["surgeon_his_id"] == "S2"
    reference.push("operations", [{"his_id": "O5", "encounter_his_id": "E1", "procedure_code": "52.7001",
                                   "surgeon_his_id": "S1", "planned_at": "2027-01-05T08:00:00+08:00"}])
    from qcflow.extensions import db
    from qcflow.clinical.models import Operation

    o5 = db.session.scalar(sa.select(Operation.id).where(Operation.his_id == "O5"))
    mark_signed(o5, PLANNED_AT)
    answer = ask(reference, operation_his_id="O5", planned_at="2027-01-05T08:00:00+08:00").json
    assert "authorisation_not_valid" in [r["code"] for r in answer["reasons"]]
    assert "2027-01-05" in answer["reasons"][-1]["message"]["en"]
    assert stored(operation_id)[3] == "S1"


def test_unknown_surgeon_and_unknown_operation_are_reasons_not_errors(ctx, reference):
    push_operation(reference, "O2", "47.0101")
    answer = ask(reference, operation_his_id="O2", surgeon_his_id="NOBODY").json
    assert answer["allowed"] is False and [r["code"] for r in answer["reasons"]] == ["surgeon_unknown"]
    answer = ask(reference, operation_his_id="NOPE").json
    assert [r["code"] for r in answer["reasons"]] == ["operation_unknown"] and answer["operation_id"] is None
    assert answer["emergency_override_possible"] is False
    assert [entry["object_id"] for entry in checks()] == [entry["object_id"] for entry in checks()[:1]] + [None]


def test_a_cancelled_or_performed_operation_cannot_be_booked(ctx, reference, quality_client):
    from tests.clinical.test_booking_gate import csrf

    operation_id = push_operation(reference, "O2", "47.0101")
    assert ask(reference, operation_his_id="O2").json["allowed"] is True
    version = stored(operation_id)[1]
    assert quality_client.post(f"/api/v1/operations/{operation_id}/transitions",
                               json={"action": "cancel", "version": version, "reason": "患者拒绝"},
                               headers={"X-CSRFToken": csrf(quality_client)}).status_code == 200
    answer = ask(reference, operation_his_id="O2").json
    assert answer["allowed"] is False and [r["code"] for r in answer["reasons"]] == ["operation_cancelled"]


def test_a_replayed_idempotency_key_answers_again_without_a_second_audit_entry(ctx, reference):
    push_operation(reference, "O4", "52.7001")
    first = ask(reference, {"Idempotency-Key": "k-1"}, operation_his_id="O4")
    again = ask(reference, {"Idempotency-Key": "k-1"}, operation_his_id="O4")
    assert first.json == again.json
    assert len(checks()) == 1
    ask(reference, {"Idempotency-Key": "k-2"}, operation_his_id="O4")
    ask(reference, operation_his_id="O4")
    assert len(checks()) == 3
    assert "k-1" not in json.dumps(checks())
    for _ in range(2):
        assert ask(reference, {"Idempotency-Key": "k-3"}, operation_his_id="NOPE").json["allowed"] is False
    assert [entry["object_id"] for entry in checks()][3:] == [None]


@pytest.fixture
def token_of(runner):
    def get(username):
        output = runner.invoke(args=["qcflow", "tokens", "create", "--username", username]).output
        return {"Authorization": "Bearer " + output.strip().splitlines()[-1]}

    return get


def test_a_clinician_asks_only_about_their_department_and_a_reporter_not_at_all(ctx, reference, create_user,
                                                                              create_department, token_of):
    from qcflow.auth.models import Department
    from qcflow.extensions import db

    push_operation(reference, "O2", "47.0101")
    surgery = db.session.scalar(sa.select(Department).where(Department.code == "GS"))
    create_user(username="doc", roles=("clinician",), department=surgery)
    create_user(username="other", roles=("clinician",), department=create_department(code="ENT"))
    create_user(username="nurse", roles=("nurse",), department=surgery)
    db.session.commit()
    url, body = "/api/v1/operations/booking-check", {"operation_his_id": "O2"}
    assert reference.post(url, json=body, headers=token_of("doc")).json["allowed"] is True
    stranger = reference.post(url, json=body, headers=token_of("other")).json
    assert [r["code"] for r in stranger["reasons"]] == ["operation_unknown"] and stranger["operation_id"] is None
    assert reference.post(url, json=body, headers=token_of("nurse")).status_code == 403
    assert reference.post(url, json={"operation_his_id": "O2", "planned_at": "soon"},
                          headers=token_of("doc")).status_code == 422
