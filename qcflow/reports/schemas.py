"""Shapes of the report and export requests and responses (rules live in the modules they call)."""
from marshmallow import fields

from qcflow.core.schemas import BaseSchema, Date, DepartmentId, QueryArgs, WholeNumber


class PeriodArgs(QueryArgs):
    start = Date(data_key="from",
                 metadata={"description": "First day, YYYY-MM-DD (default: the 1st of the month of `to`)"})
    end = Date(data_key="to", metadata={"description": "Last day, inclusive (default: today, hospital time)"})
    department = DepartmentId(metadata={
        "description": "Department id or code (quality office: any; department heads: their own)"})


class MonthArgs(QueryArgs):
    month = fields.String(required=True, metadata={"example": "2026-02", "description": "YYYY-MM, not in the future"})


class CellOut(BaseSchema):
    code = fields.String(allow_none=True)
    label = fields.String()
    count = WholeNumber(allow_none=True, metadata={"description": "null when hidden (small cell)"})
    display = fields.String(metadata={"description": "the count as published: a number, `<5` or `—`"})
    share = fields.Float(allow_none=True, metadata={"description": "percent of the total, when both are published"})
    suppressed = fields.Boolean()


class TotalOut(BaseSchema):
    count = WholeNumber(allow_none=True)
    display = fields.String()
    suppressed = fields.Boolean()


class DimensionOut(BaseSchema):
    name = fields.String(metadata={"example": "category"})
    title = fields.String()
    rows = fields.List(fields.Nested(CellOut))
    total = fields.Nested(TotalOut)


class HarmOut(BaseSchema):
    count = WholeNumber(allow_none=True)
    display = fields.String()
    share = fields.Float(allow_none=True)
    suppressed = fields.Boolean()


class DepartmentRef(BaseSchema):
    id = WholeNumber()
    code = fields.String(allow_none=True)
    name = fields.String(allow_none=True)


class FunnelPointOut(BaseSchema):
    department = fields.Nested(DepartmentRef)
    discharges = WholeNumber()
    reports = WholeNumber(allow_none=True)
    reports_display = fields.String()
    rate = fields.Float(allow_none=True, metadata={"description": "reports per 100 discharges"})
    rate_display = fields.String()
    expected = fields.Float()
    limits = fields.Dict(keys=fields.String(), values=fields.List(fields.Float()),
                         metadata={"description": "{\"95\": [lower, upper], \"99.8\": [lower, upper]} per 100 discharges"})
    flag = fields.String(metadata={"description": "low_99.8, low_95, within, high_95 or too_few"})
    harm_share = fields.Float(allow_none=True)
    suppressed = fields.Boolean()


class FunnelOut(BaseSchema):
    hospital_rate = fields.Float(metadata={"description": "reports per 100 discharges"})
    reports = WholeNumber()
    discharges = WholeNumber()
    points = fields.List(fields.Nested(FunnelPointOut))
    flagged = fields.List(fields.String())
    silent_weeks = WholeNumber()
    silent = fields.List(fields.Nested(DepartmentRef))


class PeriodOut(BaseSchema):
    start = fields.String(data_key="from")
    end = fields.String(data_key="to")


class FoundByCellOut(BaseSchema):
    count = WholeNumber(allow_none=True, metadata={"description": "null when hidden (small cell)"})
    display = fields.String()
    suppressed = fields.Boolean()


class FoundByOut(BaseSchema):
    reporter = fields.Nested(FoundByCellOut, metadata={"description": "reports made by staff (the reporting rate)"})
    trigger = fields.Nested(FoundByCellOut, metadata={
        "description": "reports filed from a trigger's firing (系统发现), never in the reporting rate"})
    public = fields.Nested(FoundByCellOut, metadata={
        "description": "reports from patients and families (the public form), never in the reporting rate"})


class TriggerFiguresOut(BaseSchema):
    firings = WholeNumber(metadata={"description": "firings that fired in the period"})
    reviewed = WholeNumber(metadata={"description": "filed + linked + dismissed"})
    confirmed = WholeNumber(metadata={"description": "filed + linked"})
    filed = WholeNumber()
    linked = WholeNumber()
    dismissed = WholeNumber()
    open = WholeNumber()
    ppv = fields.Float(allow_none=True, metadata={"description": "confirmed / reviewed in percent; null if none reviewed"})
    median_review_hours = fields.Float(allow_none=True, metadata={
        "description": "median hours from firing to review over the reviewed firings"})
    links = fields.Dict(keys=fields.String(), values=fields.String(), metadata={
        "description": "the firings page filtered by trigger, state (and department): key firings or a state"})


class TriggerRowOut(TriggerFiguresOut):
    id = WholeNumber()
    code = fields.String()
    name = fields.String()
    is_active = fields.Boolean()


class TriggerTableOut(BaseSchema):
    rows = fields.List(fields.Nested(TriggerRowOut))
    total = fields.Nested(TriggerFiguresOut)


class UnreportedRowOut(BaseSchema):
    department = fields.Nested(DepartmentRef)
    firings = WholeNumber()
    filed = WholeNumber(metadata={"description": "harm nobody had reported: a report was filed from the firing"})
    linked = WholeNumber(metadata={"description": "linked to a report already filed"})
    reports = WholeNumber(allow_none=True, metadata={"description": "reports by staff; null when under k"})
    reports_display = fields.String()
    unreported_share = fields.Float(allow_none=True, metadata={"description": "filed / (filed + linked), percent"})
    links = fields.Dict(keys=fields.String(), values=fields.String())


class UnreportedTotalOut(BaseSchema):
    firings = WholeNumber()
    filed = WholeNumber()
    linked = WholeNumber()
    unreported_share = fields.Float(allow_none=True)


class UnreportedTableOut(BaseSchema):
    rows = fields.List(fields.Nested(UnreportedRowOut))
    total = fields.Nested(UnreportedTotalOut)


class TriggerStatsOut(BaseSchema):
    triggers = fields.Nested(TriggerTableOut)
    departments = fields.Nested(UnreportedTableOut)


class AnalysisOut(BaseSchema):
    period = fields.Nested(PeriodOut)
    department = fields.Nested(DepartmentRef, allow_none=True)
    k = WholeNumber(metadata={"description": "counts below k are shown as `<k` below the hospital level"})
    below_hospital_level = fields.Boolean()
    total = fields.Nested(TotalOut)
    found_by = fields.Nested(FoundByOut)
    harm = fields.Nested(HarmOut)
    dimensions = fields.List(fields.Nested(DimensionOut))
    underreporting = fields.Nested(FunnelOut)
    triggers = fields.Nested(TriggerStatsOut, metadata={"description": "automatic extraction: trigger statistics"})
