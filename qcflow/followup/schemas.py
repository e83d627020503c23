"""Shapes of follow-up requests and responses (rules live in services)."""
from marshmallow import fields, validate

from qcflow.core.schemas import (BaseSchema, CursorArgs, Date, DateTime, DepartmentId, Month, Page, QueryArgs,
                                 WholeNumber, no_control_characters)
from qcflow.followup.models import (
    ANCHORS,
    CHANNELS,
    DISMISS_CODES,
    OUTCOME_ITEMS,
    RESPONDENTS,
    RESULTS,
    SOURCE_TYPES,
    VITAL_STATUS,
)
from qcflow.followup.schedule import UNITS
from qcflow.followup.workflow import PlanState, PromptState, TaskState

Text = lambda n, **kw: fields.String(validate=validate.Length(max=n), **kw)  # noqa: E731


class PhaseIn(BaseSchema):
    unit = fields.String(required=True, validate=validate.OneOf(UNITS))
    start = WholeNumber(required=True, validate=validate.Range(min=0), metadata={"example": 3})
    every = WholeNumber(allow_none=True, validate=validate.Range(min=1), metadata={"example": 3})
    until = WholeNumber(allow_none=True, validate=validate.Range(min=0), metadata={"example": 24})
    early_hours = WholeNumber(load_default=0, validate=validate.Range(min=0), metadata={"example": 336})
    late_hours = WholeNumber(load_default=0, validate=validate.Range(min=0), metadata={"example": 336})
    is_urgent = fields.Boolean(load_default=False)
    self_report = fields.Boolean(load_default=False, metadata={
        "description": "The patient may answer this phase's calls on their phone (an invitation by SMS, WeChat or e-mail)."})


class ProtocolIn(BaseSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100), metadata={"example": "甲状腺手术随访"})
    name_en = Text(100, allow_none=True)
    anchor = fields.String(required=True, validate=validate.OneOf(ANCHORS))
    phases = fields.List(fields.Nested(PhaseIn), required=True)
    outcome_items = fields.List(fields.String(validate=validate.OneOf(OUTCOME_ITEMS)), load_default=list)
    core_items = fields.List(fields.String(validate=validate.OneOf(OUTCOME_ITEMS)), load_default=list)
    change_note = Text(2000, allow_none=True)
    based_on_version_no = WholeNumber(allow_none=True, validate=validate.Range(min=1), metadata={
        "description": "The current version you started from (required once the pathway has one); stale → 409."})


class NewProtocolIn(ProtocolIn):
    code = fields.String(required=True, validate=validate.Regexp(r"^[a-z][a-z0-9_]{1,39}$"),
                         metadata={"example": "thyroid_surgery"})


class PhaseOut(BaseSchema):
    position = WholeNumber()
    unit = fields.String()
    start = WholeNumber(attribute="start_offset")
    every = WholeNumber(allow_none=True)
    until = WholeNumber(attribute="until_offset", allow_none=True)
    early_hours = WholeNumber()
    late_hours = WholeNumber()
    is_urgent = fields.Boolean()
    self_report = fields.Boolean()


class ProtocolOut(BaseSchema):
    id = WholeNumber()
    code = fields.String()
    version_no = WholeNumber()
    name = fields.String()
    name_en = fields.String()
    anchor = fields.String()
    is_current = fields.Boolean()
    outcome_items = fields.List(fields.String())
    core_items = fields.List(fields.String())
    change_note = fields.String(allow_none=True)
    created_at = DateTime()
    phases = fields.List(fields.Nested(PhaseOut))


class EnrolIn(BaseSchema):
    patient_id = WholeNumber(required=True, validate=validate.Range(min=1))
    pathway = fields.String(required=True, validate=validate.Length(min=1, max=40), metadata={"example": "four_level_surgery"})
    department_id = DepartmentId(required=True)
    anchor_at = DateTime(required=True, metadata={"example": "2026-03-01T10:00:00+08:00"})
    source_type = fields.String(load_default="manual", validate=validate.OneOf(SOURCE_TYPES))
    source_id = WholeNumber(allow_none=True, validate=validate.Range(min=1))


