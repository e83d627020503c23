"""Shapes of the centre's comparison requests and answers (the rules live in region.comparisons)."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from marshmallow import fields, validate

from qcflow.core.schemas import BaseSchema, Choice, CursorArgs, Month, Page, QueryArgs, WholeNumber
from qcflow.indicators.models import COMPARISONS, HOSPITAL_LEVELS
from qcflow.region.comparisons import STATUSES


def _level(**kw):
    return Choice(HOSPITAL_LEVELS, example="tertiary", label_kind="ind_level", load_default=None, **kw)


class CentreMonthsArgs(QueryArgs):
    from_ = Month(data_key="from", load_default=None,
                  metadata={"description": "First month (YYYY-MM); default: the last complete half-year"})
    to = Month(load_default=None, metadata={"description": "Last month (YYYY-MM), inclusive"})


class CentreComparisonArgs(CentreMonthsArgs):
    level = _level(metadata={"description": "Only this level (default: both, each apart)"})


class CentreCompletenessArgs(CursorArgs):
    year = WholeNumber(load_default=None, validate=validate.Range(min=2000, max=2200))
    level = _level()
    region = fields.String(load_default=None, validate=validate.Length(min=1, max=60))


class CentreCompletenessPageArgs(QueryArgs):
    year = WholeNumber(load_default=None, validate=validate.Range(min=2000, max=2200))
    level = _level()
    region = fields.String(load_default=None, validate=validate.Length(min=1, max=60))
    #: Only the hospitals owing a month (missing or overdue): with a province's hundred hospitals, the ones to call.
    gaps = fields.Boolean(load_default=False)


class CentreEvaluationArgs(QueryArgs):
    year = WholeNumber(required=True, validate=validate.Range(min=2000, max=2200))
    half = WholeNumber(required=True, validate=validate.OneOf(
        [1, 2], error=_l("Enter 1 (the first half-year, January to June) or 2 (July to December).")))


class CentreStandingArgs(CentreMonthsArgs):
    indicator = fields.String(required=True, validate=validate.Length(min=1, max=60))


class CentreCellOut(BaseSchema):
    month = fields.String(metadata={"example": "2026-03"})
    status = Choice(STATUSES, example="sent", metadata={
        "description": "sent; missing (owed, not yet late); overdue; not_due (the month has not ended); "
                       "not_expected (before the hospital's registration month)"})
    revision = WholeNumber(allow_none=True, metadata={"description": "The current version's number"})
    received_on = fields.Date(allow_none=True)


class CentreCompletenessRowOut(BaseSchema):
    code = fields.String()
    name = fields.String()
    level = fields.String()
    region = fields.String()
    months = fields.List(fields.Nested(CentreCellOut))


class CentreMonthCountOut(BaseSchema):
    month = fields.String()
    sent = WholeNumber()
    missing = WholeNumber()
    overdue = WholeNumber()
    not_due = WholeNumber()
    not_expected = WholeNumber(metadata={"description": "Hospitals registered after this month"})


class CentreCompletenessOut(Page):
    year = WholeNumber()
    counts = fields.List(fields.Nested(CentreMonthCountOut), metadata={"description": "Per month, over every hospital "
                                                                                "of the filter (not only this page)"})
    items = fields.List(fields.Nested(CentreCompletenessRowOut))


class CentreTargetOut(BaseSchema):
    comparison = Choice(COMPARISONS, example="ge")
    value = fields.Float()


class CentreRegionalOut(BaseSchema):
    numerator = WholeNumber(allow_none=True)
    denominator = WholeNumber(allow_none=True)
    value = fields.Float(allow_none=True)
    hospitals = WholeNumber(metadata={"description": "Hospitals of the level that sent a month of the period"})


class CentreHospitalValueOut(BaseSchema):
    code = fields.String()
    name = fields.String()
    region = fields.String()
    numerator = WholeNumber(allow_none=True)
    denominator = WholeNumber(allow_none=True)
    value = fields.Float(allow_none=True)
    rank = WholeNumber(allow_none=True)
    met = fields.Boolean(allow_none=True)
    outside = fields.String(allow_none=True, metadata={"description": "above or below the 99.8 % limits"})
    months = WholeNumber(metadata={"description": "Months of the period sent"})


class CentreLimitOut(BaseSchema):
    denominator = WholeNumber()
    lower95 = fields.Float()
    upper95 = fields.Float()
    lower998 = fields.Float()
    upper998 = fields.Float()


class CentreLevelOut(BaseSchema):
    level = fields.String()
    regional = fields.Nested(CentreRegionalOut)
    target = fields.Nested(CentreTargetOut, allow_none=True)
    meeting = WholeNumber(metadata={"description": "Hospitals of `judged` that meet the target"})
    judged = WholeNumber(metadata={"description": "Hospitals held against the target: a value and a target, and "
                                                 "not a rate over fewer than k cases"})
    hospitals = fields.List(fields.Nested(CentreHospitalValueOut))
    limits = fields.List(fields.Nested(CentreLimitOut))


class CentreIndicatorRefOut(BaseSchema):
    code = fields.String()
    name = fields.String()
    unit = fields.String()
    direction = fields.String()


class CentreComparisonOut(BaseSchema):
    indicator = fields.Nested(CentreIndicatorRefOut)
    from_ = fields.String(data_key="from")
    to = fields.String()
    levels = fields.List(fields.Nested(CentreLevelOut))


class CentreProfileRowOut(BaseSchema):
    code = fields.String()
    name = fields.String()
    unit = fields.String()
    value = fields.Float(allow_none=True)
    regional = fields.Float(allow_none=True)
    rank = WholeNumber(allow_none=True)
    ranked = WholeNumber()
    target = fields.Nested(CentreTargetOut, allow_none=True)
    met = fields.Boolean(allow_none=True)
    months = WholeNumber()


class CentreProfileOut(BaseSchema):
    code = fields.String()
    name = fields.String()
    level = fields.String()
    region = fields.String()
    from_ = fields.String(data_key="from")
    to = fields.String()
    indicators = fields.List(fields.Nested(CentreProfileRowOut))


class CentreStandingOwnOut(BaseSchema):
    numerator = WholeNumber(allow_none=True, metadata={"description": "This hospital's own, exact"})
    denominator = WholeNumber(allow_none=True, metadata={"description": "This hospital's own, exact"})
    value = fields.Float(allow_none=True, metadata={"description": "This hospital's own value, always given to it"})
    small = fields.Boolean(metadata={"description": "A rate over fewer than k cases: shown to this hospital only, "
                                                    "not ranked"})
    rank = WholeNumber(allow_none=True, metadata={"description": "Place among the `ranked` hospitals (1 = best by "
                                                                "the indicator's direction); null when not ranked"})
    outside = fields.String(allow_none=True, metadata={"description": "above or below the 99.8 % limits"})


class CentrePeerOut(BaseSchema):
    value = fields.Float(allow_none=True, metadata={"description": "Rounded to 2 decimals; null when suppressed"})
    denominator = WholeNumber(allow_none=True, metadata={"description": "Rounded to 2 significant figures; null "
                                                                        "when suppressed or not a rate"})
    suppressed = fields.Boolean(metadata={"description": "A rate over fewer than k cases"})


class CentreStandingIndicatorOut(BaseSchema):
    code = fields.String()
    unit = fields.String()
    direction = fields.String()


class CentreStandingRegionalOut(BaseSchema):
    value = fields.Float(allow_none=True, metadata={
        "description": "The level's regional value to 2 decimals; null with too few hospitals or fewer than k "
                       "cases pooled"})


class CentreStandingOut(BaseSchema):
    """Signed by the centre (X-Qcflow-Signature over the exact body)."""

    schema = fields.String(metadata={"example": "qcflow.region-standing/1"})
    indicator = fields.Nested(CentreStandingIndicatorOut)
    from_ = fields.String(data_key="from", metadata={"description": "First month of a quarter (YYYY-MM)"})
    to = fields.String(metadata={"description": "Last month of a quarter (YYYY-MM)"})
    level = fields.String()
    too_few_hospitals = fields.Boolean(metadata={
        "description": "Fewer than 3 hospitals of the level have a value: no regional value, peers, rank or limits"})
    regional = fields.Nested(CentreStandingRegionalOut)
    own = fields.Nested(CentreStandingOwnOut)
    ranked = WholeNumber(metadata={"description": "How many hospitals the ranking holds (this one included when "
                                                 "ranked)"})
    peers = fields.List(fields.Nested(CentrePeerOut), metadata={
        "description": "The other hospitals of the level with a value, unnamed, by value then denominator"})
    limits = fields.List(fields.Nested(CentreLimitOut), metadata={"description": "Rounded to 2 decimals"})
    target = fields.Nested(CentreTargetOut, allow_none=True)
    k = WholeNumber()
    generated_at = fields.String()
