"""Shapes of indicator requests and responses (rules live in queries and services)."""
from flask_babel import lazy_gettext as _l
from marshmallow import fields, validate

from qcflow.core.schemas import (BaseSchema, Choice, CursorArgs, Date, DateTime, DepartmentId, Month, Page, QueryArgs,
                                 WholeNumber, no_control_characters)
from qcflow.indicators.catalogue import PLAN_KEYS
from qcflow.indicators.models import COMPARISONS, DIRECTIONS, FORM_KINDS, HOSPITAL_LEVELS, METHODS, REPORT_STATES, UNITS

PARTS = ("numerator", "denominator")


class PeriodArgs(QueryArgs):
    from_ = Date(data_key="from", load_default=None,
                 metadata={"description": "First day (YYYY-MM-DD); default: the first of this month"})
    to = Date(load_default=None, metadata={"description": "Last day, inclusive; default: today"})
    department = DepartmentId(load_default=None, metadata={
        "description": "Department id or code (quality office: any; others: their own)"})


class TrendArgs(QueryArgs):
    month = Month(load_default=None,
                  metadata={"description": "Last month of the 12-month trend (YYYY-MM); default: this month"})
    department = DepartmentId(load_default=None)


class CasesArgs(PeriodArgs):
    part = fields.String(load_default="numerator", validate=validate.OneOf(PARTS))
    cursor = fields.String(load_default=None, validate=validate.Length(max=40))
    limit = WholeNumber(load_default=50, validate=validate.Range(min=1, max=100))


class ComputedOut(BaseSchema):
    numerator = WholeNumber()
    denominator = WholeNumber()
    value = fields.Float(allow_none=True)
    target = fields.Float(allow_none=True)
    met = fields.Boolean(allow_none=True)


class IndicatorValueOut(BaseSchema):
    code = fields.String()
    name = fields.String()
    unit = fields.String(metadata={"description": "percent, permille, per100, count, minutes, hours, days, ratio or "
                                                  "status (1 done, 0 not done)"})
    direction = fields.String(metadata={"description": "higher, lower (is better), rising, falling or none"})
    value = fields.Float(allow_none=True)
    numerator = WholeNumber(allow_none=True, metadata={
        "description": "null for a reported indicator without an approved rate, or one reported as a single value"})
    denominator = WholeNumber(allow_none=True)
    target = fields.Float(allow_none=True)
    comparison = fields.String(allow_none=True, metadata={"description": "gt, ge, le or lt"})
    met = fields.Boolean(allow_none=True)
    frozen_at = DateTime(allow_none=True, metadata={"description": "Set when the value is a frozen snapshot"})
    differs = fields.Boolean(metadata={"description": "The snapshot differs from a computation now"})
    recomputed = fields.Nested(ComputedOut, allow_none=True)
    method = fields.String(metadata={"description": "computed (by qcflow) or reported (approved monthly reports)"})
    pending = WholeNumber(metadata={"description": "Reported: department-months awaiting approval, not counted"})
    found_by_system = WholeNumber(metadata={
        "description": "ae_per_100_discharges only: reports of the period filed from a trigger's firing "
                       "(系统发现), counted apart and never in the numerator"})


class TrendPointOut(IndicatorValueOut):
    month = fields.String(metadata={"example": "2026-03"})


class TrendOut(BaseSchema):
    code = fields.String()
    name = fields.String()
    unit = fields.String()
    direction = fields.String()
    source = fields.String()
    department = WholeNumber(allow_none=True)
    months = fields.List(fields.Nested(TrendPointOut))


class CaseOut(BaseSchema):
    kind = fields.String(metadata={"description": "event, encounter, census, operation, followup_task, discussion"})
    id = WholeNumber()
    label = fields.String()
    url = fields.String(allow_none=True)
    weight = WholeNumber(metadata={"description": "1, or a census row's discharges"})


class CasesPage(BaseSchema):
    code = fields.String()
    part = fields.String()
    total = WholeNumber(metadata={"description": "The numerator or denominator: the sum of the weights"})
    items = fields.List(fields.Nested(CaseOut))
    next_cursor = fields.String(allow_none=True)


