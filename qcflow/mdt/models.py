"""MDT and death-review discussions, their participants, addenda and once-only alerts."""
from __future__ import annotations

from datetime import date, datetime, time
from enum import StrEnum

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Mapped, mapped_column, relationship

from qcflow.core.i18n import register_labels
from qcflow.core.db import Base, Versioned, enum_check
from qcflow.mdt.workflow import DiscussionState


class DiscussionKind(StrEnum):
    PREOP_LEVEL4 = "preop_level4"
    PERIOPERATIVE_DEATH = "perioperative_death"
    DEATH_CASE = "death_case"
    CASE_REVIEW = "case_review"
    CANCER_BOARD = "cancer_board"
    DIFFICULT_CASE = "difficult_case"


#: The outcome of a pre-operative discussion.
DECISIONS = ("proceed", "modify_plan", "do_not_operate")
PARTICIPANT_ROLES = ("chair", "member", "secretary", "invited")
ALERT_KINDS = ("preop_missing", "overdue")


class Discussion(Versioned, Base):
    __tablename__ = "mdt_discussion"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(24))
    state: Mapped[str] = mapped_column(sa.String(12), default=DiscussionState.REQUESTED.value)
    #: The organising department; scoping follows it.
    department_id: Mapped[int] = mapped_column(sa.ForeignKey("department.id"), index=True)
    patient_id: Mapped[int | None] = mapped_column(sa.ForeignKey("patient.id"), index=True)
    operation_id: Mapped[int | None] = mapped_column(sa.ForeignKey("operation.id"), index=True)
    encounter_id: Mapped[int | None] = mapped_column(sa.ForeignKey("encounter.id"))
    event_id: Mapped[int | None] = mapped_column(sa.ForeignKey("adverse_event.id"), index=True)
    question: Mapped[str] = mapped_column(sa.Text, default="")
    chair_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"), index=True)
    summary: Mapped[str | None] = mapped_column(sa.Text)
    conclusion: Mapped[str | None] = mapped_column(sa.Text)
    #: preop_level4 only: proceed / modify_plan / do_not_operate.
    decision: Mapped[str | None] = mapped_column(sa.String(16))
    #: A disputed death (医疗纠纷) is due within 24 hours instead of 7 days.
    is_disputed: Mapped[bool] = mapped_column(default=False)
    due_at: Mapped[datetime | None]
    scheduled_at: Mapped[datetime | None]
    held_at: Mapped[datetime | None]
    #: When the record was signed (on paper during an outage: the time given when it is entered).
    signed_at: Mapped[datetime | None]
    #: When the signature was recorded in qcflow.
    signed_recorded_at: Mapped[datetime | None]
    signed_by_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))
    cancel_reason: Mapped[str | None] = mapped_column(sa.Text)
    #: NULL when the system requested it (operation planned, death, unplanned reoperation).
    requested_by_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))
    #: What requested it automatically, e.g. "preop_level4:operation:12"; unique, so a
    #: repeated HIS message or a retry never requests a second discussion.
    trigger_key: Mapped[str | None] = mapped_column(sa.String(60), unique=True)
    created_at: Mapped[datetime]
    #: Any change, participants included, rewrites the row: a concurrent sign-off makes it stale (409).
    updated_at: Mapped[datetime]

    __scope_columns__ = ("department_id",)

    participants: Mapped[list["Participant"]] = relationship(
        back_populates="discussion", order_by="Participant.id", lazy="selectin", cascade="all, delete-orphan")
    addenda: Mapped[list["Addendum"]] = relationship(order_by="Addendum.id", lazy="selectin")

    __table_args__ = (
        enum_check("kind", DiscussionKind),
        enum_check("state", DiscussionState),
        sa.CheckConstraint(f"decision IS NULL OR decision IN ({', '.join(repr(d) for d in DECISIONS)})",
                           name="decision_valid"),
        sa.CheckConstraint("decision IS NULL OR kind = 'preop_level4'", name="decision_only_preop"),
        sa.CheckConstraint("state != 'signed' OR signed_at IS NOT NULL", name="signed_has_signed_at"),
        sa.Index("ix_mdt_discussion_state_due_at", "state", "due_at"),
    )


class Participant(Base):
    """Who is invited and who attended; an outside expert has a name but no user."""

    __tablename__ = "mdt_participant"

    id: Mapped[int] = mapped_column(primary_key=True)
    discussion_id: Mapped[int] = mapped_column(sa.ForeignKey("mdt_discussion.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"), index=True)
    #: The staff-list entry (with or without a user account); NULL for an outside expert typed by hand.
    staff_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    department_id: Mapped[int | None] = mapped_column(sa.ForeignKey("department.id"))
    #: A code of clinical.models.SPECIALTIES, e.g. general_surgery (the quorum counts distinct ones).
    specialty: Mapped[str | None] = mapped_column(sa.String(60))
    role: Mapped[str] = mapped_column(sa.String(10), default="member")
    attended: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime]

    discussion: Mapped[Discussion] = relationship(back_populates="participants")

    @property
    def is_outside_expert(self) -> bool:
        """Typed by name, neither a colleague with an account nor on the staff list: nobody here can check
        them, so they never stand in for one of the hospital's specialties (mdt.services.distinct_attendance)."""
        return self.user_id is None and self.staff_id is None

    __table_args__ = (
        enum_check("role", PARTICIPANT_ROLES),
        sa.UniqueConstraint("discussion_id", "user_id", name="uq_mdt_participant_user"),
        sa.UniqueConstraint("discussion_id", "staff_id", name="uq_mdt_participant_staff"),
    )


