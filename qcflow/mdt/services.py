"""MDT and death-review discussions: requests, participants, steps, sign-off, addenda, hooks, alerts.

Services flush and never commit; callers pass `actor` and `now`. The hooks (`on_*`) are called by
the clinical services and are idempotent: a repeated call finds the discussion the first one made.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy.orm.attributes import flag_modified

from qcflow.auth.models import Department, Role, User
from qcflow.auth.permissions import DISCUSSION_PERMISSIONS, can, department_for, sees_all_departments
from qcflow.clinical.models import Encounter, Operation, Patient, Staff
from qcflow.clinical.queries import has_clinical_record
from qcflow.clinical.workflow import OperationState
from qcflow.core import audit
from qcflow.core.actors import Actor
from qcflow.core.errors import Conflict, Forbidden, Unprocessable
from qcflow.core.i18n import label, label_list
from qcflow.core.time import CLOCK_SLACK, local, today, when_it_happened
from qcflow.events.models import AdverseEvent
from qcflow.extensions import db
from qcflow.mdt.deadlines import configured_rule, death_discussion_due
from qcflow.mdt.models import DECISIONS, Addendum, Alert, Discussion, DiscussionKind, Participant
from qcflow.mdt.queries import procedure_name, timeline
from qcflow.mdt.workflow import DISCUSSION_WORKFLOW, FINAL_STATES, OPEN_STATES, DiscussionState, refusal
from qcflow.notify.services import notify, users_with_role
from qcflow.reactions import Effect

K = DiscussionKind
#: The actor of discussions the system requests (hooks) and of scheduler alerts.
SYSTEM = Actor.system("mdt")
DEATH_KINDS = (K.PERIOPERATIVE_DEATH, K.DEATH_CASE)

#: Fields of the record that change until it is signed.
RECORD_FIELDS = ("question", "chair_user_id", "summary", "conclusion", "decision")


def link(discussion: Discussion) -> str:
    return f"/mdt/{discussion.id}"



def due_at_for(kind: str, *, start: datetime, disputed: bool = False,
               operation: Operation | None = None) -> datetime | None:
    """When a discussion must be held: the one place that computes it.

    Pre-operative: before the planned operation. Deaths: from the death (`start`), 24 hours when disputed,
    else the configured death-discussion deadline (mdt.deadlines: 7 days or 5 working days). Others: the
    configured days from `start` (the request), or no deadline.
    """
    if kind == K.PREOP_LEVEL4:
        return operation.planned_at if operation is not None else None
    if disputed and kind in DEATH_KINDS:
        return start + timedelta(hours=current_app.config["MDT_DISPUTED_DUE_HOURS"])
    if kind in DEATH_KINDS:
        return death_discussion_due(start, configured_rule())
    days = current_app.config["MDT_DUE_DAYS"].get(kind)
    return start + timedelta(days=days) if days else None


def overdue_clause(now: datetime):
    """Open discussions past their due time (SQL); `is_overdue` is the same rule for one discussion."""
    return sa.and_(Discussion.state.in_([s.value for s in OPEN_STATES]), Discussion.due_at.is_not(None),
                   Discussion.due_at <= now)


def is_overdue(discussion: Discussion, now: datetime) -> bool:
    return discussion.state in OPEN_STATES and discussion.due_at is not None and discussion.due_at <= now


def quorum_rule(kind: str) -> dict:
    rules = current_app.config["MDT_QUORUM"]
    return {"min_specialties": 0, "required": [], **rules.get("default", {}), **rules.get(kind, {})}


def _specialty(value: str | None) -> str:
    return (value or "").strip().lower()


def specialty_names(codes) -> str:
    """Specialties as the reader's words, e.g. “麻醉科、肿瘤科”."""
    return label_list("clin_specialty", codes)


def distinct_attendance(participants) -> int:
    """The most attending participants with pairwise distinct specialties and departments.

    Two colleagues of one department count once even with different specialties; a listed person
    without a department is a department of their own; outside experts (typed by name) together hold
    one place, so they add at most one specialty. A maximum bipartite matching of specialties to
    departments, so the order of the list never changes the count.
    """
    departments_of: dict[str, set] = {}
    for p in participants:
        if p.attended and _specialty(p.specialty):
            if p.is_outside_expert:
                place = ("outside",)
            else:
                place = p.department_id if p.department_id is not None else ("unplaced", p.id)
            departments_of.setdefault(_specialty(p.specialty), set()).add(place)
    holder: dict = {}

    def assign(specialty: str, seen: set) -> bool:
        for place in departments_of[specialty]:
            if place in seen:
                continue
            seen.add(place)
            if place not in holder or assign(holder[place], seen):
                holder[place] = specialty
                return True
        return False

    return sum(assign(specialty, set()) for specialty in sorted(departments_of))


def sign_blockers(discussion: Discussion, data: dict) -> list[str]:
    """What still stops signing: chair, conclusion, the pre-operative decision, the quorum.

    A required specialty is met only by someone of this hospital (an account or the staff list);
    outside experts count towards the minimum as one place (docs/decisions.md)."""
    blockers = []
    if not discussion.chair_user_id:
        blockers.append(_("no chair"))
    if not (data.get("conclusion") or discussion.conclusion):
        blockers.append(_("no conclusion"))
    if discussion.kind == K.PREOP_LEVEL4 and not (data.get("decision") or discussion.decision):
        blockers.append(_("no decision (proceed, modify the plan or do not operate)"))
    rule = quorum_rule(discussion.kind)
    present = [p for p in discussion.participants if p.attended]
    attended = {_specialty(p.specialty) for p in present if not p.is_outside_expert}
    outside = {_specialty(p.specialty) for p in present if p.is_outside_expert and _specialty(p.specialty)}
    missing = [s for s in rule["required"] if _specialty(s) not in attended]
    if missing:
        blockers.append(_("no attending participant for: %(specialties)s", specialties=specialty_names(missing)))
        stand_ins = [s for s in missing if _specialty(s) in outside]
        if stand_ins:
            blockers.append(_("an outside expert does not stand in for a required specialty (%(specialties)s): "
                              "invite a colleague from the staff list", specialties=specialty_names(stand_ins)))
    count = distinct_attendance(discussion.participants)
    if count < rule["min_specialties"]:
        if outside:
            blockers.append(_("%(n)d of %(min)d distinct specialties attended (each from a different department; "
                              "outside experts together count as one)", n=count, min=rule["min_specialties"]))
        else:
            blockers.append(_("%(n)d of %(min)d distinct specialties attended (each from a different department)",
                              n=count, min=rule["min_specialties"]))
    return blockers