class CatalogueEntryArgs(QueryArgs):
    plan = fields.String(load_default=None, validate=validate.OneOf(PLAN_KEYS), metadata={
        "description": "The plan whose targets apply (and whose annex comes first in a list); default: the "
                       "installation's (config INDICATOR_PLAN)"})
    department = DepartmentId(load_default=None, metadata={
        "description": "Whose targets: this department's own first (default: the department that reports it)"})
    year = WholeNumber(load_default=None, validate=validate.Range(min=2000, max=2100),
                          metadata={"description": "The targets' year; default: this year"})


class CatalogueArgs(CatalogueEntryArgs):
    method = fields.String(load_default=None, validate=validate.OneOf(METHODS))
    department = DepartmentId(load_default=None, metadata={
        "description": "Only the indicators this department reports (its own ones too), with its targets"})
    q = fields.String(load_default=None, validate=validate.Length(max=60),
                      metadata={"description": "A piece of the Chinese or English name"})


class AnnexRowOut(BaseSchema):
    plan = fields.String(metadata={"description": "henan, yubei, shaoxing or guizhou"})
    seq = WholeNumber(metadata={"description": "The row's number in the annex"})
    wording = fields.String(metadata={"description": "The annex's own words"})
    line = WholeNumber(metadata={"description": "Line of the plan's text where the row starts"})


class CatalogueTargetOut(BaseSchema):
    comparison = fields.String(metadata={"description": "gt, ge, le or lt"})
    value = fields.Float()
    source = fields.String(metadata={"description": "The plan's citation, or who set it"})
    set = fields.String(metadata={"description": "The plan's key, hospital or department"})
    year = WholeNumber(metadata={"description": "The first year the target holds"})


class CatalogueRowOut(BaseSchema):
    code = fields.String()
    name = fields.String()
    name_en = fields.String()
    unit = fields.String(metadata={"description": ", ".join(UNITS)})
    direction = fields.String(metadata={"description": ", ".join(DIRECTIONS)})
    method = fields.String(metadata={"description": "This hospital's: computed, reported or not_applicable"})
    default_method = fields.String(metadata={"description": "The catalogue's"})
    reason = fields.String(metadata={"description": "Why it does not apply"})
    responsible = fields.String(metadata={"description": "The responsible department as the annexes name it"})
    department_id = WholeNumber(allow_none=True, metadata={
        "description": "This hospital's department that reports it (a department's own indicator: that "
                       "department); null: the quality office"})
    is_local = fields.Boolean(metadata={"description": "A department's own key indicator"})
    version = WholeNumber(allow_none=True, metadata={
        "description": "The version of this hospital's setup row (null: the catalogue's default); send it back "
                       "to change the setup"})
    annex = fields.List(fields.Nested(AnnexRowOut), metadata={"description": "Every plan's annex rows holding it"})
    target = fields.Nested(CatalogueTargetOut, allow_none=True, metadata={
        "description": "The year's target: the department's own, else the hospital's, else the plan's"})


class PlanTargetOut(BaseSchema):
    plan = fields.String()
    level = fields.String()
    year = WholeNumber()
    comparison = fields.String()
    value = fields.Float()
    source = fields.String()


class CatalogueDetailOut(CatalogueRowOut):
    definition = fields.String()
    definition_en = fields.String()
    plan_targets = fields.List(fields.Nested(PlanTargetOut))
    own_targets = fields.List(fields.Nested(lambda: TargetOut()), metadata={
        "description": "The hospital's (department_id null) and its departments' target rows"})


class SetupIn(BaseSchema):
    method = fields.String(validate=validate.OneOf(METHODS))
    reason = fields.String(allow_none=True, validate=[validate.Length(max=300), no_control_characters()],
                           metadata={"description": "Required for not_applicable; dropped for the other methods"})
    department = DepartmentId(allow_none=True, metadata={
        "description": "The department that reports it; null: the quality office"})
    version = WholeNumber(required=True, allow_none=True, validate=validate.Range(min=1), metadata={
        "description": "The catalogue row's `version` as read (null when it had none); stale → 409"})


