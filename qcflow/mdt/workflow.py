"""The discussion workflow (DESIGN §7): requested → scheduled → held → signed, or cancelled."""
from __future__ import annotations

from enum import StrEnum

from flask_babel import gettext as _

from qcflow.auth.permissions import DISCUSSION_PERMISSIONS, PERMISSIONS
from qcflow.core.workflow import Transition as T, Workflow


class DiscussionState(StrEnum):
    REQUESTED = "requested"
    SCHEDULED = "scheduled"
    HELD = "held"
    SIGNED = "signed"
    CANCELLED = "cancelled"


def schedule_guard(discussion, data):
    return None if data.get("scheduled_at") else _("Required for this step: %(fields)s.", fields="scheduled_at")


def sign_guard(discussion, data):
    """Chair, conclusion, the decision of a pre-operative discussion and the quorum of attendees."""
    from qcflow.mdt.services import sign_blockers

    blockers = sign_blockers(discussion, data)
    return "; ".join(blockers) if blockers else None


def cancel_guard(discussion, data):
    return None if data.get("reason") else _("Required for this step: %(fields)s.", fields="reason")


def discussion_relations(discussion, actor) -> set[str]:
    """How the actor stands to this discussion: organiser, organising_head, chair, participant.

    The organisers are the organising department's clinicians and heads and the quality office;
    what each relation may do is `DISCUSSION_PERMISSIONS` (qcflow/auth/permissions.py).
    """
    relations = set()
    organising_department = actor.department_id is not None and actor.department_id == discussion.department_id
    if actor.roles & PERMISSIONS["all_departments"] or (organising_department and actor.roles & PERMISSIONS["mdt"]):
        relations.add("organiser")
    if organising_department and "dept_head" in actor.roles:
        relations.add("organising_head")
    if actor.user_id is not None:
        if actor.user_id == discussion.chair_user_id:
            relations.add("chair")
        if any(p.user_id == actor.user_id for p in discussion.participants):
            relations.add("participant")
    return relations


def refusal(what: str) -> str:
    """Why someone may not do `what` (a DISCUSSION_PERMISSIONS capability or a step), and who may."""
    what = STEP_NEEDS.get(what, what)
    if what in ("manage", "conduct"):
        return _("Only the organising department's clinicians and heads and the quality office manage a "
                 "discussion's participants, chair, attendance and steps.")
    if what == "sign":
        return _("Only the chair, a head of the organising department or the quality office signs the record.")
    return _("Only the organising department, the chair and the quality office record the discussion.")


S = DiscussionState
MAY = DISCUSSION_PERMISSIONS
SYSTEM = frozenset({"system"})
#: The capability each step needs (the table below uses the same sets).
STEP_NEEDS = {"schedule": "conduct", "hold": "conduct", "sign": "sign", "cancel": "manage"}

DISCUSSION_WORKFLOW = Workflow(
    "mdt_discussion",
    DiscussionState,
    [
        #  action      from                                to            relations        guard
        T("schedule",  {S.REQUESTED, S.SCHEDULED},         S.SCHEDULED,  MAY["conduct"],  schedule_guard),
        T("hold",      {S.SCHEDULED},                      S.HELD,       MAY["conduct"]),
        T("sign",      {S.HELD},                           S.SIGNED,     MAY["sign"],     sign_guard),
        T("cancel",    {S.REQUESTED, S.SCHEDULED, S.HELD}, S.CANCELLED,  MAY["manage"],   cancel_guard),
        # qcflow itself, when the operation a pre-operative discussion was requested for is cancelled or performed
        T("withdraw",  {S.REQUESTED, S.SCHEDULED},         S.CANCELLED,  SYSTEM),
    ],
    relations=discussion_relations,
    initial=S.REQUESTED,
    refusal=refusal,
    table="mdt_discussion",
    # a signed record is final: it takes addenda and its minutes carry the signature
    phases={"signed": {S.SIGNED}},
)

#: States in which a discussion is still to be held or signed (lists, deadlines, escalation).
OPEN_STATES = (S.REQUESTED, S.SCHEDULED, S.HELD)
#: States after which nothing but addenda may change.
FINAL_STATES = (S.SIGNED, S.CANCELLED)
