"""MDT and death-review discussions over the JSON API (DESIGN §7, §10)."""
from __future__ import annotations

from qcflow.auth.permissions import allowed, current_actor
from qcflow.core.api import Blueprint, created_links
from qcflow.core.time import now, today
from qcflow.mdt import clinics, queries, services
from qcflow.mdt.schemas import (
    CLINIC_FIELDS,
    AddendumIn,
    AddendumOut,
    AttendanceIn,
    ClinicIn,
    ClinicList,
    ClinicListArgs,
    ClinicOut,
    ClinicPatch,
    DiscussionIn,
    DiscussionListArgs,
    DiscussionOut,
    DiscussionPage,
    DiscussionRecordIn,
    DiscussionTransitionIn,
    ParticipantIn,
    ParticipantOut,
    ParticipantPatch,
)

blp = Blueprint("mdt_api", __name__, url_prefix="/api/v1/mdt",
                description="MDT and death-review discussions (多学科讨论、死亡病例讨论)")


@blp.post("/discussions")
@allowed("mdt")
@blp.arguments(DiscussionIn)
@blp.response(201, DiscussionOut)
@blp.alt_response(409, description="A discussion of this kind is already open for the operation or patient")
@blp.alt_response(422, description="Unknown or foreign links, each named")
@blp.doc(**created_links(
    GetDiscussion=("get", "/api/v1/mdt/discussions/{discussion_id}", {"discussion_id": "$response.body#/id"}),
    RecordDiscussion=("patch", "/api/v1/mdt/discussions/{discussion_id}", {"discussion_id": "$response.body#/id"}),
    StepDiscussion=("post", "/api/v1/mdt/discussions/{discussion_id}/transitions", {"discussion_id": "$response.body#/id"}),
    AddParticipant=("post", "/api/v1/mdt/discussions/{discussion_id}/participants",
                    {"discussion_id": "$response.body#/id"}),
))
def create_discussion(data):
    """Request a discussion; participants are proposed by the kind's required specialties."""
    return services.request_discussion(data, actor=current_actor(), now=now())


@blp.get("/discussions")
@allowed("mdt")
@blp.arguments(DiscussionListArgs, location="query")
@blp.response(200, DiscussionPage)
def list_discussions(args):
    """List discussions (quality office: all; others: their department's and those they take part in), newest first."""
    args.pop("lang", None)
    items, next_cursor = queries.list_discussions(current_actor(), **args)
    return {"items": items, "next_cursor": next_cursor}


@blp.get("/discussions/<int:discussion_id>")
@allowed("mdt")
@blp.response(200, DiscussionOut)
@blp.alt_response(404, description="No such discussion in your department")
def get_discussion(discussion_id):
    """Show one discussion with its participants and addenda."""
    return queries.load_discussion(discussion_id, current_actor())


@blp.patch("/discussions/<int:discussion_id>")
@allowed("mdt")
@blp.arguments(DiscussionRecordIn)
@blp.response(200, DiscussionOut)
@blp.alt_response(409, description="Signed or cancelled (only addenda), or a stale version")
def update_discussion(data, discussion_id):
    """Record the question, chair, summary, conclusion and decision until the record is signed."""
    actor = current_actor()
    discussion = queries.load_discussion(discussion_id, actor)
    version = data.pop("version")
    services.update_discussion(discussion, data, actor=actor, now=now(), expected_version=version)
    return discussion


@blp.post("/discussions/<int:discussion_id>/transitions")
@allowed("mdt")
@blp.arguments(DiscussionTransitionIn)
@blp.response(200, DiscussionOut)
@blp.alt_response(403, description="Your role may not take this step (signing: the chair, department heads, quality)")
@blp.alt_response(409, description="Not possible in the current state (allowed_actions listed) or stale version")
@blp.alt_response(422, description="The step's requirements are missing (sign: chair, conclusion, decision, quorum)")
def transition(data, discussion_id):
    """Take a step: schedule (`scheduled_at`), hold (`held_at`), sign (may carry summary, conclusion,
    decision), cancel (`reason`)."""
    actor = current_actor()
    discussion = queries.load_discussion(discussion_id, actor)
    action, version = data.pop("action"), data.pop("version")
    services.transition_discussion(discussion, action, data, actor=actor, now=now(), expected_version=version)
    return discussion


