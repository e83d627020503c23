"""I1 / R7: for every workflow table, a failure after the audit insert and before the commit leaves
nothing behind — neither the state change, the version bump nor the audit entry. The same request
without the fault then succeeds, so each driver really reaches its transition.

Append-only triggers (I2) and `audit verify` on edited, deleted and reordered rows (I3) are proven in
tests/core/test_audit.py; confidential-reporter reads are audited (tests/events/test_intake.py)."""
from __future__ import annotations

import pytest
import sqlalchemy as sa


def _prompt(world):
    from qcflow.core.time import now
    from qcflow.extensions import db
    from qcflow.followup import services

    prompt = services.open_prompt(db.session.merge(world["A"]["task"]), now=now())
    db.session.commit()
    return prompt


def _indicator_report(world):
    from datetime import date

    from qcflow.core.time import now
    from qcflow.extensions import db
    from qcflow.indicators.models import IndicatorReport

    report = IndicatorReport(code="pain_assessment_rate", month_on=date(2026, 1, 1),
                             department_id=world["users"]["dept_head"].department_id, numerator=9, denominator=10,
                             value=90.0, state="submitted", channel="page", submitted_at=now(), submitted_by="system:test")
    db.session.add(report)
    db.session.commit()
    return report


def _outbox_row(world):
    from qcflow.core.time import now
    from qcflow.extensions import db
    from qcflow.region.models import RegionOutbox

    row = RegionOutbox(kind="month", period="2026-01", revision=1, document="{}", digest="0" * 64,
                       state="rejected", attempts=1, created_at=now(), created_by="system:test")
    db.session.add(row)
    db.session.commit()
    return row


def _draft_lesson(world):
    """A draft lesson of the quality office, which the scrubber finds clean (its author sends it for review)."""
    from qcflow.core.time import now
    from qcflow.events.lessons.models import Lesson
    from qcflow.extensions import db

    lesson = Lesson(event_id=world["A"]["event"].id, state="draft", title="配药未双人核对", what_happened="剂量多抽。",
                    why="未核对。", what_changed="双人核对。", author_user_id=world["users"]["quality"].id,
                    scrub_findings=[], created_at=now(), updated_at=now())
    db.session.add(lesson)
    db.session.commit()
    return lesson


#: The delivery reports' secret in the invitation driver.
REPORT_SECRET = "atomicity-secret"


def _sent_invitation(world):
    """A call's invitation the gateway accepted (its delivery report drives the invitation's workflow)."""
    from flask import current_app

    from qcflow.core.time import now
    from qcflow.extensions import db
    from qcflow.followup.invitations.models import Invitation, InvitationMessage

    current_app.config["INVITATION_REPORT_SECRET"] = REPORT_SECRET
    task = db.session.merge(world["A"]["task"])
    invitation = Invitation(task_id=task.id, patient_id=task.patient_id, department_id=task.department_id,
                            token_seed="S" * 32, token_hash="0" * 64, channel="sms", factor="birth_year",
                            state="sent", created_at=now(), sent_at=now(), expires_at=task.closes_at, alarms="")
    db.session.add(invitation)
    db.session.flush()
    db.session.add(InvitationMessage(invitation_id=invitation.id, kind="invitation", channel="sms", status="sent",
                                     at=now(), provider_message_id="gw-atomicity"))
    db.session.commit()
    return invitation


def _signed_report(invitation):
    """The gateway's delivery report, as raw JSON with its signature header."""
    import hashlib
    import hmac
    import json

    body = json.dumps({"message_id": "gw-atomicity", "status": "delivered"}).encode()
    return body, {"X-Qcflow-Signature": "sha256=" + hmac.new(REPORT_SECRET.encode(), body, hashlib.sha256).hexdigest()}


#: workflow name → (user role, model attribute in world["A"] or a factory, method, path, body (or raw bytes and
#: the headers that go with them))
DRIVERS = {
    "event": ("quality", "event", lambda o, w: f"/api/v1/events/{o.id}/transitions",
              lambda o: {"action": "plan_actions", "version": o.version, "rca_cause_domains": ["process"],
                         "rca_factors": "双人核对未执行"}),
    "corrective_action": ("quality", "action", lambda o, w: f"/api/v1/events/{o.event_id}/actions/{o.id}/transitions",
                          lambda o: {"action": "complete", "version": o.version, "evidence": "培训签到表"}),
    "operation": ("quality", "operation", lambda o, w: f"/api/v1/operations/{o.id}/transitions",
                  lambda o: {"action": "cancel", "version": o.version, "reason": "患者拒绝手术"}),
    "followup_task": ("dept_head", "task", lambda o, w: f"/api/v1/followup/tasks/{o.id}/release",
                      lambda o: {"version": o.version}),
    "followup_plan": ("dept_head", "plan", lambda o, w: f"/api/v1/followup/plans/{o.id}/transitions",
                      lambda o: {"action": "pause", "reason": "患者出国", "version": o.version}),
    "followup_prompt": ("quality", _prompt, lambda o, w: f"/api/v1/followup/prompts/{o.id}/dismiss",
                        lambda o: {"reason": "已知并发症，非不良事件", "version": o.version}),
    "indicator_report": ("quality", _indicator_report,
                         lambda o, w: f"/api/v1/indicators/reports/{o.id}/transitions",
                         lambda o: {"action": "return", "version": o.version, "reason": "分母有误"}),
    "region_outbox": ("quality", _outbox_row, lambda o, w: f"/api/v1/region/submissions/{o.id}/requeue",
                      lambda o: {"version": o.version}),
    "followup_invitation": ("nurse", _sent_invitation, lambda o, w: "/api/v1/followup/invitations/delivery-reports",
                            _signed_report),
    "event_lesson": ("quality", _draft_lesson, lambda o, w: f"/api/v1/lessons/{o.id}/transitions",
                     lambda o: {"action": "submit_review", "version": o.version}),
    "mdt_discussion": ("dept_head", "discussion", lambda o, w: f"/api/v1/mdt/discussions/{o.id}/transitions",
                       lambda o: {"action": "cancel", "version": o.version, "reason": "手术取消"}),
}


