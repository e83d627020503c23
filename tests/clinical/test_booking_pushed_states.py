"""Operations follow the HIS: a pushed booking passes the gate, a pushed performed time is a fact (and a gated
operation performed without its signed discussion is reported to the quality office), a cancellation keeps
its time and reason; all with the real times, through the operation workflow."""
import json
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from tests.clinical.test_booking_gate import PLANNED, PLANNED_AT, mark_signed, push_operation

BOOKED = "2026-03-18T15:20:00+08:00"
PERFORMED = "2026-03-20T09:05:00+08:00"


@pytest.fixture(autouse=True)
def after_the_operation(monkeypatch):
    """The server's clock: a week after the planned day, so the real times sent are in its past."""
    monkeypatch.setattr("qcflow.clinical.api.now", lambda: PLANNED_AT + timedelta(days=7))


def row(his_id="O4", code="52.7001", **extra):
    return {"his_id": his_id, "encounter_his_id": "E1", "procedure_code": code, "surgeon_his_id": "S1",
            "planned_at": PLANNED, **extra}


def operation(his_id):
    from qcflow.clinical.models import Operation
    from qcflow.extensions import db

    db.session.expire_all()
    return db.session.scalar(sa.select(Operation).where(Operation.his_id == his_id))


def audit_actions(operation_id):
    from qcflow.core.audit import AuditEntry
    from qcflow.extensions import db

    return [(e.action, json.loads(e.detail)) for e in db.session.scalars(sa.select(AuditEntry).where(
        AuditEntry.object_type == "operation", AuditEntry.object_id == str(operation_id)).order_by(AuditEntry.seq))]


def notifications(kind):
    from qcflow.extensions import db
    from qcflow.notify.models import Notification

    return db.session.scalars(sa.select(Notification).where(Notification.kind == kind)).all()


def test_a_pushed_booking_without_a_signed_discussion_is_a_row_error_and_nothing_of_the_row_lands(ctx, reference):
    response = reference.push("operations", [row(state="booked", booked_at=BOOKED)])
    assert response.status_code == 422
    [result] = response.json["results"]
    assert result["status"] == "error" and "术前多学科讨论" in " ".join(result["errors"]["state"])
    assert operation("O4") is None
    operation_id = push_operation(reference, "O4", "52.7001")
    moved = reference.push("operations", [row(planned_at="2026-03-25T08:00:00+08:00", state="booked",
                                              booked_at=BOOKED)])
    assert moved.status_code == 422 and operation("O4").planned_at == PLANNED_AT
    assert operation("O4").state == "planned" and operation("O4").id == operation_id


def test_a_pushed_booking_through_the_gate_keeps_the_real_time_and_resending_changes_nothing(ctx, reference):
    operation_id = push_operation(reference, "O4", "52.7001")
    mark_signed(operation_id, PLANNED_AT - timedelta(days=3))
    response = reference.push("operations", [row(state="booked", booked_at=BOOKED)])
    assert response.status_code == 200 and response.json["results"][0]["status"] == "updated"
    booked = operation("O4")
    assert booked.state == "booked" and booked.booked_at == datetime.fromisoformat(BOOKED)
    again = reference.push("operations", [row(state="booked", booked_at=BOOKED)])
    assert again.json["results"][0]["status"] == "unchanged" and again.json["results"][0]["warnings"] == []
    corrected = reference.push("operations", [row(state="booked", booked_at="2026-03-18T16:00:00+08:00")])
    assert corrected.json["results"][0]["status"] == "unchanged"
    assert "2026-03-18 15:20" in corrected.json["results"][0]["warnings"][0]
    assert operation("O4").booked_at == datetime.fromisoformat(BOOKED)
    steps = [action for action, _ in audit_actions(operation_id) if action.startswith("operation.")]
    assert steps == ["operation.book"]
    assert operation("O4").version == booked.version


def test_a_grade_four_operation_performed_without_its_discussion_is_recorded_and_reported_at_once(
        ctx, reference, quality_client, monkeypatch):
    from qcflow import reactions

    published = []
    original = reactions.publish
    monkeypatch.setattr(reactions, "publish", lambda fact, *a, **kw: (published.append(fact), original(fact, *a, **kw)))
    operation_id = push_operation(reference, "O4", "52.7001")
    response = reference.push("operations", [row(state="performed", performed_at=PERFORMED)])
    assert response.status_code == 200 and response.json["failed"] == 0
    performed = operation("O4")
    assert performed.state == "performed" and performed.performed_at == datetime.fromisoformat(PERFORMED)
    assert performed.booked_at is None and not performed.is_emergency_override
    assert "operation.performed" in published
    [(action, detail)] = [(a, d) for a, d in audit_actions(operation_id) if a == "operation.record_performed"]
    assert detail["without_signed_discussion"] == ["mdt_missing"] and detail["after"]["state"] == "performed"
    [note] = notifications("operation.performed_without_mdt")
    assert note.link == f"/operations/{operation_id}" and note.params["id"] == "O4"
    inbox = quality_client.get("/notifications?lang=en").get_data(as_text=True)
    assert "O4" in inbox and "performed without a signed pre-operative MDT" in inbox


