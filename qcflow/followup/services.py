"""Follow-up: protocol versions, enrolment (and the clinical hooks), the task generator, task steps,
death and lost-to-follow-up, and the bridge to adverse-event reports.

Services flush and never commit; callers pass `now` (and `actor` where a person acts). The
generator commits through the caller's `after_batch` callback, once per batch.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Callable

import orjson
import sqlalchemy as sa
from flask import current_app
from sqlalchemy.dialects.postgresql import ARRAY
from flask_babel import gettext as _

from qcflow.auth.models import Role, User
from qcflow.auth.permissions import can, department_for
from qcflow.clinical.models import CancerDiagnosis, CancerType, Encounter, Operation, Patient
from qcflow.clinical.queries import has_clinical_record
from qcflow.clinical.workflow import OperationState
from qcflow.core import audit
from qcflow.core.actors import Actor
from qcflow.core.errors import Conflict, Unprocessable
from qcflow.core.i18n import label, label_list
from qcflow.core.time import hospital_tz, local
from qcflow.extensions import db
from qcflow.followup import schedule
from qcflow.followup.models import (
    ANCHORS,
    OPEN_TASK_STATES,
    OUTCOME_ITEMS,
    Attempt,
    EventPrompt,
    Plan,
    Protocol,
    ProtocolPhase,
    URGENT_OPEN,
    Task,
)
from qcflow.followup.schedule import Occurrence, Phase, Slot
from qcflow.followup.workflow import (
    PLAN_WORKFLOW,
    PROMPT_WORKFLOW,
    TASK_WORKFLOW,
    PlanState,
    TaskState,
)
from qcflow.notify.services import notify, users_with_role

log = logging.getLogger(__name__)

#: The five key cancers (FU-09) have their own pathways: cancer_<type>.
KEY_CANCERS = tuple(t.value for t in CancerType if t != CancerType.OTHER)
SYSTEM = "system:followup"


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
                    p.get("late_hours", 0), bool(p.get("is_urgent"))) for p in data.get("phases") or []]
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
                              early_hours=p.early_hours, late_hours=p.late_hours, is_urgent=p.is_urgent)
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
        retimed = _retime(plan, new, slots, tz, now=now)
        audit.record(actor.audit_name, "followup_plan.protocol_moved", "followup_plan", plan.id, now,
                     before={"protocol_id": old.id}, after={"protocol_id": new.id}, retimed=retimed)
        moved += 1
    return moved


def _retime(plan: Plan, protocol: Protocol, slots: list[Slot], tz, *, now: datetime) -> list[int]:
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
    _set_cursor(plan, schedule.occurrence(slots, plan.anchor_at, plan.next_occurrence, tz))
    db.session.flush()
    return retimed


def _time_task(task: Task, occ: Occurrence) -> None:
    task.due_at, task.due_on, task.opens_at, task.closes_at = occ.due_at, occ.due_on, occ.opens_at, occ.closes_at
    task.is_urgent, task.is_timed = occ.is_urgent, occ.is_timed


def _set_cursor(plan: Plan, occ: Occurrence | None) -> None:
    if occ is None:
        plan.next_due_at = plan.next_due_on = plan.next_opens_at = plan.next_closes_at = None
        plan.next_is_urgent = plan.next_is_timed = False
        return
    plan.next_occurrence = occ.number
    plan.next_due_at, plan.next_due_on = occ.due_at, occ.due_on
    plan.next_opens_at, plan.next_closes_at = occ.opens_at, occ.closes_at
    plan.next_is_urgent, plan.next_is_timed = occ.is_urgent, occ.is_timed


def find_plan(patient_id: int, pathway: str, source_key: str) -> Plan | None:
    return db.session.scalar(sa.select(Plan).where(Plan.patient_id == patient_id, Plan.pathway == pathway,
                                                   Plan.source_key == source_key))


def enrol_by_hand(data: dict, *, actor: Actor, now: datetime) -> Plan:
    """Enrol a patient by hand (the page and the API).

    A nurse or clinician enrols only a patient with a clinical record (encounter, operation, diagnosis)
    in their own department: anyone else is answered as an unknown patient, so the phone number of
    another department's patient is never one enrolment away. The head of the department and the
    quality office may enrol any patient; an enrolment without such a record is audited as such.
    """
    department_for(actor, data["department_id"], field="department_id")
    patient = db.session.get(Patient, data["patient_id"])
    has_record = patient is not None and has_clinical_record(patient.id, data["department_id"])
    if patient is None or not (has_record or can(actor, "supervise_followup")):
        raise Unprocessable(errors={"patient_id": [_("Unknown patient.")]})
    source_id = data.get("source_id")
    if data["source_type"] != "manual" and source_id is None:
        raise Unprocessable(errors={"source_id": [_("Give the id of the source record.")]})
    key = None if data["source_type"] != "manual" else f"manual:{data['anchor_at'].isoformat()}"
    return enrol(patient, data["pathway"], source_type=data["source_type"], source_id=source_id,
                 anchor_at=data["anchor_at"], department_id=data["department_id"], actor=actor, now=now,
                 source_key=key, without_clinical_record=not has_record)


def enrol(patient: Patient, pathway: str, *, source_type: str, source_id: int | None, anchor_at: datetime,
          department_id: int, actor: Actor, now: datetime, source_key: str | None = None,
          without_clinical_record: bool = False) -> Plan:
    """Enrol a patient on a pathway from one source record; enrolling again returns the same plan.

    Tasks already due (e.g. the day-surgery 24 h call) are generated at once.
    """
    source_key = source_key or f"{source_type}:{source_id}"
    existing = find_plan(patient.id, pathway, source_key)
    if existing is not None:
        return existing
    if patient.died_on is not None:
        raise Unprocessable(errors={"patient": [_("The patient's death is recorded; no follow-up is planned.")]})
    protocol = current_protocol(pathway)
    if protocol is None:
        raise Unprocessable(errors={"pathway": [_("No follow-up protocol “%(code)s”.", code=pathway)]})
    plan = Plan(patient_id=patient.id, department_id=department_id, protocol_id=protocol.id, pathway=pathway,
                source_type=source_type, source_id=source_id, source_key=source_key,
                anchor_at=anchor_at.astimezone(timezone.utc), state=PlanState.ACTIVE.value, next_occurrence=1,
                enrolled_at=now, enrolled_by=actor.audit_name)
    _set_cursor(plan, schedule.occurrence(slots_of(protocol), plan.anchor_at, 1, hospital_tz()))
    db.session.add(plan)
    db.session.flush()
    audit.record(actor.audit_name, "followup_plan.enrol", "followup_plan", plan.id, now,
                 after={"patient_id": patient.id, "pathway": pathway, "protocol_id": protocol.id,
                        "source": source_key, "anchor_at": plan.anchor_at.isoformat(),
                        **({"without_clinical_record": True} if without_clinical_record else {})})
    generate_due(now, plan_ids=[plan.id])
    return plan


def _auto_enrol(patient: Patient, pathway: str, source_type: str, source_id: int, anchor_at: datetime,
                department_id: int | None, now: datetime) -> Plan | None:
    """Automatic enrolment from a clinical fact: never fails the intake, says why it skipped."""
    if patient.died_on is not None:
        return None
    existing = find_plan(patient.id, pathway, f"{source_type}:{source_id}")
    if existing is not None:
        return existing
    if current_protocol(pathway) is None:
        log.warning("no follow-up protocol %s; %s %s not enrolled", pathway, source_type, source_id)
        return None
    department_id = department_id or _fallback_department(patient)
    if department_id is None:
        log.warning("no department for follow-up of %s %s; not enrolled", source_type, source_id)
        return None
    return enrol(patient, pathway, source_type=source_type, source_id=source_id, anchor_at=anchor_at,
                 department_id=department_id, actor=system_actor("followup.enrol"), now=now)


def _fallback_department(patient: Patient) -> int | None:
    """The department of the patient's latest encounter, else the configured follow-up department."""
    latest = db.session.scalar(sa.select(Encounter.department_id).where(Encounter.patient_id == patient.id)
                               .order_by(Encounter.admitted_at.desc()).limit(1))
    if latest is not None:
        return latest
    code = current_app.config.get("FOLLOWUP_FALLBACK_DEPARTMENT")
    if code:
        from qcflow.auth.models import Department

        return db.session.scalar(sa.select(Department.id).where(Department.code == code))
    return None


