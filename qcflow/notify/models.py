"""In-app notifications."""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from qcflow.core.db import Base


class Notification(Base):
    __tablename__ = "notification"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id", ondelete="CASCADE"))
    #: Machine code of what happened, e.g. "event.deadline_breached".
    kind: Mapped[str] = mapped_column(sa.String(60))
    #: What to say, rendered in the reader's language (qcflow.notify.messages): codes, ids, numbers, ISO times.
    params: Mapped[dict | None] = mapped_column(sa.JSON)
    #: The text of rows written before `params` (shown as stored); empty on newer rows.
    title: Mapped[str] = mapped_column(sa.String(200), default="")
    body: Mapped[str] = mapped_column(sa.Text, default="")
    #: Relative link to the object in qcflow.
    link: Mapped[str | None] = mapped_column(sa.String(300))
    created_at: Mapped[datetime]
    read_at: Mapped[datetime | None]

    __table_args__ = (sa.Index("ix_notification_user_id_read_at", "user_id", "read_at"),)
