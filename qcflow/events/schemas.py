"""Shapes of event requests and responses (rules live in services)."""
from marshmallow import fields, validate

from qcflow.core.schemas import BaseSchema, CursorArgs, Date, DateTime, DepartmentId, Page, Text, WholeNumber
from qcflow.events.models import (
    CARE_STAGES,
    CAUSE_DOMAINS,
    EXTERNAL_SEVERITY,
    HARM,
    IMPROVEMENT_TYPES,
    NCC_MERP,
    PUBLIC_ROLES,
    Mode,
)
from qcflow.events.workflow import EventState

GRADES = ("I", "II", "III", "IV")


class ReportFields(BaseSchema):
    category_code = Text(40, metadata={"example": "medication"})
    subcategory_code = Text(40, allow_none=True, metadata={"example": "wrong_dose"})
    reporter_grade = fields.String(validate=validate.OneOf(GRADES), metadata={"example": "III"})
    harm = fields.String(validate=validate.OneOf(HARM), allow_none=True)
    ncc_merp = fields.String(validate=validate.OneOf(NCC_MERP), allow_none=True, metadata={"example": "C"})
    care_stage = fields.String(validate=validate.OneOf(CARE_STAGES), metadata={"example": "medication"})
    occurred_at = DateTime(metadata={"example": "2026-03-01T09:30:00+08:00"})
    discovered_at = DateTime(metadata={"example": "2026-03-01T10:00:00+08:00"})
    location = Text(200, metadata={"example": "外科病房 12 床旁"})
    department_id = DepartmentId()
    clinical_state = Text(200, allow_none=True)
    patient_mrn = Text(40, allow_none=True)
    operation_id = WholeNumber(allow_none=True, validate=validate.Range(min=1))
    is_unplanned_reoperation = fields.Boolean()
    description = Text(10000, metadata={"example": "给药时发现剂量多配了一倍，未给患者使用。"})
    immediate_actions = Text(5000)
    wants_feedback = fields.Boolean()


class DraftIn(ReportFields):
    version = WholeNumber(required=True, metadata={"description": "The version of the draft you read; stale → 409."})


def _submitted_at():
    """The time a paper report was handed in (filing, or submitting a draft)."""
    return DateTime(allow_none=True, metadata={
        "example": "2026-03-02T08:00:00+08:00",
        "description": "A paper report typed in later: when it was handed in (default: now). Its reporter "
                       "(named, confidential) or the quality office (also anonymous, kept to the hour); not "
                       "before discovery, not in the future, at most BACKDATE_MAX_DAYS back unless the "
                       "quality office."})


class ReportIn(ReportFields):
    mode = fields.String(load_default=Mode.ANONYMOUS.value, validate=validate.OneOf(list(Mode)))
    #: false saves a draft (logged-in reporters only).
    submit = fields.Boolean(load_default=True)
    submitted_at = _submitted_at()


class ReportCreated(BaseSchema):
    id = WholeNumber()
    reference = fields.String(allow_none=True)
    state = fields.String()
    version = WholeNumber(metadata={"description": "Give it back to change a draft (PATCH)."})
    receipt_code = fields.String(metadata={"description": "Anonymous reports only; shown once, never again."})


class TransitionIn(BaseSchema):
    action = fields.String(required=True, metadata={"example": "triage"})
    version = WholeNumber(required=True, metadata={"description": "The version you read; stale → 409."})
    message = Text(5000)
    confirmed_grade = fields.String(validate=validate.OneOf(GRADES))
    handling_department_id = DepartmentId()
    external_severity = fields.String(validate=validate.OneOf(EXTERNAL_SEVERITY))
    harm = fields.String(validate=validate.OneOf(HARM))
    category_code = Text(40, metadata={"description": "triage: required when the report has none (a patient's or "
                                                      "family's report)"})
    subcategory_code = Text(40)
    care_stage = fields.String(validate=validate.OneOf(CARE_STAGES))
    duplicate_of_id = WholeNumber(validate=validate.Range(min=1))
    reason = Text(5000)
    rca_cause_domains = fields.List(fields.String(validate=validate.OneOf(CAUSE_DOMAINS)))
    rca_factors = Text(10000)
    analysis = Text(10000)
    improvement_types = fields.List(fields.String(validate=validate.OneOf(IMPROVEMENT_TYPES)))
    feedback = Text(10000)
    submitted_at = _submitted_at()


class ActionIn(BaseSchema):
    title = Text(300, required=True, metadata={"example": "高警示药品双人核对培训"})
    improvement_type = fields.String(required=True, validate=validate.OneOf(IMPROVEMENT_TYPES))
    owner_department_id = DepartmentId(required=True)
    owner_user_id = WholeNumber(allow_none=True, validate=validate.Range(min=1))
    due_on = Date(required=True)