def on_operation_performed(operation: Operation, *, now: datetime) -> Plan | None:
    """A performed grade-4 (or restricted-technology) operation → four_level_surgery, anchored at performed_at."""
    if operation.state != OperationState.PERFORMED or operation.performed_at is None or not operation.needs_mdt:
        return None
    patient = db.session.get(Patient, operation.patient_id)
    return _auto_enrol(patient, "four_level_surgery", "operation", operation.id, operation.performed_at,
                       operation.department_id, now)


def on_encounter_discharged(encounter: Encounter, *, now: datetime) -> Plan | None:
    """A day-surgery discharge (not a death) → day_surgery, anchored at discharged_at.

    A corrected discharge time re-anchors the plan: its untouched tasks and cursor follow.
    """
    if not encounter.is_day_surgery or encounter.discharged_at is None or encounter.disposition == "death":
        return None
    patient = db.session.get(Patient, encounter.patient_id)
    plan = find_plan(patient.id, "day_surgery", f"encounter:{encounter.id}")
    if plan is not None:
        if plan.state == PlanState.ACTIVE and plan.anchor_at != encounter.discharged_at:
            reanchor(plan, encounter.discharged_at, actor=system_actor("followup.enrol"), now=now)
        return plan
    return _auto_enrol(patient, "day_surgery", "encounter", encounter.id, encounter.discharged_at,
                       encounter.department_id, now)


