"""Follow-up pages: the daily queue, the task page, manual enrolment, prompts, the record sheet, protocols."""
from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from marshmallow import ValidationError

from qcflow.auth.models import Department
from qcflow.auth.permissions import allowed, can, current_actor, sees_all_departments
from qcflow.auth.queries import active_departments, department_choices
from qcflow.auth.ratelimit import rate_limited
from qcflow.clinical.models import Patient
from qcflow.core.errors import DomainError, Forbidden, NotFound, page_refusal, translate_errors
from qcflow.core.masking import mask_phone
from qcflow.core.time import local, now
from qcflow.core.forms import form_data, load_args, load_form
from qcflow.extensions import db
from qcflow.followup import queries, services
from qcflow.followup.invitations import queries as invitations
from qcflow.extraction import queries as extraction
from qcflow.followup.models import ANCHORS, CHANNELS, DISMISS_CODES, OUTCOME_ITEMS, RESPONDENTS, RESULTS, VITAL_STATUS, Protocol
from qcflow.followup.schedule import UNITS
from qcflow.followup.schemas import (
    AttemptIn,
    CallListArgs,
    CompleteIn,
    EnrolIn,
    OnlineStatsArgs,
    NewProtocolIn,
    PlanFormIn,
    PlanListArgs,
    PromptDismissIn,
    PromptFileIn,
    PromptListArgs,
    QueueArgs,
    ReasonIn,
    ReassignIn,
    RescheduleIn,
    VersionIn,
)
from qcflow.followup.timeliness import of as timeliness_of, timeliness_label
from qcflow.followup.workflow import PLAN_WORKFLOW, PROMPT_WORKFLOW, TASK_WORKFLOW, PlanState, PromptState, TaskState
from qcflow.reports import pdf

bp = Blueprint("followup", __name__)

BOOL_ITEMS = ("complication", "unplanned_readmission", "reoperation", "recurrence_metastasis",
              "health_education_given", "revisit_booked")


@bp.app_context_processor
def followup_helpers():
    """Template helpers: the home page's queue counts and a task's window as text."""
    def home_counts():
        from flask_login import current_user

        if not current_user.is_authenticated or not can(current_user, "followup_queue"):
            return None
        return queries.counts(current_actor(), now=now())

    def window(task) -> str:
        low, high = services.allowed_range(task)
        if task.is_timed:
            return f"{local(low):%Y-%m-%d %H:%M} – {local(high):%Y-%m-%d %H:%M}"
        return f"{low} – {high}"

    return {"followup_counts": home_counts, "fwindow": window, "task_is_open": is_open, "timeliness_label": timeliness_label}


@bp.get("/followup/queue")
@allowed("followup_queue")
def queue():
    """Today's follow-up queue of my department: open or overdue, most urgent first."""
    actor, at = current_actor(), now()
    try:
        args = QueueArgs().load(form_data(request.args, QueueArgs()))
    except ValidationError as error:
        return render_template("followup/queue.html", items=[], counts=None, args=request.args, now=at,
                               errors=translate_errors(error.messages), patients={}, names={},
                               departments=[], pathways=[]), 422
    args.pop("lang", None)
    items, patients, next_cursor = queries.queue(actor, now=at, **args)
    departments = department_choices(actor, by_kind=False)
    return render_template("followup/queue.html", items=items, next_cursor=next_cursor, args=request.args, now=at,
                           invitations=invitations.of_tasks(t.id for t in items),
                           counts=queries.counts(actor, now=at, department=args.get("department")),
                           patients=patients, names=queries.user_names(t.assignee_id for t in items),
                           timeliness=lambda t: timeliness_of(t, at), errors={}, departments=departments,
                           pathways=sorted({p.code for p in queries.protocols(current_only=True)}))


@bp.get("/followup/calls")
@allowed("followup_queue")
def calls():
    """My department's calls in every state, newest first, by state or patient (HIS id or record number)."""
    actor = current_actor()
    args, errors = load_args(CallListArgs())
    items, next_cursor = queries.calls(actor, **args) if not errors else ([], None)
    return render_template("followup/calls.html", items=items, next_cursor=next_cursor, args=request.args,
                           errors=errors, states=list(TaskState), patients=queries.patients_of(items),
                           names=queries.user_names(t.assignee_id for t in items),
                           invitations=invitations.of_tasks(t.id for t in items),
                           departments=department_choices(actor, by_kind=False)), 422 if errors else 200