def may(discussion: Discussion, actor: Actor, what: str) -> bool:
    """Whether the actor's roles or relations to the discussion allow `what` (DISCUSSION_PERMISSIONS)."""
    return bool(DISCUSSION_WORKFLOW.roles_of(discussion, actor) & DISCUSSION_PERMISSIONS[what])


def allowed_here(discussion: Discussion, actor: Actor) -> dict[str, bool]:
    """What the actor may do on the discussion page now: each capability, false once it no longer applies."""
    final = discussion.state in FINAL_STATES
    signed = discussion.state == DiscussionState.SIGNED
    when = {"add_addendum": signed, "read": True, "confirm_own_attendance": discussion.state == DiscussionState.HELD}
    return {what: may(discussion, actor, what) and when.get(what, not final) for what in DISCUSSION_PERMISSIONS}


def check_editable(discussion: Discussion, actor: Actor, expected_version: int | None = None,
                   what: str = "record") -> None:
    """Refuse any change to a signed or cancelled record (409), by someone whose relation to the
    discussion does not allow `what` (403), or stale (409)."""
    if discussion.state == DiscussionState.SIGNED:
        raise Conflict(_("The record is signed and can no longer change; add an addendum instead."),
                       state=discussion.state)
    if discussion.state == DiscussionState.CANCELLED:
        raise Conflict(_("The discussion is cancelled and can no longer change."), state=discussion.state)
    if not may(discussion, actor, what):
        raise Forbidden(refusal(what))
    if expected_version is not None and expected_version != discussion.version:
        raise Conflict(current_version=discussion.version)


def _touch(discussion: Discussion, now: datetime) -> None:
    """Rewrite the discussion row with a version bump: a concurrent sign-off then makes this stale."""
    discussion.updated_at = now
    flag_modified(discussion, "updated_at")
    db.session.flush()



def _open(kind: str, *, department_id: int, actor: Actor, now: datetime, operation: Operation | None = None,
          patient_id: int | None = None, encounter_id: int | None = None, event_id: int | None = None,
          question: str = "", due_at: datetime | None = None, is_disputed: bool = False,
          chair_user_id: int | None = None, trigger_key: str | None = None, told=()) -> Discussion:
    """Create a requested discussion, audit it, invite the participants its kind needs and tell them."""
    discussion = Discussion(
        kind=kind, department_id=department_id, operation_id=operation.id if operation else None,
        patient_id=patient_id or (operation.patient_id if operation else None),
        encounter_id=encounter_id or (operation.encounter_id if operation else None), event_id=event_id,
        question=question, due_at=due_at, is_disputed=is_disputed, chair_user_id=chair_user_id,
        requested_by_user_id=actor.user_id, trigger_key=trigger_key, created_at=now, updated_at=now)
    db.session.add(discussion)
    db.session.flush()
    audit.record(actor.audit_name, "mdt_discussion.request", "mdt_discussion", discussion.id, now,
                 after={"kind": kind, "department_id": department_id, "operation_id": discussion.operation_id,
                        "patient_id": discussion.patient_id, "event_id": event_id,
                        "due_at": due_at.isoformat() if due_at else None},
                 trigger=trigger_key)
    proposed = propose_participants(discussion, surgeon=operation.surgeon if operation else None, now=now)
    if chair_user_id:
        _sync_chair(discussion, now)
    _tell_invited(discussion, [p.user_id for p in proposed if p.user_id not in told], actor=actor, now=now)
    return discussion


def _tell_invited(discussion: Discussion, user_ids, *, actor: Actor, now: datetime) -> None:
    """Notify the invited participants who have an account (not the one who invited them)."""
    recipients = [uid for uid in user_ids if uid is not None and uid != actor.user_id]
    notify(recipients, "mdt.invited", {"id": discussion.id, "kind": discussion.kind}, now=now, link=link(discussion))


def _existing(kind: str, trigger_key: str, **links) -> Discussion | None:
    """The discussion a hook already requested, or a live one someone requested for the same record in the
    department the hook would organise it in (one requested elsewhere is never adopted: its deadline and
    department are not the rule's)."""
    found = db.session.scalar(sa.select(Discussion).where(Discussion.trigger_key == trigger_key))
    if found is not None:
        return found
    stmt = sa.select(Discussion).where(Discussion.kind == kind, Discussion.state != DiscussionState.CANCELLED.value)
    for column, value in links.items():
        stmt = stmt.where(getattr(Discussion, column) == value)
    return db.session.scalar(stmt.order_by(Discussion.id.desc()).limit(1))