def on_cancer_diagnosis(diagnosis: CancerDiagnosis, *, now: datetime) -> Plan | None:
    """A diagnosis of one of the five key cancers → cancer_<type>, anchored at the diagnosis date."""
    if diagnosis.cancer_type not in KEY_CANCERS:
        return None
    patient = db.session.get(Patient, diagnosis.patient_id)
    anchor_at = schedule.local_midnight(diagnosis.diagnosed_on, hospital_tz())
    return _auto_enrol(patient, f"cancer_{diagnosis.cancer_type}", "diagnosis", diagnosis.id, anchor_at,
                       diagnosis.department_id, now)


def on_death(patient: Patient, *, died_on: date, now: datetime) -> int:
    """Stop every active plan of the patient and cancel its open tasks; returns the plans stopped."""
    actor = system_actor("followup.death")
    running = (PlanState.ACTIVE.value, PlanState.PAUSED.value)
    plans = list(db.session.scalars(sa.select(Plan).where(Plan.patient_id == patient.id, Plan.state.in_(running))
                                    .order_by(Plan.id)))
    for plan in plans:
        end_plan(plan, "stop", {}, actor=actor, now=now, ended_on=died_on, code="death")
    return len(plans)


#: The code a call cancelled by a plan's end carries, by the plan's step.
CANCELLED_BY = {"pause": "plan_paused", "withdraw": "plan_withdrawn", "stop": "plan_stopped", "mark_lost": "plan_lost"}


def end_plan(plan: Plan, action: str, data: dict, *, actor: Actor, now: datetime, ended_on: date | None = None,
             expected_version: int | None = None, code: str | None = None) -> Plan:
    """Stop, mark lost or withdraw a plan: nothing more is generated and its open tasks are cancelled.

    `code` (END_CODES) says why when the system ends it; a person's reason is kept as they wrote it.
    """
    PLAN_WORKFLOW.check(plan, action, actor=actor, data=data, expected_version=expected_version)
    reason = (data.get("reason") or "").strip() or None
    cancel_open_tasks(plan, CANCELLED_BY[action], reason, now=now)
    plan.ended_at, plan.ended_on, plan.end_code, plan.end_reason = now, ended_on, code, reason
    _set_cursor(plan, None)
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
    _set_cursor(plan, occ)
    PLAN_WORKFLOW.apply(plan, "resume", actor=actor, now=now, data=data,
                        audit_detail={"skipped_occurrences": skipped, "next_occurrence": number})
    generate_due(now, plan_ids=[plan.id])
    return plan


def withdraw_plan(plan: Plan, data: dict, *, actor: Actor, now: datetime, expected_version: int | None = None) -> Plan:
    """End a plan for good (patient declined, followed elsewhere)."""
    return end_plan(plan, "withdraw", data, actor=actor, now=now, expected_version=expected_version)


