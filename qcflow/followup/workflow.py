"""Follow-up task, plan and event-prompt workflows (DESIGN §6)."""
from __future__ import annotations

from enum import StrEnum

from flask_babel import gettext as _

from qcflow.auth.permissions import PERMISSIONS
from qcflow.core.workflow import Transition as T, Workflow


class TaskState(StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    UNREACHABLE = "unreachable"


class PlanState(StrEnum):
    ACTIVE = "active"
    #: Paused by the department (patient abroad, in another hospital's care): nothing is generated.
    PAUSED = "paused"
    #: Death recorded: nothing more is generated, open calls are cancelled.
    STOPPED = "stopped"
    #: Lost to follow-up after N consecutive unreachable calls.
    LOST = "lost"
    #: Ended by the department (patient declined, followed elsewhere).
    WITHDRAWN = "withdrawn"


class PromptState(StrEnum):
    OPEN = "open"
    FILED = "filed"
    #: Confirmed, and a report of it was filed already: linked to it rather than filed twice.
    LINKED = "linked"
    DISMISSED = "dismissed"


def reason_guard(obj, data):
    return None if (data.get("reason") or "").strip() else _("Give a reason for this step.")


def unreachable_guard(task, data):
    return None if task.attempt_count else _("Log at least one unsuccessful attempt first.")


def assignee_guard(task, data):
    return None if data.get("assignee_id") else _("Choose the nurse to give the task to.")


def dismiss_guard(prompt, data):
    if data.get("reason_code") == "other" and not (data.get("reason") or "").strip():
        return _("Say why (the reason “other” needs your words).")
    return None


def prompt_relations(prompt, actor):
    """The heads of a possible event's department (and of its trigger's reviewing department) review it with
    the quality office."""
    departments = {prompt.department_id, getattr(prompt, "reviewer_department_id", None)} - {None}
    if "dept_head" in actor.roles and actor.department_id in departments:
        return {"department_reviewer"}
    return set()


def task_relations(task, actor):
    if actor.user_id is not None and actor.user_id == task.assignee_id:
        return {"assignee"}
    return set()


S = TaskState
#: Who works the queue of their department (DESIGN §3).
QUEUE = PERMISSIONS["followup_queue"]
SUPERVISORS = PERMISSIONS["supervise_followup"]
QUALITY = PERMISSIONS["handle_cases"]

TASK_WORKFLOW = Workflow(
    "followup_task",
    TaskState,
    [
        #  action              from                        to               roles                                      guard
        T("claim",             {S.PENDING},                S.IN_PROGRESS,   QUEUE),
        T("release",           {S.IN_PROGRESS},            S.PENDING,       {"assignee"} | SUPERVISORS),
        T("reassign",          {S.PENDING, S.IN_PROGRESS}, S.IN_PROGRESS,   SUPERVISORS,                               assignee_guard),
        T("log_attempt",       {S.IN_PROGRESS},            S.IN_PROGRESS,   {"assignee"}),
        T("reschedule",        {S.PENDING},                S.PENDING,       SUPERVISORS,                               reason_guard),
        T("reschedule",        {S.IN_PROGRESS},            S.IN_PROGRESS,   {"assignee"} | SUPERVISORS,                reason_guard),
        T("complete",          {S.IN_PROGRESS},            S.COMPLETED,     {"assignee"}),
        T("mark_unreachable",  {S.IN_PROGRESS},            S.UNREACHABLE,   {"assignee"} | SUPERVISORS,                unreachable_guard),
        T("cancel",            {S.PENDING, S.IN_PROGRESS}, S.CANCELLED,     {"assignee", "system"} | SUPERVISORS,      reason_guard),
    ],
    relations=task_relations,
    initial=S.PENDING,
    table="followup_task",
    # only a completed call has an outcome to show (an unreachable or cancelled one has a reason)
    phases={"has_outcome": {S.COMPLETED}},
)

P = PlanState

PLAN_WORKFLOW = Workflow(
    "followup_plan",
    PlanState,
    [
        T("pause",     {P.ACTIVE},           P.PAUSED,    SUPERVISORS,          reason_guard),
        T("resume",    {P.PAUSED},           P.ACTIVE,    SUPERVISORS),
        T("stop",      {P.ACTIVE, P.PAUSED}, P.STOPPED,   {"system"} | QUALITY),
        T("mark_lost", {P.ACTIVE},           P.LOST,      {"system"}),
        T("withdraw",  {P.ACTIVE, P.PAUSED}, P.WITHDRAWN, SUPERVISORS,          reason_guard),
    ],
    initial=P.ACTIVE,
    table="followup_plan",
    # only an active plan generates its next call
    phases={"generating": {P.ACTIVE}},
)

R = PromptState

#: Who reviews a possible event: the quality office, and the heads of its department.
REVIEWERS = QUALITY | {"department_reviewer"}

PROMPT_WORKFLOW = Workflow(
    "followup_prompt",
    PromptState,
    [
        T("file",    {R.OPEN}, R.FILED,     REVIEWERS),
        # a firing confirmed whose harm was reported already: linked to that report, not filed twice
        T("link",    {R.OPEN}, R.LINKED,    REVIEWERS),
        T("dismiss", {R.OPEN}, R.DISMISSED, REVIEWERS, dismiss_guard),
    ],
    relations=prompt_relations,
    initial=R.OPEN,
    table="followup_event_prompt",
)

#: States in which a task is still to be worked (queue, counts, death cancels these).
OPEN_STATES = (S.PENDING, S.IN_PROGRESS)
