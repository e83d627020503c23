"""Steps on a follow-up plan: pause, resume, withdraw, stop, lost to follow-up, re-anchoring."""
from __future__ import annotations

from datetime import date, datetime, timezone

import sqlalchemy as sa
from flask import current_app

from qcflow.core import audit
from qcflow.core.actors import Actor
from qcflow.core.time import hospital_tz
from qcflow.extensions import db
from qcflow.followup import schedule
from qcflow.followup.models import OPEN_TASK_STATES, Plan, Task
from qcflow.followup.services.generator import generate_due
from qcflow.followup.services.protocols import retime, set_cursor, slots_of, system_actor
from qcflow.followup.services.tasks import cancel_task
from qcflow.followup.workflow import PLAN_WORKFLOW, PlanState, TaskState


#: The code a call cancelled by a plan's end carries, by the plan's step.
CANCELLED_BY = {"pause": "plan_paused", "withdraw": "plan_withdrawn", "stop": "plan_stopped", "mark_lost": "plan_lost"}


def end_plan(plan: Plan, action: str, data: dict, *, actor: Actor, now: datetime, ended_on: date | None = None,
             expected_version: int | None = None, code: str | None = None,
             open_after: datetime | None = None) -> Plan:
    """Stop, mark lost or withdraw a plan: nothing more is generated and its open tasks are cancelled.

    `code` (END_CODES) says why when the system ends it; a person's reason is kept as they wrote it.
    `open_after` (a death): only the open tasks whose window closes after it are cancelled.
    """
    PLAN_WORKFLOW.check(plan, action, actor=actor, data=data, expected_version=expected_version)
    reason = (data.get("reason") or "").strip() or None
    cancel_open_tasks(plan, CANCELLED_BY[action], reason, now=now, open_after=open_after)
    plan.ended_at, plan.ended_on, plan.end_code, plan.end_reason = now, ended_on, code, reason
    set_cursor(plan, None)
    PLAN_WORKFLOW.apply(plan, action, actor=actor, now=now, data=data,
                        audit_detail={"reason": reason, "code": code, "ended_on": str(ended_on) if ended_on else None})
    return plan


def pause_plan(plan: Plan, data: dict, *, actor: Actor, now: datetime, expected_version: int | None = None) -> Plan:
    """Pause a plan (patient abroad, followed by another hospital for a while): its open calls are
    cancelled and nothing is generated until it is resumed."""
    PLAN_WORKFLOW.check(plan, "pause", actor=actor, data=data, expected_version=expected_version)
    cancelled = cancel_open_tasks(plan, CANCELLED_BY["pause"], data["reason"].strip(), now=now)
    PLAN_WORKFLOW.apply(plan, "pause", actor=actor, now=now, data=data,
                        audit_detail={"reason": data["reason"], "cancelled_tasks": cancelled})
    return plan


def resume_plan(plan: Plan, data: dict, *, actor: Actor, now: datetime, expected_version: int | None = None) -> Plan:
    """Resume a paused plan. Occurrences whose window closed during the pause are skipped (listed in
    the audit entry; they were deliberately not called, so they are not overdue); the first one whose
    window is still open is generated as usual."""
    PLAN_WORKFLOW.check(plan, "resume", actor=actor, data=data, expected_version=expected_version)
    slots, tz, skipped = slots_of(plan.protocol), hospital_tz(), []
    number = plan.next_occurrence
    occ = schedule.occurrence(slots, plan.anchor_at, number, tz)
    while occ is not None and occ.closes_at <= now:
        skipped.append(number)
        number += 1
        occ = schedule.occurrence(slots, plan.anchor_at, number, tz)
    plan.next_occurrence = number
    set_cursor(plan, occ)
    PLAN_WORKFLOW.apply(plan, "resume", actor=actor, now=now, data=data,
                        audit_detail={"skipped_occurrences": skipped, "next_occurrence": number})
    generate_due(now, plan_ids=[plan.id])
    return plan


def withdraw_plan(plan: Plan, data: dict, *, actor: Actor, now: datetime, expected_version: int | None = None) -> Plan:
    """End a plan for good (patient declined, followed elsewhere)."""
    return end_plan(plan, "withdraw", data, actor=actor, now=now, expected_version=expected_version)


#: The department's steps on a plan (page and API), by workflow action.
PLAN_STEPS = {"pause": pause_plan, "resume": resume_plan, "withdraw": withdraw_plan}


def cancel_open_tasks(plan: Plan, code: str, reason: str | None, *, now: datetime,
                      open_after: datetime | None = None) -> int:
    """Cancel the plan's open calls with `code` (CANCEL_CODES) and the person's reason, if any; with
    `open_after`, only those whose window had not closed by then (`closes_at > open_after`)."""
    actor = system_actor("followup.plan_end")
    stmt = sa.select(Task).where(Task.plan_id == plan.id, Task.state.in_(OPEN_TASK_STATES))
    if open_after is not None:
        stmt = stmt.where(Task.closes_at > open_after)
    tasks = list(db.session.scalars(stmt.order_by(Task.id)))
    for task in tasks:
        cancel_task(task, {"reason": reason} if reason else {}, actor=actor, now=now, code=code)
    return len(tasks)


def reanchor(plan: Plan, anchor_at: datetime, *, actor: Actor, now: datetime) -> Plan:
    """Move a plan's anchor (a corrected source time): untouched tasks and the cursor follow."""
    before = plan.anchor_at
    plan.anchor_at = anchor_at.astimezone(timezone.utc)
    retimed = retime(plan, plan.protocol, slots_of(plan.protocol), hospital_tz(), now=now)
    audit.record(actor.audit_name, "followup_plan.reanchor", "followup_plan", plan.id, now,
                 before={"anchor_at": before.isoformat()}, after={"anchor_at": plan.anchor_at.isoformat()},
                 retimed=retimed)
    generate_due(now, plan_ids=[plan.id])
    return plan


def check_lost(plan: Plan, *, now: datetime) -> bool:
    """Mark the plan lost to follow-up when its last N closed tasks were all unreachable."""
    n = current_app.config["FOLLOWUP_LOST_AFTER_UNREACHABLE"]
    if plan.state != PlanState.ACTIVE or n < 1:
        return False
    last = list(db.session.scalars(
        sa.select(Task.state).where(Task.plan_id == plan.id,
                                    Task.state.in_([TaskState.COMPLETED.value, TaskState.UNREACHABLE.value]))
        .order_by(Task.occurrence.desc()).limit(n)))
    if len(last) < n or any(state != TaskState.UNREACHABLE for state in last):
        return False
    end_plan(plan, "mark_lost", {}, actor=system_actor("followup.lost"), now=now, code="unreachable")
    return True
