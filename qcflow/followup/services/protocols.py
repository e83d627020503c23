"""Follow-up protocol versions: reading and checking them, adding a version, and moving the active
plans (their cursor and untouched tasks) onto it."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _

from qcflow.core import audit
from qcflow.core.actors import Actor
from qcflow.core.errors import Conflict, Unprocessable
from qcflow.core.i18n import label
from qcflow.core.time import hospital_tz
from qcflow.extensions import db
from qcflow.followup import schedule
from qcflow.followup.models import ANCHORS, OUTCOME_ITEMS, Plan, Protocol, ProtocolPhase, Task
from qcflow.followup.schedule import Occurrence, Phase, Slot
from qcflow.followup.services.tasks import cancel_task
from qcflow.followup.workflow import PlanState, TaskState

log = logging.getLogger(__name__)


def system_actor(job: str = "followup") -> Actor:
    return Actor.system(job)


def current_protocol(code: str) -> Protocol | None:
    return db.session.scalar(sa.select(Protocol).where(Protocol.code == code, Protocol.is_current.is_(True)))


def slots_of(protocol: Protocol) -> list[Slot]:
    return schedule.expand(protocol.schedule_phases())


PHASE_MESSAGES = {
    "no_phases": lambda p: _("A protocol needs at least one phase."),
    "bad_unit": lambda p: _("Phase %(phase)d: choose hours, days or months.", **p),
    "negative": lambda p: _("Phase %(phase)d: offsets and tolerances cannot be negative.", **p),
    "bad_repeat": lambda p: _("Phase %(phase)d: a repeating phase needs an interval above 0 and an end.", **p),
    "empty_phase": lambda p: _("Phase %(phase)d is empty: its end comes before its start.", **p),
    "too_far": lambda p: _("Phase %(phase)d reaches too far: calls and their windows must lie within %(years)d years "
                           "of the anchor.", **p),
    "whole_days": lambda p: _("Phase %(phase)d: tolerances of day and month phases are whole days.", **p),
    "early_too_long": lambda p: _("Phase %(phase)d: the early tolerance can be at most %(hours)d hours.", **p),
    "too_many": lambda p: _("A protocol can have at most %(n)d occurrences.", **p),
    "overlap": lambda p: _("Phases overlap: the windows of phase %(phase)d and phase %(next)d run into each other. "
                           "Put phases in time order with gaps wider than their tolerances.", **p),
}


def lookahead() -> timedelta:
    """How far ahead of its due time a task is generated (≥ the longest early tolerance)."""
    return timedelta(days=current_app.config["FOLLOWUP_LOOKAHEAD_DAYS"])


def check_protocol(data: dict) -> list[Phase]:
    """Rules of a protocol version (the schema checked the shape); 422 names every problem."""
    errors: dict[str, list[str]] = {}
    if data["anchor"] not in ANCHORS:
        errors["anchor"] = [_("Choose one of: %(values)s.", values=", ".join(label("fu_anchor", a) for a in ANCHORS))]
    items, core = list(data.get("outcome_items") or []), list(data.get("core_items") or [])
    unknown = [i for i in items + core if i not in OUTCOME_ITEMS]
    if unknown:
        errors["outcome_items"] = [_("Unknown outcome items: %(items)s.", items=", ".join(unknown))]
    elif set(core) - set(items):
        errors["core_items"] = [_("Core items must be among the form's items.")]
    phases = [Phase(p["unit"], p["start"], p.get("every"), p.get("until"), p.get("early_hours", 0),
                    p.get("late_hours", 0), bool(p.get("is_urgent")),
                    bool(p.get("self_report"))) for p in data.get("phases") or []]
    max_early = int(lookahead().total_seconds() // 3600)
    problems = schedule.phase_errors(phases, max_early)
    if problems:
        errors["phases"] = [str(PHASE_MESSAGES[code](params)) for code, params in problems]
    if errors:
        raise Unprocessable(errors=errors)
    return phases


def create_protocol_version(code: str, data: dict, *, actor: Actor, now: datetime) -> Protocol:
    """Add a protocol version (the first of a new pathway, or the next of an existing one, from the
    current version the administrator started from: `based_on_version_no`, stale → 409).

    Active plans of the pathway move to it; of their tasks only the untouched pending ones (never
    claimed, no attempt, not rescheduled) are retimed, or cancelled past the new protocol's end.
    """
    phases = check_protocol(data)
    previous = current_protocol(code)
    based_on = data.get("based_on_version_no")
    if previous is not None and based_on is None:
        raise Unprocessable(errors={"based_on_version_no": [_("Give the number of the version you started from.")]})
    if previous is not None and based_on != previous.version_no:
        raise Conflict(_("Version %(number)d of this pathway was added since you opened it. Start again from it.",
                         number=previous.version_no), current_version_no=previous.version_no)
    if previous is not None:
        previous.is_current = False
        db.session.flush()  # one current version per code (partial unique index)
    protocol = Protocol(
        code=code, version_no=(previous.version_no + 1) if previous else 1, name=data["name"],
        name_en=data.get("name_en") or data["name"], anchor=data["anchor"],
        outcome_items=[i for i in OUTCOME_ITEMS if i in (data.get("outcome_items") or [])],
        core_items=[i for i in OUTCOME_ITEMS if i in (data.get("core_items") or [])],
        is_current=True, change_note=data.get("change_note"), created_at=now, created_by=actor.audit_name,
        phases=[ProtocolPhase(position=i, unit=p.unit, start_offset=p.start, every=p.every, until_offset=p.until,
                              early_hours=p.early_hours, late_hours=p.late_hours, is_urgent=p.is_urgent,
                              self_report=p.self_report)
                for i, p in enumerate(phases, start=1)],
    )
    db.session.add(protocol)
    db.session.flush()
    audit.record(actor.audit_name, "followup_protocol.create", "followup_protocol", protocol.id, now,
                 after={"code": code, "version_no": protocol.version_no,
                        "previous_id": previous.id if previous else None})
    if previous is not None:
        moved = move_plans(previous, protocol, actor=actor, now=now)
        log.info("protocol %s v%d: %d active plans moved", code, protocol.version_no, moved)
    return protocol


def untouched(task: Task) -> bool:
    """A pending task nobody has worked on: never claimed, no attempt, not rescheduled."""
    return (task.state == TaskState.PENDING and task.assignee_id is None and task.attempt_count == 0
            and task.rescheduled_at is None)


def move_plans(old: Protocol, new: Protocol, *, actor: Actor, now: datetime) -> int:
    """Move the active plans of `old` to `new` (an administrator's rare step: linear in those plans)."""
    slots, tz, moved = slots_of(new), hospital_tz(), 0
    plans = db.session.scalars(sa.select(Plan).where(Plan.protocol_id == old.id, Plan.state == PlanState.ACTIVE.value)
                               .order_by(Plan.id).execution_options(yield_per=500))
    for plan in plans:
        retimed = retime(plan, new, slots, tz, now=now)
        audit.record(actor.audit_name, "followup_plan.protocol_moved", "followup_plan", plan.id, now,
                     before={"protocol_id": old.id}, after={"protocol_id": new.id}, retimed=retimed)
        moved += 1
    return moved


def retime(plan: Plan, protocol: Protocol, slots: list[Slot], tz, *, now: datetime) -> list[int]:
    """Apply `protocol` (and the plan's current anchor) to the plan's untouched tasks and cursor."""
    retimed = []
    tasks = db.session.scalars(sa.select(Task).where(Task.plan_id == plan.id, Task.state == TaskState.PENDING.value))
    for task in tasks:
        if not untouched(task):
            continue
        occ = schedule.occurrence(slots, plan.anchor_at, task.occurrence, tz)
        if occ is None:
            cancel_task(task, {}, actor=system_actor("followup.protocol"), now=now, code="protocol_changed")
        else:
            _time_task(task, occ)
            task.protocol_id = protocol.id
        retimed.append(task.id)
    plan.protocol_id = protocol.id
    set_cursor(plan, schedule.occurrence(slots, plan.anchor_at, plan.next_occurrence, tz))
    db.session.flush()
    return retimed


def _time_task(task: Task, occ: Occurrence) -> None:
    task.due_at, task.due_on, task.opens_at, task.closes_at = occ.due_at, occ.due_on, occ.opens_at, occ.closes_at
    task.is_urgent, task.is_timed = occ.is_urgent, occ.is_timed


def set_cursor(plan: Plan, occ: Occurrence | None) -> None:
    if occ is None:
        plan.next_due_at = plan.next_due_on = plan.next_opens_at = plan.next_closes_at = None
        plan.next_is_urgent = plan.next_is_timed = False
        return
    plan.next_occurrence = occ.number
    plan.next_due_at, plan.next_due_on = occ.due_at, occ.due_on
    plan.next_opens_at, plan.next_closes_at = occ.opens_at, occ.closes_at
    plan.next_is_urgent, plan.next_is_timed = occ.is_urgent, occ.is_timed
