"""Shapes of discussion requests and responses (rules live in services)."""
import re

from marshmallow import fields, validate

from qcflow.clinical.models import SPECIALTIES
from qcflow.core.schemas import (BaseSchema, Choice, CursorArgs, Date, DateTime, DepartmentId, Page, WholeNumber,
                                 no_control_characters)
from qcflow.mdt.models import DECISIONS, PARTICIPANT_ROLES, DiscussionKind
from qcflow.mdt.workflow import DiscussionState

Text = lambda n, **kw: fields.String(validate=[validate.Length(max=n), no_control_characters(long_text=True)],  # noqa: E731
                                     **kw)
Id = lambda **kw: WholeNumber(validate=validate.Range(min=1), **kw)  # noqa: E731


class EventRef(WholeNumber):
    """An adverse event by its id or by its reference as people copy it from the case page (AE-2026-000123: the
    number after the year is the id)."""

    _REFERENCE = re.compile(r"\s*AE-\d{4}-(\d{1,10})\s*", re.IGNORECASE)

    def _deserialize(self, value, attr, data, **kwargs):
        found = self._REFERENCE.fullmatch(value) if isinstance(value, str) else None
        return super()._deserialize(found.group(1) if found else value, attr, data, **kwargs)


class DiscussionIn(BaseSchema):
    kind = fields.String(required=True, validate=validate.OneOf(list(DiscussionKind)),
                         metadata={"example": "preop_level4"})
    operation_id = Id(allow_none=True, metadata={"description": "Required for preop_level4."})
    patient_mrn = Text(40, allow_none=True, metadata={"description": "病案号; or link the operation."})
    encounter_id = Id(allow_none=True)
    event_id = EventRef(allow_none=True, validate=validate.Range(min=1), metadata={
        "description": "The adverse event a case review is about: its id or its reference (AE-2026-000123)."})
    department_id = DepartmentId(allow_none=True, metadata={"description": "Organising department, id or code "
                                                                           "(quality office only; others organise "
                                                                           "for their own)."})
    question = Text(5000, load_default="", metadata={"example": "胰十二指肠切除术的手术指征与麻醉风险评估"})
    chair_user_id = Id(allow_none=True)
    is_disputed = fields.Boolean(load_default=False)
    due_at = DateTime(allow_none=True, metadata={"description": "Default: by kind (see README)."})


class DiscussionRecordIn(BaseSchema):
    version = WholeNumber(required=True, metadata={"description": "The version you read; stale → 409."})
    question = Text(5000)
    chair_user_id = Id(allow_none=True)
    summary = Text(20000)
    conclusion = Text(20000)
    decision = fields.String(allow_none=True, validate=validate.OneOf(DECISIONS))


class DiscussionTransitionIn(BaseSchema):
    action = fields.String(required=True, metadata={"example": "sign"})
    version = WholeNumber(required=True, metadata={"description": "The version you read; stale → 409."})
    scheduled_at = DateTime(metadata={"example": "2026-03-05T14:00:00+08:00"})
    held_at = DateTime()
    signed_at = DateTime(metadata={
        "example": "2026-03-02T17:30:00+08:00",
        "description": "sign: when the record was signed, for one signed on paper (default: now). Not before "
                       "it was held, not in the future, at most BACKDATE_MAX_DAYS back unless the quality office."})
    reason = Text(5000)
    summary = Text(20000)
    conclusion = Text(20000)
    decision = fields.String(validate=validate.OneOf(DECISIONS))


class ParticipantIn(BaseSchema):
    user_id = Id(allow_none=True, metadata={"description": "A qcflow user; leave out for an outside expert."})
    staff_id = Id(allow_none=True, metadata={"description": "A staff-list entry, with or without a user account "
                                                            "(its name, department and specialty are the list's)."})
    name = Text(100, metadata={"description": "Required without user_id or staff_id.",
                               "example": "王教授（省人民医院）"})
    department_id = DepartmentId(allow_none=True, metadata={
        "description": "Id or code. A colleague's own department only (may be left out); an outside expert has none (422). An "
                       "outside expert never meets a required specialty, and outside experts together count as one "
                       "specialty towards the quorum."})
    specialty = Choice(SPECIALTIES, example="anaesthesia", label_kind="clin_specialty", allow_none=True)
    role = fields.String(load_default="member", validate=validate.OneOf(PARTICIPANT_ROLES))
    attended = fields.Boolean(load_default=False)


class ParticipantPatch(BaseSchema):
    version = WholeNumber(required=True, metadata={"description": "The discussion's version you read; stale → 409."})
    attended = fields.Boolean()
    specialty = Choice(SPECIALTIES, example="anaesthesia", label_kind="clin_specialty", allow_none=True)
    department_id = DepartmentId(allow_none=True)
    role = fields.String(validate=validate.OneOf(PARTICIPANT_ROLES))


class OwnAttendanceIn(BaseSchema):
    version = WholeNumber(required=True)
    attended = fields.Boolean(required=True)


class AttendanceIn(BaseSchema):
    version = WholeNumber(required=True)
    attended = fields.List(WholeNumber(), load_default=list,
                           metadata={"description": "Ids of the participants who attended; the others did not."})


class AddendumIn(BaseSchema):
    text = Text(20000, required=True)


class ParticipantOut(BaseSchema):
    id = WholeNumber()
    user_id = WholeNumber(allow_none=True)
    staff_id = WholeNumber(allow_none=True)
    name = fields.String()
    department_id = WholeNumber(allow_none=True)
    specialty = fields.String(allow_none=True)
    role = fields.String()
    attended = fields.Boolean()