#: The department's steps on a plan (page and API), by workflow action.
PLAN_STEPS = {"pause": pause_plan, "resume": resume_plan, "withdraw": withdraw_plan}


def cancel_open_tasks(plan: Plan, code: str, reason: str | None, *, now: datetime) -> int:
    """Cancel the plan's open calls with `code` (CANCEL_CODES) and the person's reason, if any."""
    actor = system_actor("followup.plan_end")
    tasks = list(db.session.scalars(sa.select(Task).where(Task.plan_id == plan.id, Task.state.in_(OPEN_TASK_STATES))))
    for task in tasks:
        cancel_task(task, {"reason": reason} if reason else {}, actor=actor, now=now, code=code)
    return len(tasks)


def reanchor(plan: Plan, anchor_at: datetime, *, actor: Actor, now: datetime) -> Plan:
    """Move a plan's anchor (a corrected source time): untouched tasks and the cursor follow."""
    before = plan.anchor_at
    plan.anchor_at = anchor_at.astimezone(timezone.utc)
    retimed = _retime(plan, plan.protocol, slots_of(plan.protocol), hospital_tz(), now=now)
    audit.record(actor.audit_name, "followup_plan.reanchor", "followup_plan", plan.id, now,
                 before={"anchor_at": before.isoformat()}, after={"anchor_at": plan.anchor_at.isoformat()},
                 retimed=retimed)
    generate_due(now, plan_ids=[plan.id])
    return plan


@dataclass
class Generated:
    batches: int = 0
    tasks: int = 0
    plans: int = 0

    def __str__(self) -> str:
        return f"generated {self.tasks} tasks for {self.plans} plans in {self.batches} batches"


TASK_COPY = ("plan_id", "occurrence", "protocol_id", "patient_id", "department_id", "pathway", "state", "due_at",
             "due_on", "opens_at", "closes_at", "is_urgent", "is_timed", "attempt_count", "created_at", "version")


def _insert(dialect: str):
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def generate_due(now: datetime, *, batch_size: int | None = None, plan_ids: list[int] | None = None,
                 after_batch: Callable[[Generated], None] | None = None) -> Generated:
    """Materialise every task due up to now + lookahead that does not exist yet, in batches.

    Each batch selects due active plans through the partial index on next_due_at (O(due), never
    a scan of all plans), inserts their next occurrence with one INSERT … SELECT … ON CONFLICT DO
    NOTHING on the natural key (plan_id, occurrence), and advances the plans' cursors in the same
    transaction with a compare-and-set on next_occurrence. A plan several occurrences behind
    (downtime) is picked up again by the next batch until it is caught up. `after_batch` (the
    caller's commit) runs after each batch; a crash loses at most the uncommitted batch, and a
    re-run or a second generator only ever finds the remaining work.
    """
    horizon = now + lookahead()
    size = batch_size or current_app.config["GEN_BATCH"]
    result, cache = Generated(), {}
    while True:
        selected, inserted = _generate_batch(now, horizon, size, plan_ids, cache)
        if not selected:
            return result
        result.batches += 1
        result.tasks += inserted
        result.plans += selected
        if after_batch is not None:
            after_batch(result)


def due_clause(horizon: datetime, plan_ids=None):
    plan = Plan.__table__
    due = sa.and_(plan.c.state == PlanState.ACTIVE.value, plan.c.next_due_at <= horizon)
    return due if plan_ids is None else sa.and_(due, plan.c.id.in_(plan_ids))


def due_plans(horizon: datetime, size: int, plan_ids=None, *, lock: bool = False):
    """The batch query: due active plans in cursor order, through the partial index on next_due_at.

    On PostgreSQL the rows are locked and locked ones skipped, so concurrent generators split the work.
    """
    plan = Plan.__table__
    pick = (sa.select(plan.c.id, plan.c.protocol_id, plan.c.anchor_at, plan.c.next_occurrence)
            .where(due_clause(horizon, plan_ids)).order_by(plan.c.next_due_at).limit(size))
    return pick.with_for_update(skip_locked=True) if lock else pick


#: Cursor advance, one statement per batch: arrays unnested (PostgreSQL) or executemany (SQLite),
#: both with a compare-and-set on the occurrence the batch read.
ADVANCE_COLUMNS = ("next_occurrence", "next_due_at", "next_due_on", "next_opens_at", "next_closes_at",
                   "next_is_urgent", "next_is_timed")