class PlanOut(BaseSchema):
    id = WholeNumber()
    patient_id = WholeNumber()
    department_id = WholeNumber()
    protocol_id = WholeNumber()
    pathway = fields.String()
    source_key = fields.String()
    anchor_at = DateTime()
    state = fields.String()
    version = WholeNumber()
    next_occurrence = WholeNumber()
    next_due_at = DateTime(allow_none=True)
    enrolled_at = DateTime()
    ended_on = Date(allow_none=True)
    end_code = fields.String(allow_none=True, metadata={"description": "Why the system ended the plan: death, unreachable"})
    end_reason = fields.String(allow_none=True, metadata={"description": "The reason a person gave"})


class QueueArgs(CursorArgs):
    department = DepartmentId(metadata={"description": "Department id or code (quality office: any)"})
    date = Date(metadata={"description": "Tasks open by the end of this day (default: today, hospital time)"})
    pathway = Text(40)
    assignee = fields.String(validate=validate.Regexp(r"^(me|none|[1-9][0-9]*)$"),
                             metadata={"description": "me, none (unclaimed) or a user id"})
    state = fields.String(validate=validate.OneOf([TaskState.PENDING.value, TaskState.IN_PROGRESS.value]))
    cursor = fields.String(validate=validate.Length(max=200), metadata={"description": "next_cursor of the previous page"})


#: A list's patient filter: the search box of the plans and calls lists (clinical.queries.patients_named).
Patient = lambda: Text(40, metadata={"description": "The patient's HIS id or record number (病案号)",  # noqa: E731
                                     "example": "BA001"})


class CallListArgs(CursorArgs):
    """Calls in every state, newest first (the queue holds the open ones due today)."""

    department = DepartmentId(metadata={"description": "Department id or code (quality office: any)"})
    patient = Patient()
    state = fields.String(validate=validate.OneOf(list(TaskState)))


class PlanListArgs(CursorArgs):
    department = DepartmentId(metadata={"description": "Department id or code (quality office: any)"})
    patient = Patient()
    state = fields.String(validate=validate.OneOf(list(PlanState)))


class PatientBrief(BaseSchema):
    id = WholeNumber()
    mrn = fields.String()
    name = fields.String()
    sex = fields.String()
    #: Unmasked only for the task's assigned nurse.
    phone = fields.String(allow_none=True)


class InvitationMessageOut(BaseSchema):
    kind = fields.String(metadata={"description": "invitation, reminder or report (the gateway's delivery report)"})
    channel = fields.String()
    status = fields.String(metadata={"description": "sent, failed, delivered or undelivered"})
    at = DateTime()
    detail = fields.String(allow_none=True, metadata={"description": "Why it failed, in the gateway's words"})


class InvitationOut(BaseSchema):
    """The call's invitation to answer online (null when the patient was not invited)."""

    state = fields.String(metadata={"description": "queued, sent, delivered, opened, answered, expired, closed or failed"})
    channel = fields.String(metadata={"description": "sms, wechat or email"})
    sent_at = DateTime(allow_none=True)
    delivered_at = DateTime(allow_none=True)
    opened_at = DateTime(allow_none=True)
    answered_at = DateTime(allow_none=True)
    expires_at = DateTime()
    reminders_sent = WholeNumber()
    alarms = fields.List(fields.String(), metadata={
        "description": "Alarming findings of the answers: complication, unplanned_readmission, reoperation, "
                       "recurrence_metastasis, worsening, death"})
    answers = fields.Dict(allow_none=True, metadata={
        "description": "The patient's answers (a pending outcome until a nurse confirms them). One call only: not in "
                       "lists."})
    messages = fields.List(fields.Nested(InvitationMessageOut), metadata={
        "description": "The delivery log, oldest first. One call only: not in lists."})


