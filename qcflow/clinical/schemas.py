"""Shapes of the HIS intake rows, reference data and operation steps (rules live in services)."""
from flask_babel import lazy_gettext as _
from marshmallow import ValidationError, fields, validate, validates_schema

from qcflow.clinical.models import DISPOSITIONS, SEXES, SPECIALTIES, CancerType
from qcflow.core.schemas import BaseSchema, Choice, Date, DateTime, Month

#: The states the HIS may push (planned is where an operation starts).
PUSHED_STATES = ("booked", "performed", "cancelled")
Text = lambda n, **kw: fields.String(validate=validate.Length(min=1, max=n), **kw)  # noqa: E731
HisId = lambda **kw: Text(40, required=True, **kw)  # noqa: E731


class PatientIn(BaseSchema):
    his_id = HisId(metadata={"example": "P000123"})
    mrn = Text(40, required=True, metadata={"example": "BA20260001"})
    name = Text(100, required=True, metadata={"example": "王小明"})
    sex = fields.String(required=True, validate=validate.OneOf(SEXES))
    birth_on = Date(allow_none=True)
    phone = fields.String(allow_none=True, validate=validate.Regexp(r"^[0-9+\- ]{5,30}$"))
    id_number = fields.String(allow_none=True, validate=validate.Regexp(r"^[0-9A-Za-z]{6,30}$"))
    died_on = Date(allow_none=True)


class EncounterIn(BaseSchema):
    his_id = HisId(metadata={"example": "E000456"})
    patient_his_id = HisId()
    department_code = Text(40, required=True, metadata={"example": "GS"})
    admitted_at = DateTime(required=True)
    discharged_at = DateTime(allow_none=True)
    is_day_surgery = fields.Boolean(load_default=False)
    disposition = fields.String(allow_none=True, validate=validate.OneOf(DISPOSITIONS))


class OperationIn(BaseSchema):
    """An operation; with `state`, what happened to it in the HIS and when, applied through the operation
    workflow: booked (needs booked_at; passes the booking gate or the row is refused with its reasons),
    performed (needs performed_at; booked_at if known), cancelled (needs cancelled_at and cancel_reason).
    Re-sending the same state changes nothing."""

    his_id = HisId(metadata={"example": "O000789"})
    encounter_his_id = HisId()
    procedure_code = Text(40, required=True, metadata={"example": "51.2301"})
    #: The HIS's grade; the catalogue wins and a difference is reported back.
    grade = fields.Integer(allow_none=True, validate=validate.Range(min=1, max=4))
    surgeon_his_id = HisId()
    department_code = Text(40, allow_none=True)
    planned_at = DateTime(required=True)
    is_unplanned_reoperation = fields.Boolean(load_default=False)
    #: What happened in the HIS, with its real times; absent: the operation stays as it is (a new one is planned).
    state = Choice(PUSHED_STATES, example="performed", allow_none=True)
    booked_at = DateTime(allow_none=True, metadata={"example": "2026-03-18T15:20:00+08:00"})
    performed_at = DateTime(allow_none=True, metadata={"example": "2026-03-20T09:05:00+08:00"})
    cancelled_at = DateTime(allow_none=True, metadata={"example": "2026-03-19T17:00:00+08:00"})
    cancel_reason = Text(2000, allow_none=True, metadata={"example": "患者要求推迟手术"})

    @validates_schema
    def _times_of_the_state(self, data, **kwargs):
        needed = {"booked": ("booked_at",), "performed": ("performed_at",),
                  "cancelled": ("cancelled_at", "cancel_reason")}.get(data.get("state"), ())
        missing = {name: [_("The state “%(state)s” needs %(field)s.", state=data["state"], field=name)]
                   for name in needed if not data.get(name)}
        if missing:
            raise ValidationError(missing)


class DiagnosisIn(BaseSchema):
    his_id = HisId(metadata={"example": "D000321"})
    patient_his_id = HisId()
    cancer_type = fields.String(required=True, validate=validate.OneOf(list(CancerType)))
    icd10 = fields.String(required=True, validate=validate.Regexp(r"^[A-Z][0-9]{2}(\.[0-9A-Z]{1,4})?$"))
    diagnosed_on = Date(required=True)
    stage = Text(10, allow_none=True)
    department_code = Text(40, allow_none=True)


class CensusIn(BaseSchema):
    department_code = Text(40, required=True)
    month = Month(required=True, metadata={"example": "2026-03"})
    discharges = fields.Integer(required=True, validate=validate.Range(min=0))


