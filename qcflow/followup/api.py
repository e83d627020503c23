"""Follow-up over the JSON API (DESIGN §10): the queue, task steps, enrolment, protocols, prompts."""
from __future__ import annotations

from qcflow.auth.permissions import allowed, current_actor
from qcflow.core.api import Blueprint, created_links
from qcflow.core.errors import NotFound
from qcflow.core.schemas import Dumped
from qcflow.core.periods import month_start
from qcflow.core.time import now, today
from qcflow.followup import queries, services
from qcflow.followup.invitations import queries as invitations
from qcflow.followup.schemas import (
    AttemptIn,
    AttemptOut,
    CallListArgs,
    CallPage,
    CompleteIn,
    EnrolIn,
    NewProtocolIn,
    OnlineStatsArgs,
    OnlineStatsOut,
    PlanListArgs,
    PlanOut,
    PlanPage,
    PlanStepIn,
    PromptDismissIn,
    PromptFileIn,
    PromptListArgs,
    PromptOut,
    PromptPage,
    ProtocolIn,
    ProtocolOut,
    QueueArgs,
    QueuePage,
    ReasonIn,
    ReassignIn,
    RescheduleIn,
    TaskOut,
    VersionIn,
)

blp = Blueprint("followup_api", __name__, url_prefix="/api/v1/followup", description="Follow-up (随访)")


def _task(task_id):
    return queries.load_task(task_id, current_actor())


def _step(step: str, task_id: int, data: dict):
    """Take a task step (services.TASK_STEPS) and answer with the task as the caller now sees it."""
    actor, at = current_actor(), now()
    task = services.take_task_step(step, _task(task_id), data, actor=actor, now=at)
    return queries.present(task, actor, at)


@blp.get("/queue")
@allowed("followup_queue")
@blp.arguments(QueueArgs, location="query")
@blp.response(200, QueuePage)
@blp.alt_response(404, description="Another department's queue")
def get_queue(args):
    """My department's tasks open today (or on `date`) or overdue, most urgent first: alarming answers a patient
    gave online, day-surgery 24 h calls, then overdue age, then due time. Keyset-paginated with `next_cursor`."""
    args.pop("lang", None)
    actor, at = current_actor(), now()
    items, patients, next_cursor = queries.queue_page(actor, now=at, **args)
    sent = invitations.of_tasks(t.id for t in items)
    return Dumped(items=[queries.present(t, actor, at, patients[t.patient_id], sent.get(t.id)) for t in items],
                  next_cursor=next_cursor, counts=queries.counts(actor, now=at, department=args.get("department")))


@blp.get("/calls")
@allowed("followup_queue")
@blp.arguments(CallListArgs, location="query")
@blp.response(200, CallPage)
@blp.alt_response(404, description="Another department")
def list_calls(args):
    """My department's calls in every state (the quality office: all, or one department), newest first;
    by state or patient (HIS id or record number). Keyset-paginated with `next_cursor`."""
    args.pop("lang", None)
    actor, at = current_actor(), now()
    items, next_cursor = queries.calls(actor, **args)
    patients, sent = queries.patients_of(items), invitations.of_tasks(t.id for t in items)
    return {"items": [queries.present(t, actor, at, patients[t.patient_id], sent.get(t.id)) for t in items],
            "next_cursor": next_cursor}


@blp.get("/online-stats")
@allowed("followup_queue")
@blp.arguments(OnlineStatsArgs, location="query")
@blp.response(200, OnlineStatsOut)
@blp.alt_response(404, description="Another department")
def online_stats(args):
    """Follow-up answered online in a month (default: this month): calls closed and completed online, invitations
    sent and answered, alarming answers, calls saved and the nurse time saved; in total, per pathway and per
    department (a nurse: their department's; the quality office: all, or one department)."""
    actor = current_actor()
    return invitations.statistics(actor, args.get("month") or month_start(today(now())),
                                  department=args.get("department"))


@blp.get("/plans")
@allowed("followup_queue")
@blp.arguments(PlanListArgs, location="query")
@blp.response(200, PlanPage)
@blp.alt_response(404, description="Another department")
def list_plans(args):
    """My department's follow-up plans (the quality office: all, or one department), newest first; by state
    or patient (HIS id or record number). Keyset-paginated with `next_cursor`."""
    args.pop("lang", None)
    items, next_cursor = queries.plans(current_actor(), **args)
    return {"items": items, "next_cursor": next_cursor}


