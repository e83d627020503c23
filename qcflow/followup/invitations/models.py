"""An invitation to answer a follow-up call online, and its delivery log."""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Mapped, mapped_column, relationship

from qcflow.core.db import Base, Versioned, enum_check
from qcflow.core.i18n import register_labels
from qcflow.followup.invitations.workflow import LIVE, InvitationState

#: How the link reaches the patient (senders.py): the hospital's SMS gateway, its WeChat template-message
#: service, or e-mail (an e-mail-to-SMS gateway, or the patient's mailbox).
CHANNELS = ("sms", "wechat", "email")
#: What the patient confirms themselves with (not in the link): the year of birth, or the last four characters of
#: the ID number.
FACTORS = ("birth_year", "id_last4")
#: A message of the log: the invitation, a reminder, or the gateway's delivery report of one of them.
MESSAGE_KINDS = ("invitation", "reminder", "report")
MESSAGE_STATUSES = ("sent", "failed", "delivered", "undelivered")
#: The live states as the partial index's condition (a literal: SQL is never built from strings; a test checks it
#: names the states of LIVE).
LIVE_SQL = "state IN ('delivered', 'opened', 'queued', 'sent')"


class Invitation(Versioned, Base):
    """One call's invitation: the link's hash, what was sent when, and the patient's answers until a nurse
    confirms them (then the call holds them as its outcome)."""

    __tablename__ = "followup_invitation"

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(sa.ForeignKey("followup_task.id"), unique=True)
    #: Copies of the call's (the department scopes who may read the invitation).
    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("patient.id"), index=True)
    department_id: Mapped[int] = mapped_column(sa.ForeignKey("department.id"))
    #: The link's token is an HMAC of this seed under a key derived from SECRET_KEY (services.token_of): the
    #: database alone (a backup, a dump) gives no working link. Only the token's keyed hash is looked up.
    token_seed: Mapped[str] = mapped_column(sa.String(32))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    channel: Mapped[str] = mapped_column(sa.String(8))
    factor: Mapped[str] = mapped_column(sa.String(10))
    #: The language of the messages and the page's first view (the patient may switch).
    language: Mapped[str] = mapped_column(sa.String(5), default="zh")
    state: Mapped[str] = mapped_column(sa.String(10), default=InvitationState.QUEUED.value)
    created_at: Mapped[datetime]
    #: The window's close: the link stops working and nothing more is sent.
    expires_at: Mapped[datetime]
    #: When the job sends next (the invitation, a retry, a reminder); NULL when nothing more is to be sent.
    next_send_at: Mapped[datetime | None]
    #: Reminders sent so far; failed attempts of the message being sent.
    reminders_sent: Mapped[int] = mapped_column(default=0)
    send_failures: Mapped[int] = mapped_column(default=0)
    sent_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    opened_at: Mapped[datetime | None]
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    #: Wrong second factors in a row, and until when the page refuses to check another.
    wrong_factors: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]
    #: Answers being written (kept across reloads), then the answers sent (questions.ANSWER_FIELDS).
    draft: Mapped[dict | None] = mapped_column(sa.JSON)
    answers: Mapped[dict | None] = mapped_column(sa.JSON)
    #: Comma-separated alarming findings of the answers (questions.ALARMS); empty when none.
    alarms: Mapped[str] = mapped_column(sa.String(100), default="")

    task = relationship("Task", lazy="joined")

    __table_args__ = (
        enum_check("state", InvitationState),
        enum_check("channel", CHANNELS),
        enum_check("factor", FACTORS),
        # The sending job reads only what is due to be sent; the expiry reads only live invitations.
        sa.Index("ix_followup_invitation_next_send_at", "next_send_at",
                 sqlite_where=sa.text("next_send_at IS NOT NULL"), postgresql_where=sa.text("next_send_at IS NOT NULL")),
        sa.Index("ix_followup_invitation_live_expires_at", "expires_at",
                 sqlite_where=sa.text(LIVE_SQL), postgresql_where=sa.text(LIVE_SQL)),
        sa.Index("ix_followup_invitation_department_id_id", "department_id", "id"),
    )

    __scope_columns__ = ("department_id",)

    @property
    def alarm_list(self) -> list[str]:
        return [a for a in self.alarms.split(",") if a]


class InvitationMessage(Base):
    """The delivery log of an invitation, append-only: each send and each failure, and each delivery report."""

    __tablename__ = "followup_invitation_message"

    id: Mapped[int] = mapped_column(primary_key=True)
    invitation_id: Mapped[int] = mapped_column(sa.ForeignKey("followup_invitation.id"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(12))
    channel: Mapped[str] = mapped_column(sa.String(8))
    status: Mapped[str] = mapped_column(sa.String(12))
    at: Mapped[datetime]
    #: The gateway's id of the message (its delivery report names it).
    provider_message_id: Mapped[str | None] = mapped_column(sa.String(100), index=True)
    #: Why it failed, in the gateway's or the connection's words (no phone number, no link).
    detail: Mapped[str | None] = mapped_column(sa.String(300))

    __table_args__ = (enum_check("kind", MESSAGE_KINDS), enum_check("status", MESSAGE_STATUSES),
                      enum_check("channel", CHANNELS))


register_labels({
    "fu_invitation_state": {
        "queued": _l("Invitation queued"), "sent": _l("Invitation sent"), "delivered": _l("Invitation delivered"),
        "opened": _l("Opened by the patient"), "answered": _l("Answered online"), "expired": _l("Expired unanswered"),
        "closed": _l("Closed: the call was closed first"), "failed": _l("Could not be sent"),
    },
    "fu_invitation_channel": {"sms": _l("SMS"), "wechat": _l("WeChat"), "email": _l("E-mail")},
    "fu_message_kind": {"invitation": _l("Invitation"), "reminder": _l("Reminder"), "report": _l("Delivery report")},
    "fu_message_status": {"sent": _l("Sent"), "failed": _l("Failed"), "delivered": _l("Delivered"),
                          "undelivered": _l("Not delivered")},
    "fu_factor": {"birth_year": _l("Year of birth"), "id_last4": _l("Last four characters of the ID number")},
    "fu_recurrence": {"yes": _l("Yes"), "no": _l("No"), "unknown": _l("Not known yet")},
    "fu_condition": {"better": _l("Better than before"), "same": _l("About the same as before"),
                     "worse": _l("Worse than before")},
    #: The queue's short word on a call's invitation.
    "fu_invitation_brief": {
        "queued": _l("Invitation queued"), "sent": _l("Invitation sent"), "delivered": _l("Invitation sent"),
        "opened": _l("Opened, not answered"), "answered": _l("Answered online, to confirm"),
        "confirmed": _l("Answered online, confirmed"),
        "expired": _l("Not answered"), "closed": _l("Invitation closed"), "failed": _l("Invitation not sent"),
    },
})
