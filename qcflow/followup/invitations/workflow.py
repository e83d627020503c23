"""An invitation's states (followup/invitations): queued until a sender accepts it, sent, delivered (the
gateway's report), opened (the patient passed the second factor), answered; expired when the window closed
unanswered, closed when the call was closed another way first, failed when no sender could send it."""
from __future__ import annotations

from enum import StrEnum

from qcflow.core.workflow import Transition as T, Workflow


class InvitationState(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    OPENED = "opened"
    ANSWERED = "answered"
    EXPIRED = "expired"
    CLOSED = "closed"
    FAILED = "failed"


S = InvitationState
#: The sending job, the gateway's delivery report and the patient's page act as the system; nurses act on the call.
SYSTEM = {"system"}
#: States in which the link works and reminders may still go.
LIVE = {S.QUEUED, S.SENT, S.DELIVERED, S.OPENED}

INVITATION_WORKFLOW = Workflow(
    "followup_invitation",
    InvitationState,
    [
        #  action     from                   to            roles
        T("send",    {S.QUEUED},             S.SENT,       SYSTEM),
        T("deliver", {S.SENT},               S.DELIVERED,  SYSTEM),
        T("open",    {S.QUEUED, S.SENT, S.DELIVERED}, S.OPENED, SYSTEM),
        T("answer",  {S.OPENED},             S.ANSWERED,   SYSTEM),
        T("expire",  LIVE | {S.FAILED},      S.EXPIRED,    SYSTEM),
        T("close",   LIVE | {S.FAILED},      S.CLOSED,     SYSTEM),
        T("fail",    {S.QUEUED},             S.FAILED,     SYSTEM),
    ],
    initial=S.QUEUED,
    table="followup_invitation",
    phases={"live": LIVE, "ended": {S.ANSWERED, S.EXPIRED, S.CLOSED, S.FAILED}},
)
