"""Follow-up task steps of the nurse holding a call (or of a supervisor): claim, release, reassign,
log an attempt, reschedule within the protocol's window, cancel."""
from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from flask_babel import gettext as _

from qcflow.auth.models import User
from qcflow.auth.permissions import can
from qcflow.core.actors import Actor
from qcflow.core.errors import Conflict, Unprocessable
from qcflow.core.periods import local_midnight
from qcflow.core.time import hospital_tz, local
from qcflow.extensions import db
from qcflow.followup.models import Attempt, Task
from qcflow.followup.workflow import TASK_WORKFLOW, TaskState


def require_holder(task: Task, actor: Actor) -> None:
    """Steps on a claimed task belong to its holder: anyone else gets 409, not a silent takeover."""
    if task.state == TaskState.IN_PROGRESS and task.assignee_id != actor.user_id:
        raise Conflict(_("This task is held by another nurse. Ask your department head to reassign it."),
                       state=task.state)


def claim_task(task: Task, *, actor: Actor, now: datetime) -> Task:
    """Take a waiting task; two nurses can never hold the same task."""
    TASK_WORKFLOW.check(task, "claim", actor=actor)
    session, table = db.session, Task.__table__
    if session.get_bind().dialect.name == "postgresql":
        # Lock the row or skip it if another claim holds it: that claim wins, this one is refused.
        row = session.execute(sa.select(table.c.assignee_id, table.c.state).where(table.c.id == task.id)
                              .with_for_update(skip_locked=True)).first()
        if row is None or row.assignee_id is not None or row.state != TaskState.PENDING:
            raise Conflict(_("Another nurse has just claimed this task."))
    else:
        # Compare-and-set under SQLite's single writer lock; the loser matches no row.
        won = session.execute(table.update().where(table.c.id == task.id, table.c.assignee_id.is_(None),
                                                   table.c.state == TaskState.PENDING.value)
                              .values(assignee_id=actor.user_id)).rowcount
        if won != 1:
            raise Conflict(_("Another nurse has just claimed this task."))
    session.refresh(task)
    task.assignee_id, task.claimed_at = actor.user_id, now
    TASK_WORKFLOW.apply(task, "claim", actor=actor, now=now)
    return task


def release_task(task: Task, *, actor: Actor, now: datetime, expected_version: int | None = None) -> Task:
    """Hand a claimed task back to the department's queue."""
    TASK_WORKFLOW.check(task, "release", actor=actor, expected_version=expected_version)
    task.assignee_id = task.claimed_at = None
    TASK_WORKFLOW.apply(task, "release", actor=actor, now=now)
    return task


def reassign_task(task: Task, data: dict, *, actor: Actor, now: datetime, expected_version: int | None = None) -> Task:
    """Give a task to a nurse of its department (department heads, the quality office)."""
    TASK_WORKFLOW.check(task, "reassign", actor=actor, data=data, expected_version=expected_version)
    user = db.session.get(User, data["assignee_id"])
    if (user is None or not user.is_active or not can(user, "followup_queue")
            or (user.department_id != task.department_id and not can(user, "all_departments"))):
        raise Unprocessable(errors={"assignee_id": [_("Choose an active nurse of the task's department.")]})
    before = task.assignee_id
    task.assignee_id, task.claimed_at = user.id, now
    TASK_WORKFLOW.apply(task, "reassign", actor=actor, now=now, data=data,
                        audit_detail={"assignee_before": before, "assignee_after": user.id})
    return task


def log_attempt(task: Task, data: dict, *, actor: Actor, now: datetime) -> Attempt:
    """Record a contact attempt on a task the caller holds; `snooze_until` hides it until then."""
    require_holder(task, actor)
    TASK_WORKFLOW.check(task, "log_attempt", actor=actor, data=data)
    snooze = data.get("snooze_until")
    if snooze is not None and snooze <= now:
        raise Unprocessable(errors={"snooze_until": [_("Choose a time in the future.")]})
    attempt = Attempt(task_id=task.id, user_id=actor.user_id, channel=data["channel"], result=data["result"],
                      note=data.get("note"), snooze_until=snooze, attempted_at=now, recorded_at=now)
    db.session.add(attempt)
    task.attempt_count += 1
    task.snoozed_until = snooze
    TASK_WORKFLOW.apply(task, "log_attempt", actor=actor, now=now,
                        audit_detail={"channel": attempt.channel, "result": attempt.result})
    return attempt


