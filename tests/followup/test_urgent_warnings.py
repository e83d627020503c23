"""Day-surgery 24 h calls: the department hears before the deadline, the head and the quality office
when it is missed — once each, and never at the cost of a nurse's version."""
from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from tests.conftest import sh

DISCHARGE = sh(2026, 3, 1, 16, 0)  # the call is due by 2 March 16:00


def inbox(user):
    from qcflow.extensions import db
    from qcflow.notify.models import Notification

    return [(n.kind, n.link) for n in db.session.scalars(sa.select(Notification).where(Notification.user_id == user.id)
                                                          .order_by(Notification.id))]


def tick(runner, at):
    result = runner.invoke(args=["qcflow", "scheduler", "tick", "--now", at.isoformat(),
                                 "--job", "followup.warn_urgent_deadlines"])
    assert result.exit_code == 0, result.output
    return result.output


def test_near_then_missed_each_once(app, runner, enrol, ward, tasks_of):
    from qcflow.extensions import db

    plan = enrol("day_surgery", anchor_at=DISCHARGE, now=DISCHARGE)
    db.session.commit()
    [call] = [t for t in tasks_of(plan) if t.is_urgent]
    link = f"/followup/tasks/{call.id}"

    tick(runner, sh(2026, 3, 2, 11, 0))  # 5 h left: quiet
    assert inbox(ward["nurse"]) == []
    tick(runner, sh(2026, 3, 2, 12, 30))  # 3.5 h left: the department's nurses and head
    tick(runner, sh(2026, 3, 2, 13, 0))
    assert inbox(ward["nurse"]) == [("followup.urgent_due", link)]
    assert inbox(ward["nurse2"]) == inbox(ward["head"]) == [("followup.urgent_due", link)]
    assert inbox(ward["card_nurse"]) == inbox(ward["quality"]) == []

    tick(runner, sh(2026, 3, 2, 16, 30))
    tick(runner, sh(2026, 3, 2, 17, 0))
    assert inbox(ward["head"]) == [("followup.urgent_due", link), ("followup.urgent_missed", link)]
    assert inbox(ward["quality"]) == [("followup.urgent_missed", link)]
    assert inbox(ward["nurse"]) == [("followup.urgent_due", link)]
    db.session.expire_all()
    assert call.version == 1  # the warnings never bumped the version a nurse may hold


def test_the_holder_is_warned_and_a_done_call_is_not(app, runner, enrol, ward, tasks_of, actor_of):
    from qcflow.extensions import db
    from qcflow.followup import services

    held = enrol("day_surgery", anchor_at=DISCHARGE, now=DISCHARGE)
    done = enrol("day_surgery", anchor_at=DISCHARGE, now=DISCHARGE)
    [held_call] = [t for t in tasks_of(held) if t.is_urgent]
    [done_call] = [t for t in tasks_of(done) if t.is_urgent]
    services.claim_task(held_call, actor=actor_of("nurse2"), now=DISCHARGE + timedelta(hours=1))
    services.cancel_task(done_call, {"reason": "已在门诊复诊"}, actor=actor_of("head"), now=DISCHARGE + timedelta(hours=1))
    db.session.commit()
    tick(runner, sh(2026, 3, 2, 13, 0))
    assert inbox(ward["nurse2"]) == [("followup.urgent_due", f"/followup/tasks/{held_call.id}")]
    assert inbox(ward["nurse"]) == inbox(ward["head"]) == []


def test_after_downtime_a_missed_call_is_reported_as_missed_only(app, runner, enrol, ward, tasks_of):
    from qcflow.core.audit import AuditEntry
    from qcflow.extensions import db

    plan = enrol("day_surgery", anchor_at=DISCHARGE, now=DISCHARGE)
    db.session.commit()
    output = tick(runner, sh(2026, 3, 4, 9, 0))
    assert "0 deadline warnings, 1 missed" in output
    assert [k for k, _ in inbox(ward["head"])] == ["followup.urgent_missed"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)
                             .where(AuditEntry.action == "followup_task.urgent_warning")) == 1


def test_the_warning_query_reads_a_partial_index_of_open_tasks(app, ctx):
    """The 24 h warning job reads an index of open tasks by deadline, never the table: its own
    (urgent, not yet reported) or, on PostgreSQL with an empty table, the queue's, which also holds
    `is_urgent` and `closes_at` (with real data the planner takes the far smaller urgent index)."""
    from qcflow.extensions import db

    from tests.conftest import PG_URL

    condition = "is_urgent AND breach_level < 2 AND state IN ('pending', 'in_progress')"
    query = f"SELECT id FROM followup_task WHERE {condition} AND closes_at <= '2026-03-02'"
    if PG_URL:
        db.session.execute(sa.text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(db.session.scalars(sa.text("EXPLAIN " + query)))
    else:
        plan = " ".join(str(r[-1]) for r in db.session.execute(sa.text("EXPLAIN QUERY PLAN " + query)))
    if PG_URL:
        assert "Seq Scan" not in plan
        assert ("ix_followup_task_urgent_open" in plan
                or ("ix_followup_task_queue" in plan and "closes_at <=" in plan.split("Index Cond:")[1]))
    else:
        assert "ix_followup_task_urgent_open" in plan