def propose_participants(discussion: Discussion, *, surgeon: Staff | None, now: datetime) -> list[Participant]:
    """Invite staff from the staff list by specialty, with or without a user account: the surgeon (without an
    operation, a clinician of the discussion's department), the specialties the kind needs (its quorum's and
    MDT_INVITED_SPECIALTIES), then other specialties until the quorum's minimum, each from a department not
    yet invited (staff with an account first)."""
    rule = quorum_rule(discussion.kind)
    candidates = list(db.session.scalars(
        sa.select(Staff).where(Staff.is_active.is_(True), Staff.specialty.is_not(None),
                               Staff.department_id.is_not(None))
        .order_by(Staff.user_id.is_(None), Staff.id)))
    if surgeon is None or not surgeon.is_active:
        surgeon = next((s for s in candidates if s.department_id == discussion.department_id), None)
    chosen: list[Staff] = [surgeon] if surgeon is not None else []

    def pick(wanted: str | None = None) -> Staff | None:
        specialties = {_specialty(s.specialty) for s in chosen}
        departments = {s.department_id for s in chosen}
        for staff in candidates:
            specialty = _specialty(staff.specialty)
            if staff in chosen or specialty in specialties or staff.department_id in departments:
                continue
            if wanted is None or specialty == wanted:
                return staff
        return None

    needed = [*rule["required"], *current_app.config["MDT_INVITED_SPECIALTIES"].get(discussion.kind, [])]
    for required in dict.fromkeys(_specialty(code) for code in needed):
        if required not in {_specialty(s.specialty) for s in chosen}:
            found = pick(required)
            if found is not None:
                chosen.append(found)
    while len({_specialty(s.specialty) for s in chosen if s.specialty}) < rule["min_specialties"]:
        found = pick()
        if found is None:
            break
        chosen.append(found)
    invited_users = {p.user_id for p in discussion.participants if p.user_id is not None}
    invited_staff = {p.staff_id for p in discussion.participants if p.staff_id is not None}
    rows = [Participant(user_id=staff.user_id, staff_id=staff.id, name=staff.name, department_id=staff.department_id,
                        specialty=staff.specialty, role="member", created_at=now)
            for staff in chosen if staff.id not in invited_staff
            and (staff.user_id is None or staff.user_id not in invited_users)]
    discussion.participants.extend(rows)
    db.session.flush()
    return rows


def _resolve_links(data: dict, actor: Actor) -> dict:
    """Check the linked records exist (and, outside the quality office, belong to the actor's department)."""
    errors: dict[str, list[str]] = {}
    own_only = not sees_all_departments(actor)
    links: dict = {"operation": None, "patient_id": None, "encounter_id": None, "event_id": None}
    if data.get("operation_id"):
        operation = db.session.get(Operation, data["operation_id"])
        if operation is None or (own_only and operation.department_id != actor.department_id):
            errors["operation_id"] = [_("Unknown operation.")]
        else:
            links.update(operation=operation, patient_id=operation.patient_id, encounter_id=operation.encounter_id)
    if data.get("patient_mrn"):
        patients = list(db.session.scalars(sa.select(Patient.id).where(Patient.mrn == data["patient_mrn"]).limit(2)))
        if own_only:  # another department's patient is answered as an unknown one (no name look-up by MRN)
            patients = [p for p in patients if has_clinical_record(p, actor.department_id)]
        if not patients:
            errors["patient_mrn"] = [_("No patient has this medical record number.")]
        elif len(patients) > 1:
            errors["patient_mrn"] = [_("Several patients have this medical record number; choose the operation.")]
        elif links["patient_id"] not in (None, patients[0]):
            errors["patient_mrn"] = [_("The operation belongs to another patient.")]
        else:
            links["patient_id"] = patients[0]
    if data.get("encounter_id"):
        encounter = db.session.get(Encounter, data["encounter_id"])
        if encounter is None or (own_only and encounter.department_id != actor.department_id):
            errors["encounter_id"] = [_("Unknown encounter.")]
        elif links["patient_id"] not in (None, encounter.patient_id):
            errors["encounter_id"] = [_("The encounter belongs to another patient.")]
        else:
            links.update(encounter_id=encounter.id, patient_id=encounter.patient_id)
    if data.get("event_id"):
        event = db.session.get(AdverseEvent, data["event_id"])
        departments = (event.department_id, event.handling_department_id) if event is not None else ()
        if event is None or (own_only and actor.department_id not in departments):
            errors["event_id"] = [_("Unknown adverse event.")]
        else:
            links["event_id"] = event.id
    if data.get("chair_user_id") and (refusal := chairrefusal(db.session.get(User, data["chair_user_id"]))):
        errors["chair_user_id"] = [refusal]
    if data["kind"] == K.PREOP_LEVEL4 and links["operation"] is None and "operation_id" not in errors:
        errors["operation_id"] = [_("A pre-operative discussion is about one operation: choose it.")]
    if errors:
        raise Unprocessable(errors=errors)
    return links


def chairrefusal(user: User | None) -> str | None:
    """Why a user cannot chair a discussion: only active clinicians, heads and the quality office do."""
    if user is None or not user.is_active:
        return _("Unknown user.")
    if not can(user, "mdt"):
        return _("The chair is a clinician, a department head or the quality office.")
    return None


def _participant_errors(user: User | None, staff: Staff | None, data: dict) -> dict:
    """A colleague's department is their own and a listed person's specialty the staff list's (the quorum
    counts them): only an outside expert's are written by hand."""
    errors = {}
    if data.get("department_id") and db.session.get(Department, data["department_id"]) is None:
        errors["department_id"] = [_("Unknown department.")]
    if user is None and staff is None:
        return {**errors, **_outside_expert_errors(data)}
    if user is not None and not can(user, "mdt"):
        errors["user_id"] = [_("Colleagues who take part are clinicians, department heads or the quality office; "
                               "add anyone else as an outside expert.")]
    own_department = user.department_id if user is not None else staff.department_id
    if "department_id" in data and data["department_id"] != own_department:
        errors["department_id"] = [_("A colleague takes part for their own department.")]
    listed = staff.specialty if staff is not None else None
    if "specialty" in data and _specialty(data["specialty"]) != _specialty(listed):
        errors["specialty"] = [_("The staff list gives this colleague's specialty as %(specialty)s (%(code)s).",
                                 specialty=label("clin_specialty", listed), code=listed)
                               if listed else _("The staff list gives this colleague no specialty: ask the "
                                                "administrator to add it there.")]
    return errors