class TaskOut(BaseSchema):
    id = WholeNumber()
    plan_id = WholeNumber()
    occurrence = WholeNumber()
    pathway = fields.String()
    department_id = WholeNumber()
    state = fields.String()
    version = WholeNumber()
    timeliness = fields.String(allow_none=True, metadata={"description": "not_open, due or overdue"})
    due_at = DateTime()
    due_on = Date()
    opens_at = DateTime()
    closes_at = DateTime()
    is_urgent = fields.Boolean()
    alarm = fields.Boolean(metadata={"description": "The patient's online answers hold an alarming finding: first in the queue."})
    is_timed = fields.Boolean()
    assignee_id = WholeNumber(allow_none=True)
    snoozed_until = DateTime(allow_none=True)
    attempt_count = WholeNumber()
    patient = fields.Nested(PatientBrief)
    respondent = fields.String(allow_none=True)
    complication = fields.Boolean(allow_none=True)
    unplanned_readmission = fields.Boolean(allow_none=True)
    reoperation = fields.Boolean(allow_none=True)
    recurrence_metastasis = fields.Boolean(allow_none=True)
    vital_status = fields.String(allow_none=True)
    date_of_death = Date(allow_none=True)
    health_education_given = fields.Boolean(allow_none=True)
    revisit_booked = fields.Boolean(allow_none=True)
    satisfaction = WholeNumber(allow_none=True)
    is_effective = fields.Boolean(allow_none=True)
    closed_at = DateTime(allow_none=True)
    closed_recorded_at = DateTime(allow_none=True, metadata={
        "description": "When the closing was recorded (later than closed_at for a call logged late)."})
    channel = fields.String(allow_none=True, metadata={"description": "How the call was completed (online: the "
                                                                      "patient's answers, confirmed)"})
    invitation = fields.Nested(InvitationOut, allow_none=True)


class CallPage(Page):
    items = fields.List(fields.Nested(TaskOut))


class PlanPage(Page):
    items = fields.List(fields.Nested(PlanOut))


class QueuePage(Page):
    items = fields.List(fields.Nested(TaskOut))
    next_cursor = fields.String(allow_none=True)  # the queue's cursor is its sort key as text
    counts = fields.Dict(keys=fields.String(), values=WholeNumber())


class VersionIn(BaseSchema):
    version = WholeNumber(required=True, metadata={"description": "The version you read; stale → 409."})


class AttemptIn(BaseSchema):
    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    result = fields.String(required=True, validate=validate.OneOf(RESULTS))
    note = Text(2000, allow_none=True)
    snooze_until = DateTime(allow_none=True, metadata={"example": "2026-03-02T15:00:00+08:00"})


class AttemptOut(BaseSchema):
    id = WholeNumber()
    task_id = WholeNumber()
    user_id = WholeNumber(allow_none=True)
    channel = fields.String()
    result = fields.String()
    note = fields.String(allow_none=True)
    snooze_until = DateTime(allow_none=True)
    attempted_at = DateTime()
    recorded_at = DateTime()


class CompleteIn(VersionIn):
    respondent = fields.String(required=True, validate=validate.OneOf(RESPONDENTS))
    channel = fields.String(load_default="phone", validate=validate.OneOf(CHANNELS))
    complication = fields.Boolean(allow_none=True)
    complication_note = Text(2000, allow_none=True)
    unplanned_readmission = fields.Boolean(allow_none=True)
    reoperation = fields.Boolean(allow_none=True)
    recurrence_metastasis = fields.Boolean(allow_none=True)
    vital_status = fields.String(allow_none=True, validate=validate.OneOf(VITAL_STATUS))
    date_of_death = Date(allow_none=True)
    health_education_given = fields.Boolean(allow_none=True)
    revisit_booked = fields.Boolean(allow_none=True)
    satisfaction = WholeNumber(allow_none=True, validate=validate.Range(min=1, max=5))
    note = Text(2000, allow_none=True)
    completed_at = DateTime(allow_none=True, metadata={
        "example": "2026-03-02T16:20:00+08:00",
        "description": "A call logged late: when it was made (default: now); its timeliness is judged at it. Not "
                       "before the plan's anchor, not in the future, at most BACKDATE_MAX_DAYS back unless the "
                       "quality office."})


class RescheduleIn(VersionIn):
    due_on = Date(metadata={"description": "New call date (tasks due on a day)"})
    due_at = DateTime(metadata={"description": "New call time (timed tasks, e.g. the 24 h call)"})
    reason = Text(2000, required=True)


class ReasonIn(VersionIn):
    reason = Text(2000, required=True)


class PlanFormIn(VersionIn):
    reason = Text(2000)


class PlanStepIn(PlanFormIn):
    action = fields.String(required=True, validate=validate.OneOf(("pause", "resume", "withdraw")),
                           metadata={"description": "pause (reason), resume, or withdraw (reason)"})


class ReassignIn(VersionIn):
    assignee_id = WholeNumber(required=True, validate=validate.Range(min=1))