class Addendum(Base):
    """A note added after signing; append-only (database triggers refuse UPDATE and DELETE)."""

    __tablename__ = "mdt_addendum"

    id: Mapped[int] = mapped_column(primary_key=True)
    discussion_id: Mapped[int] = mapped_column(sa.ForeignKey("mdt_discussion.id"), index=True)
    author_user_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id"))
    text: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime]


class Alert(Base):
    """One reminder or escalation sent by the scheduler; unique, so re-runs send nothing twice."""

    __tablename__ = "mdt_alert"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: preop_missing (grade-4 operation soon, no signed MDT) or overdue (discussion past due).
    kind: Mapped[str] = mapped_column(sa.String(16))
    operation_id: Mapped[int | None] = mapped_column(sa.ForeignKey("operation.id"))
    discussion_id: Mapped[int | None] = mapped_column(sa.ForeignKey("mdt_discussion.id"))
    sent_at: Mapped[datetime]

    __table_args__ = (
        enum_check("kind", ALERT_KINDS),
        sa.CheckConstraint("(operation_id IS NULL) != (discussion_id IS NULL)", name="one_subject"),
        sa.UniqueConstraint("kind", "operation_id", name="uq_mdt_alert_operation"),
        sa.UniqueConstraint("kind", "discussion_id", name="uq_mdt_alert_discussion"),
    )


WEEKDAYS = (1, 2, 3, 4, 5, 6, 7)


class Clinic(Versioned, Base):
    """A multidisciplinary outpatient clinic (多学科门诊): its specialties and weekly slots.

    Active from `active_from` to `active_to` (inclusive; NULL: still open); deactivating sets `active_to`.
    """

    __tablename__ = "mdt_clinic"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    name_en: Mapped[str] = mapped_column(sa.String(100))
    #: The department that runs the clinic.
    department_id: Mapped[int] = mapped_column(sa.ForeignKey("department.id"), index=True)
    #: Codes of clinical.models.SPECIALTIES, distinct; the indicator counts clinics of two or more.
    specialties: Mapped[list] = mapped_column(sa.JSON)
    active_from: Mapped[date]
    active_to: Mapped[date | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    slots: Mapped[list["ClinicSlot"]] = relationship(
        order_by="(ClinicSlot.weekday, ClinicSlot.starts_at)", lazy="selectin", cascade="all, delete-orphan")

    __table_args__ = (
        sa.CheckConstraint("active_to IS NULL OR active_to >= active_from", name="active_to_after_from"),
    )

    def label(self, language: str) -> str:
        return self.name_en if language == "en" and self.name_en else self.name

    def is_active_on(self, day: date) -> bool:
        return self.active_from <= day and (self.active_to is None or day <= self.active_to)


class ClinicSlot(Base):
    """A weekly session of a clinic: weekday (1 = Monday … 7 = Sunday) and local start and end time."""

    __tablename__ = "mdt_clinic_slot"

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("mdt_clinic.id", ondelete="CASCADE"), index=True)
    weekday: Mapped[int] = mapped_column(sa.SmallInteger)
    starts_at: Mapped[time] = mapped_column(sa.Time)
    ends_at: Mapped[time] = mapped_column(sa.Time)

    __table_args__ = (
        sa.CheckConstraint("weekday BETWEEN 1 AND 7", name="weekday_valid"),
        sa.CheckConstraint("ends_at > starts_at", name="ends_after_start"),
    )


#: Display labels of the coded values above (codes stay English in the API).
LABELS = {
    "kind": {
        "preop_level4": _l("Pre-operative discussion (grade 4 surgery)"),
        "perioperative_death": _l("Perioperative death review"),
        "death_case": _l("Death case review"),
        "case_review": _l("Case review (unplanned reoperation, serious event)"),
        "cancer_board": _l("Cancer board"),
        "difficult_case": _l("Difficult case discussion"),
    },
    "state": {
        "requested": _l("Requested"), "scheduled": _l("Scheduled"), "held": _l("Held"),
        "signed": _l("Signed"), "cancelled": _l("Cancelled"),
    },
    "action": {
        "schedule": _l("Schedule"), "hold": _l("Record as held"), "sign": _l("Sign the record"),
        "cancel": _l("Cancel the discussion"),
    },
    "decision": {
        "proceed": _l("Proceed as planned"), "modify_plan": _l("Modify the plan"),
        "do_not_operate": _l("Do not operate"),
    },
    "participant_role": {
        "chair": _l("Chair"), "member": _l("Member"), "secretary": _l("Secretary"), "invited": _l("Invited expert"),
    },
    "weekday": {1: _l("Monday"), 2: _l("Tuesday"), 3: _l("Wednesday"), 4: _l("Thursday"), 5: _l("Friday"),
                6: _l("Saturday"), 7: _l("Sunday")},
}

register_labels(LABELS, prefix="mdt_")
