"""A call's steps as the pages and the API name them, taken through one table."""
from __future__ import annotations

from datetime import datetime

from qcflow.core.actors import Actor
from qcflow.followup.models import Attempt, Task
from qcflow.followup.services.outcomes import complete_task, mark_unreachable
from qcflow.followup.services.tasks import (
    cancel_task,
    claim_task,
    log_attempt,
    reassign_task,
    release_task,
    require_holder,
    reschedule_task,
)


def _claim_step(task: Task, data: dict, *, actor: Actor, now: datetime, expected_version: int | None) -> Task:
    return claim_task(task, actor=actor, now=now)


def _release_step(task: Task, data: dict, *, actor: Actor, now: datetime, expected_version: int | None) -> Task:
    return release_task(task, actor=actor, now=now, expected_version=expected_version)


def _attempt_step(task: Task, data: dict, *, actor: Actor, now: datetime, expected_version: int | None) -> Attempt:
    return log_attempt(task, data, actor=actor, now=now)


def _confirm_online_step(task: Task, data: dict, *, actor: Actor, now: datetime,
                         expected_version: int | None) -> Task:
    """The patient's online answers become the call's outcome (invitations.services.confirm); a call another
    nurse holds is theirs to close, whatever version the caller saw."""
    from qcflow.followup.invitations.services import confirm  # it builds on this package's services

    require_holder(task, actor)
    return confirm(task, actor=actor, now=now, expected_version=expected_version)


#: A task's steps as the pages and the API name them, each taking the caller's data and version.
TASK_STEPS = {"claim": _claim_step, "release": _release_step, "attempts": _attempt_step, "complete": complete_task,
              "reschedule": reschedule_task, "cancel": cancel_task, "unreachable": mark_unreachable,
              "reassign": reassign_task, "confirm_online": _confirm_online_step}


def take_task_step(step: str, task: Task, data: dict, *, actor: Actor, now: datetime) -> Task | Attempt:
    """Take one of a task's steps (TASK_STEPS) with the page's form or the API's body, whose `version`,
    if any, is the one the caller saw. Returns the task, or for `attempts` the attempt logged."""
    data = dict(data)
    version = data.pop("version", None)
    return TASK_STEPS[step](task, data, actor=actor, now=now, expected_version=version)