def allowed_range(task: Task) -> tuple:
    """The reschedule range of a task: its protocol window, as days (calendar tasks) or instants."""
    if task.is_timed:
        return task.opens_at, task.closes_at
    tz = hospital_tz()
    return task.opens_at.astimezone(tz).date(), (task.closes_at - timedelta(seconds=1)).astimezone(tz).date()


def reschedule_task(task: Task, data: dict, *, actor: Actor, now: datetime, expected_version: int | None = None) -> Task:
    """Move the planned call within the protocol's window (reason required); the queue hides it until then."""
    if not can(actor, "supervise_followup"):
        require_holder(task, actor)
    TASK_WORKFLOW.check(task, "reschedule", actor=actor, data=data, expected_version=expected_version)
    tz = hospital_tz()
    low, high = allowed_range(task)
    if task.is_timed:
        when = data.get("due_at")
        if when is None:
            raise Unprocessable(errors={"due_at": [_("Give the new call time (due_at).")]})
        if not low <= when < high:
            raise Unprocessable(
                _("Outside the protocol's window: choose a time from %(low)s to before %(high)s.",
                  low=local(low).strftime("%Y-%m-%d %H:%M"), high=local(high).strftime("%Y-%m-%d %H:%M")),
                errors={"due_at": [_("Allowed: %(low)s – %(high)s.", low=local(low).strftime("%Y-%m-%d %H:%M"),
                                     high=local(high).strftime("%Y-%m-%d %H:%M"))]},
                allowed_range={"from": low.isoformat(), "before": high.isoformat()})
        due_at, due_on, hide_until = when, local(when).date(), when
    else:
        day = data.get("due_on") or (local(data["due_at"]).date() if data.get("due_at") else None)
        if day is None:
            raise Unprocessable(errors={"due_on": [_("Give the new call date (due_on).")]})
        if not low <= day <= high:
            raise Unprocessable(
                _("Outside the protocol's window: choose a date from %(low)s to %(high)s.", low=low.isoformat(),
                  high=high.isoformat()),
                errors={"due_on": [_("Allowed: %(low)s – %(high)s.", low=low.isoformat(), high=high.isoformat())]},
                allowed_range={"from": low.isoformat(), "to": high.isoformat()})
        due_at = local_midnight(day, tz)
        due_on, hide_until = day, due_at
    before = task.due_at
    task.due_at, task.due_on = due_at, due_on
    task.snoozed_until = hide_until if hide_until > now else None
    task.rescheduled_at, task.reschedule_reason = now, data["reason"].strip()
    TASK_WORKFLOW.apply(task, "reschedule", actor=actor, now=now, data=data,
                        audit_detail={"due_before": before.isoformat(), "due_after": due_at.isoformat(),
                                      "reason": task.reschedule_reason})
    return task


def cancel_task(task: Task, data: dict, *, actor: Actor, now: datetime, expected_version: int | None = None,
                code: str | None = None) -> Task:
    """Cancel a task that will not be done: a person gives a reason; the system gives a code (CANCEL_CODES)
    and passes on the reason a person gave for the plan's step, if any."""
    if "system" not in actor.roles and not can(actor, "supervise_followup"):
        require_holder(task, actor)
    reason = (data.get("reason") or "").strip() or None
    # The reason guard asks a person for a reason; the system's code is its reason.
    checked = {**data, "reason": reason or code}
    TASK_WORKFLOW.check(task, "cancel", actor=actor, data=checked, expected_version=expected_version)
    task.cancel_code, task.cancel_reason, task.snoozed_until = code, reason, None
    task.closed_at = task.closed_recorded_at = now
    TASK_WORKFLOW.apply(task, "cancel", actor=actor, now=now, data=checked,
                        audit_detail={"reason": reason, "code": code})
    return task