def _name_key(name: str | None) -> str:
    """A name as compared: without any spaces (full-width ones included) and case."""
    return "".join((name or "").split()).casefold()


def _outside_expert_errors(data: dict) -> dict:
    """An outside expert is of another hospital: no department of this one, and not a namesake of someone
    on the staff list or with an account (who is chosen from the lists, so the quorum knows who they are)."""
    errors = {}
    if data.get("department_id"):
        errors["department_id"] = [_("An outside expert is not of a department of this hospital: choose "
                                     "colleagues of this hospital from the colleagues or the staff list.")]
    if _namesake_on_the_lists(data.get("name")):
        errors["name"] = [_("%(name)s is on this hospital's staff list: pick them from the staff list. An "
                                "expert of another hospital with the same name is written with their hospital, "
                                "e.g. 王伟（省人民医院）.", name=data["name"].strip())]
    return errors


def _namesake_on_the_lists(name: str | None) -> bool:
    """Whether the name is that of someone the invite form offers: an active staff-list entry (without an account,
    or with one that may take part) or an active colleague who may take part. Others (a nurse, say) are still
    added by name."""
    key = _name_key(name)
    if not key:
        return False
    listed = db.session.execute(sa.select(Staff.name, Staff.user_id).where(Staff.is_active.is_(True))).all()
    accounts = db.session.execute(sa.select(User.display_name, User.id).where(User.is_active.is_(True))).all()
    if any(_name_key(n) == key and user_id is None for n, user_id in listed):
        return True
    user_ids = {user_id for n, user_id in [*listed, *accounts] if user_id is not None and _name_key(n) == key}
    return any(not chairrefusal(db.session.get(User, user_id)) for user_id in user_ids)


def staff_of(user: User | None) -> Staff | None:
    """The staff-list entry linked to a user account, if any."""
    if user is None:
        return None
    return db.session.scalar(sa.select(Staff).where(Staff.user_id == user.id))


def request_discussion(data: dict, *, actor: Actor, now: datetime) -> Discussion:
    """Request a discussion (doctor-initiated); links are checked and participants proposed by kind.

    The organising department is the actor's own; the quality office may choose another.
    """
    if not can(actor, "mdt"):
        raise Forbidden()
    links = _resolve_links(data, actor)
    operation = links.pop("operation")
    department_id = actor.department_id
    if data.get("department_id"):  # the quality office chooses; others may only name their own (else 404)
        department_id = department_for(actor, data["department_id"], field="department_id")
    elif sees_all_departments(actor):
        department_id = operation.department_id if operation else actor.department_id
    _refuse_duplicate(data["kind"], operation, links["patient_id"])
    disputed = bool(data.get("is_disputed"))
    rule_due = due_at_for(data["kind"], start=now, disputed=disputed, operation=operation)
    if data.get("due_at") and rule_due is not None and data["due_at"] > rule_due:
        raise Unprocessable(errors={"due_at": [_("This kind of discussion is due by %(date)s at the latest.",
                                                 date=local(rule_due).strftime("%Y-%m-%d %H:%M"))]})
    due_at = data.get("due_at") or rule_due
    discussion = _open(data["kind"], department_id=department_id, actor=actor, now=now, operation=operation,
                       question=data.get("question") or "", due_at=due_at, is_disputed=disputed,
                       chair_user_id=data.get("chair_user_id"), **links)
    return discussion


def _refuse_duplicate(kind: str, operation: Operation | None, patient_id: int | None) -> None:
    """One open discussion per operation (pre-operative, case review) or per patient (deaths)."""
    stmt = sa.select(Discussion.id).where(Discussion.kind == kind, Discussion.state.in_([s.value for s in OPEN_STATES]))
    if kind in DEATH_KINDS and patient_id:
        stmt = stmt.where(Discussion.patient_id == patient_id)
    elif kind in (K.PREOP_LEVEL4, K.CASE_REVIEW) and operation is not None:
        stmt = stmt.where(Discussion.operation_id == operation.id)
    else:
        return
    existing = db.session.scalar(stmt.limit(1))
    if existing is not None:
        raise Conflict(_("Discussion #%(id)d of this kind is already open for this record.", id=existing),
                       discussion_id=existing)



def effect(code: str, discussion: Discussion) -> list[Effect]:
    """What a reaction did to a discussion, for the fact's sender."""
    return [Effect(code, "mdt_discussion", discussion.id, discussion.kind)]


def on_operation_planned(operation: Operation, *, now: datetime) -> list[Effect] | None:
    """Request the pre-operative discussion of a grade-4 (or restricted-technology) operation, once."""
    if not operation.needs_mdt:
        return None
    key = f"preop_level4:operation:{operation.id}"
    existing = _existing(K.PREOP_LEVEL4, key, operation_id=operation.id, department_id=operation.department_id)
    if existing is not None:
        if existing.state in OPEN_STATES and existing.due_at != operation.planned_at:
            _move_due(existing, operation.planned_at, now)  # the operation was planned for another time
            return effect("discussion_rescheduled", existing)
        return effect("discussion_already_requested", existing)
    surgeon_user = operation.surgeon.user_id if operation.surgeon is not None else None
    discussion = _open(K.PREOP_LEVEL4, department_id=operation.department_id, actor=SYSTEM, now=now,
                       operation=operation, due_at=due_at_for(K.PREOP_LEVEL4, start=now, operation=operation),
                       trigger_key=key, told={surgeon_user})
    notify([surgeon_user] if surgeon_user else [], "mdt.requested",
           {"date": operation.planned_at.isoformat(), "procedure": procedure_name(operation)}, now=now,
           link=link(discussion))
    return effect("discussion_requested", discussion)