@bp.get("/followup/tasks/<int:task_id>")
@allowed("followup_queue")
def task(task_id):
    """One task: patient (phone unmasked only for the nurse holding it), window, attempts, the outcome form."""
    actor, at = current_actor(), now()
    item = queries.load_task(task_id, actor)
    patient = db.session.get(Patient, item.patient_id)
    protocol = db.session.get(Protocol, item.protocol_id)
    attempts = queries.attempts(item)
    prompt = queries.prompt_of(item)
    invitation = invitations.invitation_of(item)
    pending = invitations.is_pending(invitation, item)
    return render_template(
        "followup/task.html", task=item, patient=patient, phone=queries.phone_for(item, patient, actor),
        protocol=protocol, plan=item.plan, attempts=attempts, timeliness=timeliness_of(item, at),
        is_open=is_open(item), transitions={t.action for t in TASK_WORKFLOW.available(item, actor)},
        holder=item.assignee_id == actor.user_id, source=queries.sources([item.plan])[item.plan_id],
        names=queries.user_names([item.assignee_id, item.completed_by_id, *(a.user_id for a in attempts)]),
        plan_tasks=queries.plan_tasks(item.plan), window=services.allowed_range(item), prompt=prompt,
        prompt_findings=services.findings_text(prompt.findings.split(",")) if prompt else None,
        assignable=queries.assignable_users(item.department_id) if can(actor, "supervise_followup") else [],
        channels=CHANNELS, results=RESULTS, respondents=RESPONDENTS, vital_statuses=VITAL_STATUS,
        bool_items=BOOL_ITEMS, now=at, invitation=invitation, messages=invitations.messages_of(invitation),
        pending=invitations.pending_outcome(invitation, protocol) if pending else None,
        alarms=services.findings_text(invitation.alarm_list) if invitation and invitation.alarm_list else None,
    )


def is_open(task) -> bool:
    """The task is still to be worked: its workflow has steps left from its state."""
    return bool(TASK_WORKFLOW.allowed_actions(task.state))


#: The form each task step reads (a claim reads none).
STEP_FORMS = {"claim": None, "release": VersionIn, "attempts": AttemptIn, "complete": CompleteIn,
              "reschedule": RescheduleIn, "cancel": ReasonIn, "unreachable": VersionIn, "reassign": ReassignIn,
              "confirm_online": VersionIn}


@bp.post("/followup/tasks/<int:task_id>/<step>")
@allowed("followup_queue")
def task_step(task_id, step):
    """Claim, release, log an attempt, complete, reschedule, cancel, mark unreachable, reassign, or confirm the
    patient's online answers."""
    if step not in STEP_FORMS:
        raise NotFound()
    actor = current_actor()
    item = queries.load_task(task_id, actor)
    if step == "reassign" and not can(actor, "supervise_followup"):
        raise Forbidden()
    form = STEP_FORMS[step]
    services.take_task_step(step, item, load_form(form()) if form else {}, actor=actor, now=now())
    if step == "claim":
        flash(_("You hold this task now."))
    elif step == "confirm_online":
        flash(_("The patient's answers are confirmed: the call is completed (online)."))
    return redirect(url_for("followup.task", task_id=task_id))


@bp.get("/followup/online")
@allowed("followup_queue")
def online():
    """Follow-up answered online in a month: calls answered online, invitations answered, time saved; per
    pathway and department."""
    actor = current_actor()
    args, errors = load_args(OnlineStatsArgs())
    month = args.get("month") or local(now()).date().replace(day=1)
    stats = invitations.statistics(actor, month, department=args.get("department")) if not errors else None
    return render_template("followup/online.html", stats=stats, month=month, args=request.args, errors=errors,
                           departments=department_choices(actor, by_kind=False)), 422 if errors else 200


@bp.get("/followup/plans")
@allowed("followup_queue")
def plans():
    """My department's follow-up plans (e.g. the paused ones, to resume them), by state or patient."""
    args, errors = load_args(PlanListArgs())
    items, next_cursor = queries.plans(current_actor(), **args) if not errors else ([], None)
    return render_template("followup/plans.html", items=items, next_cursor=next_cursor, args=request.args,
                           errors=errors, states=list(PlanState),
                           patients=queries.patients_of(items)), 422 if errors else 200