class ActionTransitionIn(BaseSchema):
    action = fields.String(required=True, validate=validate.OneOf(["complete", "verify", "reopen", "cancel"]))
    version = WholeNumber(required=True)
    evidence = Text(10000)
    reason = Text(5000)


class ActionOut(BaseSchema):
    id = WholeNumber()
    state = fields.String()
    version = WholeNumber()
    title = fields.String()
    improvement_type = fields.String()
    owner_department_id = WholeNumber()
    owner_user_id = WholeNumber(allow_none=True)
    due_on = Date()
    evidence = fields.String(allow_none=True)
    done_at = DateTime(allow_none=True)
    verified_at = DateTime(allow_none=True)


class MessageIn(BaseSchema):
    message = Text(5000, required=True)


class MessageOut(BaseSchema):
    id = WholeNumber()
    direction = fields.String()
    body = fields.String()
    created_at = DateTime()


class ExternalReportIn(BaseSchema):
    reported_at = DateTime(required=True)
    version = WholeNumber(required=True, metadata={"description": "The version of the case you read; stale → 409."})


class EventOut(BaseSchema):
    """A case as the quality office and department heads see it: never who reported it."""

    id = WholeNumber()
    reference = fields.String(allow_none=True)
    state = fields.String()
    version = WholeNumber()
    mode = fields.String()
    category_code = fields.String(allow_none=True)
    subcategory_code = fields.String(allow_none=True)
    reporter_grade = fields.String(allow_none=True)
    confirmed_grade = fields.String(allow_none=True)
    harm = fields.String(allow_none=True)
    ncc_merp = fields.String(allow_none=True)
    care_stage = fields.String(allow_none=True)
    occurred_at = DateTime(allow_none=True)
    discovered_at = DateTime(allow_none=True)
    location = fields.String(allow_none=True)
    department_id = WholeNumber(allow_none=True)
    handling_department_id = WholeNumber(allow_none=True)
    clinical_state = fields.String(allow_none=True)
    patient_mrn = fields.String(allow_none=True)
    operation_id = WholeNumber(allow_none=True)
    is_unplanned_reoperation = fields.Boolean()
    description = fields.String()
    immediate_actions = fields.String()
    wants_feedback = fields.Boolean()
    public_role = fields.String(allow_none=True, metadata={
        "description": "who filed it on the public form (patient, family, other); null: staff"})
    external_severity = fields.String(allow_none=True)
    duplicate_of_id = WholeNumber(allow_none=True)
    reject_reason = fields.String(allow_none=True)
    rca_cause_domains = fields.String(allow_none=True)
    rca_factors = fields.String(allow_none=True)
    analysis = fields.String(allow_none=True)
    improvement_types = fields.String(allow_none=True)
    feedback = fields.String(allow_none=True)
    submitted_at = DateTime(allow_none=True)
    submitted_recorded_at = DateTime(allow_none=True, metadata={"description": "When the submission was recorded "
                                                                "(later than submitted_at for a paper report)."})
    triaged_at = DateTime(allow_none=True)
    closed_at = DateTime(allow_none=True)
    triage_due_at = DateTime(allow_none=True)
    investigation_due_at = DateTime(allow_none=True)
    external_report_due_at = DateTime(allow_none=True)
    external_reported_at = DateTime(allow_none=True)
    actions = fields.List(fields.Nested(ActionOut))


class EventPage(Page):
    items = fields.List(fields.Nested(EventOut))


class EventListArgs(CursorArgs):
    state = fields.String(validate=validate.OneOf(list(EventState)))
    grade = fields.String(validate=validate.OneOf(GRADES))
    category = Text(40)
    department_id = DepartmentId()
    overdue = fields.Boolean()
    reported_by = fields.String(validate=validate.OneOf(["staff", "public"]), metadata={
        "description": "staff: reports by staff; public: reports by patients and families"})


class ReceiptLookupIn(BaseSchema):
    receipt_code = Text(100, required=True)


class ReceiptReplyIn(ReceiptLookupIn):
    message = Text(5000, required=True)


class ReceiptOut(BaseSchema):
    """What a receipt holder may see: status, questions, replies and the feedback; nothing else."""

    reference = fields.String()
    state = fields.String()
    messages = fields.List(fields.Nested(MessageOut))
    feedback = fields.String(allow_none=True)


class PublicReportIn(BaseSchema):
    """The public form of a patient or a family (plain words; no grade, category or care stage)."""

    public_role = fields.String(required=True, validate=validate.OneOf(PUBLIC_ROLES))
    department_id = DepartmentId(required=True)
    occurred_on = Date(required=True)
    occurred_time = fields.Time(load_default=None, allow_none=True)
    location = Text(200)
    description = Text(3000, min_length=5, required=True)
    harm = fields.String(validate=validate.OneOf((*HARM, "unknown")))
    immediate_actions = Text(2000)
    contact_name = Text(60)
    contact_phone = Text(40)
    wants_feedback = fields.Boolean(load_default=False)