@blp.get("/tasks/<int:task_id>")
@allowed("followup_queue")
@blp.response(200, TaskOut)
@blp.alt_response(404, description="No such task in your department")
def get_task(task_id):
    """Show a task (the patient's phone is unmasked only for the nurse holding it)."""
    actor = current_actor()
    return queries.present(_task(task_id), actor, now())


@blp.post("/tasks/<int:task_id>/attempts")
@allowed("followup_queue")
@blp.arguments(AttemptIn)
@blp.response(201, AttemptOut)
@blp.alt_response(409, description="Not claimed by you, or the task is closed (e.g. cancelled)")
def attempts(data, task_id):
    """Log a contact attempt (channel, result, note); `snooze_until` hides the task until then."""
    return services.take_task_step("attempts", _task(task_id), data, actor=current_actor(), now=now())


#: The steps that answer with the task: step → (body schema, capability, summary, {status: when}).
#: Each is one endpoint, POST /tasks/<id>/<step>, named after the step.
TASK_STEP_ENDPOINTS = {
    "claim": (None, "followup_queue", "Claim a waiting task.",
              {409: "Already claimed (two nurses never hold the same task) or not waiting"}),
    "release": (VersionIn, "followup_queue", "Hand a claimed task back to the queue.", {}),
    "complete": (CompleteIn, "followup_queue",
                 "Record the outcome; the service decides whether it is an effective follow-up (有效随访).",
                 {409: "Not claimed by you", 422: "Outcome fields missing or inconsistent"}),
    "reschedule": (RescheduleIn, "followup_queue", "Move the planned call within the protocol's window, with a reason.",
                   {422: "Outside the protocol's window: the allowed range is in the answer"}),
    "cancel": (ReasonIn, "followup_queue", "Cancel a task, with a reason.", {}),
    "unreachable": (VersionIn, "followup_queue",
                    "Close a task whose patient could not be reached (N in a row: lost to follow-up).", {}),
    "reassign": (ReassignIn, "supervise_followup", "Give a task to a nurse of its department.", {}),
    "confirm_online": (VersionIn, "followup_queue",
                       "Confirm the patient's online answers in one step: the call is claimed if nobody holds it and "
                       "completed with the answers as its outcome (channel online), judged on time when the patient "
                       "answered.",
                       {409: "No answers to confirm, the call is held by another nurse, alarming answers and nobody "
                            "has reached the patient yet, or a stale version"}),
}


def _task_step_endpoint(step: str, schema, capability: str, summary: str, refusals: dict) -> None:
    """Register the endpoint of one task step (services.TASK_STEPS)."""
    if schema is None:
        def endpoint(task_id):
            return _step(step, task_id, {})
    else:
        def endpoint(data, task_id):
            return _step(step, task_id, data)

    endpoint.__name__ = endpoint.__qualname__ = step
    endpoint.__doc__ = summary
    decorators = [blp.alt_response(status, description=when) for status, when in reversed(refusals.items())]
    decorators.append(blp.response(200, TaskOut))
    if schema is not None:
        decorators.append(blp.arguments(schema))
    decorators += [allowed(capability), blp.post(f"/tasks/<int:task_id>/{step.replace('_', '-')}")]
    for decorate in decorators:
        endpoint = decorate(endpoint)


for step, declared in TASK_STEP_ENDPOINTS.items():
    _task_step_endpoint(step, *declared)


@blp.post("/plans")
@allowed("followup_queue")
@blp.arguments(EnrolIn)
@blp.response(201, PlanOut)
@blp.doc(**created_links(GetPlan=("get", "/api/v1/followup/plans/{plan_id}", {"plan_id": "$response.body#/id"})))
@blp.alt_response(404, description="Another department (the quality office may enrol into any)")
@blp.alt_response(422, description="Unknown pathway or patient (for nurses and clinicians: a patient without a clinical record in the department), or the patient has died")
def enrol(data):
    """Enrol a patient on a pathway by hand (idempotent per patient, pathway and source)."""
    actor, at = current_actor(), now()
    return services.enrol_by_hand(data, actor=actor, now=at)