def test_every_workflow_table_has_a_fault_injection_driver():
    """The application's tables (test modules register tables of their own in WORKFLOWS too)."""
    import importlib

    from qcflow.core.workflow import WORKFLOW_MODULES, Workflow

    tables = {value.name for module in WORKFLOW_MODULES for value in vars(importlib.import_module(module)).values()
              if isinstance(value, Workflow)}
    assert tables == set(DRIVERS)


def snapshot(model, object_id):
    from qcflow.core.audit import AuditEntry
    from qcflow.extensions import db

    db.session.expire_all()
    row = db.session.get(model, object_id)
    entries = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry))
    return row.state, row.version, entries


@pytest.mark.parametrize("workflow", sorted(DRIVERS))
def test_a_failure_after_the_audit_insert_persists_nothing(app, world, token_for, monkeypatch, workflow):
    from qcflow.core import audit
    from qcflow.extensions import db

    role, source, path_of, body_of = DRIVERS[workflow]
    obj = source(world) if callable(source) else db.session.merge(world["A"][source])
    model, object_id = type(obj), obj.id
    path, body = path_of(obj, world), body_of(obj)
    headers = token_for(role)
    if isinstance(body, tuple):  # raw bytes and the headers that sign them
        body, signed = body
        headers = {**headers, **signed}
    sent = {"data": body, "content_type": "application/json"} if isinstance(body, bytes) else {"json": body}
    client = app.test_client()
    before = snapshot(model, object_id)

    real_record = audit.record
    injected = []

    def record_then_fail(actor, action, *args, **kwargs):
        entry = real_record(actor, action, *args, **kwargs)
        if action.startswith(workflow + "."):
            injected.append(action)
            raise RuntimeError(f"injected after the audit insert of {action}, before commit")
        return entry

    monkeypatch.setattr(audit, "record", record_then_fail)
    failed = client.post(path, headers=headers, **sent)
    assert injected, f"{workflow}: the request never reached an audited transition ({failed.status_code} {failed.json})"
    assert failed.status_code == 500 and failed.json["code"] == "internal_error"
    assert snapshot(model, object_id) == before
    assert audit.verify().ok

    monkeypatch.setattr(audit, "record", real_record)
    done = client.post(path, headers=headers, **sent)
    assert done.status_code == 200, done.json
    state, version, entries = snapshot(model, object_id)
    assert state != before[0] and version > before[1] and entries > before[2]
    assert audit.verify().ok
    db.session.remove()


def test_reads_of_an_unmasked_phone_number_are_audited(world, role_client, token_for):
    """I4: the nurse holding a call sees the full number, and each such read is in the audit trail;
    a masked view (the department head) writes nothing."""
    from qcflow.core.audit import AuditEntry
    from qcflow.extensions import db

    task, patient = world["A"]["task"], world["A"]["patient"]

    def reads():
        db.session.expire_all()
        return db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "patient.read_phone")).all()

    head_page = role_client("dept_head").get(f"/followup/tasks/{task.id}").get_data(as_text=True)
    assert "13812345678" not in head_page and reads() == []
    nurse_page = role_client("nurse").get(f"/followup/tasks/{task.id}").get_data(as_text=True)
    assert "13812345678" in nurse_page
    api = role_client("nurse").get(f"/api/v1/followup/tasks/{task.id}", headers=token_for("nurse"))
    assert api.json["patient"]["phone"] == "13812345678"
    entries = reads()
    assert len(entries) == 2
    assert {(e.actor, e.object_type, e.object_id) for e in entries} == {
        (f"user:{world['users']['nurse'].id}", "patient", str(patient.id))}
    assert db.session.get(AuditEntry, entries[0].id).detail == f'{{"task_id":{task.id}}}'
    from qcflow.core import audit

    assert audit.verify().ok