PG_ADVANCE = sa.text(
    "UPDATE followup_plan AS p SET next_occurrence = v.next, next_due_at = v.due_at, next_due_on = v.due_on, "
    "next_opens_at = v.opens_at, next_closes_at = v.closes_at, next_is_urgent = v.urgent, "
    "next_is_timed = v.timed, version = p.version + 1 "
    "FROM json_to_recordset(CAST(:batch AS json)) AS v(id integer, old integer, next integer, "
    "due_at timestamptz, due_on date, opens_at timestamptz, closes_at timestamptz, urgent boolean, timed boolean) "
    "WHERE p.id = v.id AND p.next_occurrence = v.old AND p.state = 'active'")
ADVANCE_KEYS = ("id", "old", "next", "due_at", "due_on", "opens_at", "closes_at", "urgent", "timed")
SQLITE_ADVANCE = (
    "UPDATE followup_plan SET next_occurrence = ?, next_due_at = ?, next_due_on = ?, next_opens_at = ?, "
    "next_closes_at = ?, next_is_urgent = ?, next_is_timed = ?, version = version + 1 "
    "WHERE id = ? AND next_occurrence = ? AND state = 'active'")


def _advance(session, dialect: str, updates: list[tuple]) -> None:
    """Move each plan's cursor to its next occurrence (rows: id, old, next, due_at, due_on, opens_at,
    closes_at, urgent, timed), unless another generator has moved it already."""
    if dialect == "postgresql":
        # One JSON document per batch: the server parses it far faster than the driver adapts
        # thousands of typed parameters.
        batch = orjson.dumps([dict(zip(ADVANCE_KEYS, row)) for row in updates]).decode()
        session.execute(PG_ADVANCE, {"batch": batch})
        return
    # The columns' own bind processors keep the stored format identical to ORM writes.
    plan, dialect_ = Plan.__table__, session.get_bind().dialect
    process = [plan.c[name].type.dialect_impl(dialect_).bind_processor(dialect_) or (lambda v: v)
               for name in ADVANCE_COLUMNS]
    rows = [tuple(p(v) if v is not None else None for p, v in zip(process, values[2:])) + values[:2]
            for values in updates]
    session.connection().exec_driver_sql(SQLITE_ADVANCE, rows)


def _generate_batch(now: datetime, horizon: datetime, size: int, plan_ids, cache: dict) -> tuple[int, int]:
    session = db.session
    plan, task = Plan.__table__, Task.__table__
    dialect = session.get_bind().dialect.name
    due = due_clause(horizon, plan_ids)
    rows = session.execute(due_plans(horizon, size, plan_ids, lock=dialect == "postgresql")).all()
    if not rows:
        return 0, 0
    ids = [r.id for r in rows]
    # PostgreSQL gets the batch as one array parameter, SQLite as an IN list (primary-key lookups).
    in_batch = plan.c.id == sa.any_(sa.bindparam("batch_ids", ids, type_=ARRAY(sa.Integer))) \
        if dialect == "postgresql" else plan.c.id.in_(ids)
    source = sa.select(
        plan.c.id, plan.c.next_occurrence, plan.c.protocol_id, plan.c.patient_id, plan.c.department_id,
        plan.c.pathway, sa.literal(TaskState.PENDING.value, sa.String), plan.c.next_due_at, plan.c.next_due_on,
        plan.c.next_opens_at, plan.c.next_closes_at, plan.c.next_is_urgent, plan.c.next_is_timed,
        sa.literal(0, sa.Integer), sa.literal(now, plan.c.enrolled_at.type), sa.literal(1, sa.Integer),
    ).where(due, in_batch)
    insert = _insert(dialect)(task).from_select(list(TASK_COPY), source).on_conflict_do_nothing(
        index_elements=["plan_id", "occurrence"])
    inserted = session.execute(insert, execution_options={"preserve_rowcount": True}).rowcount
    tz = hospital_tz()
    missing = {r.protocol_id for r in rows} - cache.keys()
    if missing:
        for protocol in session.scalars(sa.select(Protocol).where(Protocol.id.in_(missing))):
            cache[protocol.id] = slots_of(protocol)
    updates = []
    for row in rows:
        occ = schedule.occurrence(cache[row.protocol_id], row.anchor_at, row.next_occurrence + 1, tz)
        updates.append((row.id, row.next_occurrence, row.next_occurrence + 1) + (
            (occ.due_at, occ.due_on, occ.opens_at, occ.closes_at, occ.is_urgent, occ.is_timed) if occ
            else (None, None, None, None, False, False)))
    _advance(session, dialect, updates)
    # Plans loaded in this session (enrolment, re-anchoring) must not keep the old cursor or version.
    advanced = set(ids)
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Plan) and obj.id in advanced:
            session.expire(obj)
    return len(rows), max(inserted, 0)