@blp.get("/plans/<int:plan_id>")
@allowed("followup_queue")
@blp.response(200, PlanOut)
def get_plan(plan_id):
    """Show a follow-up plan."""
    return queries.load_plan(plan_id, current_actor())


@blp.post("/plans/<int:plan_id>/transitions")
@allowed("supervise_followup")
@blp.arguments(PlanStepIn)
@blp.response(200, PlanOut)
@blp.alt_response(409, description="Not possible in the plan's state, or a stale version")
@blp.alt_response(422, description="A reason is required to pause or withdraw")
def plan_transition(data, plan_id):
    """Pause a plan (its open calls are cancelled, nothing is generated), resume it (occurrences whose
    window closed meanwhile are skipped) or withdraw it for good."""
    actor, at = current_actor(), now()
    action, version = data.pop("action"), data.pop("version")
    return services.PLAN_STEPS[action](queries.load_plan(plan_id, actor), data, actor=actor, now=at,
                                       expected_version=version)


@blp.get("/protocols")
@allowed("protocols")
@blp.response(200, ProtocolOut(many=True))
def list_protocols():
    """Every protocol version, current ones flagged."""
    return queries.protocols()


@blp.post("/protocols")
@allowed("administer")
@blp.arguments(NewProtocolIn)
@blp.response(201, ProtocolOut)
@blp.alt_response(409, description="A newer version exists than `based_on_version_no`")
@blp.alt_response(422, description="Overlapping or empty phases, unknown items, or `based_on_version_no` missing")
def create_protocol(data):
    """Create a pathway's first protocol version, or the next version of an existing pathway."""
    code = data.pop("code")
    return services.create_protocol_version(code, data, actor=current_actor(), now=now())


@blp.post("/protocols/<code>/versions")
@allowed("administer")
@blp.arguments(ProtocolIn)
@blp.response(201, ProtocolOut)
@blp.alt_response(404, description="No such pathway")
@blp.alt_response(409, description="A newer version exists than `based_on_version_no`")
@blp.alt_response(422, description="Overlapping or empty phases, unknown items, or `based_on_version_no` missing")
def create_version(data, code):
    """Add a version to an existing pathway; active plans move to it (untouched pending tasks retimed)."""
    if services.current_protocol(code) is None:
        raise NotFound()
    return services.create_protocol_version(code, data, actor=current_actor(), now=now())


@blp.get("/prompts")
@allowed("review_possible_events")
@blp.arguments(PromptListArgs, location="query")
@blp.response(200, PromptPage)
@blp.alt_response(404, description="Another department")
def list_prompts(args):
    """Possible adverse events for review, newest first: follow-up findings and trigger firings (a head:
    their department's; the quality office: all), by state, source, trigger, department or patient.
    Keyset-paginated with `next_cursor`."""
    args.pop("lang", None)
    items, next_cursor = queries.prompts(current_actor(), **args)
    return {"items": items, "next_cursor": next_cursor}


@blp.post("/prompts/<int:prompt_id>/file")
@allowed("review_possible_events")
@blp.arguments(PromptFileIn)
@blp.response(201, PromptOut)
@blp.alt_response(404, description="Unknown, or another department's")
@blp.alt_response(409, description="Reviewed already, or a newer version exists")
def file_prompt(data, prompt_id):
    """Confirm a possible event: a pre-filled confidential report filed in your name (state filed); a firing
    whose harm was reported already is linked to that report instead (state linked)."""
    prompt = queries.load_prompt(prompt_id, current_actor())
    services.file_prompt(prompt, actor=current_actor(), now=now(), expected_version=data["version"],
                         note=data.get("note") or "", event_id=data.get("event_id"))
    return prompt


@blp.post("/prompts/<int:prompt_id>/dismiss")
@allowed("review_possible_events")
@blp.arguments(PromptDismissIn)
@blp.response(200, PromptOut)
@blp.alt_response(404, description="Unknown, or another department's")
@blp.alt_response(409, description="Reviewed already, or a newer version exists")
@blp.alt_response(422, description="reason_code other without a reason")
def dismiss_prompt(data, prompt_id):
    """Close a possible event without a report, with a reason from the list (and words for "other")."""
    version = data.pop("version")
    prompt = queries.load_prompt(prompt_id, current_actor())
    services.dismiss_prompt(prompt, data, actor=current_actor(), now=now(), expected_version=version)
    return prompt
