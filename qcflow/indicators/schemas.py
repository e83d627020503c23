"""Shapes of indicator requests and responses (rules live in queries and services)."""
from marshmallow import fields, validate

from qcflow.core.schemas import BaseSchema, Date, DateTime, DepartmentId, Month, QueryArgs
from qcflow.indicators.models import COMPARISONS, HOSPITAL_LEVELS

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


class SurvivalArgs(QueryArgs):
    as_of = Date(load_default=None, metadata={"description": "The day the survival is known on (YYYY-MM-DD): "
                                                              "diagnoses, deaths and contacts up to it; default today"})
    department = DepartmentId(load_default=None, metadata={
        "description": "Department id or code (quality office: any; department heads: their own)"})


class SurvivalEstimateOut(BaseSchema):
    years = fields.Integer()
    days = fields.Integer()
    survival = fields.Float(allow_none=True, metadata={"description": "0..1; null when nobody was followed so long"})
    lower = fields.Float(allow_none=True)
    upper = fields.Float(allow_none=True)
    at_risk = fields.Integer(metadata={"description": "Diagnoses followed at least this long"})


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
    n = fields.Integer(allow_none=True)
    events = fields.Integer(allow_none=True)
    estimates = fields.List(fields.Nested(SurvivalEstimateOut))
    curve = fields.Nested(SurvivalCurveOut, allow_none=True)


class SurvivalOut(BaseSchema):
    as_of = fields.Date()
    department_id = fields.Integer(allow_none=True)
    k = fields.Integer(metadata={"description": "Groups with fewer diagnoses are shown as fewer than k"})
    groups = fields.List(fields.Nested(SurvivalGroupOut))
