"""Adverse events, their messages, corrective actions, escalations and the taxonomy."""
from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Mapped, mapped_column, relationship

from qcflow.core.db import Base, Versioned, enum_check
from qcflow.core.i18n import register_labels
from qcflow.events.workflow import ActionState, EventState


class Mode(StrEnum):
    NAMED = "named"
    CONFIDENTIAL = "confidential"
    ANONYMOUS = "anonymous"


class Grade(StrEnum):
    I = "I"  # noqa: E741  (警告事件)
    II = "II"  # 不良后果事件
    III = "III"  # 未造成后果事件
    IV = "IV"  # 隐患事件 / near miss


GRADE_LABELS = {
    "I": _l("Grade I · sentinel event (death or permanent harm)"),
    "II": _l("Grade II · adverse outcome (temporary harm)"),
    "III": _l("Grade III · no harm (reached the patient, no consequence)"),
    "IV": _l("Grade IV · near miss / hazard (did not reach the patient)"),
}

#: reporter: actively reported by staff; trigger: found by a trigger on HIS data and confirmed by a reviewer.
FOUND_BY = ("reporter", "trigger")
HARM = ("none", "mild", "moderate", "severe", "death")
NCC_MERP = tuple("ABCDEFGHI")
CARE_STAGES = ("outpatient", "emergency", "admission", "examination", "medication", "surgery_anaesthesia",
               "nursing", "transfusion", "discharge_followup", "other")
#: Who filed a public report (the patient/family form).
PUBLIC_ROLES = ("patient", "family", "other")
#: 《医疗质量安全事件报告暂行规定》: 特大 / 重大 / 一般, or none (internal only).
EXTERNAL_SEVERITY = ("extraordinary", "major", "general", "none")
CAUSE_DOMAINS = ("rules", "process", "practice")
IMPROVEMENT_TYPES = ("training", "rule_update", "system_change")


class EventCategory(Base):
    """Configurable taxonomy; a row with a parent is a subcategory."""

    __tablename__ = "event_category"

    code: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    parent_code: Mapped[str | None] = mapped_column(sa.ForeignKey("event_category.code"))
    name: Mapped[str] = mapped_column(sa.String(60))
    name_en: Mapped[str] = mapped_column(sa.String(80))
    #: Functional department that handles this category by default (e.g. medication → PHA).
    owner_department_code: Mapped[str | None] = mapped_column(sa.String(40))
    sort_order: Mapped[int] = mapped_column(default=0)
    is_active: Mapped[bool] = mapped_column(default=True)

    def label(self, language: str) -> str:
        return self.name_en if language == "en" else self.name