def warn_urgent_deadlines(now: datetime) -> tuple[int, int]:
    """Day-surgery 24 h calls still open near or past their deadline, each reported once per level:
    "deadline near" (FOLLOWUP_URGENT_WARN_HOURS before) to the holder, or to the department's nurses
    and head when nobody holds it; "missed" to the head and the quality office. Reads only open urgent
    calls through their partial index; the level is set with a compare-and-set (no version bump, so a
    nurse working the call never gets a conflict from it). Returns (warned, missed)."""
    warn_before = timedelta(hours=current_app.config["FOLLOWUP_URGENT_WARN_HOURS"])
    task = Task.__table__
    rows = db.session.execute(sa.select(task.c.id, task.c.department_id, task.c.assignee_id, task.c.closes_at,
                                        task.c.breach_level, task.c.patient_id)
                              .where(sa.text(URGENT_OPEN), task.c.closes_at <= now + warn_before)
                              .order_by(task.c.closes_at)).all()
    counts = [0, 0]
    for row in rows:
        level = 2 if row.closes_at <= now else 1
        if level <= row.breach_level:
            continue
        moved = db.session.execute(task.update().where(task.c.id == row.id, task.c.breach_level == row.breach_level)
                                   .values(breach_level=level), execution_options={"preserve_rowcount": True})
        if moved.rowcount != 1:
            continue
        link = f"/followup/tasks/{row.id}"
        if level == 1:
            to = [row.assignee_id] if row.assignee_id else (users_with_role(Role.NURSE, row.department_id)
                                                             + users_with_role(Role.DEPT_HEAD, row.department_id))
            notify(to, "followup.urgent_due", {"id": row.id, "time": row.closes_at.isoformat()}, now=now, link=link)
        else:
            to = users_with_role(Role.DEPT_HEAD, row.department_id) + users_with_role(Role.QUALITY)
            notify(to, "followup.urgent_missed", {"id": row.id, "time": row.closes_at.isoformat()}, now=now, link=link)
        audit.record("system:followup.urgent", "followup_task.urgent_warning", "followup_task", row.id, now,
                     level=level, closes_at=row.closes_at.isoformat(), assignee_id=row.assignee_id)
        counts[level - 1] += 1
    return counts[0], counts[1]


def _require_holder(task: Task, actor: Actor) -> None:
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
    _require_holder(task, actor)
    TASK_WORKFLOW.check(task, "log_attempt", actor=actor, data=data)
    snooze = data.get("snooze_until")
    if snooze is not None and snooze <= now:
        raise Unprocessable(errors={"snooze_until": [_("Choose a time in the future.")]})
    attempt = Attempt(task_id=task.id, user_id=actor.user_id, channel=data["channel"], result=data["result"],
                      note=data.get("note"), snooze_until=snooze, attempted_at=now)
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
        _require_holder(task, actor)
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
        due_at = schedule.local_midnight(day, tz)
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
        _require_holder(task, actor)
    reason = (data.get("reason") or "").strip() or None
    # The reason guard asks a person for a reason; the system's code is its reason.
    checked = {**data, "reason": reason or code}
    TASK_WORKFLOW.check(task, "cancel", actor=actor, data=checked, expected_version=expected_version)
    task.cancel_code, task.cancel_reason, task.closed_at, task.snoozed_until = code, reason, now, None
    TASK_WORKFLOW.apply(task, "cancel", actor=actor, now=now, data=checked,
                        audit_detail={"reason": reason, "code": code})
    return task