def on_operation_settled(operation: Operation, *, now: datetime) -> list[Effect]:
    """An operation cancelled or performed needs no pre-operative discussion any more: withdraw the request
    not yet held (a held one keeps its record for the organisers to sign or cancel), and tell whoever was
    invited."""
    withdrawn = list(db.session.scalars(sa.select(Discussion).where(
        Discussion.operation_id == operation.id, Discussion.kind == DiscussionKind.PREOP_LEVEL4.value,
        Discussion.state.in_([DiscussionState.REQUESTED.value, DiscussionState.SCHEDULED.value]))))
    for discussion in withdrawn:
        discussion.updated_at = now
        DISCUSSION_WORKFLOW.apply(discussion, "withdraw", actor=SYSTEM, now=now,
                                  audit_detail={"operation_id": operation.id})
        notify([p.user_id for p in discussion.participants if p.user_id is not None], "mdt.withdrawn",
               {"id": discussion.id, "procedure": procedure_name(operation)}, now=now, link=link(discussion))
    return [e for discussion in withdrawn for e in effect("discussion_withdrawn", discussion)]


def perioperative_operation(patient_id: int, died_at: datetime, encounter: Encounter | None = None) -> Operation | None:
    """The performed operation that makes a death perioperative, if any.

    Perioperative: during the admission of that operation, or at most PERIOPERATIVE_DEATH_DAYS
    calendar days after it, counted in the hospital time zone (day 30 counts, day 31 does not).
    """
    limit_days = current_app.config["PERIOPERATIVE_DEATH_DAYS"]
    death_day = today(died_at)
    operations = db.session.scalars(
        sa.select(Operation).where(Operation.patient_id == patient_id,
                                   Operation.state == OperationState.PERFORMED.value,
                                   Operation.performed_at.is_not(None), Operation.performed_at <= died_at)
        .order_by(Operation.performed_at.desc()))
    for operation in operations:
        if (death_day - today(operation.performed_at)).days <= limit_days:
            return operation
        if encounter is not None and encounter.id == operation.encounter_id:
            return operation
        stay = operation.encounter
        if stay.admitted_at <= died_at and (stay.discharged_at is None or died_at <= stay.discharged_at):
            return operation
    return None


def medical_affairs_department_id() -> int | None:
    code = current_app.config["MEDICAL_AFFAIRS_DEPARTMENT"]
    return db.session.scalar(sa.select(Department.id).where(Department.code == code, Department.is_active.is_(True)))


def on_death(patient: Patient, *, died_at: datetime, encounter: Encounter | None = None, now: datetime,
             disputed: bool = False) -> list[Effect] | None:
    """Request the death review, once per patient: perioperative (organised by medical affairs) or,
    for an in-hospital death, a death case review; due by the configured deadline after the death
    (DEATH_DISCUSSION_DEADLINE: 7 days or 5 working days; 24 h if disputed).

    Every way a death becomes the patient's (the HIS, a follow-up call) reaches here through
    `clinical.record_death`; the review is keyed by the patient, so a death learnt twice has one review."""
    died_at = died_at or now  # a death reported without its time counts from the report
    operation = perioperative_operation(patient.id, died_at, encounter)
    if operation is not None:
        kind = K.PERIOPERATIVE_DEATH
        department_id = medical_affairs_department_id() or operation.department_id
    elif encounter is not None:
        kind, department_id = K.DEATH_CASE, encounter.department_id
    else:
        return None
    key = f"{kind}:patient:{patient.id}"
    due_at = due_at_for(kind, start=died_at, disputed=disputed)
    existing = _existing(kind, key, patient_id=patient.id, department_id=department_id)
    if existing is not None:
        if disputed and not existing.is_disputed and existing.state in OPEN_STATES:
            _mark_disputed(existing, due_at, now)
            return effect("discussion_disputed", existing)
        return effect("discussion_already_requested", existing)
    discussion = _open(kind, department_id=department_id, actor=SYSTEM, now=now, operation=operation,
                       patient_id=patient.id, encounter_id=encounter.id if encounter is not None else None,
                       due_at=due_at, is_disputed=disputed, trigger_key=key)
    notify(users_with_role(Role.DEPT_HEAD, department_id) + users_with_role(Role.QUALITY), f"mdt.{kind}",
           {"date": due_at.isoformat() if due_at else None}, now=now, link=link(discussion))
    return effect("discussion_requested", discussion)


def _move_due(discussion: Discussion, due_at: datetime, now: datetime) -> None:
    before = discussion.due_at
    discussion.due_at = due_at
    _touch(discussion, now)
    audit.record(SYSTEM.audit_name, "mdt_discussion.due_changed", "mdt_discussion", discussion.id, now,
                 before={"due_at": before.isoformat() if before else None}, after={"due_at": due_at.isoformat()})


def _mark_disputed(discussion: Discussion, due_at: datetime, now: datetime) -> None:
    """A dispute reported after the review was requested shortens its deadline."""
    before = discussion.due_at
    discussion.is_disputed = True
    discussion.due_at = min(due_at, before) if before else due_at
    _touch(discussion, now)
    audit.record(SYSTEM.audit_name, "mdt_discussion.disputed", "mdt_discussion", discussion.id, now,
                 before={"due_at": before.isoformat() if before else None},
                 after={"due_at": discussion.due_at.isoformat()})


def on_unplanned_reoperation(operation: Operation, *, now: datetime) -> list[Effect]:
    """Request the case review of an unplanned reoperation, once per operation."""
    key = f"case_review:operation:{operation.id}"
    existing = _existing(K.CASE_REVIEW, key, operation_id=operation.id, department_id=operation.department_id)
    if existing is not None:
        return effect("discussion_already_requested", existing)
    discussion = _open(K.CASE_REVIEW, department_id=operation.department_id, actor=SYSTEM, now=now,
                       operation=operation, due_at=due_at_for(K.CASE_REVIEW, start=now),
                       trigger_key=key)
    notify(users_with_role(Role.DEPT_HEAD, operation.department_id), "mdt.case_review", now=now, link=link(discussion))
    return effect("discussion_requested", discussion)


