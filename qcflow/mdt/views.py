"""Discussion pages: the list, the request form, the record page with its steps, the minutes PDF."""
from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, redirect, render_template, request, url_for
from marshmallow import ValidationError

from qcflow.auth.models import Department, User, UserRole
from qcflow.auth.permissions import PERMISSIONS, allowed, current_actor
from qcflow.auth.queries import active_departments
from qcflow.auth.ratelimit import rate_limited
from qcflow.clinical import queries as clinical_queries
from qcflow.clinical.models import SPECIALTIES, Patient, Staff
from qcflow.core.errors import DomainError, page_refusal
from qcflow.core.forms import load_args, load_form
from qcflow.core.time import now, today
from qcflow.extensions import db
from qcflow.files import services as files
from qcflow.mdt import clinics, queries, services
from qcflow.mdt.models import DECISIONS, PARTICIPANT_ROLES, WEEKDAYS, DiscussionKind
from qcflow.mdt.schemas import (
    AddendumIn,
    AttendanceIn,
    ClinicDeactivateIn,
    ClinicIn,
    ClinicPatch,
    DiscussionIn,
    DiscussionListArgs,
    DiscussionRecordIn,
    DiscussionTransitionIn,
    OwnAttendanceIn,
    ParticipantIn,
)
from qcflow.mdt.workflow import DISCUSSION_WORKFLOW, OPEN_STATES, DiscussionState
from qcflow.reports import pdf

bp = Blueprint("mdt", __name__)


@bp.context_processor
def template_values():
    """Labels and choices every MDT page uses."""
    return {"kinds": list(DiscussionKind), "states": list(DiscussionState)}


def choices() -> dict:
    """Departments, the colleagues who can chair or take part (clinicians, heads, quality office), the
    staff-list entries without an account and the specialties."""
    departments = active_departments()
    colleagues = list(db.session.scalars(
        sa.select(User).where(User.is_active.is_(True), User.id.in_(
            sa.select(UserRole.user_id).where(UserRole.role.in_(sorted(PERMISSIONS["mdt"])))))
        .order_by(User.department_id, User.display_name)))
    # Staff-list entries without an account (visiting experts, anaesthetists without a login); those with
    # an account are offered as colleagues.
    listed = list(db.session.scalars(sa.select(Staff).where(Staff.is_active.is_(True), Staff.user_id.is_(None))
                                     .order_by(Staff.department_id, Staff.name)))
    return {"department_choices": departments, "colleagues": colleagues, "decisions": DECISIONS,
            "participant_roles": PARTICIPANT_ROLES, "staff_choices": listed, "specialties": SPECIALTIES,
            "department_of": {dep.id: dep for dep in departments}}


def back(discussion_id: int, anchor: str = ""):
    return redirect(url_for("mdt.detail", discussion_id=discussion_id) + anchor)


@bp.get("/mdt")
@allowed("mdt")
def index():
    """Discussions I may see, newest first, with the open ones waiting for me on top."""
    actor, at = current_actor(), now()
    args, errors = load_args(DiscussionListArgs())
    items, next_cursor = queries.list_discussions(actor, **args) if not errors else ([], None)
    pending = queries.pending_for(actor) if not args.get("cursor") else []
    patients = queries.names_of(Patient, [d.patient_id for d in items + pending])
    departments = queries.names_of(Department, [d.department_id for d in items + pending])
    return render_template("mdt/list.html", items=items, pending=pending, next_cursor=next_cursor, args=request.args,
                           errors=errors, overdue=lambda d: services.is_overdue(d, at), patients=patients,
                           department_names=departments), 422 if errors else 200


@bp.route("/mdt/new", methods=["GET", "POST"])
@allowed("mdt")
def new():
    """Request a discussion: kind, patient or operation, question; participants are proposed by kind."""
    errors, status = {}, 200
    if request.method == "POST":
        try:
            discussion = services.request_discussion(load_form(DiscussionIn()), actor=current_actor(), now=now())
        except (ValidationError, DomainError) as error:
            errors, status = page_refusal(error)
        else:
            return back(discussion.id)
    values = request.form if request.method == "POST" else request.args
    return render_template("mdt/new.html", errors=errors, values=values, quorum=services.quorum_rule,
                           specialty_names=services.specialty_names,
                           **choices()), status