def mark_unreachable(task: Task, data: dict, *, actor: Actor, now: datetime,
                     expected_version: int | None = None) -> Task:
    """Close a task whose patient could not be reached; N in a row and the plan is lost to follow-up."""
    if not can(actor, "supervise_followup"):
        _require_holder(task, actor)
    TASK_WORKFLOW.check(task, "mark_unreachable", actor=actor, data=data, expected_version=expected_version)
    task.closed_at, task.snoozed_until = now, None
    TASK_WORKFLOW.apply(task, "mark_unreachable", actor=actor, now=now, data=data)
    check_lost(task.plan, now=now)
    return task


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


def complete_task(task: Task, data: dict, *, actor: Actor, now: datetime, expected_version: int | None = None) -> Task:
    """Record the outcome of a task the caller holds; decide whether it is an effective follow-up.

    A finding (complication, unplanned readmission, reoperation, death) prompts the quality office;
    a recorded death stops the patient's plans.
    """
    if task.state == TaskState.PENDING:
        raise Conflict(_("Claim the task before completing it."), state=task.state, allowed_actions=["claim"])
    _require_holder(task, actor)
    TASK_WORKFLOW.check(task, "complete", actor=actor, data=data, expected_version=expected_version)
    errors = {}
    died_on = data.get("date_of_death")
    if data.get("vital_status") == "dead" and died_on is None:
        errors["date_of_death"] = [_("Give the date of death.")]
    if died_on is not None and data.get("vital_status") != "dead":
        errors["vital_status"] = [_("A date of death needs the vital status “dead”.")]
    if died_on is not None and died_on > local(now).date():
        errors["date_of_death"] = [_("This date is in the future.")]
    if errors:
        raise Unprocessable(errors=errors)
    protocol = db.session.get(Protocol, task.protocol_id)
    for item in OUTCOME_ITEMS:
        if item in data:
            setattr(task, item, data[item])
    task.died_on = died_on
    task.respondent, task.channel = data["respondent"], data.get("channel") or "phone"
    task.complication_note, task.outcome_note = data.get("complication_note"), data.get("note")
    task.is_effective = task.respondent in ("patient", "family") and all(
        getattr(task, item) is not None for item in protocol.core_items)
    db.session.add(Attempt(task_id=task.id, user_id=actor.user_id, channel=task.channel, result="reached",
                           note=data.get("note"), attempted_at=now))
    task.attempt_count += 1
    task.closed_at, task.completed_by_id, task.snoozed_until = now, actor.user_id, None
    TASK_WORKFLOW.apply(task, "complete", actor=actor, now=now, data=data,
                        audit_detail={"is_effective": task.is_effective, "findings": findings(task)})
    if findings(task):
        open_prompt(task, now=now)
    if died_on is not None:
        on_death(db.session.get(Patient, task.patient_id), died_on=died_on, now=now)
    return task


def findings(task: Task) -> list[str]:
    """What in an outcome may be an adverse event (DESIGN §4, bridge from follow-up)."""
    found = [item for item in ("complication", "unplanned_readmission", "reoperation") if getattr(task, item)]
    if task.vital_status == "dead":
        found.append("death")
    return found


def open_prompt(task: Task, *, now: datetime) -> EventPrompt:
    """A "possible event" prompt for the quality office (once per task), with a notification."""
    existing = db.session.scalar(sa.select(EventPrompt).where(EventPrompt.task_id == task.id))
    if existing is not None:
        return existing
    prompt = EventPrompt(task_id=task.id, patient_id=task.patient_id, department_id=task.department_id,
                         findings=",".join(findings(task)), created_at=now)
    db.session.add(prompt)
    db.session.flush()
    audit.record(SYSTEM, "followup_prompt.open", "followup_event_prompt", prompt.id, now,
                 after={"task_id": task.id, "findings": prompt.findings})
    notify(users_with_role(Role.QUALITY), "followup.event_prompt", {"findings": findings(task)}, now=now,
           link="/followup/prompts")
    return prompt


def findings_text(found: list[str]) -> str:
    """Findings as labels in the reader's language, e.g. 并发症、再次手术."""
    return label_list("fu_item", found)