class ProcedureIn(BaseSchema):
    code = Text(40, required=True, metadata={"example": "51.2301"})
    name = Text(200, required=True, metadata={"example": "腹腔镜胆囊切除术"})
    grade = fields.Integer(required=True, validate=validate.Range(min=1, max=4))
    is_restricted_technology = fields.Boolean(load_default=False)
    is_day_surgery_allowed = fields.Boolean(load_default=False)
    is_active = fields.Boolean(load_default=True)


class StaffIn(BaseSchema):
    his_id = HisId(metadata={"example": "S0042"})
    name = Text(100, required=True)
    department_code = Text(40, allow_none=True)
    specialty = Choice(SPECIALTIES, example="anaesthesia", label_kind="clin_specialty", allow_none=True)
    #: Links the staff member to a qcflow account (for notifications and MDT).
    username = Text(64, allow_none=True)
    is_active = fields.Boolean(load_default=True)


class AuthorisationIn(BaseSchema):
    staff_his_id = HisId()
    procedure_code = Text(40, required=True)
    valid_from = Date(required=True)
    valid_until = Date(allow_none=True)


class RowResult(BaseSchema):
    row = fields.Integer(metadata={"description": "1-based position in the batch (CSV: line number)"})
    key = fields.String(allow_none=True)
    status = fields.String(metadata={"description": "created, updated, unchanged or error"})
    id = fields.Raw(allow_none=True)
    errors = fields.Dict()
    warnings = fields.List(fields.String())


class BatchOut(BaseSchema):
    results = fields.List(fields.Nested(RowResult))
    created = fields.Integer()
    updated = fields.Integer()
    unchanged = fields.Integer()
    failed = fields.Integer()


class OperationTransitionIn(BaseSchema):
    action = fields.String(required=True, validate=validate.OneOf(["book", "perform", "cancel"]))
    version = fields.Integer(required=True)
    emergency_override = fields.Boolean(load_default=False)
    override_reason = fields.String(validate=validate.Length(max=2000))
    performed_at = DateTime()
    reason = fields.String(validate=validate.Length(max=2000))


class OperationOut(BaseSchema):
    id = fields.Integer()
    his_id = fields.String()
    state = fields.String()
    version = fields.Integer()
    patient_id = fields.Integer()
    encounter_id = fields.Integer()
    department_id = fields.Integer()
    procedure_code = fields.String()
    grade = fields.Integer()
    is_restricted_technology = fields.Boolean()
    surgeon_staff_id = fields.Integer()
    planned_at = DateTime()
    booked_at = DateTime(allow_none=True)
    performed_at = DateTime(allow_none=True)
    cancelled_at = DateTime(allow_none=True)
    cancel_reason = fields.String(allow_none=True)
    is_unplanned_reoperation = fields.Boolean()
    is_emergency_override = fields.Boolean()
    override_reason = fields.String(allow_none=True)


class PatientOut(BaseSchema):
    """A patient in lists and exports: phone and ID numbers masked."""

    id = fields.Integer()
    his_id = fields.String()
    mrn = fields.String()
    name = fields.String()
    sex = fields.String()
    birth_on = Date(allow_none=True)
    phone = fields.String(allow_none=True)
    id_number = fields.String(allow_none=True)
    died_on = Date(allow_none=True)


class BookingCheckIn(BaseSchema):
    operation_his_id = HisId(metadata={"example": "O000789"})
    planned_at = DateTime(metadata={"description": "The time the HIS wants to book; default: the stored planned time",
                                    "example": "2026-03-20T08:00:00+08:00"})
    surgeon_his_id = Text(40, metadata={"description": "The surgeon the HIS wants to book; default: the stored surgeon",
                                        "example": "S0042"})


class Bilingual(BaseSchema):
    zh = fields.String()
    en = fields.String()


class BookingReasonOut(BaseSchema):
    code = fields.String(metadata={"description": "operation_unknown, operation_cancelled, operation_performed, "
                                                  "surgeon_unknown, mdt_missing, mdt_too_old, not_authorised, "
                                                  "authorisation_not_valid"})
    message = fields.Nested(Bilingual, metadata={"description": "What is wrong, in Chinese and English"})
    next_step = fields.Nested(Bilingual, metadata={"description": "What to do next, in Chinese and English"})


class BookingDecisionOut(BaseSchema):
    allowed = fields.Boolean()
    operation_his_id = fields.String()
    operation_id = fields.Integer(allow_none=True)
    planned_at = DateTime(allow_none=True)
    surgeon_his_id = fields.String(allow_none=True)
    emergency_override_possible = fields.Boolean(
        metadata={"description": "Refused only for what an emergency override (with its reason, in qcflow) may bypass"})
    reasons = fields.List(fields.Nested(BookingReasonOut))
