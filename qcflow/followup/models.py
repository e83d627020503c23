"""Follow-up protocols (versioned), plans with their generation cursor, tasks, attempts, event prompts."""
from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Mapped, mapped_column, relationship

from qcflow.core.db import Base, Versioned, enum_check
from qcflow.core.i18n import LABELS as REGISTRY, current_language, register_labels
from qcflow.followup.schedule import UNITS, Phase
from qcflow.followup.workflow import PlanState, PromptState, TaskState

ANCHORS = ("operation_at", "discharge_at", "diagnosis_on")
SOURCE_TYPES = ("operation", "encounter", "diagnosis", "manual")
CHANNELS = ("phone", "outpatient", "online", "wechat", "home_visit", "sms")
RESULTS = ("reached", "no_answer", "busy", "wrong_number", "refused", "call_back_later")
RESPONDENTS = ("patient", "family", "other")
VITAL_STATUS = ("alive", "dead")
#: Items an outcome form can ask; a protocol picks some and marks its core items.
OUTCOME_ITEMS = ("complication", "unplanned_readmission", "reoperation", "recurrence_metastasis", "vital_status",
                 "health_education_given", "revisit_booked", "satisfaction")
#: Outcome findings that prompt the quality office to consider an adverse-event report.
PROMPT_FINDINGS = ("complication", "unplanned_readmission", "reoperation", "death")
OPEN_TASK_STATES = (TaskState.PENDING.value, TaskState.IN_PROGRESS.value)
#: Why the system cancelled a call: the protocol changed, or the plan was paused or ended.
CANCEL_CODES = ("protocol_changed", "plan_paused", "plan_withdrawn", "plan_stopped", "plan_lost")
#: Why a plan ended (besides a person's reason): death recorded, unreachable call after call.
END_CODES = ("death", "unreachable")
#: Why a reviewer decided a possible event needs no report ("other" needs their words).
DISMISS_CODES = ("not_harm", "expected_course", "planned", "data_error", "already_handled", "other")


class Protocol(Base):
    """One version of a follow-up protocol; versions are never edited, a change is a new version."""

    __tablename__ = "followup_protocol"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The pathway, e.g. day_surgery, four_level_surgery, cancer_lung.
    code: Mapped[str] = mapped_column(sa.String(40))
    version_no: Mapped[int]
    name: Mapped[str] = mapped_column(sa.String(100))
    name_en: Mapped[str] = mapped_column(sa.String(100))
    anchor: Mapped[str] = mapped_column(sa.String(16))
    #: Outcome items the form asks (subset of OUTCOME_ITEMS), and the core items an effective
    #: follow-up (有效随访) must record.
    outcome_items: Mapped[list] = mapped_column(sa.JSON)
    core_items: Mapped[list] = mapped_column(sa.JSON)
    #: The version new plans use and active plans follow; one per code.
    is_current: Mapped[bool] = mapped_column(default=True)
    change_note: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime]
    #: Audit name of the author ("user:3", "system:migration").
    created_by: Mapped[str] = mapped_column(sa.String(80))

    phases: Mapped[list["ProtocolPhase"]] = relationship(
        order_by="ProtocolPhase.position", lazy="selectin", cascade="all, delete-orphan")

    __table_args__ = (
        sa.UniqueConstraint("code", "version_no", name="uq_followup_protocol_code_version"),
        sa.Index("uq_followup_protocol_current", "code", unique=True,
                 sqlite_where=sa.text("is_current"), postgresql_where=sa.text("is_current")),
        enum_check("anchor", ANCHORS),
    )

    def label(self, language: str) -> str:
        return self.name_en if language == "en" else self.name

    def schedule_phases(self) -> list[Phase]:
        return [p.as_phase() for p in self.phases]


