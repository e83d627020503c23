"""The log of scheduled job runs."""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from qcflow.core.db import Base, enum_check


class JobRun(Base):
    __tablename__ = "job_run"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[str] = mapped_column(sa.String(80))
    #: The "now" the job ran for (may be in the past or future with `tick --now`).
    run_for_at: Mapped[datetime]
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(sa.String(10))
    #: What the job reports (e.g. rows touched) or the error.
    result: Mapped[str] = mapped_column(sa.Text, default="")

    __table_args__ = (
        enum_check("status", ("ok", "error")),
        sa.Index("ix_job_run_job_id_started_at", "job_id", "started_at"),
    )
