"""Shapes of indicator requests and responses (rules live in queries and services)."""
from marshmallow import fields, validate

from qcflow.core.schemas import BaseSchema, Choice, CursorArgs, Date, DateTime, DepartmentId, Month, Page, QueryArgs
from qcflow.indicators.models import COMPARISONS, FORM_KINDS, HOSPITAL_LEVELS

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
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=100))


class ComputedOut(BaseSchema):
    numerator = fields.Integer()
    denominator = fields.Integer()
    value = fields.Float(allow_none=True)
    target = fields.Float(allow_none=True)
    met = fields.Boolean(allow_none=True)


class IndicatorValueOut(BaseSchema):
    code = fields.String()
    name = fields.String()
    unit = fields.String(metadata={"description": "percent, permille or per100"})
    direction = fields.String(metadata={"description": "higher, lower (is better) or rising"})
    value = fields.Float(allow_none=True)
    numerator = fields.Integer()
    denominator = fields.Integer()
    target = fields.Float(allow_none=True)
    comparison = fields.String(allow_none=True, metadata={"description": "gt, ge, le or lt"})
    met = fields.Boolean(allow_none=True)
    frozen_at = DateTime(allow_none=True, metadata={"description": "Set when the value is a frozen snapshot"})
    differs = fields.Boolean(metadata={"description": "The snapshot differs from a computation now"})
    recomputed = fields.Nested(ComputedOut, allow_none=True)
    found_by_system = fields.Integer(metadata={
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
    department = fields.Integer(allow_none=True)
    months = fields.List(fields.Nested(TrendPointOut))


class CaseOut(BaseSchema):
    kind = fields.String(metadata={"description": "event, encounter, census, operation, followup_task, discussion"})
    id = fields.Integer()
    label = fields.String()
    url = fields.String(allow_none=True)
    weight = fields.Integer(metadata={"description": "1, or a census row's discharges"})


class CasesPage(BaseSchema):
    code = fields.String()
    part = fields.String()
    total = fields.Integer(metadata={"description": "The numerator or denominator: the sum of the weights"})
    items = fields.List(fields.Nested(CaseOut))
    next_cursor = fields.String(allow_none=True)


class TargetIn(BaseSchema):
    code = fields.String(required=True, validate=validate.Length(min=1, max=60),
                         metadata={"example": "ae_per_100_discharges"})
    level = fields.String(required=True, validate=validate.OneOf(HOSPITAL_LEVELS))
    year = fields.Integer(required=True, validate=validate.Range(min=2000, max=2100), metadata={"example": 2026})
    comparison = fields.String(required=True, validate=validate.OneOf(COMPARISONS))
    value = fields.Float(required=True, allow_nan=False, metadata={"example": 2.5})
    source = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))
    version = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=1), metadata={
        "description": "The version of the target you replace (required when this code, level and year have one); "
                       "stale → 409."})


class TargetOut(BaseSchema):
    id = fields.Integer()
    code = fields.String()
    level = fields.String(attribute="hospital_level")
    year = fields.Integer()
    comparison = fields.String()
    value = fields.Float()
    source = fields.String(allow_none=True)
    updated_at = DateTime()
    updated_by = fields.String()
    version = fields.Integer()


class FormIn(BaseSchema):
    kind = Choice(FORM_KINDS, example="annual", label_kind="ind_form_kind", required=True, metadata={
        "description": "annual: the plan's annual monitoring form; quarterly: the quarterly report to the quality "
                       "office"})
    year = fields.Integer(required=True, validate=validate.Range(min=2000, max=2100),
                          metadata={"example": 2026})
    quarter = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=1, max=4),
                             metadata={"description": "1 to 4; quarterly reports only"})
    draft = fields.Boolean(load_default=False, metadata={
        "description": "Preview a period that may still be running: the snapshot is returned, nothing is archived"})


class FormListArgs(CursorArgs):
    kind = Choice(FORM_KINDS, example="annual", label_kind="ind_form_kind", load_default=None)
    year = fields.Integer(load_default=None, validate=validate.Range(min=2000, max=2100))


class FormOut(BaseSchema):
    id = fields.Integer(allow_none=True, metadata={"description": "null for a draft"})
    plan = fields.String()
    kind = fields.String()
    year = fields.Integer()
    quarter = fields.Integer(allow_none=True)
    period_start = fields.Date()
    period_end = fields.Date()
    revision = fields.Integer(allow_none=True, metadata={"description": "1, 2, … per plan, kind and period; "
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