def report_data(prompt: EventPrompt) -> dict:
    """A confidential adverse-event report pre-filled from the follow-up record."""
    task = prompt.task
    plan = task.plan
    patient = db.session.get(Patient, task.patient_id)
    found = prompt.findings.split(",")
    surgical = plan.source_type == "operation" or plan.pathway in ("day_surgery", "four_level_surgery")
    discovered = task.closed_at
    occurred = discovered
    if task.died_on is not None:
        occurred = min(schedule.local_midnight(task.died_on, hospital_tz()), discovered)
    # The filing user's own pre-filled text: labels in their language, never codes.
    description = _("Found at follow-up call %(n)d (%(pathway)s, due %(due)s): %(findings)s.",
                    n=task.occurrence, pathway=label("fu_pathway", plan.pathway), due=task.due_on.isoformat(),
                    findings=findings_text(found))
    if task.complication_note:
        description += " " + task.complication_note
    if task.outcome_note:
        description += " " + task.outcome_note
    return {
        "category_code": "surgery" if surgical else "treatment_procedure",
        "subcategory_code": "unplanned_reoperation" if surgical and "reoperation" in found else None,
        "reporter_grade": "I" if "death" in found else "II",
        "harm": "death" if "death" in found else None,
        "care_stage": "discharge_followup",
        "occurred_at": occurred,
        "discovered_at": discovered,
        "location": _("After discharge (found at follow-up)"),
        "department_id": plan.department_id,
        "description": description,
        "patient_mrn": patient.mrn if patient else None,
        "operation_id": plan.source_id if plan.source_type == "operation" else None,
        "is_unplanned_reoperation": "reoperation" in found,
        "wants_feedback": False,
    }


def file_prompt(prompt: EventPrompt, *, actor: Actor, now: datetime, expected_version: int | None = None):
    """Turn a prompt into a confidential adverse-event report filed by this quality-office user."""
    from qcflow.events.services import file_report

    PROMPT_WORKFLOW.check(prompt, "file", actor=actor, expected_version=expected_version)
    data = {k: v for k, v in report_data(prompt).items() if v is not None}
    event, _code = file_report(data, mode="confidential", actor=actor, now=now)
    prompt.event_id, prompt.handled_at, prompt.handled_by_id = event.id, now, actor.user_id
    PROMPT_WORKFLOW.apply(prompt, "file", actor=actor, now=now, audit_detail={"event_id": event.id})
    return event


def dismiss_prompt(prompt: EventPrompt, data: dict, *, actor: Actor, now: datetime,
                   expected_version: int | None = None) -> EventPrompt:
    """Close a prompt without a report (reason required)."""
    PROMPT_WORKFLOW.check(prompt, "dismiss", actor=actor, data=data, expected_version=expected_version)
    prompt.dismiss_reason, prompt.handled_at, prompt.handled_by_id = data["reason"].strip(), now, actor.user_id
    PROMPT_WORKFLOW.apply(prompt, "dismiss", actor=actor, now=now, data=data)
    return prompt



def _claim_step(task: Task, data: dict, *, actor: Actor, now: datetime, expected_version: int | None) -> Task:
    return claim_task(task, actor=actor, now=now)


def _release_step(task: Task, data: dict, *, actor: Actor, now: datetime, expected_version: int | None) -> Task:
    return release_task(task, actor=actor, now=now, expected_version=expected_version)


def _attempt_step(task: Task, data: dict, *, actor: Actor, now: datetime, expected_version: int | None) -> Attempt:
    return log_attempt(task, data, actor=actor, now=now)


#: A task's steps as the pages and the API name them, each taking the caller's data and version.
TASK_STEPS = {"claim": _claim_step, "release": _release_step, "attempts": _attempt_step, "complete": complete_task,
              "reschedule": reschedule_task, "cancel": cancel_task, "unreachable": mark_unreachable,
              "reassign": reassign_task}


def take_task_step(step: str, task: Task, data: dict, *, actor: Actor, now: datetime) -> Task | Attempt:
    """Take one of a task's steps (TASK_STEPS) with the page's form or the API's body, whose `version`,
    if any, is the one the caller saw. Returns the task, or for `attempts` the attempt logged."""
    data = dict(data)
    version = data.pop("version", None)
    return TASK_STEPS[step](task, data, actor=actor, now=now, expected_version=version)