@bp.get("/mdt/<int:discussion_id>")
@allowed("mdt")
def detail(discussion_id):
    """One discussion: facts, participants and attendance, the record, the steps available now, addenda."""
    actor, at = current_actor(), now()
    discussion = queries.load_discussion(discussion_id, actor)
    context = queries.record_context(discussion)
    return render_template(
        "mdt/detail.html", may_open_operation=clinical_queries.may_open_operation(context["operation"], actor), d=discussion, may=services.allowed_here(discussion, actor), overdue=services.is_overdue(discussion, at),
        transitions=DISCUSSION_WORKFLOW.available(discussion, actor),
        blockers=services.sign_blockers(discussion, {}) if discussion.state in OPEN_STATES else [],
        timeline=queries.timeline(discussion), **context, **choices(), **discussion_files(discussion, actor))


def discussion_files(discussion, actor) -> dict:
    """The discussion page's files and who added them."""
    shown = files.files_of("mdt_discussion", discussion.id)
    ids = {f.uploaded_by_user_id for f in shown if f.uploaded_by_user_id}
    return {"attachments": shown, "uploaders": queries.names_of(User, ids) if ids else {},
            "may_remove_file": lambda f: files.may_remove_from_discussion(f, discussion, actor)}


@bp.post("/mdt/<int:discussion_id>/record")
@allowed("mdt")
def record(discussion_id):
    """Save the question, chair, summary, conclusion and decision."""
    actor = current_actor()
    discussion = queries.load_discussion(discussion_id, actor)
    data = load_form(DiscussionRecordIn())
    version = data.pop("version")
    services.update_discussion(discussion, data, actor=actor, now=now(), expected_version=version)
    return back(discussion_id, "#record")


@bp.post("/mdt/<int:discussion_id>/transitions")
@allowed("mdt")
def transition(discussion_id):
    """Schedule, record as held, sign or cancel from the discussion page."""
    actor = current_actor()
    discussion = queries.load_discussion(discussion_id, actor)
    data = load_form(DiscussionTransitionIn())
    action, version = data.pop("action"), data.pop("version")
    services.transition_discussion(discussion, action, data, actor=actor, now=now(), expected_version=version)
    return back(discussion_id)


@bp.post("/mdt/<int:discussion_id>/participants")
@allowed("mdt")
def add_participant(discussion_id):
    """Invite a colleague or an outside expert."""
    actor = current_actor()
    services.add_participant(queries.load_discussion(discussion_id, actor), load_form(ParticipantIn()),
                             actor=actor, now=now())
    return back(discussion_id, "#participants")


@bp.post("/mdt/<int:discussion_id>/participants/<int:participant_id>/remove")
@allowed("mdt")
def remove_participant(discussion_id, participant_id):
    """Take a participant off the list."""
    actor = current_actor()
    discussion = queries.load_discussion(discussion_id, actor)
    services.remove_participant(discussion, queries.load_participant(discussion, participant_id), actor=actor,
                                now=now())
    return back(discussion_id, "#participants")


@bp.post("/mdt/<int:discussion_id>/attendance")
@allowed("mdt")
def attendance(discussion_id):
    """Save the attendance checkboxes."""
    actor = current_actor()
    discussion = queries.load_discussion(discussion_id, actor)
    data = load_form(AttendanceIn())
    services.record_attendance(discussion, data["attended"], actor=actor, now=now(), expected_version=data["version"])
    return back(discussion_id, "#participants")


@bp.post("/mdt/<int:discussion_id>/my-attendance")
@allowed("mdt")
def confirm_attendance(discussion_id):
    """A participant confirms (or withdraws) their own attendance."""
    actor = current_actor()
    discussion = queries.load_discussion(discussion_id, actor)
    participant = queries.own_participant(discussion, actor.user_id)
    data = load_form(OwnAttendanceIn())
    services.update_participant(discussion, participant, {"attended": data["attended"]}, actor=actor, now=now(),
                                expected_version=data["version"])
    return back(discussion_id, "#participants")


@bp.post("/mdt/<int:discussion_id>/addenda")
@allowed("mdt")
def add_addendum(discussion_id):
    """Append an addendum to the signed record."""
    actor = current_actor()
    services.add_addendum(queries.load_discussion(discussion_id, actor), load_form(AddendumIn())["text"],
                          actor=actor, now=now())
    return back(discussion_id, "#addenda")


