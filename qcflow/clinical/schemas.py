"""Shapes of the HIS intake rows, reference data and operation steps (rules live in services)."""
from datetime import timedelta

from flask_babel import gettext, lazy_gettext as _
from marshmallow import ValidationError, fields, validate, validates_schema

from qcflow.clinical.models import DISPOSITIONS, LISTED_DRUGS, SEXES, SPECIALTIES, CancerType
from qcflow.core.i18n import label
from qcflow.core.schemas import LONG_TEXT, BaseSchema, Choice, Date, DateTime, Month, WholeNumber, no_control_characters

#: The states the HIS may push (planned is where an operation starts).
PUSHED_STATES = ("booked", "performed", "cancelled")


def Text(n: int, **kw) -> fields.String:  # noqa: N802 (a field)
    """An intake text field: 1 to `n` characters, no control characters."""
    return fields.String(validate=[validate.Length(min=1, max=n), no_control_characters(long_text=n >= LONG_TEXT)],
                         **kw)


HisId = lambda **kw: Text(40, required=True, **kw)  # noqa: E731


class _Trimmed(fields.String):
    """Text read without the spaces around it (the limits apply to what is stored)."""

    def _deserialize(self, value, attr, data, **kwargs) -> str:
        return super()._deserialize(value, attr, data, **kwargs).strip()


def Code(n: int, **kw) -> fields.String:  # noqa: N802 (a field)
    """A code another system names a thing by (a laboratory test, a unit): 1 to `n` characters once the spaces
    around it are dropped, no control characters; its case is kept as sent."""
    return _Trimmed(validate=[validate.Length(min=1, max=n), no_control_characters()], **kw)

#: The times an operation row may carry, named in words where a message names them.
TIME_WORDS = {"booked_at": _("the booking time"), "performed_at": _("the time it was performed"),
              "cancelled_at": _("the cancellation time"), "cancel_reason": _("the reason for the cancellation")}

#: What every time of a row means (the OpenAPI document repeats it on each field).
AT = " ISO 8601 with its UTC offset (e.g. +08:00 for China Standard Time); a time without offset is refused."
DEPARTMENT = "Department code, as listed by GET /api/v1/departments (e.g. GS)."
NULL_CLEARS = " Left out on a re-sent row: kept as it is; null: cleared."
KEPT = " Left out on a re-sent row: kept as it is; on a new record: {default}."


def doc(description: str, example=None) -> dict:
    """A field's metadata for the OpenAPI document (and the example row of the CSV template)."""
    return {"description": description, **({"example": example} if example is not None else {})}


class PatientIn(BaseSchema):
    """A patient (matched on `his_id`)."""

    his_id = HisId(metadata=doc("The patient's id in the HIS (the master patient index), stable for life.",
                                "P000123"))
    mrn = Text(40, required=True, metadata=doc("Medical record number (病案号) printed on the chart.", "BA20260001"))
    name = Text(100, required=True, metadata=doc("Full name as registered.", "王小明"))
    sex = fields.String(required=True, validate=validate.OneOf(SEXES),
                        metadata=doc("M male, F female, U unknown.", "M"))
    birth_on = Date(allow_none=True, metadata=doc("Date of birth (YYYY-MM-DD)." + NULL_CLEARS, "1968-05-14"))
    phone = fields.String(allow_none=True, validate=validate.Regexp(r"^[0-9+\- ]{5,30}$"),
                          metadata=doc("Phone number follow-up nurses call (digits, +, - and spaces); shown masked."
                                       + NULL_CLEARS, "13800138000"))
    id_number = fields.String(allow_none=True, validate=validate.Regexp(r"^[0-9A-Za-z]{6,30}$"),
                              metadata=doc("Resident identity card or passport number; shown masked." + NULL_CLEARS,
                                           "110101196805141234"))
    died_on = Date(allow_none=True, metadata=doc(
        "Date of death (YYYY-MM-DD, hospital calendar); null while alive. Setting it stops the patient's follow-up "
        "plans and, within the perioperative window of a performed operation, requests the death review."
        + NULL_CLEARS))


