"""Read side of invitations: a call's invitation and its delivery log, the invitations of a page of calls, the
patient's answers as a pending outcome, and the monthly measures of follow-up answered online."""
from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import lazyload

from qcflow.auth.models import Department
from qcflow.auth.permissions import department_for, scoped, scoped_to
from qcflow.core.actors import Actor
from qcflow.core.i18n import current_language, register_labels
from qcflow.core.periods import month_period
from qcflow.extensions import db
from qcflow.followup.invitations import questions
from qcflow.followup.invitations.models import Invitation, InvitationMessage
from qcflow.followup.invitations.workflow import InvitationState
from qcflow.followup.models import Attempt, Task
from qcflow.followup.workflow import TaskState

def invitation_of(task) -> Invitation | None:
    """The invitation of a call, or None."""
    return db.session.scalar(sa.select(Invitation).where(Invitation.task_id == task.id))


def of_tasks(task_ids) -> dict[int, Invitation]:
    """The invitations of a page of calls by task id, in one query (the queue's own statement stays index-only)."""
    ids = set(task_ids)
    if not ids:
        return {}
    return {i.task_id: i for i in db.session.scalars(
        sa.select(Invitation).where(Invitation.task_id.in_(ids)).options(lazyload(Invitation.task)))}


def messages_of(invitation: Invitation | None) -> list[InvitationMessage]:
    """The delivery log of an invitation, oldest first."""
    if invitation is None:
        return []
    return list(db.session.scalars(sa.select(InvitationMessage).where(InvitationMessage.invitation_id == invitation.id)
                                   .order_by(InvitationMessage.at, InvitationMessage.id)))


def is_pending(invitation: Invitation | None, task) -> bool:
    """The patient answered and the call is still open: the answers wait for a nurse's confirmation."""
    return (invitation is not None and invitation.state == InvitationState.ANSWERED
            and task.state in (TaskState.PENDING, TaskState.IN_PROGRESS))


def pending_outcome(invitation: Invitation, protocol) -> list[dict]:
    """The patient's answers as rows a nurse reads: {item, value, alarming}; `item` names the question
    (fu_item, or respondent, condition, vital_status, died_on, revisit_requested, complication_note, note) and
    `value` the answer as stored (the page labels it)."""
    answers = invitation.answers or {}
    alarms = set(invitation.alarm_list)
    rows = [{"item": "respondent", "value": answers.get("respondent"), "alarming": False}]
    if answers.get("vital_status"):
        rows.append({"item": "vital_status", "value": answers["vital_status"], "alarming": "death" in alarms})
        if answers.get("died_on"):
            rows.append({"item": "died_on", "value": answers["died_on"], "alarming": "death" in alarms})
    rows.append({"item": "condition", "value": answers.get("condition"), "alarming": "worsening" in alarms})
    for item in questions.asked(protocol):
        rows.append({"item": item, "value": answers.get(item), "alarming": item in alarms})
        if item == "complication" and answers.get("complication_note"):
            rows.append({"item": "complication_note", "value": answers["complication_note"],
                         "alarming": "complication" in alarms})
    rows.append({"item": "revisit_requested", "value": bool(answers.get("revisit_requested")), "alarming": False})
    if answers.get("note"):
        rows.append({"item": "note", "value": answers["note"], "alarming": False})
    return rows


def present(invitation: Invitation | None, *, messages: list | None = None) -> dict | None:
    """An invitation as TaskOut shows it (InvitationOut): its state and times; with `messages`, the delivery log
    and, once answered, the answers."""
    if invitation is None:
        return None
    data = {"state": invitation.state, "channel": invitation.channel, "sent_at": invitation.sent_at,
            "delivered_at": invitation.delivered_at, "opened_at": invitation.opened_at,
            "answered_at": invitation.answered_at, "expires_at": invitation.expires_at,
            "reminders_sent": invitation.reminders_sent, "alarms": invitation.alarm_list}
    if messages is not None:
        data["answers"] = dict(invitation.answers) if invitation.answers else None
        data["messages"] = [{"kind": m.kind, "channel": m.channel, "status": m.status, "at": m.at,
                             "detail": m.detail} for m in messages]
    return data


# Measures --------------------------------------------------------------------------------------------------

def _scope(stmt, column, actor: Actor | None, department: int | None):
    """The one department rule (auth.permissions.scoped), then the one department asked for; no actor: the whole
    hospital (the bulletin)."""
    if actor is not None:
        stmt = scoped(stmt, column, actor)
    return scoped_to(stmt, column, department) if department is not None else stmt