class ProtocolPhase(Base):
    __tablename__ = "followup_protocol_phase"

    id: Mapped[int] = mapped_column(primary_key=True)
    protocol_id: Mapped[int] = mapped_column(sa.ForeignKey("followup_protocol.id"))
    position: Mapped[int]
    unit: Mapped[str] = mapped_column(sa.String(8))
    start_offset: Mapped[int]
    #: Repeat interval; NULL for a single occurrence.
    every: Mapped[int | None]
    #: Last offset of a repeating phase (inclusive).
    until_offset: Mapped[int | None]
    early_hours: Mapped[int]
    late_hours: Mapped[int]
    is_urgent: Mapped[bool] = mapped_column(default=False)
    #: The patient may answer this phase's calls on their phone (an invitation by SMS, WeChat or e-mail); the
    #: day-surgery 24 h call stays a phone call.
    self_report: Mapped[bool] = mapped_column(default=False, server_default=sa.false())

    __table_args__ = (
        sa.UniqueConstraint("protocol_id", "position", name="uq_followup_protocol_phase_position"),
        enum_check("unit", UNITS),
    )

    def as_phase(self) -> Phase:
        return Phase(self.unit, self.start_offset, self.every, self.until_offset, self.early_hours, self.late_hours,
                     self.is_urgent, self.self_report)


class Plan(Versioned, Base):
    """A patient's follow-up on one pathway from one source record, with the generator's cursor."""

    __tablename__ = "followup_plan"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Lookups by patient use the unique key (patient_id, pathway, source_key); plans carry few
    #: indexes because the generator rewrites their cursor.
    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("patient.id"))
    #: The department whose nurses follow the patient up.
    department_id: Mapped[int] = mapped_column(sa.ForeignKey("department.id"))
    #: The protocol version the plan follows now.
    protocol_id: Mapped[int] = mapped_column(sa.ForeignKey("followup_protocol.id"), index=True)
    pathway: Mapped[str] = mapped_column(sa.String(40))
    source_type: Mapped[str] = mapped_column(sa.String(12))
    source_id: Mapped[int | None]
    #: "operation:12", "encounter:5", "diagnosis:3" or "manual:<anchor>": one plan per key.
    source_key: Mapped[str] = mapped_column(sa.String(60))
    #: The anchor instant (a diagnosis date is its local midnight).
    anchor_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(sa.String(12), default=PlanState.ACTIVE.value)
    #: Cursor: the next occurrence to generate and its timing; next_due_at is NULL once the
    #: protocol has no more occurrences or the plan has ended. Advanced in the same transaction
    #: as the tasks it generates.
    next_occurrence: Mapped[int] = mapped_column(default=1)
    next_due_at: Mapped[datetime | None]
    next_due_on: Mapped[date | None]
    next_opens_at: Mapped[datetime | None]
    next_closes_at: Mapped[datetime | None]
    next_is_urgent: Mapped[bool] = mapped_column(default=False)
    next_is_timed: Mapped[bool] = mapped_column(default=False)
    enrolled_at: Mapped[datetime]
    #: Audit name of who enrolled the patient ("system:…" for automatic enrolment).
    enrolled_by: Mapped[str] = mapped_column(sa.String(80))
    ended_at: Mapped[datetime | None]
    #: Death date for stopped plans.
    ended_on: Mapped[date | None]
    #: Why the plan ended, as a code (END_CODES) the pages show as a label in the reader's language.
    end_code: Mapped[str | None] = mapped_column(sa.String(20))
    #: The reason a person gave (free text); NULL when the system ended the plan.
    end_reason: Mapped[str | None] = mapped_column(sa.Text)

    protocol: Mapped[Protocol] = relationship(lazy="joined")

    __table_args__ = (
        sa.UniqueConstraint("patient_id", "pathway", "source_key", name="uq_followup_plan_source"),
        # The generator reads only active plans that are due: O(due), never a scan of all plans.
        sa.Index("ix_followup_plan_next_due_at_active", "next_due_at",
                 sqlite_where=sa.text("state = 'active'"), postgresql_where=sa.text("state = 'active'")),
        enum_check("state", PlanState),
        enum_check("source_type", SOURCE_TYPES),
    )