class EncounterIn(BaseSchema):
    """A hospital stay or day-surgery visit (matched on `his_id`)."""

    his_id = HisId(metadata=doc("The encounter's (admission's) id in the HIS.", "E000456"))
    patient_his_id = HisId(metadata=doc("`his_id` of the patient, sent before in /intake/patients.", "P000123"))
    department_code = Text(40, required=True, metadata=doc("Discharging department. " + DEPARTMENT, "GS"))
    admitted_at = DateTime(required=True, metadata=doc("Admission time," + AT, "2026-03-02T08:30:00+08:00"))
    discharged_at = DateTime(allow_none=True, metadata=doc(
        "Discharge time," + AT + " Null while the patient is in hospital." + NULL_CLEARS,
        "2026-03-02T17:00:00+08:00"))
    is_day_surgery = fields.Boolean(load_default=False, metadata=doc(
        "A day-surgery stay: its discharge enrols the patient in day-surgery follow-up (the 24 h call)."
        + KEPT.format(default="false"), True))
    disposition = fields.String(allow_none=True, validate=validate.OneOf(DISPOSITIONS), metadata=doc(
        "How the stay ended; needs `discharged_at`. `death` records the patient's death at the discharge time."
        + NULL_CLEARS, "home"))


class OperationIn(BaseSchema):
    """An operation (matched on `his_id`); with `state`, what happened to it in the HIS and when, applied
    through the operation workflow: booked (needs booked_at; passes the booking gate or the row is refused
    with its reasons), performed (needs performed_at; booked_at if known), cancelled (needs cancelled_at and
    cancel_reason). Re-sending the same state changes nothing."""

    his_id = HisId(metadata=doc("The operation's id in the HIS (the operation request / schedule id).", "O000789"))
    encounter_his_id = HisId(metadata=doc("`his_id` of the encounter, sent before in /intake/encounters.", "E000456"))
    procedure_code = Text(40, required=True, metadata=doc(
        "National clinical procedure code of the catalogue (/intake/procedures); the catalogue sets the grade.",
        "51.2301"))
    #: The HIS's grade; the catalogue wins and a difference is reported back.
    grade = WholeNumber(allow_none=True, validate=validate.Range(min=1, max=4), metadata=doc(
        "The HIS's surgical grade 1–4, only compared: the catalogue's grade is used and a difference comes back as a "
        "warning.", 3))
    surgeon_his_id = HisId(metadata=doc("`his_id` of the operating surgeon, sent before in /intake/staff.", "S0042"))
    department_code = Text(40, allow_none=True, metadata=doc(
        "Operating department. " + DEPARTMENT + " Left out on a new record: the encounter's department; on a "
        "re-sent row: kept as it is.", "GS"))
    planned_at = DateTime(required=True, metadata=doc(
        "Planned start," + AT + " A grade-4 or restricted-technology operation requests its pre-operative "
        "discussion, due at this time.", "2026-03-20T08:00:00+08:00"))
    is_unplanned_reoperation = fields.Boolean(load_default=False, metadata=doc(
        "An unplanned return to theatre: requests a case review." + KEPT.format(default="false"), False))
    state = Choice(PUSHED_STATES, example="performed", label_kind="clin_operation_state", allow_none=True, metadata=doc(
        "What happened to the operation in the HIS, applied through the operation workflow with the times below; "
        "left out: the operation stays as it is (a new one is planned)."))
    booked_at = DateTime(allow_none=True, metadata=doc("When the HIS booked it (state booked)," + AT,
                                                       "2026-03-18T15:20:00+08:00"))
    performed_at = DateTime(allow_none=True, metadata=doc("When it was performed (state performed)," + AT,
                                                          "2026-03-20T09:05:00+08:00"))
    # (no examples: the example row is a performed operation, and the CSV template writes the examples)
    cancelled_at = DateTime(allow_none=True, metadata=doc(
        "When it was cancelled (state cancelled, with cancel_reason)," + AT))
    cancel_reason = Text(2000, allow_none=True, metadata=doc("Why it was cancelled (state cancelled), e.g. "
                                                             "患者要求推迟手术."))

    @validates_schema
    def _times_of_the_state(self, data, **kwargs):
        needed = {"booked": ("booked_at",), "performed": ("performed_at",),
                  "cancelled": ("cancelled_at", "cancel_reason")}.get(data.get("state"), ())
        missing = {name: [gettext("The state “%(state)s” needs %(field)s.", field=TIME_WORDS[name],
                                  state=label("clin_operation_state", data["state"]))]
                   for name in needed if not data.get(name)}
        if missing:
            raise ValidationError(missing)


