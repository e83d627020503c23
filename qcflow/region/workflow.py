"""The hospital side's submission to its centre (docs/region.md, Sending): queued when a month or a form is
ready, sent by the job (or at once, when the quality office asks), then accepted or rejected by the centre, or
waiting when the centre did not answer (the job tries again with back-off)."""
from __future__ import annotations

from enum import StrEnum

from flask_babel import gettext as _

from qcflow.auth.permissions import PERMISSIONS
from qcflow.core.workflow import Transition as T, Workflow


class OutboxState(StrEnum):
    #: Being created: never stored.
    NEW = "new"
    QUEUED = "queued"
    SENT = "sent"
    WAITING = "waiting"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


S = OutboxState
SENDERS = PERMISSIONS["region_submissions"] | {"system"}

OUTBOX_WORKFLOW = Workflow(
    "region_outbox",
    OutboxState,
    [
        #  action     from                          to           roles
        T("queue",   {S.NEW},                       S.QUEUED,    SENDERS),
        # Marked before the request leaves: a crash after it leaves the row "sent", and the next run sends the same
        # version again (the centre answers a repeat of a version it holds with its receipt).
        T("send",    {S.QUEUED, S.WAITING, S.SENT}, S.SENT,      SENDERS),
        T("accept",  {S.SENT},                      S.ACCEPTED,  SENDERS),
        T("reject",  {S.SENT},                      S.REJECTED,  SENDERS),
        T("wait",    {S.SENT},                      S.WAITING,   SENDERS),
        # After the cause is fixed at the centre (a key not yet registered, a hospital retired by mistake), the
        # quality office sends the same version again; a value the centre refused is corrected in a new version.
        T("requeue", {S.REJECTED},                  S.QUEUED,    SENDERS),
    ],
    initial=S.NEW,
    refusal=lambda action: _("Only the quality office (or the sending job) may send submissions to the centre."),
    table="region_outbox",
    phases={
        "to_send": {S.QUEUED, S.WAITING, S.SENT},
        "answered": {S.ACCEPTED, S.REJECTED},
    },
)