URGENT_OPEN = "is_urgent AND breach_level < 2 AND state IN ('pending', 'in_progress')"


class Task(Versioned, Base):
    """One follow-up occurrence of a plan; (plan_id, occurrence) is its natural key."""

    __tablename__ = "followup_task"

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(sa.ForeignKey("followup_plan.id"))
    occurrence: Mapped[int]
    # protocol_id, patient_id and department_id are copies of the plan's, which its foreign keys
    # check; they carry no foreign key of their own, so generating a task fires one check (plan_id)
    # rather than four (docs/performance.md, P3).
    #: The protocol version the task was timed by.
    protocol_id: Mapped[int]
    patient_id: Mapped[int] = mapped_column(index=True)
    department_id: Mapped[int]
    pathway: Mapped[str] = mapped_column(sa.String(40))
    state: Mapped[str] = mapped_column(sa.String(12), default=TaskState.PENDING.value)
    #: When the call is planned (moved by reschedule within the window).
    due_at: Mapped[datetime]
    due_on: Mapped[date]
    #: The protocol's window for this occurrence; timeliness is derived from it.
    opens_at: Mapped[datetime]
    closes_at: Mapped[datetime]
    #: A hard deadline call (day surgery, 24 h): first in the queue.
    is_urgent: Mapped[bool] = mapped_column(default=False)
    #: Due at an exact time (hourly phase) rather than on a day.
    is_timed: Mapped[bool] = mapped_column(default=False)
    #: 24 h deadline warnings sent: 0 none, 1 "deadline near" to the department, 2 "missed" to head and quality.
    breach_level: Mapped[int] = mapped_column(sa.SmallInteger, default=0, server_default="0")
    #: The patient's own answers (followup/invitations) hold an alarming finding: the call is first in the queue
    #: until it is closed.
    alarm: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    assignee_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))
    claimed_at: Mapped[datetime | None]
    #: Hidden from the queue until then (call back later, rescheduled).
    snoozed_until: Mapped[datetime | None]
    attempt_count: Mapped[int] = mapped_column(default=0)
    rescheduled_at: Mapped[datetime | None]
    reschedule_reason: Mapped[str | None] = mapped_column(sa.Text)
    #: Why the system cancelled the call, as a code (CANCEL_CODES); NULL when a person cancelled it.
    cancel_code: Mapped[str | None] = mapped_column(sa.String(20))
    #: The reason a person gave (the nurse's, or the head's when pausing or withdrawing the plan).
    cancel_reason: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime]
    #: When the call was completed, cancelled or given up (a call logged late: the time given);
    #: timeliness is judged at it.
    closed_at: Mapped[datetime | None]
    #: When the closing was recorded in qcflow.
    closed_recorded_at: Mapped[datetime | None]
    completed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))

    # The outcome form (recorded on completion).
    respondent: Mapped[str | None] = mapped_column(sa.String(8))
    channel: Mapped[str | None] = mapped_column(sa.String(12))
    complication: Mapped[bool | None]
    complication_note: Mapped[str | None] = mapped_column(sa.Text)
    unplanned_readmission: Mapped[bool | None]
    reoperation: Mapped[bool | None]
    recurrence_metastasis: Mapped[bool | None]
    vital_status: Mapped[str | None] = mapped_column(sa.String(6))
    died_on: Mapped[date | None]
    health_education_given: Mapped[bool | None]
    revisit_booked: Mapped[bool | None]
    satisfaction: Mapped[int | None]
    outcome_note: Mapped[str | None] = mapped_column(sa.Text)
    #: 有效随访: completed, the patient or family reached, every core item recorded.
    is_effective: Mapped[bool | None]

    plan: Mapped[Plan] = relationship(lazy="joined")

    __table_args__ = (
        sa.UniqueConstraint("plan_id", "occurrence", name="uq_followup_task_occurrence"),
        # The daily queue: a department's open tasks by window opening, with every column the queue
        # sorts and filters by and its counts classify, so both read the index alone and only the
        # page's own rows are fetched (queries.py).
        sa.Index("ix_followup_task_queue", "department_id", "opens_at", "is_urgent", "closes_at", "due_at",
                 "snoozed_until", "state", "closed_at", "alarm", "id",
                 sqlite_where=sa.text("state IN ('pending', 'in_progress')"),
                 postgresql_where=sa.text("state IN ('pending', 'in_progress')")),
        # 24 h deadline warnings: only open urgent calls not yet reported as missed are indexed.
        sa.Index("ix_followup_task_urgent_open", "closes_at",
                 sqlite_where=sa.text(URGENT_OPEN), postgresql_where=sa.text(URGENT_OPEN)),
        # "My tasks": only claimed tasks are indexed, so generating unclaimed ones costs nothing here.
        sa.Index("ix_followup_task_assignee_id", "assignee_id", sqlite_where=sa.text("assignee_id IS NOT NULL"),
                 postgresql_where=sa.text("assignee_id IS NOT NULL")),
        # The indicator rollup counts calls one month at a time by pathway and window end.
        sa.Index("ix_followup_task_pathway_closes_at", "pathway", "closes_at"),
        enum_check("state", TaskState),
        sa.CheckConstraint("respondent IS NULL OR respondent IN ('patient', 'family', 'other')", name="respondent_valid"),
        sa.CheckConstraint("vital_status IS NULL OR vital_status IN ('alive', 'dead')", name="vital_status_valid"),
        sa.CheckConstraint("satisfaction IS NULL OR satisfaction BETWEEN 1 AND 5", name="satisfaction_valid"),
        sa.CheckConstraint("state != 'completed' OR closed_at IS NOT NULL", name="completed_has_closed_at"),
    )