@blp.post("/discussions/<int:discussion_id>/participants")
@allowed("mdt")
@blp.arguments(ParticipantIn)
@blp.response(201, ParticipantOut)
@blp.alt_response(409, description="Already a participant, or the record is signed")
def add_participant(data, discussion_id):
    """Invite a colleague (user_id), a staff-list entry with or without an account (staff_id) or an outside
    expert (name); an unknown specialty code is a 422 listing the valid ones."""
    actor = current_actor()
    return services.add_participant(queries.load_discussion(discussion_id, actor), data, actor=actor, now=now())


@blp.patch("/discussions/<int:discussion_id>/participants/<int:participant_id>")
@allowed("mdt")
@blp.arguments(ParticipantPatch)
@blp.response(200, ParticipantOut)
def update_participant(data, discussion_id, participant_id):
    """Record a participant's attendance, or correct their specialty, department or role (the organisers);
    a participant may set their own `attended` only."""
    actor = current_actor()
    discussion = queries.load_discussion(discussion_id, actor)
    version = data.pop("version")
    return services.update_participant(discussion, queries.load_participant(discussion, participant_id), data,
                                       actor=actor, now=now(), expected_version=version)


@blp.delete("/discussions/<int:discussion_id>/participants/<int:participant_id>")
@allowed("mdt")
@blp.response(204)
def remove_participant(discussion_id, participant_id):
    """Take a participant off the list (before signing)."""
    actor = current_actor()
    discussion = queries.load_discussion(discussion_id, actor)
    participant = queries.load_participant(discussion, participant_id)
    services.remove_participant(discussion, participant, actor=actor, now=now())


@blp.put("/discussions/<int:discussion_id>/attendance")
@allowed("mdt")
@blp.arguments(AttendanceIn)
@blp.response(200, DiscussionOut)
def record_attendance(data, discussion_id):
    """Set who attended: the listed participants, nobody else."""
    actor = current_actor()
    discussion = queries.load_discussion(discussion_id, actor)
    services.record_attendance(discussion, data["attended"], actor=actor, now=now(), expected_version=data["version"])
    return discussion


@blp.post("/discussions/<int:discussion_id>/addenda")
@allowed("mdt")
@blp.arguments(AddendumIn)
@blp.response(201, AddendumOut)
@blp.alt_response(409, description="The record is not signed yet (change the record itself)")
def add_addendum(data, discussion_id):
    """Append an addendum to a signed record."""
    actor = current_actor()
    discussion = queries.load_discussion(discussion_id, actor)
    return services.add_addendum(discussion, data["text"], actor=actor, now=now())


@blp.get("/clinics")
@allowed("mdt_clinics")
@blp.arguments(ClinicListArgs, location="query")
@blp.response(200, ClinicList)
def list_clinics(args):
    """List the MDT clinics (多学科门诊), open ones first; `active_on` keeps those open that day."""
    today_on = today(now())
    return {"items": [clinic_out(c, today_on) for c in clinics.list_clinics(args.get("active_on"))]}


@blp.post("/clinics")
@allowed("mdt_clinics")
@blp.arguments(ClinicIn)
@blp.response(201, ClinicOut)
@blp.alt_response(422, description="Unknown department or specialty, overlapping slots, last day before first")
def create_clinic(data):
    """Add an MDT clinic: name, department, specialties, weekly slots, first (and last) day open."""
    at = now()
    return clinic_out(clinics.create_clinic(data, actor=current_actor(), now=at), today(at))


@blp.patch("/clinics/<int:clinic_id>")
@allowed("mdt_clinics")
@blp.arguments(ClinicPatch(partial=CLINIC_FIELDS))
@blp.response(200, ClinicOut)
@blp.alt_response(404, description="No such clinic")
@blp.alt_response(409, description="Stale version")
def update_clinic(data, clinic_id):
    """Change a clinic's fields; set `active_to` to close it after that day (deactivate), null to reopen it."""
    at = now()
    clinic = clinics.load_clinic(clinic_id)
    version = data.pop("version")
    return clinic_out(clinics.update_clinic(clinic, data, actor=current_actor(), now=at, expected_version=version),
                      today(at))


def clinic_out(clinic, day) -> dict:
    """A clinic as the API shows it, with whether the indicator counts it on `day`."""
    return {"id": clinic.id, "name": clinic.name, "name_en": clinic.name_en, "department_id": clinic.department_id,
            "specialties": clinic.specialties, "slots": clinic.slots, "active_from": clinic.active_from,
            "active_to": clinic.active_to, "is_counted": clinics.is_counted(clinic, day), "version": clinic.version}