class PromptOut(BaseSchema):
    id = WholeNumber()
    #: followup_call (task_id, findings) or trigger (trigger, facts).
    source = fields.String()
    task_id = WholeNumber(allow_none=True)
    patient_id = WholeNumber()
    department_id = WholeNumber()
    findings = fields.String()
    trigger = fields.Function(lambda p: p.trigger.code if p.trigger_id else None, allow_none=True)
    trigger_version = WholeNumber(allow_none=True)
    window_key = fields.String(allow_none=True)
    facts = fields.Raw(allow_none=True, metadata={"description": "The facts that fired it: kind, id, his_id, at, …"})
    occurred_at = DateTime(allow_none=True)
    state = fields.String()
    version = WholeNumber()
    event_id = WholeNumber(allow_none=True)
    dismiss_code = fields.String(allow_none=True)
    dismiss_reason = fields.String(allow_none=True)
    created_at = DateTime()
    handled_at = DateTime(allow_none=True)

class PromptPage(Page):
    items = fields.List(fields.Nested(PromptOut))


PROMPT_SOURCES = ("followup_call", "trigger")


class PromptListArgs(CursorArgs):
    """Possible events, newest first: a head reads their department's, the quality office all."""

    department = DepartmentId(metadata={"description": "Department id or code (quality office: any)"})
    patient = Patient()
    state = fields.String(validate=validate.OneOf(list(PromptState)))
    source = fields.String(validate=validate.OneOf(PROMPT_SOURCES))
    trigger = Text(40, metadata={"description": "A trigger's code (its firings only)"})
    start = Date(data_key="from", metadata={"description": "Raised on or after this day (hospital time)"})
    end = Date(data_key="to", metadata={"description": "Raised on or before this day (hospital time)"})


class PromptFileIn(VersionIn):
    event_id = WholeNumber(metadata={"description": "Link to this report already filed about the harm (one of "
                                                      "the firing's candidates) instead of filing one"})
    note = fields.String(validate=[validate.Length(max=2000), no_control_characters(long_text=True)],
                         metadata={"description": "The reviewer's words, the report's description (optional)"})


class PromptDismissIn(VersionIn):
    reason_code = fields.String(validate=validate.OneOf(DISMISS_CODES),
                                metadata={"description": "Why no report is needed; default other"})
    reason = fields.String(validate=[validate.Length(max=2000), no_control_characters(long_text=True)],
                           metadata={"description": "In words (required with reason_code other)"})


class OnlineStatsArgs(QueryArgs):
    month = Month(metadata={"description": "YYYY-MM (default: this month, hospital time)", "example": "2026-03"})
    department = DepartmentId(metadata={"description": "Department id or code (quality office: any)"})


class OnlineFigures(BaseSchema):
    closed = WholeNumber(metadata={"description": "Calls closed in the month (completed or unreachable)"})
    online = WholeNumber(metadata={"description": "Of them, completed online (the patient's answers, confirmed)"})
    online_share = fields.Float(allow_none=True, metadata={"description": "online / closed, percent"})
    sent = WholeNumber(metadata={"description": "Invitations sent in the month"})
    answered = WholeNumber(metadata={"description": "Of them, answered by the patient (at any time since)"})
    answer_rate = fields.Float(allow_none=True, metadata={"description": "answered / sent, percent"})
    alarming = WholeNumber(metadata={"description": "Of the answered, those with an alarming finding"})
    saved = WholeNumber(metadata={"description": "Calls completed online with no attempt by another channel"})
    minutes_saved = WholeNumber(metadata={"description": "saved × FOLLOWUP_CALL_MINUTES"})


class OnlinePathway(OnlineFigures):
    pathway = fields.String()


class OnlineDepartment(OnlineFigures):
    department_id = WholeNumber()
    department = fields.String()


class OnlineStatsOut(BaseSchema):
    month = Month()
    department = WholeNumber(allow_none=True, metadata={"description": "The department shown (null: every one)"})
    call_minutes = WholeNumber(metadata={"description": "Minutes a phone call takes (FOLLOWUP_CALL_MINUTES)"})
    total = fields.Nested(OnlineFigures)
    pathways = fields.List(fields.Nested(OnlinePathway))
    departments = fields.List(fields.Nested(OnlineDepartment))