class Attempt(Base):
    """One contact attempt on a task (call, visit, message)."""

    __tablename__ = "followup_attempt"

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(sa.ForeignKey("followup_task.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))
    channel: Mapped[str] = mapped_column(sa.String(12))
    result: Mapped[str] = mapped_column(sa.String(16))
    note: Mapped[str | None] = mapped_column(sa.Text)
    snooze_until: Mapped[datetime | None]
    #: When the call was made (a call logged late: the time given).
    attempted_at: Mapped[datetime]
    #: When it was recorded in qcflow.
    recorded_at: Mapped[datetime]

    __table_args__ = (enum_check("channel", CHANNELS), enum_check("result", RESULTS))


class EventPrompt(Versioned, Base):
    """A possible adverse event for review (提醒上报): a follow-up call's findings, or a trigger's firing on
    HIS facts (自动提取). The reviewers file it as a confidential report, link it to a report already filed,
    or dismiss it with a reason."""

    __tablename__ = "followup_event_prompt"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The call whose findings raised it (None: a trigger raised it).
    task_id: Mapped[int | None] = mapped_column(sa.ForeignKey("followup_task.id"), unique=True)
    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("patient.id"))
    #: The department where it happened (the call's, the stay's or the operation's): its heads review it with the
    #: quality office, and a report filed from it is that department's.
    department_id: Mapped[int] = mapped_column(sa.ForeignKey("department.id"))
    #: A further department whose heads review a firing (the trigger's reviewers, e.g. the pharmacy).
    reviewer_department_id: Mapped[int | None] = mapped_column(sa.ForeignKey("department.id"))
    #: Comma-separated subset of PROMPT_FINDINGS (a call's); empty for a firing.
    findings: Mapped[str] = mapped_column(sa.String(80), default="")
    #: The trigger that fired, the version that fired, and the window it fired for (one firing per patient,
    #: trigger and window: e.g. "operation:12" for a return within 48 h of operation 12).
    trigger_id: Mapped[int | None] = mapped_column(sa.ForeignKey("extraction_trigger.id"))
    trigger_version: Mapped[int | None]
    window_key: Mapped[str | None] = mapped_column(sa.String(40))
    #: The facts that fired it, as codes and ids ([{"kind", "id", "at", …}]), written in the reader's language.
    facts: Mapped[list | None] = mapped_column(sa.JSON)
    #: When the fired-on harm signal happened (a firing's last fact).
    occurred_at: Mapped[datetime | None]
    state: Mapped[str] = mapped_column(sa.String(10), default=PromptState.OPEN.value)
    event_id: Mapped[int | None] = mapped_column(sa.ForeignKey("adverse_event.id"))
    #: Why it was dismissed: a code of DISMISS_CODES, and the reviewer's words.
    dismiss_code: Mapped[str | None] = mapped_column(sa.String(20))
    dismiss_reason: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime]
    handled_at: Mapped[datetime | None]
    handled_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))

    task: Mapped[Task | None] = relationship(lazy="joined")
    trigger = relationship("Trigger", lazy="joined")

    __table_args__ = (
        enum_check("state", PromptState),
        sa.CheckConstraint("(task_id IS NULL) <> (trigger_id IS NULL)", name="one_source"),
        sa.CheckConstraint("dismiss_code IS NULL OR dismiss_code IN ("
                           + ", ".join(f"'{c}'" for c in DISMISS_CODES) + ")", name="dismiss_code_valid"),
        sa.UniqueConstraint("trigger_id", "patient_id", "window_key", name="uq_followup_event_prompt_firing"),
        sa.Index("ix_followup_event_prompt_state_id", "state", "id"),
        sa.Index("ix_followup_event_prompt_trigger_state", "trigger_id", "state"),
        # a department's inbox (its own and what it reviews for a trigger), newest first; the statistics' period
        sa.Index("ix_followup_event_prompt_department_id_id", "department_id", "id"),
        sa.Index("ix_followup_event_prompt_reviewer_department_id_id", "reviewer_department_id", "id"),
        sa.Index("ix_followup_event_prompt_created_at", "created_at"),
    )

    __scope_columns__ = ("department_id", "reviewer_department_id")

    @property
    def source(self) -> str:
        return "followup_call" if self.task_id is not None else "trigger"