class DiagnosisIn(BaseSchema):
    """A cancer diagnosis (matched on `his_id`)."""

    his_id = HisId(metadata=doc("The diagnosis record's id in the HIS.", "D000321"))
    patient_his_id = HisId(metadata=doc("`his_id` of the patient, sent before in /intake/patients.", "P000123"))
    cancer_type = fields.String(required=True, validate=validate.OneOf(list(CancerType)), metadata=doc(
        "Lung, gastric, liver, breast and colorectal cancers enrol the patient in that cancer's follow-up.", "lung"))
    icd10 = fields.String(required=True, validate=validate.Regexp(r"^[A-Z][0-9]{2}(\.[0-9A-Z]{1,4})?$"),
                          metadata=doc("ICD-10 code of the diagnosis.", "C34.1"))
    diagnosed_on = Date(required=True, metadata=doc("Date of diagnosis (YYYY-MM-DD); anchors the follow-up.",
                                                    "2026-02-20"))
    stage = Text(10, allow_none=True, metadata=doc("Stage as written in the record (TNM group)." + NULL_CLEARS, "IIA"))
    department_code = Text(40, allow_none=True, metadata=doc(
        "Department that follows the patient up. " + DEPARTMENT + NULL_CLEARS, "GS"))


class CensusIn(BaseSchema):
    """A department's discharges in a month (matched on department and month)."""

    department_code = Text(40, required=True, metadata=doc(DEPARTMENT, "GS"))
    month = Month(required=True, metadata=doc("Calendar month (YYYY-MM).", "2026-03"))
    discharges = WholeNumber(required=True, validate=validate.Range(min=0), metadata=doc(
        "Patients discharged that month; overrides the count of encounters as the indicators' denominator.", 412))


class ProcedureIn(BaseSchema):
    """A procedure of the catalogue (matched on `code`)."""

    code = Text(40, required=True, metadata=doc("National clinical procedure code.", "51.2301"))
    name = Text(200, required=True, metadata=doc("Name of the procedure.", "腹腔镜胆囊切除术"))
    grade = WholeNumber(required=True, validate=validate.Range(min=1, max=4),
                           metadata=doc("Surgical grade 1–4 (4: the pre-operative discussion is required).", 3))
    is_restricted_technology = fields.Boolean(load_default=False, metadata=doc(
        "A restricted medical technology (限制类技术), gated like grade 4." + KEPT.format(default="false"), False))
    is_day_surgery_allowed = fields.Boolean(load_default=False, metadata=doc(
        "On the day-surgery list." + KEPT.format(default="false"), True))
    is_active = fields.Boolean(load_default=True, metadata=doc(
        "false: withdrawn; new operations with this code are refused." + KEPT.format(default="true"), True))


class StaffIn(BaseSchema):
    """A member of staff (matched on `his_id`)."""

    his_id = HisId(metadata=doc("The staff member's id in the HIS (work number).", "S0042"))
    name = Text(100, required=True, metadata=doc("Full name as the HIS lists it.", "王主任"))
    department_code = Text(40, allow_none=True, metadata=doc(DEPARTMENT + NULL_CLEARS, "GS"))
    specialty = Choice(SPECIALTIES, example="general_surgery", label_kind="clin_specialty", allow_none=True, metadata=doc(
        "Clinical specialty code (its Chinese or English label is taken too); MDT quorums count distinct "
        "specialties." + NULL_CLEARS))
    #: Links the staff member to a qcflow account (for notifications and MDT).
    username = Text(64, allow_none=True, metadata=doc(
        "Login of the staff member's qcflow account (notifications, MDT invitations); it must exist."
        + NULL_CLEARS, "wangzr"))
    is_active = fields.Boolean(load_default=True, metadata=doc("false: has left." + KEPT.format(default="true"), True))


class AuthorisationIn(BaseSchema):
    """A surgeon's authorisation for a procedure (matched on surgeon, procedure and start date)."""

    staff_his_id = HisId(metadata=doc("`his_id` of the surgeon, sent before in /intake/staff.", "S0042"))
    procedure_code = Text(40, required=True, metadata=doc("Procedure code of the catalogue.", "51.2301"))
    valid_from = Date(required=True, metadata=doc("First day the authorisation is valid (YYYY-MM-DD).", "2026-01-01"))
    valid_until = Date(allow_none=True, metadata=doc(
        "Last day it is valid (YYYY-MM-DD); null: until withdrawn." + NULL_CLEARS, "2027-12-31"))