class AddendumOut(BaseSchema):
    id = WholeNumber()
    author_user_id = WholeNumber()
    text = fields.String()
    created_at = DateTime()


class DiscussionOut(BaseSchema):
    id = WholeNumber()
    kind = fields.String()
    state = fields.String()
    version = WholeNumber()
    department_id = WholeNumber()
    patient_id = WholeNumber(allow_none=True)
    operation_id = WholeNumber(allow_none=True)
    encounter_id = WholeNumber(allow_none=True)
    event_id = WholeNumber(allow_none=True)
    question = fields.String(metadata={"description": "The question as the team wrote it; empty for a discussion qcflow "
                                                      "requested by itself until the team writes one (kind and "
                                                      "operation_id say what it is about; pages word it in the "
                                                      "reader's language)."})
    chair_user_id = WholeNumber(allow_none=True)
    summary = fields.String(allow_none=True)
    conclusion = fields.String(allow_none=True)
    decision = fields.String(allow_none=True)
    is_disputed = fields.Boolean()
    due_at = DateTime(allow_none=True)
    scheduled_at = DateTime(allow_none=True)
    held_at = DateTime(allow_none=True)
    signed_at = DateTime(allow_none=True)
    signed_recorded_at = DateTime(allow_none=True, metadata={
        "description": "When the signature was recorded (later than signed_at for a record signed on paper)."})
    signed_by_user_id = WholeNumber(allow_none=True)
    cancel_reason = fields.String(allow_none=True)
    created_at = DateTime()
    participants = fields.List(fields.Nested(ParticipantOut))
    addenda = fields.List(fields.Nested(AddendumOut))


class DiscussionPage(Page):
    items = fields.List(fields.Nested(DiscussionOut))


class DiscussionListArgs(CursorArgs):
    kind = fields.String(validate=validate.OneOf(list(DiscussionKind)))
    state = fields.String(validate=validate.OneOf(list(DiscussionState)))
    patient = Text(40, metadata={"description": "The patient's HIS id or record number (病案号)", "example": "BA001"})


class ClinicSlotIn(BaseSchema):
    weekday = WholeNumber(required=True, validate=validate.Range(min=1, max=7),
                             metadata={"description": "1 = Monday … 7 = Sunday", "example": 3})
    starts_at = fields.Time(required=True, format="%H:%M", metadata={"example": "14:00"})
    ends_at = fields.Time(required=True, format="%H:%M", metadata={"example": "17:00"})


class ClinicIn(BaseSchema):
    name = fields.String(required=True, validate=[validate.Length(min=1, max=100), no_control_characters()],
                         metadata={"example": "肺结节多学科门诊"})
    name_en = Text(100, load_default="", metadata={"example": "Lung nodule MDT clinic"})
    department_id = DepartmentId(required=True, metadata={"description": "The department that runs the clinic "
                                                                         "(id or code)."})
    specialties = fields.List(fields.String(validate=validate.OneOf(list(SPECIALTIES))), required=True,
                              validate=validate.Length(min=1, max=len(SPECIALTIES)),
                              metadata={"example": ["thoracic_surgery", "respiratory", "radiology"],
                                        "description": "Codes of the specialties that sit in the clinic; the "
                                                       "indicator counts clinics of two or more."})
    slots = fields.List(fields.Nested(ClinicSlotIn), load_default=list, validate=validate.Length(max=14),
                        metadata={"description": "Weekly slots; a clinic without one is not counted."})
    active_from = Date(required=True, metadata={"example": "2026-01-01"})
    active_to = Date(allow_none=True, load_default=None, metadata={"description": "Last day open; empty: open."})


class ClinicPatch(ClinicIn):
    """The fields to change (others are kept; `slots` replaces every slot); `version` is the one read
    (stale → 409). Load it with `partial=CLINIC_FIELDS`."""

    version = WholeNumber(required=True, metadata={"description": "The version you read; stale → 409."})


class ClinicDeactivateIn(BaseSchema):
    version = WholeNumber(required=True, metadata={"description": "The version you read; stale → 409."})
    active_to = Date(required=True, metadata={"description": "The clinic's last day open.", "example": "2026-06-30"})


class ClinicSlotOut(BaseSchema):
    weekday = WholeNumber()
    starts_at = fields.Time(format="%H:%M")
    ends_at = fields.Time(format="%H:%M")


class ClinicOut(BaseSchema):
    id = WholeNumber()
    name = fields.String()
    name_en = fields.String()
    department_id = WholeNumber()
    specialties = fields.List(fields.String())
    slots = fields.List(fields.Nested(ClinicSlotOut))
    active_from = fields.Date()
    active_to = fields.Date(allow_none=True)
    is_counted = fields.Boolean(metadata={"description": "Counted by mdt_clinic_count today: active, a weekly "
                                                         "slot and at least two specialties."})
    version = WholeNumber()


class ClinicListArgs(BaseSchema):
    lang = fields.String(load_default=None, validate=validate.OneOf(["zh", "en"]))
    active_on = Date(load_default=None, metadata={"description": "Only clinics open that day."})


class ClinicList(BaseSchema):
    items = fields.List(fields.Nested(ClinicOut))


#: The fields a PATCH may leave out (all but `version`).
CLINIC_FIELDS = tuple(ClinicIn._declared_fields)