class AdverseEvent(Versioned, Base):
    __tablename__ = "adverse_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Human reference, e.g. AE-2026-000123.
    reference: Mapped[str | None] = mapped_column(sa.String(20), unique=True)
    state: Mapped[str] = mapped_column(sa.String(20), default=EventState.DRAFT.value)
    mode: Mapped[str] = mapped_column(sa.String(12))
    #: NULL for anonymous reports (CHECK below); never shown to department heads.
    reporter_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"), index=True)
    #: Keyed hash (HMAC) of the anonymous receipt code; the code itself is never stored.
    receipt_hash: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    wants_feedback: Mapped[bool] = mapped_column(default=True)
    #: The quality office has been notified of the report: at submission for named and confidential
    #: ones, after the submission hour has ended for anonymous ones.
    is_announced: Mapped[bool] = mapped_column(default=False, server_default=sa.false())

    category_code: Mapped[str | None] = mapped_column(sa.ForeignKey("event_category.code"))
    subcategory_code: Mapped[str | None] = mapped_column(sa.ForeignKey("event_category.code"))
    reporter_grade: Mapped[str | None] = mapped_column(sa.String(3))
    confirmed_grade: Mapped[str | None] = mapped_column(sa.String(3))
    harm: Mapped[str | None] = mapped_column(sa.String(10))
    ncc_merp: Mapped[str | None] = mapped_column(sa.String(1))
    care_stage: Mapped[str | None] = mapped_column(sa.String(24))
    occurred_at: Mapped[datetime | None]
    discovered_at: Mapped[datetime | None]
    location: Mapped[str | None] = mapped_column(sa.String(200))
    #: Department where it happened.
    department_id: Mapped[int | None] = mapped_column(sa.ForeignKey("department.id"))
    #: Functional department handling the case, set at triage.
    handling_department_id: Mapped[int | None] = mapped_column(sa.ForeignKey("department.id"))
    #: 诊疗疾病状态, free text (e.g. "postoperative day 2", "chemotherapy").
    clinical_state: Mapped[str | None] = mapped_column(sa.String(200))
    patient_mrn: Mapped[str | None] = mapped_column(sa.String(40))
    #: Link to the operation record (clinical intake) when the event concerns one.
    operation_id: Mapped[int | None]
    is_unplanned_reoperation: Mapped[bool] = mapped_column(default=False)
    description: Mapped[str] = mapped_column(sa.Text, default="")
    immediate_actions: Mapped[str] = mapped_column(sa.Text, default="")
    #: A report generated from another record: what generated it, as codes and parameters (e.g. a follow-up
    #: call's number, pathway, due date and findings), from which its place and opening sentence are written
    #: in the reader's language (`queries.origin_text`); `location` and `description` hold only people's words.
    origin: Mapped[dict | None] = mapped_column(sa.JSON)
    #: Who found it: a reporter (actively reported, counted by the reporting-rate indicator) or a trigger on
    #: HIS data (系统发现, counted apart: docs/indicators.md).
    found_by: Mapped[str] = mapped_column(sa.String(10), default="reporter", server_default="reporter")
    #: A report from a patient or a family (the public form reached from a ward poster's QR code): who they are
    #: (PUBLIC_ROLES); NULL for staff. Such reports are filed like anonymous ones (no login, a receipt code) and
    #: count apart from staff reports (indicators.definitions.actively_reported).
    public_role: Mapped[str | None] = mapped_column(sa.String(10))
    #: Contact details a patient or family chose to leave: shown only to the quality office, each read audited.
    contact_name: Mapped[str | None] = mapped_column(sa.String(60))
    contact_phone: Mapped[str | None] = mapped_column(sa.String(40))

    external_severity: Mapped[str | None] = mapped_column(sa.String(14))
    duplicate_of_id: Mapped[int | None] = mapped_column(sa.ForeignKey("adverse_event.id"))
    reject_reason: Mapped[str | None] = mapped_column(sa.Text)
    #: Comma-separated subset of CAUSE_DOMAINS (制度/流程/实践).
    rca_cause_domains: Mapped[str | None] = mapped_column(sa.String(40))
    rca_factors: Mapped[str | None] = mapped_column(sa.Text)
    analysis: Mapped[str | None] = mapped_column(sa.Text)
    #: Comma-separated subset of IMPROVEMENT_TYPES.
    improvement_types: Mapped[str | None] = mapped_column(sa.String(60))
    #: Outcome told to the reporter (结果送达).
    feedback: Mapped[str | None] = mapped_column(sa.Text)

    #: Anonymous reports: coarsened to the hour (A5).
    created_at: Mapped[datetime]
    #: When the report was submitted (a paper report: when it was handed in, given when typed in later);
    #: indicators count it here. Lists order cases by this time, then id: an anonymous report's (the
    #: hour) places it only within its hour.
    submitted_at: Mapped[datetime | None]
    #: When the submission was recorded in qcflow (anonymous reports: the hour); triage runs from it.
    submitted_recorded_at: Mapped[datetime | None]
    triaged_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    external_reported_at: Mapped[datetime | None]
    triage_due_at: Mapped[datetime | None]
    investigation_due_at: Mapped[datetime | None]
    external_report_due_at: Mapped[datetime | None]

    #: Department heads see cases that happened in, or are handled by, their department.
    __scope_columns__ = ("department_id", "handling_department_id")

    actions: Mapped[list["CorrectiveAction"]] = relationship(
        back_populates="event", order_by="CorrectiveAction.id", lazy="selectin"
    )

    __table_args__ = (
        enum_check("state", EventState),
        enum_check("mode", Mode),
        enum_check("found_by", FOUND_BY),
        sa.CheckConstraint("mode != 'anonymous' OR reporter_user_id IS NULL", name="anonymous_has_no_reporter"),
        sa.CheckConstraint("mode = 'anonymous' OR receipt_hash IS NULL", name="receipt_only_for_anonymous"),
        sa.CheckConstraint("reporter_grade IS NULL OR reporter_grade IN ('I', 'II', 'III', 'IV')", name="reporter_grade_valid"),
        sa.CheckConstraint("confirmed_grade IS NULL OR confirmed_grade IN ('I', 'II', 'III', 'IV')", name="confirmed_grade_valid"),
        sa.CheckConstraint("ncc_merp IS NULL OR category_code = 'medication'", name="ncc_merp_only_medication"),
        sa.CheckConstraint("state != 'closed' OR closed_at IS NOT NULL", name="closed_has_closed_at"),
        # The case lists' order (submitted_at, id), newest first: all cases (also time ranges), by state
        # and by each scope column (P6).
        sa.Index("ix_adverse_event_submitted_at_id", "submitted_at", "id"),
        sa.Index("ix_adverse_event_patient_mrn", "patient_mrn"),
        sa.Index("ix_adverse_event_state_submitted_at_id", "state", "submitted_at", "id"),
        sa.Index("ix_adverse_event_department_id_submitted_at_id", "department_id", "submitted_at", "id"),
        sa.Index("ix_adverse_event_handling_department_id_submitted_at_id", "handling_department_id",
                 "submitted_at", "id"),
    )

    @property
    def is_anonymous(self) -> bool:
        return self.mode == Mode.ANONYMOUS