#: The largest magnitude of a laboratory value: beyond it a value is a unit or typing error, not a result.
LAB_VALUE_LIMIT = 1e12
#: How long after the stay's discharge a fact of the stay may still be dated (services check it; docs/decisions.md):
#: a transfer never (the discharge is the last movement); a medicine given as the patient leaves, on another
#: system's clock; a result of a specimen taken in the stay, which for a blood culture takes days.
AFTER_DISCHARGE = {"transfers": timedelta(0), "administrations": timedelta(hours=1),
                   "lab_results": timedelta(days=7)}


def in_the_stay(kind: str, why: str = "") -> str:
    """What a fact of the stay's time may be, for its field's description."""
    hours = AFTER_DISCHARGE[kind] // timedelta(hours=1)
    grace = f" (up to {hours} h after it{': ' + why if why else ''})" if hours else ""
    return (f" Not in the future, not before the stay's admission nor after its discharge{grace}, not after the "
            "patient's day of death.")


class TransferIn(BaseSchema):
    """A move of an in-patient from one department (ward, unit) to another during a stay (matched on `his_id`)."""

    his_id = HisId(metadata=doc("The transfer's id in the HIS (the ADT movement record).", "T000901"))
    encounter_his_id = HisId(metadata=doc("`his_id` of the stay, sent before in /intake/encounters; the patient is "
                                          "the stay's.", "E000456"))
    from_department_code = Text(40, required=True, metadata=doc("Department the patient left. " + DEPARTMENT, "GS"))
    to_department_code = Text(40, required=True, metadata=doc(
        "Department the patient moved to, not the one left. " + DEPARTMENT, "ICU"))
    to_icu = fields.Boolean(load_default=False, metadata=doc(
        "The unit moved to is an intensive care unit (ICU, SICU, EICU …): the triggers read transfers to intensive "
        "care." + KEPT.format(default="false"), True))
    transferred_at = DateTime(required=True, metadata=doc(
        "Time of the move," + AT + in_the_stay("transfers"), "2026-03-02T11:40:00+08:00"))


class AdministrationIn(BaseSchema):
    """A listed medicine given to a patient during a stay (matched on `his_id`): only the reversal and rescue drugs
    and the blood products the triggers read; qcflow keeps no medication record."""

    his_id = HisId(metadata=doc("The administration's id in the HIS (the nursing or transfusion record).", "M000311"))
    encounter_his_id = HisId(metadata=doc("`his_id` of the stay, sent before in /intake/encounters; the patient is "
                                          "the stay's.", "E000456"))
    drug = Choice(LISTED_DRUGS, example="naloxone", label_kind="clin_drug", required=True, metadata=doc(
        "Which listed medicine (its Chinese or English name is taken too): naloxone, flumazenil, vitamin_k, "
        "protamine, glucose_50 (50% glucose), antihistamine, adrenaline, blood_product (a transfusion). Do not "
        "send other medicines."))
    dose = Text(60, allow_none=True, metadata=doc("The dose as the HIS writes it." + NULL_CLEARS, "0.4 mg iv"))
    given_at = DateTime(required=True, metadata=doc(
        "Time it was given," + AT + in_the_stay("administrations", "another system's clock"), "2026-03-02T12:15:00+08:00"))
    reaction = fields.Boolean(load_default=False, metadata=doc(
        "The transfusion or pharmacy system flagged a reaction to it (e.g. a transfusion reaction)."
        + KEPT.format(default="false"), False))


class LabResultIn(BaseSchema):
    """A laboratory result the HIS or the laboratory system flagged as critical (危急值) during a stay (matched on
    `his_id`); only critical results: qcflow keeps no laboratory record."""

    his_id = HisId(metadata=doc("The result's id in the laboratory system.", "L000512"))
    encounter_his_id = HisId(metadata=doc("`his_id` of the stay the specimen was taken in, sent before in "
                                          "/intake/encounters; the patient is the stay's.", "E000456"))
    test_code = Code(20, required=True, metadata=doc(
        "The laboratory's test code (INR, GLU, K …), stored without surrounding spaces and in the case sent; the "
        "critical-value triggers name it.", "GLU"))
    value = fields.Float(required=True, allow_nan=False,
                         validate=validate.Range(min=-LAB_VALUE_LIMIT, max=LAB_VALUE_LIMIT), metadata=doc(
                             "The numeric result, a JSON number (in a CSV file, e.g. 2.1); NaN, infinities and "
                             "magnitudes over 10¹² are refused.", 2.1))
    unit = Code(20, allow_none=True, metadata=doc("The result's unit as the laboratory writes it." + NULL_CLEARS,
                                                  "mmol/L"))
    resulted_at = DateTime(required=True, metadata=doc(
        "Time the result was reported," + AT + in_the_stay(
            "lab_results", "a culture of a specimen taken in the stay comes back days later"),
        "2026-03-02T13:05:00+08:00"))


