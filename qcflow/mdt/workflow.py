"""The discussion workflow (DESIGN §7): requested → scheduled → held → signed, or cancelled."""
from __future__ import annotations

from enum import StrEnum

from flask_babel import gettext as _

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


def discussion_relations(discussion, actor):
    if actor.user_id is not None and actor.user_id == discussion.chair_user_id:
        return {"chair"}
    return set()


S = DiscussionState
#: Who may request and record discussions (DESIGN §3).
RECORDERS = {"clinician", "dept_head", "quality"}
#: Who may sign: the discussion's chair, department heads and the quality office.
SIGNERS = {"chair", "dept_head", "quality"}

DISCUSSION_WORKFLOW = Workflow(
    "mdt_discussion",
    DiscussionState,
    [
        #  action      from                                to            roles       guard
        T("schedule",  {S.REQUESTED, S.SCHEDULED},         S.SCHEDULED,  RECORDERS,  schedule_guard),
        T("hold",      {S.SCHEDULED},                      S.HELD,       RECORDERS),
        T("sign",      {S.HELD},                           S.SIGNED,     SIGNERS,    sign_guard),
        T("cancel",    {S.REQUESTED, S.SCHEDULED, S.HELD}, S.CANCELLED,  RECORDERS,  cancel_guard),
    ],
    relations=discussion_relations,
    initial=S.REQUESTED,
)

#: States in which a discussion is still to be held or signed (lists, deadlines, escalation).
OPEN_STATES = (S.REQUESTED, S.SCHEDULED, S.HELD)
#: States after which nothing but addenda may change.
FINAL_STATES = (S.SIGNED, S.CANCELLED)