@bp.get("/followup/plans/<int:plan_id>")
@allowed("followup_queue")
def plan(plan_id):
    """One plan: its calls and, for the department head or quality office, pause / resume / withdraw."""
    actor = current_actor()
    item = queries.load_plan(plan_id, actor)
    return render_template("followup/plan.html", plan=item, patient=db.session.get(Patient, item.patient_id),
                           tasks=queries.plan_tasks(item), source=queries.sources([item])[item.id],
                           transitions=[t.action for t in PLAN_WORKFLOW.available(item, actor)
                                        if t.action in services.PLAN_STEPS])


@bp.post("/followup/plans/<int:plan_id>/<action>")
@allowed("supervise_followup")
def plan_step(plan_id, action):
    if action not in services.PLAN_STEPS:
        raise NotFound()
    actor = current_actor()
    item = queries.load_plan(plan_id, actor)  # another department's plan is 404 whatever the form says
    data = load_form(PlanFormIn())
    services.PLAN_STEPS[action](item, data, actor=actor, now=now(), expected_version=data.pop("version"))
    return redirect(url_for("followup.plan", plan_id=plan_id))


@bp.route("/followup/enrol", methods=["GET", "POST"])
@allowed("followup_queue")
def enrol():
    """Enrol a patient on a follow-up pathway by hand."""
    actor, errors, status, plan = current_actor(), {}, 200, None
    values = request.form if request.method == "POST" else {}
    if request.method == "POST":
        try:
            data = form_data(request.form, EnrolIn(), ("pathway", "department_id", "anchor_at", "source_type"))
            mrn = (request.form.get("mrn") or "").strip()
            patient = db.session.scalar(sa.select(Patient).where(Patient.mrn == mrn)) if mrn else None
            if patient is None:
                raise ValidationError({"mrn": [_("No patient with this record number.")]})
            data["patient_id"] = patient.id
            plan = services.enrol_by_hand(EnrolIn().load(data), actor=actor, now=now())
        except (ValidationError, DomainError) as error:
            errors, status = page_refusal(error)
            if "patient_id" in errors:  # another department's patient reads as an unknown record number
                errors = {"mrn": [_("No patient with this record number.")]}
    departments = [d for d in active_departments(by_kind=False)
                   if sees_all_departments(actor) or d.id == actor.department_id]
    return render_template("followup/enrol.html", protocols=queries.protocols(current_only=True),
                           departments=departments, errors=errors, values=values, plan=plan), status


@bp.get("/followup/prompts")
@allowed("review_possible_events")
def prompts():
    """Possible adverse events for review (提醒上报, 自动提取): follow-up findings and trigger firings."""
    actor = current_actor()
    args, errors = load_args(PromptListArgs())
    if "state" not in request.args:  # the inbox opens on what waits for review; state= (empty) shows all
        args["state"] = PromptState.OPEN.value
    items, next_cursor = queries.prompts(actor, **args) if not errors else ([], None)
    patients = {p.id: p for p in db.session.scalars(sa.select(Patient).where(
        Patient.id.in_({i.patient_id for i in items})))} if items else {}
    actions = {p.id: {t.action for t in PROMPT_WORKFLOW.available(p, actor)} for p in items}
    # the reports a firing waiting for review may be linked to (already reported?)
    candidates = {p.id: services.reports_about(p, actor) for p in items if p.trigger_id and "file" in actions[p.id]}
    return render_template("followup/prompts.html", items=items, patients=patients, actions=actions,
                           candidates=candidates, online=invitations.of_tasks(p.task_id for p in items if p.task_id), where={d.id: d for d in db.session.scalars(sa.select(Department).where(
                               Department.id.in_({p.department_id for p in items})))} if items else {},
                           args=request.args, state=args.get("state") or "", states=list(PromptState),
                           next_cursor=next_cursor, errors=errors, triggers=extraction.triggers(),
                           departments=department_choices(actor, by_kind=False), dismiss_codes=DISMISS_CODES,
                           facts=dict(zip([p.id for p in items], extraction.facts_texts([p.facts or [] for p in items]))),
                           names=queries.user_names(p.handled_by_id for p in items)), 422 if errors else 200


@bp.post("/followup/prompts/<int:prompt_id>/file")
@allowed("review_possible_events")
def file_prompt(prompt_id):
    """One click: a pre-filled confidential report from the possible event (or the link to the one filed)."""
    actor = current_actor()
    prompt = queries.load_prompt(prompt_id, actor)
    data = load_form(PromptFileIn())
    event = services.file_prompt(prompt, actor=actor, now=now(), expected_version=data["version"],
                                 note=data.get("note") or "", event_id=data.get("event_id"))
    flash(_("A report of this harm had been filed already: the possible event is linked to it.")
          if prompt.state == PromptState.LINKED else _("Confidential report %(ref)s filed in your name.",
                                                          ref=event.reference))
    return redirect(url_for("events.detail", event_id=event.id))