class EventMessage(Base):
    """Questions from the quality office and the reporter's replies."""

    __tablename__ = "event_message"

    #: Random for an anonymous reporter's replies (core.db.new_id): no order among other cases' messages.
    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(sa.ForeignKey("adverse_event.id"), index=True)
    #: Position in the case's conversation (1, 2, …): the order messages are shown in.
    number: Mapped[int]
    #: "to_reporter" (question) or "from_reporter" (reply).
    direction: Mapped[str] = mapped_column(sa.String(14))
    #: The quality-office author; NULL for replies (the reporter is never linked here).
    author_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))
    body: Mapped[str] = mapped_column(sa.Text)
    #: Coarsened to the hour for replies to anonymous reports.
    created_at: Mapped[datetime]

    __table_args__ = (enum_check("direction", ("to_reporter", "from_reporter")),
                      sa.UniqueConstraint("event_id", "number", name="uq_event_message_event_id_number"))


class CorrectiveAction(Versioned, Base):
    __tablename__ = "corrective_action"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(sa.ForeignKey("adverse_event.id"), index=True)
    state: Mapped[str] = mapped_column(sa.String(10), default=ActionState.OPEN.value)
    title: Mapped[str] = mapped_column(sa.String(300))
    #: training / rule_update / system_change.
    improvement_type: Mapped[str] = mapped_column(sa.String(14))
    owner_department_id: Mapped[int] = mapped_column(sa.ForeignKey("department.id"), index=True)
    owner_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))
    due_on: Mapped[date]
    evidence: Mapped[str | None] = mapped_column(sa.Text)
    note: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime]
    done_at: Mapped[datetime | None]
    verified_at: Mapped[datetime | None]

    event: Mapped[AdverseEvent] = relationship(back_populates="actions")

    __table_args__ = (enum_check("state", ActionState), enum_check("improvement_type", IMPROVEMENT_TYPES))


class EventEscalation(Base):
    """One escalation of one breached deadline at one level; unique, so re-runs send nothing twice."""

    __tablename__ = "event_escalation"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(sa.ForeignKey("adverse_event.id"))
    #: triage / investigation / external_report.
    deadline: Mapped[str] = mapped_column(sa.String(20))
    #: 1 owner, 2 department head, 3 quality office.
    level: Mapped[int]
    escalated_at: Mapped[datetime]

    __table_args__ = (sa.UniqueConstraint("event_id", "deadline", "level", name="uq_event_escalation_once"),)


class IdempotencyKey(Base):
    """Client retry protection for intake: one key of one client, one created event; purged after
    IDEMPOTENCY_KEY_HOURS."""

    __tablename__ = "idempotency_key"

    #: Keyed hash (HMAC) of the client's scope and the key; the key itself is never stored.
    key_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    #: The report filed with the key; NULL for anonymous reports, which no key may point at.
    event_id: Mapped[int | None] = mapped_column(sa.ForeignKey("adverse_event.id"))
    #: Coarsened to the hour for anonymous reports, as every time stored about them.
    created_at: Mapped[datetime] = mapped_column(index=True)