@bp.get("/mdt/<int:discussion_id>/minutes.pdf")
@allowed("mdt")
@rate_limited("pdf")
def minutes(discussion_id):
    """The minutes as PDF (signed status, participants and attendance, conclusion, addenda)."""
    discussion = queries.load_discussion(discussion_id, current_actor())
    data = pdf.render_template_pdf("reports/mdt_minutes.html", d=discussion, printed_at=now(),
                                   **queries.record_context(discussion))
    return pdf.pdf_response(data, f"mdt-{discussion.id}.pdf")


def _clinic_form() -> dict:
    """The posted clinic form in the API's shape: slots from the repeated weekday/start/end fields."""
    form = request.form
    data = {name: form.get(name, "").strip() for name in ("name", "name_en", "department_id", "active_from",
                                                          "active_to", "version") if form.get(name, "").strip()}
    data["specialties"] = [code for code in form.getlist("specialties") if code]
    data["slots"] = [{"weekday": day, "starts_at": start.strip(), "ends_at": end.strip()}
                     for day, start, end in zip(form.getlist("slot_weekday"), form.getlist("slot_start"),
                                                form.getlist("slot_end")) if day or start.strip() or end.strip()]
    return data


def _clinic_values(clinic) -> dict:
    return {"name": clinic.name, "name_en": clinic.name_en, "department_id": str(clinic.department_id),
            "specialties": clinic.specialties, "active_from": clinic.active_from.isoformat(),
            "active_to": clinic.active_to.isoformat() if clinic.active_to else "", "version": str(clinic.version),
            "slots": [{"weekday": str(s.weekday), "starts_at": s.starts_at.strftime("%H:%M"),
                       "ends_at": s.ends_at.strftime("%H:%M")} for s in clinic.slots]}


def _render_clinic_form(template: str, status: int = 200, **context):
    day = today(now())
    return render_template(template, department_choices=active_departments(), specialties=SPECIALTIES,
                           weekdays=WEEKDAYS, is_counted=lambda c: clinics.is_counted(c, day), today_on=day,
                           **context), status


@bp.route("/mdt/clinics", methods=["GET", "POST"])
@allowed("mdt_clinics")
def clinic_list():
    """The MDT clinics, open ones first, and the form to add one."""
    errors, status, values = {}, 200, {"active_from": today(now()).isoformat(), "slots": []}
    if request.method == "POST":
        values = _clinic_form()
        try:
            clinic = clinics.create_clinic(ClinicIn().load(values), actor=current_actor(), now=now())
            return redirect(url_for("mdt.clinic_detail", clinic_id=clinic.id))
        except (ValidationError, DomainError) as error:
            errors, status = page_refusal(error)
    items, day = clinics.list_clinics(), today(now())
    return _render_clinic_form("mdt/clinics.html", status, items=items, errors=errors, values=values,
                               counted=sum(clinics.is_counted(c, day) for c in items),
                               department_names=queries.names_of(Department, [c.department_id for c in items]))


@bp.route("/mdt/clinics/<int:clinic_id>", methods=["GET", "POST"])
@allowed("mdt_clinics")
def clinic_detail(clinic_id):
    """One clinic: change it (from the version read) or close it after a last day."""
    clinic = clinics.load_clinic(clinic_id)
    errors, status, values = {}, 200, _clinic_values(clinic)
    if request.method == "POST":
        values = _clinic_form()
        try:
            data = ClinicPatch().load(values)
            version = data.pop("version")
            clinics.update_clinic(clinic, data, actor=current_actor(), now=now(), expected_version=version)
            return redirect(url_for("mdt.clinic_list"))
        except (ValidationError, DomainError) as error:
            errors, status = page_refusal(error)
            clinic = clinics.load_clinic(clinic_id)
    return _render_clinic_form("mdt/clinic.html", status, clinic=clinic, errors=errors, values=values)


@bp.post("/mdt/clinics/<int:clinic_id>/deactivate")
@allowed("mdt_clinics")
def clinic_deactivate(clinic_id):
    """Close a clinic after its last day (default today)."""
    clinic = clinics.load_clinic(clinic_id)
    try:
        data = ClinicDeactivateIn().load({k: v.strip() for k, v in request.form.items()
                                          if k in ("version", "active_to") and v.strip()})
        clinics.deactivate_clinic(clinic, data["active_to"], actor=current_actor(), now=now(),
                                  expected_version=data["version"])
        return redirect(url_for("mdt.clinic_list"))
    except (ValidationError, DomainError) as error:
        errors, status = page_refusal(error)
    clinic = clinics.load_clinic(clinic_id)
    return _render_clinic_form("mdt/clinic.html", status, clinic=clinic, errors=errors, values=_clinic_values(clinic))