def test_performed_after_a_booking_is_the_perform_step_and_no_alarm(ctx, reference):
    operation_id = push_operation(reference, "O4", "52.7001")
    mark_signed(operation_id, PLANNED_AT - timedelta(days=3))
    response = reference.push("operations", [row(state="performed", booked_at=BOOKED, performed_at=PERFORMED)])
    assert response.json["failed"] == 0
    # Never booked in qcflow: the HIS's own step keeps the booking time sent; the discussion was signed, so no alarm.
    assert operation("O4").state == "performed" and operation("O4").booked_at == datetime.fromisoformat(BOOKED)
    assert [a for a, _ in audit_actions(operation_id) if a.startswith("operation.")] == ["operation.record_performed"]
    assert notifications("operation.performed_without_mdt") == []
    reference.push("operations", [row(his_id="O6", state="booked", booked_at=BOOKED)])
    assert operation("O6") is None  # new, so no discussion: refused
    push_operation(reference, "O5", "51.2301")
    assert reference.push("operations", [row(his_id="O5", code="51.2301", state="booked", booked_at=BOOKED)]).json["failed"] == 0
    assert reference.push("operations", [row(his_id="O5", code="51.2301", state="performed",
                                             performed_at=PERFORMED)]).json["failed"] == 0
    o5 = operation("O5")
    assert o5.state == "performed" and [a for a, _ in audit_actions(o5.id) if a.startswith("operation.")] == [
        "operation.book", "operation.perform"]


def test_a_cancellation_needs_its_time_and_reason_and_is_final(ctx, reference, quality_client):
    operation_id = push_operation(reference, "O2", "47.0101")
    # The HIS's own step is never offered on the page, to anybody.
    assert 'value="record_performed"' not in quality_client.get(f"/operations/{operation_id}").get_data(as_text=True)
    refused = reference.push("operations", [row(his_id="O2", code="47.0101", state="cancelled",
                                                cancelled_at="2026-03-19T17:00:00+08:00")])
    assert refused.status_code == 422 and "cancel_reason" in refused.json["results"][0]["errors"]
    assert reference.push("operations", [row(his_id="O2", code="47.0101", state="cancelled",
                                             cancelled_at="2026-03-19T17:00:00+08:00",
                                             cancel_reason="患者要求推迟")]).json["failed"] == 0
    cancelled = operation("O2")
    assert cancelled.state == "cancelled" and cancelled.cancel_reason == "患者要求推迟"
    assert cancelled.cancelled_at == datetime(2026, 3, 19, 9, tzinfo=timezone.utc)
    page = quality_client.get(f"/operations/{operation_id}").get_data(as_text=True)
    assert "2026-03-19 17:00" in page and "患者要求推迟" in page
    back = reference.push("operations", [row(his_id="O2", code="47.0101", state="booked", booked_at=BOOKED)])
    assert back.status_code == 422 and "已取消" in back.json["results"][0]["errors"]["state"][0]
    assert operation("O2").state == "cancelled"


def test_reported_times_are_not_in_the_future_nor_before_the_admission(ctx, reference):
    push_operation(reference, "O2", "47.0101")
    future = (PLANNED_AT + timedelta(days=8)).isoformat()
    result = reference.push("operations", [row(his_id="O2", code="47.0101", state="performed",
                                               performed_at=future)]).json["results"][0]
    assert list(result["errors"]) == ["performed_at"]
    early = reference.push("operations", [row(his_id="O2", code="47.0101", state="performed",
                                              performed_at="2026-02-27T08:00:00+08:00")]).json["results"][0]
    assert "performed_at" in early["errors"]
    late_booking = reference.push("operations", [row(his_id="O2", code="47.0101", state="performed",
                                                     booked_at="2026-03-20T10:00:00+08:00",
                                                     performed_at=PERFORMED)]).json["results"][0]
    assert "booked_at" in late_booking["errors"]
    assert operation("O2").state == "planned"


@pytest.mark.parametrize("state,times", [("performed", {"performed_at": PERFORMED}),
                                         ("cancelled", {"cancelled_at": BOOKED, "cancel_reason": "患者要求推迟"})])
def test_a_new_operation_reported_performed_or_cancelled_requests_no_pre_operative_discussion(
        ctx, reference, quality_client, state, times):
    from qcflow.extensions import db
    from qcflow.mdt.models import Discussion

    response = reference.push("operations", [row(state=state, **times)])
    assert response.status_code == 200 and response.json["failed"] == 0, response.json
    assert operation("O4").state == state
    assert not {e["code"] for e in response.json["results"][0]["effects"]} & {"discussion_requested"}
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Discussion).where(
        Discussion.operation_id == operation("O4").id)) == 0
    # Performed without the discussion it needed: the quality office is told instead.
    assert len(notifications("operation.performed_without_mdt")) == (1 if state == "performed" else 0)


@pytest.mark.parametrize("state,times", [("cancelled", {"cancelled_at": BOOKED, "cancel_reason": "患者转院"}),
                                         ("performed", {"performed_at": PERFORMED})])
def test_an_operation_cancelled_or_performed_withdraws_its_pre_operative_discussion_not_yet_held(
        ctx, reference, state, times):
    from qcflow.core.audit import AuditEntry
    from qcflow.extensions import db
    from qcflow.mdt.models import Discussion

    operation_id = push_operation(reference, "O4", "52.7001")
    [discussion] = db.session.scalars(sa.select(Discussion).where(Discussion.operation_id == operation_id)).all()
    assert discussion.state == "requested"
    response = reference.push("operations", [row(state=state, **times)])
    assert response.status_code == 200, response.json
    assert ("discussion_withdrawn", discussion.id) in [
        (e["code"], e["id"]) for e in response.json["results"][0]["effects"]]
    if state == "performed":  # the row itself says the discussion was missing, not only the notification
        assert "术前多学科讨论" in " ".join(response.json["results"][0]["warnings"])
    db.session.expire_all()
    assert db.session.get(Discussion, discussion.id).state == "cancelled"
    entry = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "mdt_discussion.withdraw"))
    assert entry.actor == "system:mdt" and entry.object_id == str(discussion.id)
