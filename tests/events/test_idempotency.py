"""Idempotency-Key on intake: stored as a keyed hash scoped to the client, never verbatim, forgotten
after IDEMPOTENCY_KEY_HOURS; a replay names the report only to the reporter who filed it."""
from datetime import timedelta

import sqlalchemy as sa

from tests.conftest import csrf_from


def csrf(client):
    return csrf_from(client, "/account")


def key_rows():
    from qcflow.extensions import db
    from qcflow.events.models import IdempotencyKey

    db.session.expire_all()
    return list(db.session.scalars(sa.select(IdempotencyKey)))


def test_the_key_is_stored_only_as_a_keyed_hash(app, clients, report_body):
    from qcflow.events.services import idempotency_hash

    key = "retry-7f3a9c"
    assert clients("anonymous").post("/api/v1/events", json=report_body(),
                                     headers={"Idempotency-Key": key}).status_code == 201
    (row,) = key_rows()
    assert key not in row.key_hash and row.key_hash == idempotency_hash("anonymous", key)
    # An anonymous report's key leads to no report.
    assert row.event_id is None


def test_a_replay_names_the_report_only_to_the_user_who_filed_it(clients, report_body):
    doctor, nurse = clients("clinician"), clients("nurse")
    body = {**report_body(), "mode": "named"}
    first = doctor.post("/api/v1/events", json=body, headers={"Idempotency-Key": "k-1", "X-CSRFToken": csrf(doctor)})
    again = doctor.post("/api/v1/events", json=body, headers={"Idempotency-Key": "k-1", "X-CSRFToken": csrf(doctor)})
    assert first.status_code == 201 and again.status_code == 409 and again.json["event_id"] == first.json["id"]
    # Another user sending the same key files her own report and learns nothing of the first.
    other = nurse.post("/api/v1/events", json=body, headers={"Idempotency-Key": "k-1", "X-CSRFToken": csrf(nurse)})
    assert other.status_code == 201 and other.json["id"] != first.json["id"]
    # An anonymous sender of the key learns nothing of the doctor's report either.
    anonymous = clients("anonymous").post("/api/v1/events", json=report_body(), headers={"Idempotency-Key": "k-1"})
    assert anonymous.status_code == 201 and anonymous.json["id"] not in (first.json["id"], other.json["id"])


def test_an_anonymous_replay_gets_neither_the_id_nor_the_receipt(app, clients, report_body):
    first = clients("anonymous").post("/api/v1/events", json=report_body(), headers={"Idempotency-Key": "anon-1"})
    stranger = app.test_client()
    again = stranger.post("/api/v1/events", json=report_body(), headers={"Idempotency-Key": "anon-1"})
    assert first.status_code == 201 and "receipt_code" in first.json
    assert again.status_code == 409
    assert str(first.json["id"]) not in again.get_data(as_text=True)
    assert first.json["receipt_code"] not in again.get_data(as_text=True)


def test_housekeeping_forgets_keys_after_the_configured_hours(app, runner, clients, report_body):
    from qcflow.core.time import now

    client = clients("anonymous")
    assert client.post("/api/v1/events", json=report_body(), headers={"Idempotency-Key": "old"}).status_code == 201
    (row,) = key_rows()
    app.config["IDEMPOTENCY_KEY_HOURS"] = 2
    early = row.created_at + timedelta(hours=1, minutes=59)
    tick = ["qcflow", "scheduler", "tick", "--job", "housekeeping.purge_idempotency_keys", "--now"]
    assert "purged 0" in runner.invoke(args=[*tick, early.isoformat()]).output
    assert len(key_rows()) == 1
    late = max(row.created_at + timedelta(hours=2, minutes=1), now())
    result = runner.invoke(args=[*tick, late.isoformat()])
    assert result.exit_code == 0 and "purged 1" in result.output, result.output
    assert key_rows() == []
    # Forgotten: the same key files a new report.
    assert client.post("/api/v1/events", json=report_body(), headers={"Idempotency-Key": "old"}).status_code == 201
