"""Regional mode's tables. The hospital side keeps its outbox (`region_outbox`); the centre keeps its hospitals
(`region_hospital`), every version of every submission (`region_submission`) and the monthly values of the
submissions (`region_value`, the current version's flagged for the comparisons). No table holds a patient."""
from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Mapped, mapped_column

from qcflow.core.db import Base, Versioned, enum_check
from qcflow.core.i18n import register_labels
from qcflow.indicators.models import HOSPITAL_LEVELS

#: What a hospital sends: a month's indicator values, or the JSON twin of an archived annual or quarterly form.
KINDS = ("month", "annual_form", "quarterly_form")
#: The hospital side's view of one submission (region/workflow.py holds the transitions).
OUTBOX_STATES = ("queued", "sent", "waiting", "accepted", "rejected")
OWNERSHIPS = ("public", "private")

register_labels({
    "region_kind": {"month": _l("Monthly values"), "annual_form": _l("Annual form"),
                    "quarterly_form": _l("Quarterly report")},
    "region_outbox_state": {"queued": _l("Queued"), "sent": _l("Sent, awaiting the answer"),
                            "waiting": _l("Waiting: the centre did not answer"), "accepted": _l("Accepted"),
                            "rejected": _l("Rejected by the centre")},
    "region_ownership": {"public": _l("Public"), "private": _l("Private")},
})


class RegionOutbox(Versioned, Base):
    """Hospital side: one version of one submission to the centre, from queued to accepted or rejected.

    The document is frozen when queued (the canonical JSON the centre receives, without the envelope); a
    correction after it was queued is a new row with the next version. Sending signs the envelope anew at each
    attempt (its signing time changes, the document does not)."""

    __tablename__ = "region_outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(20))
    #: "2026-03" (month), "2026" (annual form), "2026-Q1" (quarterly report).
    period: Mapped[str] = mapped_column(sa.String(7))
    #: The envelope's version: 1, 2, … per (kind, period); a later one replaces the earlier at the centre. (The
    #: row's `version` is its optimistic-locking counter.)
    revision: Mapped[int]
    #: The canonical JSON document (region.protocol.canonical) and its SHA-256.
    document: Mapped[str] = mapped_column(sa.Text)
    digest: Mapped[str] = mapped_column(sa.String(64))
    state: Mapped[str] = mapped_column(sa.String(10))
    attempts: Mapped[int] = mapped_column(default=0)
    #: When the sending job may try again (None: not before someone asks; set while queued or waiting).
    next_attempt_at: Mapped[datetime | None]
    last_attempt_at: Mapped[datetime | None]
    #: Why the last attempt failed (the connection's error or the centre's HTTP status), in words.
    last_error: Mapped[str | None] = mapped_column(sa.String(500))
    #: The centre's answer: its receipt (accepted) or its reasons (rejected), as the JSON it sent.
    answer: Mapped[dict | None] = mapped_column(sa.JSON)
    answered_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    #: Audit name of who queued it (a user, or the job).
    created_by: Mapped[str] = mapped_column(sa.String(80))

    __table_args__ = (
        sa.UniqueConstraint("kind", "period", "revision", name="uq_region_outbox_revision"),
        sa.Index("ix_region_outbox_due", "state", "next_attempt_at"),
        enum_check("kind", KINDS),
        enum_check("state", OUTBOX_STATES),
    )


class RegionHospital(Versioned, Base):
    """Centre side: a hospital that sends to this centre, and the public key its submissions are signed with."""

    __tablename__ = "region_hospital"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The code the hospital sends itself as (its HOSPITAL_CODE), e.g. the institution's registration code.
    code: Mapped[str] = mapped_column(sa.String(40), unique=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    name_en: Mapped[str | None] = mapped_column(sa.String(100))
    level: Mapped[str] = mapped_column(sa.String(10))
    ownership: Mapped[str] = mapped_column(sa.String(10))
    #: City or county, as the centre groups its hospitals.
    region: Mapped[str] = mapped_column(sa.String(60))
    #: The hospital's Ed25519 public key, base64 of its 32 bytes (what `region keygen` printed there).
    public_key: Mapped[str] = mapped_column(sa.String(64))
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(sa.String(80))

    __table_args__ = (enum_check("level", HOSPITAL_LEVELS), enum_check("ownership", OWNERSHIPS))

    def label(self, language: str) -> str:
        return self.name_en if language == "en" and self.name_en else self.name


class RegionSubmission(Base):
    """Centre side: one received version of one submission, kept for ever (append-only); the newest version of a
    (hospital, kind, period) is the current one."""

    __tablename__ = "region_submission"

    id: Mapped[int] = mapped_column(primary_key=True)
    hospital_id: Mapped[int] = mapped_column(sa.ForeignKey("region_hospital.id"))
    kind: Mapped[str] = mapped_column(sa.String(20))
    period: Mapped[str] = mapped_column(sa.String(7))
    #: The envelope's version (the hospital's number for this kind and period).
    revision: Mapped[int]
    #: First and last month the period covers.
    starts_on: Mapped[date]
    ends_on: Mapped[date]
    document: Mapped[str] = mapped_column(sa.Text)
    digest: Mapped[str] = mapped_column(sa.String(64))
    #: The envelope's signature (base64) and signing time, as received.
    signature: Mapped[str] = mapped_column(sa.String(100))
    signed_at: Mapped[datetime]
    received_at: Mapped[datetime]
    is_current: Mapped[bool] = mapped_column(default=True)

    __table_args__ = (
        sa.UniqueConstraint("hospital_id", "kind", "period", "revision", name="uq_region_submission_revision"),
        sa.Index("ix_region_submission_period", "kind", "period", "hospital_id"),
        sa.Index("ix_region_submission_received", "received_at", "id"),
        enum_check("kind", KINDS),
    )


class RegionValue(Base):
    """Centre side: one indicator's value of one month as a hospital sent it. The rows of the current version
    of each month carry is_current; the comparisons read only those (a partial index)."""

    __tablename__ = "region_value"

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    submission_id: Mapped[int] = mapped_column(sa.ForeignKey("region_submission.id"), index=True)
    hospital_id: Mapped[int] = mapped_column(sa.ForeignKey("region_hospital.id"))
    code: Mapped[str] = mapped_column(sa.String(60))
    month_on: Mapped[date]
    numerator: Mapped[int | None] = mapped_column(sa.BigInteger)
    denominator: Mapped[int | None] = mapped_column(sa.BigInteger)
    value: Mapped[float | None] = mapped_column(sa.Float)
    is_current: Mapped[bool] = mapped_column(default=True)

    __table_args__ = (
        sa.Index("ix_region_value_current", "code", "month_on", "hospital_id",
                 sqlite_where=sa.text("is_current"), postgresql_where=sa.text("is_current")),
        sa.Index("ix_region_value_hospital", "hospital_id", "month_on"),
    )


class RegionReminder(Base):
    """Centre side: the reminder sent for a month that hospitals still owe (job region.remind_missing), once per
    month."""

    __tablename__ = "region_reminder"

    id: Mapped[int] = mapped_column(primary_key=True)
    month_on: Mapped[date] = mapped_column(unique=True)
    sent_at: Mapped[datetime]
    #: How many hospitals had not sent the month.
    missing: Mapped[int]