EFFECT_CODES = ("discussion_requested", "discussion_already_requested", "discussion_rescheduled",
                "discussion_disputed", "discussion_withdrawn", "plan_enrolled", "plan_already_enrolled", "plan_reanchored", "plan_stopped",
                "plan_not_enrolled_deceased", "plan_not_enrolled_no_protocol", "plan_not_enrolled_no_department")


class EffectOut(BaseSchema):
    """What a row's fact set off in qcflow: a record another team acts on."""

    code = fields.String(metadata={"enum": list(EFFECT_CODES), "description": (
        "discussion_requested: an MDT or death-review discussion was requested; discussion_already_requested: it "
        "was requested before (nothing new); discussion_rescheduled: its due time moved with the operation; "
        "discussion_disputed: a disputed death shortened its deadline; discussion_withdrawn: the operation was "
        "cancelled or performed, so its pre-operative discussion not yet held was withdrawn; plan_enrolled: the patient was enrolled in a "
        "follow-up plan; plan_already_enrolled: the plan existed; plan_reanchored: its calls moved with a corrected "
        "discharge time; plan_stopped: a death stopped the plan; plan_not_enrolled_deceased, _no_protocol, "
        "_no_department: the fact would start a follow-up plan but none was started (the patient died; no protocol "
        "is installed for the pathway; no department to follow the patient up: send the row's department_code)")})
    record = fields.String(metadata={"enum": ["mdt_discussion", "followup_plan"],
                                     "description": "The kind of record: an MDT discussion or a follow-up plan"})
    id = WholeNumber(allow_none=True, metadata={
        "description": "Its id (/api/v1/mdt/discussions/{id}, /api/v1/followup/plans/{id}); null when none was made"})
    detail = fields.String(metadata={"description": (
        "The discussion's kind (preop_level4, case_review, perioperative_death, death_case) or the plan's pathway "
        "(day_surgery, four_level_surgery, cancer_lung, …)")})


class RowResult(BaseSchema):
    row = WholeNumber(metadata={"description": "1-based position in the batch (CSV: line number)"})
    key = fields.String(allow_none=True, metadata={"description": "The row's key: HIS id, or the natural key"})
    status = fields.String(metadata={"enum": ["created", "updated", "unchanged", "error", "skipped"], "description": (
        "created, updated, unchanged (the row matches what is stored), error (see errors) or skipped (strict batch "
        "with an error elsewhere)")})
    id = fields.Raw(allow_none=True, metadata={"description": "qcflow's id of the record (a procedure: its code)"})
    errors = fields.Dict(metadata={"description": "Field errors: {field: [messages]}, in the request's language"})
    warnings = fields.List(fields.String(), metadata={"description": "Accepted, but look: e.g. a grade that differs "
                                                                      "from the catalogue's"})
    effects = fields.List(fields.Nested(EffectOut), metadata={"description": (
        "What the row's change set off; empty when nothing changed")})


class BatchOut(BaseSchema):
    results = fields.List(fields.Nested(RowResult))
    created = WholeNumber()
    updated = WholeNumber()
    unchanged = WholeNumber()
    failed = WholeNumber()


class OperationTransitionIn(BaseSchema):
    action = fields.String(required=True, validate=validate.OneOf(["book", "perform", "cancel"]))
    version = WholeNumber(required=True)
    emergency_override = fields.Boolean(load_default=False)
    override_reason = fields.String(validate=validate.Length(max=2000))
    performed_at = DateTime()
    reason = fields.String(validate=validate.Length(max=2000))


class OperationOut(BaseSchema):
    id = WholeNumber()
    his_id = fields.String()
    state = fields.String()
    version = WholeNumber()
    patient_id = WholeNumber()
    encounter_id = WholeNumber()
    department_id = WholeNumber()
    procedure_code = fields.String()
    grade = WholeNumber()
    is_restricted_technology = fields.Boolean()
    surgeon_staff_id = WholeNumber()
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

    id = WholeNumber()
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
    operation_id = WholeNumber(allow_none=True)
    planned_at = DateTime(allow_none=True)
    surgeon_his_id = fields.String(allow_none=True)
    emergency_override_possible = fields.Boolean(
        metadata={"description": "Refused only for what an emergency override (with its reason, in qcflow) may bypass"})
    reasons = fields.List(fields.Nested(BookingReasonOut))
