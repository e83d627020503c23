"""Read side of discussions: what an actor may see, lists, the pending ones, the minutes' context."""
from __future__ import annotations

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from qcflow.auth.models import Department, User
from qcflow.auth.permissions import get_scoped_or_404, scoped, sees_all_departments
from qcflow.clinical.models import Operation, Patient
from qcflow.clinical.queries import patients_named
from qcflow.core.actors import Actor
from qcflow.core.audit import AuditEntry
from qcflow.core.errors import NotFound
from qcflow.core.pagination import keyset_page
from qcflow.extensions import db
from qcflow.mdt.models import Discussion, Participant
from qcflow.mdt.workflow import OPEN_STATES

SCOPE = [Discussion.department_id]


def involved(user_id: int | None):
    """Discussions a user chairs or is invited to."""
    invited = sa.select(Participant.discussion_id).where(Participant.user_id == user_id)
    return sa.or_(Discussion.chair_user_id == user_id, Discussion.id.in_(invited))


def visible(stmt, actor: Actor):
    """Restrict a select to the discussions the actor may see: their department's, and those they take part in."""
    if sees_all_departments(actor):
        return stmt
    own_department = Discussion.id.in_(scoped(sa.select(Discussion.id), SCOPE, actor))
    return stmt.where(sa.or_(own_department, involved(actor.user_id)) if actor.user_id else own_department)


def takes_part(discussion: Discussion, user_id: int | None) -> bool:
    if user_id is None:
        return False
    return discussion.chair_user_id == user_id or any(p.user_id == user_id for p in discussion.participants)


def load_discussion(discussion_id: int, actor: Actor) -> Discussion:
    """A discussion of the actor's department, or one they chair or are invited to (others are 404)."""
    discussion = db.session.get(Discussion, discussion_id)
    if discussion is not None and takes_part(discussion, actor.user_id):
        return discussion
    return get_scoped_or_404(Discussion, discussion_id, actor)


def load_participant(discussion: Discussion, participant_id: int) -> Participant:
    participant = next((p for p in discussion.participants if p.id == participant_id), None)
    if participant is None:
        raise NotFound()
    return participant


def own_participant(discussion: Discussion, user_id: int | None) -> Participant:
    """The actor's own row of the participant list (not invited: 404)."""
    participant = next((p for p in discussion.participants if user_id is not None and p.user_id == user_id), None)
    if participant is None:
        raise NotFound()
    return participant


def list_discussions(actor: Actor, *, kind=None, state=None, patient=None, cursor=None,
                     limit=50) -> tuple[list[Discussion], int | None]:
    """Discussions the actor may see, newest first, keyset-paginated by id; optionally of one kind, state
    or patient (HIS id or record number)."""
    stmt = visible(sa.select(Discussion), actor)
    if kind:
        stmt = stmt.where(Discussion.kind == kind)
    if state:
        stmt = stmt.where(Discussion.state == state)
    if patient:
        stmt = stmt.where(Discussion.patient_id.in_(patients_named(patient)))
    if cursor:
        stmt = stmt.where(Discussion.id < cursor)
    stmt = stmt.order_by(Discussion.id.desc())
    return keyset_page(lambda n: db.session.scalars(stmt.limit(n)), limit, key=lambda discussion: discussion.id)


def pending_for(actor: Actor, limit: int = 20) -> list[Discussion]:
    """Open discussions the actor chairs or is invited to, the earliest due first."""
    if actor.user_id is None:
        return []
    stmt = sa.select(Discussion).where(involved(actor.user_id), Discussion.state.in_([s.value for s in OPEN_STATES]))
    return list(db.session.scalars(stmt.order_by(sa.nulls_last(Discussion.due_at.asc()), Discussion.id).limit(limit)))


def subjects_of(discussions) -> dict[int, dict]:
    """Whom and what each discussion is about, for lists that must tell them apart: the patient's name and
    the operation's procedure and planned time (by discussion id; missing ones are None)."""
    patients = names_of(Patient, [d.patient_id for d in discussions])
    operations = names_of(Operation, [d.operation_id for d in discussions])
    subjects = {}
    for d in discussions:
        operation = operations.get(d.operation_id)
        subjects[d.id] = {"patient": patients[d.patient_id].name if d.patient_id in patients else None,
                          "procedure": procedure_name(operation) if operation is not None else None,
                          "planned_at": operation.planned_at if operation is not None else None}
    return subjects


def timeline(discussion: Discussion) -> list[AuditEntry]:
    return list(db.session.scalars(sa.select(AuditEntry).where(
        AuditEntry.object_type == "mdt_discussion", AuditEntry.object_id == str(discussion.id))
        .order_by(AuditEntry.seq)))


def names_of(model, ids) -> dict:
    """Display rows by id (departments, users) for the ids a page shows."""
    ids = {i for i in ids if i is not None}
    if not ids:
        return {}
    return {row.id: row for row in db.session.scalars(sa.select(model).where(model.id.in_(ids)))}


def record_context(discussion: Discussion) -> dict:
    """What the discussion page and the minutes show besides the discussion itself."""
    users = names_of(User, [discussion.chair_user_id, discussion.signed_by_user_id, discussion.requested_by_user_id,
                            *(a.author_user_id for a in discussion.addenda)])
    departments = names_of(Department, [discussion.department_id, *(p.department_id for p in discussion.participants)])
    operation = db.session.get(Operation, discussion.operation_id) if discussion.operation_id else None
    return {
        "patient": db.session.get(Patient, discussion.patient_id) if discussion.patient_id else None,
        "operation": operation,
        "question": discussion.question or automatic_question(discussion.kind, operation),
        "users": users,
        "departments": departments,
    }


#: The question of a discussion qcflow requests by itself, in the reader's language (stored empty:
#: stored text would stay in the language of whoever happened to trigger the request).
AUTOMATIC_QUESTIONS = {
    "preop_level4": _l("Pre-operative discussion: %(procedure)s"),
    "case_review": _l("Unplanned reoperation: %(procedure)s"),
}


def automatic_question(kind: str, operation: Operation | None) -> str:
    if operation is None or kind not in AUTOMATIC_QUESTIONS:
        return ""
    return str(AUTOMATIC_QUESTIONS[kind]) % {"procedure": procedure_name(operation)}


def procedure_name(operation: Operation) -> str:
    return operation.procedure.name if operation.procedure is not None else operation.procedure_code