@bp.post("/followup/prompts/<int:prompt_id>/dismiss")
@allowed("review_possible_events")
def dismiss_prompt(prompt_id):
    """Close a possible event without a report."""
    actor = current_actor()
    prompt = queries.load_prompt(prompt_id, actor)
    data = load_form(PromptDismissIn())
    services.dismiss_prompt(prompt, data, actor=actor, now=now(), expected_version=data.pop("version"))
    flash(_("Dismissed: no report needed."))
    return redirect(url_for("followup.prompts", **{k: v for k, v in request.args.items() if k != "lang"}))


@bp.get("/followup/patients/<int:patient_id>/sheet.pdf")
@allowed("followup_queue")
@rate_limited("pdf")
def sheet(patient_id):
    """The patient's follow-up record sheet (随访记录单) as PDF, for the medical record; phone masked."""
    actor, at = current_actor(), now()
    patient, plans, tasks = queries.patient_record(patient_id, actor)
    names = queries.user_names(t.completed_by_id for items in tasks.values() for t in items)
    data = pdf.render_template_pdf("followup/sheet.html", patient=patient, plans=plans, tasks=tasks,
                                   sources=queries.sources(plans),
                                   timeliness=lambda t: timeliness_of(t, at), printed_at=at,
                                   phone=mask_phone(patient.phone), names=names)
    return pdf.pdf_response(data, f"followup-{patient.mrn}.pdf")


@bp.get("/admin/followup/protocols")
@allowed("administer")
def protocols():
    """Follow-up protocols: current versions and their history."""
    return render_template("followup/protocols.html", protocols=queries.protocols())


@bp.get("/admin/followup/protocols/<int:protocol_id>")
@allowed("administer")
def protocol(protocol_id):
    """One protocol version and its occurrences."""
    item = queries.load_protocol(protocol_id)
    return render_template("followup/protocol.html", protocol=item, slots=services.slots_of(item))


PHASE_ROWS = 6


def protocol_form() -> dict:
    """The protocol form's fields in the API's shape (blank phase rows are left out)."""
    form = request.form
    data = {k: form.get(k, "").strip() for k in ("code", "name", "name_en", "anchor", "change_note",
                                                  "based_on_version_no")}
    data = {k: v for k, v in data.items() if v}
    data["outcome_items"] = form.getlist("outcome_items")
    data["core_items"] = form.getlist("core_items")
    phases = []
    for i in range(1, PHASE_ROWS + 1):
        row = {k: form.get(f"p{i}_{k}", "").strip() for k in ("unit", "start", "every", "until", "early", "late")}
        if not row["start"]:
            continue
        hours = 1 if row["unit"] == "hour" else 24
        phase = {"unit": row["unit"], "start": row["start"], "is_urgent": bool(form.get(f"p{i}_urgent")),
                 "self_report": bool(form.get(f"p{i}_self_report"))}
        for key in ("every", "until"):
            if row[key]:
                phase[key] = row[key]
        for key, target in (("early", "early_hours"), ("late", "late_hours")):
            if row[key]:
                try:
                    phase[target] = int(row[key]) * hours
                except ValueError:
                    phase[target] = row[key]
        phases.append(phase)
    data["phases"] = phases
    return data


@bp.route("/admin/followup/protocols/new", methods=["GET", "POST"])
@allowed("administer")
def new_protocol():
    """Create a new pathway or the next version of one (?code=); active plans move to the new version."""
    errors, status = {}, 200
    base = services.current_protocol(request.values.get("code", "")) if request.values.get("code") else None
    if request.method == "POST":
        try:
            data = NewProtocolIn().load(protocol_form())
            code = data.pop("code")
            created = services.create_protocol_version(code, data, actor=current_actor(), now=now())
            return redirect(url_for("followup.protocol", protocol_id=created.id))
        except (ValidationError, DomainError) as error:
            errors, status = page_refusal(error)
    posted = request.method == "POST"
    asked = set(request.form.getlist("outcome_items")) if posted else set(base.outcome_items if base else ())
    core = set(request.form.getlist("core_items")) if posted else set(base.core_items if base else ())
    return render_template("followup/protocol_form.html", base=base, errors=errors, values=request.form,
                           anchors=ANCHORS, units=UNITS, items=OUTCOME_ITEMS, rows=PHASE_ROWS, asked=asked,
                           core=core), status