def signed_preop_discussion(operation: Operation, *, window_days: int) -> Discussion | None:
    """The signed pre-operative discussion of this operation, signed at most `window_days` calendar
    days (hospital time zone) before its planned time and not after it; the latest if several."""
    planned_at = operation.planned_at
    candidates = db.session.scalars(
        sa.select(Discussion).where(
            Discussion.kind == K.PREOP_LEVEL4, Discussion.operation_id == operation.id,
            Discussion.state == DiscussionState.SIGNED.value, Discussion.signed_at <= planned_at,
            Discussion.signed_at >= planned_at - timedelta(days=window_days + 1))
        .order_by(Discussion.signed_at.desc()))
    planned_day = today(planned_at)
    return next((d for d in candidates if (planned_day - today(d.signed_at)).days <= window_days), None)


def has_signed_case_review(event: AdverseEvent) -> bool:
    """Whether a signed case review is linked to the event, or to the operation the event concerns."""
    links = [Discussion.event_id == event.id]
    if event.operation_id:
        links.append(Discussion.operation_id == event.operation_id)
    return db.session.scalar(sa.select(sa.exists().where(
        Discussion.kind == K.CASE_REVIEW, Discussion.state == DiscussionState.SIGNED.value, sa.or_(*links))))


def _check_record_rules(discussion: Discussion, data: dict) -> None:
    errors = {}
    if data.get("decision") and discussion.kind != K.PREOP_LEVEL4:
        errors["decision"] = [_("Only a pre-operative discussion records a decision.")]
    if data.get("decision") and data["decision"] not in DECISIONS:
        errors["decision"] = [_("Choose one of: %(values)s.", values=", ".join(DECISIONS))]
    if data.get("chair_user_id") and (refusal := chairrefusal(db.session.get(User, data["chair_user_id"]))):
        errors["chair_user_id"] = [refusal]
    if errors:
        raise Unprocessable(errors=errors)


def update_discussion(discussion: Discussion, data: dict, *, actor: Actor, now: datetime,
                      expected_version: int | None = None) -> Discussion:
    """Record the question, chair, summary, conclusion or decision (until the record is signed)."""
    check_editable(discussion, actor, expected_version)
    _check_record_rules(discussion, data)
    changed = {k: v for k, v in data.items() if k in RECORD_FIELDS and getattr(discussion, k) != v}
    if "chair_user_id" in changed and not may(discussion, actor, "manage"):
        raise Forbidden(refusal("manage"))
    for key, value in changed.items():
        setattr(discussion, key, value)
    if "chair_user_id" in changed:
        _sync_chair(discussion, now)
    _touch(discussion, now)
    audit.record(actor.audit_name, "mdt_discussion.update", "mdt_discussion", discussion.id, now,
                 fields=sorted(changed))
    return discussion


def _sync_chair(discussion: Discussion, now: datetime) -> None:
    """Keep the participant list in step with the chair: the chair's row has the chair role."""
    for p in discussion.participants:
        if p.role == "chair" and p.user_id != discussion.chair_user_id:
            p.role = "member"
    if discussion.chair_user_id is None:
        return
    row = next((p for p in discussion.participants if p.user_id == discussion.chair_user_id), None)
    if row is None:
        chair = db.session.get(User, discussion.chair_user_id)
        staff = staff_of(chair)
        row = Participant(discussion_id=discussion.id, user_id=chair.id, staff_id=staff.id if staff else None,
                          name=chair.display_name,
                          department_id=chair.department_id, specialty=staff.specialty if staff else None,
                          created_at=now)
        discussion.participants.append(row)
    row.role = "chair"
    db.session.flush()


def transition_discussion(discussion: Discussion, action: str, data: dict, *, actor: Actor, now: datetime,
                          expected_version: int | None = None) -> Discussion:
    """Take one step: schedule, hold, sign (the record may be completed in the same step) or cancel."""
    DISCUSSION_WORKFLOW.check(discussion, action, actor=actor, data=data, expected_version=expected_version)
    if action == "schedule":
        discussion.scheduled_at = data["scheduled_at"]
    elif action == "hold":
        held_at = data.get("held_at") or now
        if held_at > now + CLOCK_SLACK:
            raise Unprocessable(errors={"held_at": [_("This time is in the future.")]})
        if held_at < discussion.created_at:
            raise Unprocessable(errors={"held_at": [_("This time is before the discussion was requested.")]})
        discussion.held_at = held_at
    elif action == "sign":
        record = {k: data[k] for k in ("summary", "conclusion", "decision") if data.get(k)}
        _check_record_rules(discussion, record)
        for key, value in record.items():
            setattr(discussion, key, value)
        discussion.signed_at = when_it_happened(
            "signed_at", data.get("signed_at"), now=now, not_before=discussion.held_at or discussion.created_at,
            too_early=_("A record cannot be signed before the discussion was held."),
            unlimited=can(actor, "backdate_freely"))
        discussion.signed_recorded_at, discussion.signed_by_user_id = now, actor.user_id
    elif action == "cancel":
        discussion.cancel_reason = data["reason"]
    discussion.updated_at = now
    detail = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in data.items()
              if k in ("scheduled_at", "held_at", "reason", "decision")}
    times = audit.happened_detail(discussion.signed_at, now) if action == "sign" else {}
    DISCUSSION_WORKFLOW.apply(discussion, action, actor=actor, now=now, data=data,
                              audit_detail={"data": detail, **times})
    invited = [p.user_id for p in discussion.participants if p.user_id is not None and p.user_id != actor.user_id]
    if action == "schedule":
        notify(invited, "mdt.scheduled", {"date": discussion.scheduled_at.isoformat()}, now=now, link=link(discussion))
    elif action == "sign":
        notify(invited, "mdt.signed", now=now, link=link(discussion))
        _tell_sign_off(discussion, told={actor.user_id, *invited}, now=now)
    return discussion


