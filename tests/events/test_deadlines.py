"""Case deadlines on the Chinese calendar and once-only escalation of breaches."""
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from qcflow.core.actors import Actor
from qcflow.events import deadlines, services
from tests.conftest import SHANGHAI


def test_triage_deadline_of_grade_three_skips_national_day_and_counts_the_makeup_saturday(ctx):
    # Tue 30 Sep 2025 10:00; 1–8 Oct are holidays; Sat 11 Oct is a 调休 working day.
    submitted = datetime(2025, 9, 30, 10, 0, tzinfo=SHANGHAI)
    due = deadlines.triage_due("III", submitted)
    assert due.astimezone(SHANGHAI) == datetime(2025, 10, 11, 10, 0, tzinfo=SHANGHAI)


def test_grade_one_and_two_deadlines_are_hours(ctx):
    at = datetime(2025, 10, 1, 8, 0, tzinfo=SHANGHAI)  # a holiday makes no difference
    assert deadlines.triage_due("I", at) == at + timedelta(hours=2)
    assert deadlines.triage_due("II", at) == at + timedelta(hours=12)
    assert deadlines.investigation_due("I", at) == at + timedelta(days=30)
    assert deadlines.investigation_due("III", at) is None


def test_external_report_deadline_counts_from_discovery(ctx):
    found = datetime(2026, 1, 5, 9, 0, tzinfo=SHANGHAI)
    assert deadlines.external_report_due("extraordinary", found) == found + timedelta(hours=2)
    assert deadlines.external_report_due("major", found) == found + timedelta(hours=12)
    assert deadlines.external_report_due("general", found) == found + timedelta(days=15)
    assert deadlines.external_report_due("none", found) is None


def test_deadline_table_is_configurable(app, ctx):
    app.config["EVENT_TRIAGE_DEADLINES"] = {**app.config["EVENT_TRIAGE_DEADLINES"], "I": "1h"}
    at = datetime(2026, 1, 5, 9, 0, tzinfo=SHANGHAI)
    assert deadlines.triage_due("I", at) == at + timedelta(hours=1)


@pytest.fixture
def grade_one(ctx, hospital, report_body):
    """A grade I report submitted at 09:00 Shanghai time (triage due 11:00)."""
    from qcflow.extensions import db

    submitted = datetime(2026, 3, 2, 9, 0, tzinfo=SHANGHAI)
    data = {**report_body(reporter_grade="I"), "occurred_at": submitted - timedelta(hours=1),
            "discovered_at": submitted - timedelta(minutes=30)}
    event, _ = services.file_report(data, mode="anonymous", actor=Actor.anonymous(), now=submitted)
    db.session.commit()
    return event, submitted


def escalations(event):
    from qcflow.events.models import EventEscalation
    from qcflow.extensions import db

    return db.session.execute(sa.select(EventEscalation.deadline, EventEscalation.level)
                              .where(EventEscalation.event_id == event.id).order_by(EventEscalation.id)).all()


def notified(user):
    from qcflow.notify.models import Notification
    from qcflow.extensions import db

    from qcflow.notify.messages import texts

    return [texts(n)[0] for n in db.session.scalars(sa.select(Notification).where(
        Notification.user_id == user.id, Notification.kind == "event.deadline_breached"))]


def test_breach_escalates_once_per_level_owner_then_head_then_quality(runner, hospital, grade_one):
    from qcflow.core.audit import AuditEntry
    from qcflow.extensions import db

    event, submitted = grade_one
    assert event.triage_due_at == submitted + timedelta(hours=2)

    def tick(at):
        result = runner.invoke(args=["qcflow", "scheduler", "tick", "--job", "events.escalate_deadlines",
                                     "--now", at.isoformat()])
        assert result.exit_code == 0, result.output
        db.session.expire_all()
        return result.output

    assert "sent 0" in tick(submitted + timedelta(hours=1))  # not yet due
    assert "sent 1" in tick(submitted + timedelta(hours=3))
    assert "sent 0" in tick(submitted + timedelta(hours=3, minutes=5))  # a re-run sends nothing twice
    assert escalations(event) == [("triage", 1)]
    assert len(notified(hospital["quality"])) == 1  # no handling department yet: the quality office owns triage
    assert notified(hospital["head"]) == []
    tick(submitted + timedelta(hours=27))
    assert escalations(event) == [("triage", 1), ("triage", 2)]
    assert len(notified(hospital["head"])) == 1  # head of the department where it happened
    assert notified(hospital["other_head"]) == []
    tick(submitted + timedelta(days=5))
    tick(submitted + timedelta(days=6))
    assert escalations(event) == [("triage", 1), ("triage", 2), ("triage", 3)]
    audited = db.session.scalars(sa.select(AuditEntry.detail).where(AuditEntry.action == "event.deadline_breached")).all()
    assert len(audited) == 3 and all('"deadline":"triage"' in d for d in audited)


def test_triaged_case_stops_the_triage_clock(hospital, grade_one):
    from qcflow.extensions import db

    event, submitted = grade_one
    quality = Actor.for_user(hospital["quality"])
    services.transition_event(event, "triage", {"confirmed_grade": "I", "handling_department_id": hospital["pharmacy"].id,
                                                "external_severity": "major"},
                              actor=quality, now=submitted + timedelta(hours=1))
    db.session.commit()
    assert services.escalate_breaches(submitted + timedelta(hours=5)) == 0
    # The external report (重大: 12 h from discovery) is now due and not yet recorded.
    late = event.external_report_due_at + timedelta(minutes=1)
    assert services.escalate_breaches(late) == 1
    assert escalations(event) == [("external_report", 1)]
    services.record_external_report(event, actor=quality, now=late, reported_at=late, expected_version=event.version)
    db.session.commit()
    assert services.escalate_breaches(late + timedelta(days=10)) == 0


def test_recording_the_external_report_needs_the_version_read(clients, quality_token, report_body):
    from qcflow.events.models import AdverseEvent
    from qcflow.extensions import db

    filed = clients("anonymous").post("/api/v1/events", json=report_body()).json
    path = f"/api/v1/events/{filed['id']}/external-report"
    quality = clients("quality")
    missing = quality.post(path, json={"reported_at": "2026-03-01T12:00:00+08:00"}, headers=quality_token)
    assert missing.status_code == 422 and "version" in missing.json["errors"]
    stale = quality.post(path, json={"reported_at": "2026-03-01T12:00:00+08:00", "version": filed["version"] - 1},
                         headers=quality_token)
    assert stale.status_code == 409
    db.session.expire_all()
    assert db.session.get(AdverseEvent, filed["id"]).external_reported_at is None
    done = quality.post(path, json={"reported_at": "2026-03-01T12:00:00+08:00", "version": filed["version"]},
                        headers=quality_token)
    assert done.status_code == 200 and done.json["external_reported_at"]


def test_an_external_report_before_the_event_was_discovered_is_refused(clients, quality_token, report_body):
    from qcflow.events.models import AdverseEvent
    from qcflow.extensions import db

    filed = clients("anonymous").post("/api/v1/events", json=report_body()).json
    event = db.session.get(AdverseEvent, filed["id"])
    before = (event.discovered_at - timedelta(hours=1)).isoformat()
    refused = clients("quality").post(f"/api/v1/events/{filed['id']}/external-report", headers=quality_token,
                                      json={"reported_at": before, "version": filed["version"]})
    assert refused.status_code == 422 and "reported_at" in refused.json["errors"]
    db.session.expire_all()
    assert db.session.get(AdverseEvent, filed["id"]).external_reported_at is None