class LocalIndicatorIn(BaseSchema):
    department = DepartmentId(load_default=None, metadata={
        "description": "The department whose indicator it is; default: your own"})
    name = fields.String(required=True, validate=[validate.Length(min=1, max=120), no_control_characters()])
    name_en = fields.String(load_default=None, allow_none=True,
                            validate=[validate.Length(max=120), no_control_characters()])
    unit = fields.String(required=True, validate=validate.OneOf(UNITS))
    direction = fields.String(required=True, validate=validate.OneOf(DIRECTIONS))
    definition = fields.String(required=True, validate=[validate.Length(min=1, max=2000),
                                                        no_control_characters(long_text=True)],
                               metadata={"description": "Numerator and denominator (or the value) in words"})


class LocalIndicatorChangeIn(BaseSchema):
    name = fields.String(validate=[validate.Length(min=1, max=120), no_control_characters()])
    name_en = fields.String(allow_none=True, validate=[validate.Length(max=120), no_control_characters()])
    unit = fields.String(validate=validate.OneOf(UNITS))
    direction = fields.String(validate=validate.OneOf(DIRECTIONS))
    definition = fields.String(validate=[validate.Length(min=1, max=2000), no_control_characters(long_text=True)])
    is_active = fields.Boolean(metadata={"description": "false: switched off (leaves the catalogue)"})
    version = WholeNumber(required=True, validate=validate.Range(min=1), metadata={"description": "stale → 409"})


class LocalIndicatorOut(BaseSchema):
    code = fields.String()
    department_id = WholeNumber()
    name = fields.String()
    name_en = fields.String(allow_none=True)
    unit = fields.String()
    direction = fields.String()
    definition = fields.String()
    is_active = fields.Boolean()
    updated_at = DateTime()
    version = WholeNumber()


class TargetIn(BaseSchema):
    code = fields.String(required=True, validate=validate.Length(min=1, max=60),
                         metadata={"example": "ae_per_100_discharges"})
    level = fields.String(required=True, validate=validate.OneOf(HOSPITAL_LEVELS))
    year = WholeNumber(required=True, validate=validate.Range(min=2000, max=2100), metadata={"example": 2026})
    comparison = fields.String(required=True, validate=validate.OneOf(COMPARISONS))
    value = fields.Float(required=True, allow_nan=False, metadata={"example": 2.5})
    source = fields.String(load_default=None, allow_none=True,
                           validate=[validate.Length(max=200), no_control_characters()])
    department = DepartmentId(load_default=None, allow_none=True, metadata={
        "description": "A department's own target (its head: their own department's indicators; the quality "
                       "office: any); without it the hospital's (administrators)"})
    version = WholeNumber(load_default=None, allow_none=True, validate=validate.Range(min=1), metadata={
        "description": "The version of the target you replace (required when this code, level and year have one); "
                       "stale → 409."})


class TargetOut(BaseSchema):
    id = WholeNumber()
    code = fields.String()
    level = fields.String(attribute="hospital_level")
    year = WholeNumber()
    comparison = fields.String()
    value = fields.Float()
    source = fields.String(allow_none=True)
    department_id = WholeNumber(allow_none=True, metadata={"description": "null: the hospital's own target"})
    updated_at = DateTime()
    updated_by = fields.String()
    version = WholeNumber()


# Reported values (indicators.reporting) ------------------------------------------------------------------------

class ReportMonth(Month):
    """A month as YYYY-MM or as its first day (YYYY-MM-01); loaded as its first day."""

    default_error_messages = {"invalid": _l("Enter a month as YYYY-MM (or its first day, YYYY-MM-01).")}

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.metadata["pattern"] = r"^\d{4}-(0[1-9]|1[0-2])(-01)?$"

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str) and len(value) == 10 and value.endswith("-01"):
            value = value[:7]
        return super()._deserialize(value, attr, data, **kwargs)


def _note():
    return fields.String(load_default=None, allow_none=True, validate=[
        validate.Length(max=2000), no_control_characters(long_text=True)])


def _amount(description: str, integer: bool = True):
    field = WholeNumber if integer else fields.Float
    extra = {} if integer else {"allow_nan": False}
    return field(load_default=None, allow_none=True, metadata={"description": description}, **extra)