def removed_invitees(discussion: Discussion) -> list[int]:
    """Users who were on the participant list and were taken off it (and not added back)."""
    present = {p.user_id for p in discussion.participants}
    removed = set()
    for entry in timeline(discussion):
        if entry.action == "mdt_participant.remove":
            user_id = (json.loads(entry.detail).get("before") or {}).get("user_id")
            if user_id is not None and user_id not in present:
                removed.add(user_id)
    return sorted(removed)


def _tell_sign_off(discussion: Discussion, *, told: set, now: datetime) -> None:
    """Tell the quality office, and anyone taken off the list after being invited, that the record is signed:
    who attended is recorded by the organisers, so someone outside the meeting can check it."""
    params = {"id": discussion.id, "kind": discussion.kind}
    removed = [uid for uid in removed_invitees(discussion) if uid not in told]
    notify(removed, "mdt.signed_after_removal", params, now=now, link=link(discussion))
    quality = [uid for uid in users_with_role(Role.QUALITY) if uid not in told and uid not in removed]
    notify(quality, "mdt.signed_for_review", params, now=now, link=link(discussion))



def add_participant(discussion: Discussion, data: dict, *, actor: Actor, now: datetime) -> Participant:
    """Invite a colleague (a user), someone from the staff list (with or without an account) or an outside
    expert (by name); the chair role makes them chair; an invited user is notified."""
    check_editable(discussion, actor, what="manage")
    errors = {}
    user = db.session.get(User, data["user_id"]) if data.get("user_id") else None
    staff = db.session.get(Staff, data["staff_id"]) if data.get("staff_id") else None
    if data.get("user_id") and (user is None or not user.is_active):
        errors["user_id"] = [_("Unknown user.")]
    if data.get("staff_id") and (staff is None or not staff.is_active):
        errors["staff_id"] = [_("Unknown staff member.")]
    elif staff is not None and staff.user_id is not None:
        if user is not None and user.id != staff.user_id:
            errors["staff_id"] = [_("Choose either a colleague or a staff member, not both.")]
        elif user is None:  # a listed person with an account takes part as that colleague
            user = db.session.get(User, staff.user_id)
            if not user.is_active:
                errors["staff_id"] = [_("Unknown staff member.")]
    elif staff is not None and user is not None:
        errors["staff_id"] = [_("Choose either a colleague or a staff member, not both.")]
    if staff is None and user is not None:
        staff = staff_of(user)
    if user is None and staff is None and not (data.get("name") or "").strip():
        errors["name"] = [_("Choose a colleague or a staff member, or write the outside expert's name.")]
    if data.get("role") == "chair" and user is None:
        errors["role"] = [_("The chair must be a qcflow user.")]
    elif data.get("role") == "chair" and user is not None and (refusal := chairrefusal(user)):
        errors["role"] = [refusal]
    errors.update(_participant_errors(user, staff, {k: v for k, v in data.items() if v not in (None, "")}))  # blank: default
    if errors:
        raise Unprocessable(errors=errors)
    typed = _name_key(data.get("name")) if user is None and staff is None else None
    if any((user is not None and p.user_id == user.id) or (staff is not None and p.staff_id == staff.id)
           or (typed and _name_key(p.name) == typed) for p in discussion.participants):
        name = user.display_name if user is not None else staff.name if staff is not None else data["name"].strip()
        raise Conflict(_("%(name)s is already a participant.", name=name))
    listed_name = user.display_name if user is not None else (staff.name if staff is not None else "")
    participant = Participant(
        discussion_id=discussion.id, user_id=user.id if user else None, staff_id=staff.id if staff else None,
        name=(data.get("name") or "").strip() or listed_name,
        department_id=data.get("department_id") or (user.department_id if user else None)
        or (staff.department_id if staff else None),
        specialty=data.get("specialty") or (staff.specialty if staff else None),
        role=data.get("role") or "member", attended=bool(data.get("attended")), created_at=now)
    discussion.participants.append(participant)
    if participant.role == "chair":
        discussion.chair_user_id = user.id
        _sync_chair(discussion, now)
    _touch(discussion, now)
    audit.record(actor.audit_name, "mdt_participant.add", "mdt_discussion", discussion.id, now,
                 after={"participant_id": participant.id, "user_id": participant.user_id,
                        "staff_id": participant.staff_id, "role": participant.role,
                        "specialty": participant.specialty, "department_id": participant.department_id})
    _tell_invited(discussion, [participant.user_id], actor=actor, now=now)
    return participant


def update_participant(discussion: Discussion, participant: Participant, data: dict, *, actor: Actor,
                       now: datetime, expected_version: int | None = None) -> Participant:
    """Record attendance, or correct a participant's specialty, department or role; a participant
    may confirm (or withdraw) their own attendance and nothing else."""
    own_attendance = (participant.user_id is not None and participant.user_id == actor.user_id
                      and set(data) <= {"attended"} and may(discussion, actor, "confirm_own_attendance"))
    check_editable(discussion, actor, expected_version, what="confirm_own_attendance" if own_attendance else "manage")
    if own_attendance and discussion.state != DiscussionState.HELD:
        raise Conflict(_("You can confirm your attendance once the discussion has been held."), state=discussion.state)
    user = db.session.get(User, participant.user_id) if participant.user_id is not None else None
    staff = db.session.get(Staff, participant.staff_id) if participant.staff_id is not None else staff_of(user)
    errors = _participant_errors(user, staff, data)
    if data.get("role") == "chair":
        refusal = _("The chair must be a qcflow user.") if user is None else chairrefusal(user)
        if refusal:
            errors["role"] = [refusal]
    if errors:
        raise Unprocessable(errors=errors)
    if data.get("role") == "chair":
        discussion.chair_user_id = participant.user_id
    elif participant.role == "chair" and data.get("role") not in (None, "chair"):
        discussion.chair_user_id = None
    changed = {k: v for k, v in data.items() if k in ("attended", "specialty", "department_id", "role")
               and getattr(participant, k) != v}
    for key, value in changed.items():
        setattr(participant, key, value)
    _sync_chair(discussion, now)
    _touch(discussion, now)
    audit.record(actor.audit_name, "mdt_participant.update", "mdt_discussion", discussion.id, now,
                 participant_id=participant.id, after=changed)
    return participant


