"""Scheduler jobs: the surgeon's reminder and the overdue escalation, each sent once."""
from datetime import timedelta

import sqlalchemy as sa

from qcflow.mdt import services
from tests.mdt.conftest import complete_record


def tick(runner, job, at):
    from qcflow.extensions import db

    result = runner.invoke(args=["qcflow", "scheduler", "tick", "--job", job, "--now", at.isoformat()])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    return result.output


def titles(user, kind):
    from qcflow.extensions import db
    from qcflow.notify.models import Notification

    from qcflow.notify.messages import texts

    return [texts(n)[0] for n in db.session.scalars(sa.select(Notification).where(Notification.user_id == user.id,
                                                                                   Notification.kind == kind))]


def audited(action):
    from qcflow.core.audit import AuditEntry
    from qcflow.extensions import db

    return list(db.session.scalars(sa.select(AuditEntry.object_id).where(AuditEntry.action == action)))


def test_surgeon_is_reminded_once_when_a_grade_four_operation_nears_without_signed_mdt(
        runner, hospital, grade_four, mdt_now):
    planned = grade_four.planned_at
    assert "sent 0" in tick(runner, "mdt.remind_preop", planned - timedelta(hours=73))  # not yet within 72 h
    assert "sent 1" in tick(runner, "mdt.remind_preop", planned - timedelta(hours=71))
    assert "sent 0" in tick(runner, "mdt.remind_preop", planned - timedelta(hours=70))  # a re-run sends nothing twice
    assert "sent 0" in tick(runner, "mdt.remind_preop", planned - timedelta(hours=1))
    assert len(titles(hospital["clinician"], "mdt.preop_missing")) == 1
    assert audited("mdt_alert.preop_missing") == [str(grade_four.id)]


def test_no_reminder_when_the_signed_discussion_exists_or_the_operation_is_not_grade_four(
        runner, hospital, grade_four, held_preop, actor_of, create_operation, create_procedure, mdt_now):
    from qcflow.extensions import db

    complete_record(held_preop, actor_of("head"), mdt_now + timedelta(days=2), chair=hospital["head"])
    services.transition_discussion(held_preop, "sign", {}, actor=actor_of("head"), now=mdt_now + timedelta(days=2))
    create_operation(hospital["surgery"], hospital["staff"]["surgeon"], grade_four.planned_at,
                     procedure=create_procedure(grade=3))
    db.session.commit()
    assert "sent 0" in tick(runner, "mdt.remind_preop", grade_four.planned_at - timedelta(hours=24))
    assert titles(hospital["clinician"], "mdt.preop_missing") == []


def test_overdue_discussions_are_escalated_once_to_heads_and_quality(runner, hospital, operated_death, mdt_now):
    discussion = operated_death
    due = discussion.due_at
    assert "sent 0" in tick(runner, "mdt.escalate_overdue", due - timedelta(minutes=1))
    assert "sent 1" in tick(runner, "mdt.escalate_overdue", due + timedelta(minutes=1))
    assert "sent 0" in tick(runner, "mdt.escalate_overdue", due + timedelta(days=1))
    assert len(titles(hospital["med_head"], "mdt.overdue")) == 1  # the organising department: medical affairs
    assert len(titles(hospital["quality"], "mdt.overdue")) == 1
    assert titles(hospital["head"], "mdt.overdue") == []
    assert audited("mdt_discussion.overdue") == [str(discussion.id)]


def test_signed_or_cancelled_discussions_are_not_escalated(runner, hospital, operated_death, actor_of, mdt_now):
    from qcflow.extensions import db

    services.transition_discussion(operated_death, "cancel", {"reason": "重复登记"}, actor=actor_of("quality"),
                                   now=mdt_now)
    db.session.commit()
    assert "sent 0" in tick(runner, "mdt.escalate_overdue", operated_death.due_at + timedelta(days=1))


def test_both_jobs_are_in_the_jobs_table():
    from qcflow.scheduling.jobs import find_job

    assert find_job("mdt.remind_preop").function == "qcflow.mdt.jobs:remind_preop"
    assert find_job("mdt.escalate_overdue").function == "qcflow.mdt.jobs:escalate_overdue"