class IndicatorReportIn(BaseSchema):
    """A department's value of a reported indicator for one month (rules: indicators.reporting.check_report)."""

    code = fields.String(required=True, validate=validate.Length(min=1, max=60),
                         metadata={"example": "pain_assessment_rate"})
    month = ReportMonth(required=True, metadata={"example": "2026-10"})
    department = DepartmentId(load_default=None, metadata={
        "description": "Department id or code; a department head: their own (default)"})
    numerator = _amount("A rate's numerator (whole number ≥ 0); empty for a value unit")
    denominator = _amount("A rate's denominator (whole number > 0); empty for a value unit")
    value = _amount("The value of a count, time, ratio or status (1 done, 0 not done); empty for a rate",
                    integer=False)
    note = _note()
    version = WholeNumber(load_default=None, allow_none=True, validate=validate.Range(min=1), metadata={
        "description": "The version of the value you revise (required when one exists); stale → 409"})


class IndicatorValueRowIn(BaseSchema):
    """One department's monthly value of a reported indicator, from the HIS."""

    code = fields.String(required=True, validate=validate.Length(min=1, max=60),
                         metadata={"example": "pain_assessment_rate"})
    month = ReportMonth(required=True, metadata={"example": "2026-10"})
    department_code = fields.String(required=True, validate=validate.Length(min=1, max=40),
                                    metadata={"example": "GS"})
    numerator = _amount("A rate's numerator (whole number ≥ 0)")
    denominator = _amount("A rate's denominator (whole number > 0)")
    value = _amount("The value of a count, time, ratio or status (1/0)", integer=False)
    note = _note()


class ReportDecisionIn(BaseSchema):
    action = fields.String(required=True, validate=validate.OneOf(("approve", "return", "reopen")))
    version = WholeNumber(required=True, validate=validate.Range(min=1))
    reason = fields.String(load_default=None, allow_none=True, validate=[
        validate.Length(max=500), no_control_characters(long_text=True)],
        metadata={"description": "Required to return or re-open: the department reads it"})


class IndicatorReportsArgs(QueryArgs):
    month = ReportMonth(load_default=None, metadata={"description": "YYYY-MM; default: last month"})
    department = DepartmentId(load_default=None)
    state = fields.String(load_default=None, validate=validate.OneOf(REPORT_STATES))
    code = fields.String(load_default=None, validate=validate.Length(max=60))


class ReportPageArgs(QueryArgs):
    month = ReportMonth(load_default=None, metadata={"description": "YYYY-MM; default: the last month that ended"})
    department = DepartmentId(load_default=None)
    #: The indicator just saved (the page says so after the redirect).
    saved = fields.String(load_default=None, validate=validate.Length(max=60))


class CompletenessArgs(QueryArgs):
    year = WholeNumber(load_default=None, validate=validate.Range(min=2000, max=2200))
    department = DepartmentId(load_default=None)


class IndicatorReportOut(BaseSchema):
    id = WholeNumber()
    code = fields.String()
    month = fields.Function(lambda r: r.month_on.strftime("%Y-%m"), metadata={"example": "2026-10"})
    department_id = WholeNumber()
    numerator = WholeNumber(allow_none=True)
    denominator = WholeNumber(allow_none=True)
    value = fields.Float(allow_none=True)
    note = fields.String(allow_none=True)
    state = fields.String(metadata={"enum": list(REPORT_STATES)})
    channel = fields.String(metadata={"enum": ["page", "his"]})
    submitted_at = DateTime()
    submitted_by = fields.String()
    decided_at = DateTime(allow_none=True)
    decided_by = fields.String(allow_none=True)
    reason = fields.String(allow_none=True, metadata={"description": "Why it was returned or re-opened"})
    version = WholeNumber()


class IndicatorIntakeIn(BaseSchema):
    #: Rows are loaded one by one by the service (a bad row is reported, good rows land).
    items = fields.List(fields.Dict(), required=True, validate=validate.Length(min=1, max=1000))
    strict = fields.Boolean(load_default=False, metadata={"description": "true: one bad row and nothing lands"})


class IndicatorIntakeRowOut(BaseSchema):
    row = WholeNumber(metadata={"description": "1-based position in the batch"})
    key = fields.String(allow_none=True, metadata={"description": "code/month/department_code as sent"})
    status = fields.String(metadata={"enum": ["created", "updated", "unchanged", "error", "skipped"]})
    id = WholeNumber(allow_none=True, metadata={"description": "qcflow's id of the report"})
    state = fields.String(allow_none=True, metadata={"description": "The report's state after the row"})
    errors = fields.Dict(metadata={"description": "Field errors: {field: [messages]}, in the request's language"})