def record_attendance(discussion: Discussion, attended_ids, *, actor: Actor, now: datetime,
                      expected_version: int | None = None) -> Discussion:
    """Set who attended in one go (the page's checkboxes): the listed participants, nobody else."""
    check_editable(discussion, actor, expected_version, what="manage")
    attended_ids = set(attended_ids)
    for participant in discussion.participants:
        participant.attended = participant.id in attended_ids
    _touch(discussion, now)
    audit.record(actor.audit_name, "mdt_participant.attendance", "mdt_discussion", discussion.id, now,
                 attended=sorted(p.id for p in discussion.participants if p.attended))
    return discussion


def remove_participant(discussion: Discussion, participant: Participant, *, actor: Actor, now: datetime) -> None:
    """Take someone off the list (before signing); removing the chair leaves the discussion without one."""
    check_editable(discussion, actor, what="manage")
    if participant.user_id is not None and participant.user_id == discussion.chair_user_id:
        discussion.chair_user_id = None
    discussion.participants.remove(participant)
    _touch(discussion, now)
    audit.record(actor.audit_name, "mdt_participant.remove", "mdt_discussion", discussion.id, now,
                 before={"participant_id": participant.id, "user_id": participant.user_id, "name": participant.name})



def add_addendum(discussion: Discussion, text: str, *, actor: Actor, now: datetime) -> Addendum:
    """Append a note to a signed record (the record itself never changes after signing)."""
    if discussion.state != DiscussionState.SIGNED:
        raise Conflict(_("Addenda are added to signed records; until then, change the record itself."),
                       state=discussion.state)
    if not may(discussion, actor, "add_addendum") or actor.user_id is None:
        raise Forbidden()
    text = (text or "").strip()
    if not text:
        raise Unprocessable(errors={"text": [_("Write the addendum.")]})
    addendum = Addendum(discussion_id=discussion.id, author_user_id=actor.user_id, text=text, created_at=now)
    db.session.add(addendum)
    db.session.flush()
    audit.record(actor.audit_name, "mdt_addendum.add", "mdt_discussion", discussion.id, now, addendum_id=addendum.id)
    db.session.refresh(discussion, ["addenda"])
    return addendum



def _record_alert(kind: str, now: datetime, *, operation_id: int | None = None,
                  discussion_id: int | None = None) -> None:
    """Write down that an alert is sent; a second scheduler sending it too fails on the unique key."""
    db.session.add(Alert(kind=kind, operation_id=operation_id, discussion_id=discussion_id, sent_at=now))
    db.session.flush()


def remind_missing_preop(now: datetime) -> int:
    """Remind the surgeon, once per operation, of a grade-4 operation due within MDT_REMINDER_HOURS
    without a signed pre-operative discussion."""
    config = current_app.config
    soon = now + timedelta(hours=config["MDT_REMINDER_HOURS"])
    operations = db.session.scalars(sa.select(Operation).where(
        Operation.state.in_([OperationState.PLANNED.value, OperationState.BOOKED.value]),
        sa.or_(Operation.grade == 4, Operation.is_restricted_technology.is_(True)),
        Operation.planned_at > now, Operation.planned_at <= soon,
        ~sa.exists().where(Alert.kind == "preop_missing", Alert.operation_id == Operation.id),
    ).order_by(Operation.planned_at))
    sent = 0
    for operation in operations:
        if signed_preop_discussion(operation, window_days=config["MDT_VALIDITY_DAYS"]) is not None:
            continue
        _record_alert("preop_missing", now, operation_id=operation.id)
        surgeon_user = operation.surgeon.user_id if operation.surgeon is not None else None
        recipients = [surgeon_user] if surgeon_user else users_with_role(Role.DEPT_HEAD, operation.department_id)
        audit.record("system:mdt.remind_preop", "mdt_alert.preop_missing", "operation", operation.id, now,
                     planned_at=operation.planned_at.isoformat(), recipients=sorted(recipients))
        discussion = _existing(K.PREOP_LEVEL4, f"preop_level4:operation:{operation.id}", operation_id=operation.id)
        notify(recipients, "mdt.preop_missing", {"date": operation.planned_at.isoformat()}, now=now,
               link=link(discussion) if discussion else f"/operations/{operation.id}")
        sent += 1
    return sent


def escalate_overdue(now: datetime) -> int:
    """Escalate each discussion past its due time and not yet signed, once, to the organising
    department's heads and the quality office."""
    overdue = db.session.scalars(sa.select(Discussion).where(
        overdue_clause(now), ~sa.exists().where(Alert.kind == "overdue", Alert.discussion_id == Discussion.id),
    ).order_by(Discussion.due_at))
    sent = 0
    for discussion in overdue:
        _record_alert("overdue", now, discussion_id=discussion.id)
        audit.record("system:mdt.escalate", "mdt_discussion.overdue", "mdt_discussion", discussion.id, now,
                     due_at=discussion.due_at.isoformat(), state=discussion.state)
        notify(users_with_role(Role.DEPT_HEAD, discussion.department_id) + users_with_role(Role.QUALITY),
               "mdt.overdue", {"id": discussion.id, "date": discussion.due_at.isoformat()}, now=now, link=link(discussion))
        sent += 1
    return sent
