"""Closing a follow-up call with its result: completed (findings prompt the quality office, a death
stops the plans) or unreachable (N in a row and the plan is lost)."""
from __future__ import annotations

from datetime import datetime

from flask_babel import gettext as _

from qcflow.auth.permissions import can
from qcflow.clinical import services as clinical
from qcflow.clinical.models import Patient
from qcflow.core import audit
from qcflow.core.actors import Actor
from qcflow.core.errors import Conflict, Unprocessable
from qcflow.core.time import local, when_it_happened
from qcflow.extensions import db
from qcflow.followup.models import OUTCOME_ITEMS, Attempt, Protocol, Task
from qcflow.followup.services.plans import check_lost
from qcflow.followup.services.prompts import findings, open_prompt
from qcflow.followup.services.tasks import require_holder
from qcflow.followup.workflow import TASK_WORKFLOW, TaskState


def mark_unreachable(task: Task, data: dict, *, actor: Actor, now: datetime,
                     expected_version: int | None = None) -> Task:
    """Close a task whose patient could not be reached; N in a row and the plan is lost to follow-up."""
    if not can(actor, "supervise_followup"):
        require_holder(task, actor)
    TASK_WORKFLOW.check(task, "mark_unreachable", actor=actor, data=data, expected_version=expected_version)
    task.closed_at = task.closed_recorded_at = now
    task.snoozed_until = None
    TASK_WORKFLOW.apply(task, "mark_unreachable", actor=actor, now=now, data=data)
    check_lost(task.plan, now=now)
    return task


def complete_task(task: Task, data: dict, *, actor: Actor, now: datetime, expected_version: int | None = None,
                  answered_at: datetime | None = None) -> Task:
    """Record the outcome of a task the caller holds; decide whether it is an effective follow-up.

    A finding (complication, unplanned readmission, reoperation, death) prompts the quality office;
    a death the family reports is the patient's, as one the HIS reports (clinical.record_death).
    `completed_at` (in `data`): when a call logged late was made; the call is closed and judged on time
    at it, and `now` is when it was recorded. `answered_at`: when the patient answered online (recorded by
    qcflow, not claimed by a person, so no back-dating limit applies): the call is judged at it.
    """
    if task.state == TaskState.PENDING:
        raise Conflict(_("Claim the task before completing it."), state=task.state, allowed_actions=["claim"])
    require_holder(task, actor)
    TASK_WORKFLOW.check(task, "complete", actor=actor, data=data, expected_version=expected_version)
    completed_at = answered_at or when_it_happened(
        "completed_at", data.get("completed_at"), now=now, not_before=task.plan.anchor_at,
        too_early=_("A call cannot be made before the operation, discharge or diagnosis it follows up."),
        unlimited=can(actor, "backdate_freely"))
    errors = {}
    died_on = data.get("date_of_death")
    if data.get("vital_status") == "dead" and died_on is None:
        errors["date_of_death"] = [_("Give the date of death.")]
    if died_on is not None and data.get("vital_status") != "dead":
        errors["vital_status"] = [_("A date of death needs the vital status “dead”.")]
    if died_on is not None and died_on > local(now).date():
        errors["date_of_death"] = [_("This date is in the future.")]
    elif died_on is not None and died_on > local(completed_at).date():
        errors["date_of_death"] = [_("This date is after the call (%(day)s) that reported the death.",
                                     day=local(completed_at).date().isoformat())]
    elif died_on is not None and died_on < local(task.plan.anchor_at).date():
        errors["date_of_death"] = [_("This date is before the operation, discharge or diagnosis the follow-up "
                                     "starts from (%(day)s).", day=local(task.plan.anchor_at).date().isoformat())]
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
                           note=data.get("note"), attempted_at=completed_at, recorded_at=now))
    task.attempt_count += 1
    task.closed_at, task.closed_recorded_at = completed_at, now
    task.completed_by_id, task.snoozed_until = actor.user_id, None
    TASK_WORKFLOW.apply(task, "complete", actor=actor, now=now, data=data,
                        audit_detail={"is_effective": task.is_effective, "findings": findings(task),
                                      **audit.happened_detail(completed_at, now)})
    if findings(task):
        open_prompt(task, now=now)
    if died_on is not None:
        clinical.record_death(db.session.get(Patient, task.patient_id), died_on,
                              source=clinical.DEATH_FROM_FOLLOWUP, actor=actor, now=now)
    return task