def _closed_counts(start: datetime, end: datetime, actor: Actor | None, department: int | None):
    """Calls closed in [start, end) by department and pathway: closed (completed or unreachable), completed
    online, and completed online without any attempt of another channel (a call saved)."""
    other_attempt = sa.exists().where(Attempt.task_id == Task.id, Attempt.channel != "online")
    online = Task.channel == "online"
    stmt = (sa.select(Task.department_id, Task.pathway, sa.func.count(),
                      sa.func.sum(sa.case((online, 1), else_=0)),
                      sa.func.sum(sa.case((sa.and_(online, ~other_attempt), 1), else_=0)))
            .where(Task.state.in_([TaskState.COMPLETED.value, TaskState.UNREACHABLE.value]),
                   Task.closed_at >= start, Task.closed_at < end)
            .group_by(Task.department_id, Task.pathway))
    return db.session.execute(_scope(stmt, Task.department_id, actor, department)).all()


def _invitation_counts(start: datetime, end: datetime, actor: Actor | None, department: int | None):
    """Invitations sent in [start, end) by department and pathway, those of them answered and those answered
    with an alarming finding."""
    answered = Invitation.answered_at.is_not(None)
    stmt = (sa.select(Invitation.department_id, Task.pathway, sa.func.count(),
                      sa.func.sum(sa.case((answered, 1), else_=0)),
                      sa.func.sum(sa.case((sa.and_(answered, Invitation.alarms != ""), 1), else_=0)))
            .join(Task, Task.id == Invitation.task_id)
            .where(Invitation.sent_at >= start, Invitation.sent_at < end)
            .group_by(Invitation.department_id, Task.pathway))
    return db.session.execute(_scope(stmt, Invitation.department_id, actor, department)).all()


FIGURES = ("closed", "online", "saved", "sent", "answered", "alarming")


def _figures(counts: dict, minutes: int) -> dict:
    closed, sent = counts["closed"], counts["sent"]
    return {**counts,
            "online_share": round(100 * counts["online"] / closed, 1) if closed else None,
            "answer_rate": round(100 * counts["answered"] / sent, 1) if sent else None,
            "minutes_saved": counts["saved"] * minutes}


def statistics(actor: Actor | None, month: date, *, department: int | None = None) -> dict:
    """Follow-up answered online in `month` (hospital time), for the actor's departments (the one department
    rule): calls closed, completed online, their share, invitations sent, answered, the answer rate, alarming
    answers, calls saved and the nurse time they saved, in total, per pathway and per department.

    Calls count in the month they were closed; invitations in the month they were sent (answered: at any time
    since, so the answer rate is of the same invitations). Two GROUP BY statements; the few groups are summed
    here. `actor` None: the whole hospital (the bulletin)."""
    if actor is not None:
        department = department_for(actor, department)
    period = month_period(month)
    start, end = period.start_at, period.end_at
    groups: dict[tuple[int, str], dict] = {}

    def group(key):
        return groups.setdefault(key, dict.fromkeys(FIGURES, 0))

    for department_id, pathway, closed, online, saved in _closed_counts(start, end, actor, department):
        group((department_id, pathway)).update(closed=closed, online=online or 0, saved=saved or 0)
    for department_id, pathway, sent, answered, alarming in _invitation_counts(start, end, actor, department):
        group((department_id, pathway)).update(sent=sent, answered=answered or 0, alarming=alarming or 0)
    minutes = current_app.config["FOLLOWUP_CALL_MINUTES"]

    def total(keys) -> dict:
        counts = dict.fromkeys(FIGURES, 0)
        for key in keys:
            for name in FIGURES:
                counts[name] += groups[key][name]
        return _figures(counts, minutes)

    language = current_language()
    names = {d.id: d.label(language) for d in db.session.scalars(
        sa.select(Department).where(Department.id.in_({d for d, _p in groups})))} if groups else {}
    pathways = sorted({p for _d, p in groups})
    departments = sorted({d for d, _p in groups}, key=lambda d: names.get(d, ""))
    return {
        "month": month, "department": department, "call_minutes": minutes,
        "total": total(groups),
        "pathways": [{"pathway": p, **total([k for k in groups if k[1] == p])} for p in pathways],
        "departments": [{"department_id": d, "department": names.get(d, "—"), **total([k for k in groups if k[0] == d])}
                        for d in departments],
    }