#: What a step does that cannot simply be undone, said next to its button.
ACTION_CONSEQUENCES = {
    "reject": _l("The case closes as not reportable and the reporter is told the reason. Only a new report reopens the matter."),
    "mark_duplicate": _l("The case closes as a duplicate; work continues on the case you name."),
    "withdraw": _l("The report is withdrawn: the quality office stops working on it. This cannot be undone."),
    "close": _l("The case closes and the reporter (if they asked) is told the feedback."),
}

register_labels({
    #: The deadlines of a case (events.services.DEADLINES), as the case page and an escalation name them.
    "event_deadline": {
        "triage": _l("triage"),
        "investigation": _l("investigation"),
        "external_report": _l("report to the health authority"),
    },
    #: Who found the harm a report describes (exports, pages, the analysis).
    "found_by": {"reporter": _l("Reported by staff"), "trigger": _l("Found by the system")},
    #: A report's status as a patient or a family reads it (workflow.PLAIN_STATUS).
    "plain_status": {
        "received": _l("Received: we will look into it"), "question": _l("We have asked you a question"),
        "looking_into": _l("Being looked into"), "improving": _l("Being put right"), "done": _l("Dealt with"),
    },
    #: Who filed a report on the public form.
    "public_role": {"patient": _l("The patient"), "family": _l("A family member"), "other": _l("Another visitor")},
    "mode": {
        "named": _l("Named"),
        "confidential": _l("Confidential"),
        "anonymous": _l("Anonymous"),
    },
    "mode_help": {
        "named": _l("Your name is on the report; you see it and the feedback under “My reports”."),
        "confidential": _l("Only the quality office sees your name; department heads never do."),
        "anonymous": _l("No name, no login, nothing that identifies you; keep the receipt code to read the outcome."),
    },
    "state": {
        "draft": _l("Draft"), "submitted": _l("Submitted"), "info_requested": _l("Question to reporter"),
        "triaged": _l("Triaged"), "investigating": _l("Investigating"), "actions_open": _l("Actions open"),
        "verifying": _l("Verifying"), "closed": _l("Closed"), "duplicate": _l("Duplicate"),
        "not_reportable": _l("Not reportable"), "withdrawn": _l("Withdrawn by the reporter"),
        "open": _l("Not done yet"), "done": _l("Done"), "verified": _l("Verified"), "cancelled": _l("Cancelled"),
    },
    "action": {
        "submit": _l("Submit"), "request_info": _l("Ask the reporter"), "provide_info": _l("Answer"),
        "triage": _l("Triage"), "mark_duplicate": _l("Mark as duplicate"), "reject": _l("Not reportable"),
        "withdraw": _l("Withdraw"), "start_investigation": _l("Start investigation"),
        "plan_actions": _l("Record RCA and open actions"), "verify": _l("Verify"), "close": _l("Close case"),
        "reopen": _l("Reopen"), "complete": _l("Mark done"), "cancel": _l("Cancel"),
    },
    "care_stage": {
        "outpatient": _l("Outpatient"), "emergency": _l("Emergency"), "admission": _l("Admission"),
        "examination": _l("Examination"), "medication": _l("Medication"),
        "surgery_anaesthesia": _l("Surgery / anaesthesia"), "nursing": _l("Nursing"),
        "transfusion": _l("Transfusion"), "discharge_followup": _l("Discharge / follow-up"), "other": _l("Other"),
    },
    "harm": {
        "none": _l("No harm"), "mild": _l("Mild"), "moderate": _l("Moderate"), "severe": _l("Severe"),
        "death": _l("Death"),
    },
    "external_severity": {
        "extraordinary": _l("Extraordinary (特大), report within 2 h"),
        "major": _l("Major (重大), report within 12 h"),
        "general": _l("General (一般), report within 15 days"),
        "none": _l("Internal only"),
    },
    "cause_domain": {"rules": _l("Rules"), "process": _l("Process"), "practice": _l("Practice")},
    "improvement_type": {
        "training": _l("Training and education"), "rule_update": _l("Rule or process update"),
        "system_change": _l("System change"),
    },
    "grade": GRADE_LABELS,
    "grade_short": {"I": _l("Grade I"), "II": _l("Grade II"), "III": _l("Grade III"), "IV": _l("Grade IV")},
})