class IndicatorIntakeBatchOut(BaseSchema):
    results = fields.List(fields.Nested(IndicatorIntakeRowOut))
    created = WholeNumber()
    updated = WholeNumber()
    unchanged = WholeNumber()
    failed = WholeNumber()
class FormIn(BaseSchema):
    kind = Choice(FORM_KINDS, example="annual", label_kind="ind_form_kind", required=True, metadata={
        "description": "annual: the plan's annual monitoring form; quarterly: the quarterly report to the quality "
                       "office"})
    year = WholeNumber(required=True, validate=validate.Range(min=2000, max=2100),
                          metadata={"example": 2026})
    quarter = WholeNumber(load_default=None, allow_none=True, validate=validate.Range(min=1, max=4),
                             metadata={"description": "1 to 4; quarterly reports only"})
    draft = fields.Boolean(load_default=False, metadata={
        "description": "Preview a period that may still be running: the snapshot is returned, nothing is archived"})


class FormListArgs(CursorArgs):
    kind = Choice(FORM_KINDS, example="annual", label_kind="ind_form_kind", load_default=None)
    year = WholeNumber(load_default=None, validate=validate.Range(min=2000, max=2100))


class FormOut(BaseSchema):
    id = WholeNumber(allow_none=True, metadata={"description": "null for a draft"})
    plan = fields.String()
    kind = fields.String()
    year = WholeNumber()
    quarter = WholeNumber(allow_none=True)
    period_start = fields.Date()
    period_end = fields.Date()
    revision = WholeNumber(allow_none=True, metadata={"description": "1, 2, … per plan, kind and period; "
                                                                        "null for a draft"})
    draft = fields.Boolean()
    generated_at = DateTime()
    generated_by = fields.String(metadata={"description": "The name printed on the form"})
    xlsx_sha256 = fields.String()
    json_sha256 = fields.String()
    xlsx_url = fields.String(allow_none=True)
    json_url = fields.String(allow_none=True)
    snapshot = fields.Dict(allow_none=True, metadata={
        "description": "Drafts only: the JSON twin (schema qcflow.indicator-form/1, docs/indicators.md)"})


class FormPage(Page):
    items = fields.List(fields.Nested(FormOut))
class SurvivalArgs(QueryArgs):
    as_of = Date(load_default=None, metadata={"description": "The day the survival is known on (YYYY-MM-DD): "
                                                              "diagnoses, deaths and contacts up to it; default today"})
    department = DepartmentId(load_default=None, metadata={
        "description": "Department id or code (quality office: any; department heads: their own)"})


class SurvivalEstimateOut(BaseSchema):
    years = WholeNumber()
    days = WholeNumber()
    survival = fields.Float(allow_none=True, metadata={"description": "0..1; null when nobody was followed so long"})
    lower = fields.Float(allow_none=True)
    upper = fields.Float(allow_none=True)
    at_risk = WholeNumber(metadata={"description": "Diagnoses followed at least this long"})


class SurvivalCurveOut(BaseSchema):
    times = fields.List(fields.Float(), metadata={"description": "Days after diagnosis"})
    survival = fields.List(fields.Float())
    lower = fields.List(fields.Float())
    upper = fields.List(fields.Float())


class SurvivalGroupOut(BaseSchema):
    code = fields.String(metadata={"example": "cancer_5y_survival_lung"})
    cancer_type = fields.String(allow_none=True, metadata={"description": "null: the five key cancers together"})
    name = fields.String()
    suppressed = fields.Boolean(metadata={"description": "Fewer than k diagnoses: no counts, curve or estimates"})
    n = WholeNumber(allow_none=True)
    events = WholeNumber(allow_none=True)
    estimates = fields.List(fields.Nested(SurvivalEstimateOut))
    curve = fields.Nested(SurvivalCurveOut, allow_none=True)


class SurvivalOut(BaseSchema):
    as_of = fields.Date()
    department_id = WholeNumber(allow_none=True)
    k = WholeNumber(metadata={"description": "Groups with fewer diagnoses are shown as fewer than k"})
    groups = fields.List(fields.Nested(SurvivalGroupOut))