#: Display labels of follow-up codes, registered as fu_<kind> (templates: label('fu_task_state', …)).
LABELS = {
    "task_state": {
        "pending": _l("Waiting"), "in_progress": _l("In progress"), "completed": _l("Completed"),
        "cancelled": _l("Cancelled"), "unreachable": _l("Unreachable"),
    },
    "plan_state": {
        "active": _l("Active"), "paused": _l("Paused"), "stopped": _l("Stopped (death)"), "lost": _l("Lost to follow-up"),
        "withdrawn": _l("Withdrawn from follow-up"),
    },
    "plan_action": {"pause": _l("Pause"), "resume": _l("Resume"), "withdraw": _l("Withdraw from follow-up")},
    "prompt_state": {"open": _l("To review"), "filed": _l("Report filed"), "linked": _l("Linked to a filed report"),
                     "dismissed": _l("Dismissed")},
    "prompt_source": {"followup_call": _l("Follow-up call"), "trigger": _l("Found by the system")},
    "dismiss_code": {
        "not_harm": _l("No harm to the patient"), "expected_course": _l("Expected course of the illness or treatment"),
        "planned": _l("Planned (a staged operation, a planned admission)"),
        "data_error": _l("Wrong or incomplete HIS data"), "already_handled": _l("Already handled another way"),
        "other": _l("Other (say why)"),
    },
    #: A prompt's state as the nurse who raised it reads it.
    "prompt_progress": {"open": _l("waiting for the quality office"), "filed": _l("the quality office filed a report"),
                        "linked": _l("the quality office linked it to a report already filed"),
                        "dismissed": _l("the quality office decided no report was needed")},
    "timeliness": {"not_open": _l("Not open yet"), "due": _l("Due"), "overdue": _l("Overdue")},
    "action": {
        "claim": _l("Claim"), "release": _l("Release"), "reassign": _l("Reassign"), "log_attempt": _l("Log attempt"),
        "reschedule": _l("Reschedule"), "complete": _l("Complete"), "mark_unreachable": _l("Mark unreachable"),
        "cancel": _l("Cancel"),
    },
    "channel": {
        "phone": _l("Phone"), "outpatient": _l("Outpatient visit"), "online": _l("Online"), "wechat": _l("WeChat"),
        "home_visit": _l("Home visit"), "sms": _l("SMS"),
    },
    "result": {
        "reached": _l("Reached"), "no_answer": _l("No answer"), "busy": _l("Busy"),
        "wrong_number": _l("Wrong number"), "refused": _l("Refused"), "call_back_later": _l("Call back later"),
    },
    "respondent": {"patient": _l("Patient"), "family": _l("Family member"), "other": _l("Someone else")},
    "item": {
        "complication": _l("Complication"), "unplanned_readmission": _l("Unplanned readmission"),
        "reoperation": _l("Reoperation"), "recurrence_metastasis": _l("Recurrence or metastasis"),
        "vital_status": _l("Vital status"), "health_education_given": _l("Health education given"),
        "revisit_booked": _l("Revisit booked"), "satisfaction": _l("Satisfaction (1–5)"), "death": _l("Death"),
        "worsening": _l("Feels worse"),
    },
    "anchor": {
        "operation_at": _l("Operation time"), "discharge_at": _l("Discharge time"), "diagnosis_on": _l("Diagnosis date"),
    },
    "unit": {"hour": _l("hours"), "day": _l("days"), "month": _l("months")},
    "vital_status": {"alive": _l("Alive"), "dead": _l("Deceased")},
    "source": {
        "operation": _l("Operation"), "encounter": _l("Day-surgery discharge"), "diagnosis": _l("Cancer diagnosis"),
        "manual": _l("Enrolled by hand"),
    },
    "cancel_code": {
        "protocol_changed": _l("The protocol changed and no longer has this call"),
        "plan_paused": _l("Plan paused"), "plan_withdrawn": _l("Plan withdrawn"),
        "plan_stopped": _l("Plan stopped: death recorded"), "plan_lost": _l("Plan ended: lost to follow-up"),
    },
    "end_code": {"death": _l("Death recorded"), "unreachable": _l("Unreachable on consecutive calls")},
    #: A closed call's timeliness, judged at its completion.
    "done_timeliness": {"not_open": _l("Completed before its window"), "due": _l("Completed on time"),
                        "overdue": _l("Completed late")},
    "sex": {"M": _l("Male"), "F": _l("Female"), "U": _l("Unknown")},
}

register_labels(LABELS, prefix="fu_")


class PathwayNames(Mapping):
    """fu_pathway: a pathway's name is its current protocol's, in the reader's language.

    Administrators add pathways, so the protocol table is the registry; the names are read once per
    request (a queue page labels fifty rows).
    """

    KEY = "qcflow.followup.pathway_names"

    def _names(self) -> dict:
        from flask import has_app_context, has_request_context, request

        from qcflow.extensions import db

        if not has_app_context():  # no database to ask (e.g. a catalogue check at import)
            return {}
        cache = request.environ if has_request_context() else {}
        if self.KEY not in cache:
            rows = db.session.execute(sa.select(Protocol.code, Protocol.name, Protocol.name_en)
                                      .where(Protocol.is_current.is_(True)))
            cache[self.KEY] = {code: (name, name_en or name) for code, name, name_en in rows}
        return cache[self.KEY]

    def __getitem__(self, code):
        name, name_en = self._names()[code]
        return name_en if current_language() == "en" else name

    def __iter__(self):
        return iter(self._names())

    def __len__(self):
        return len(self._names())


REGISTRY["fu_pathway"] = PathwayNames()
