"""Shapes of regional mode's hospital side over the API and the pages' query strings."""
from __future__ import annotations

import re

from marshmallow import EXCLUDE, Schema, fields, validate

from qcflow.core.schemas import BaseSchema, Choice, CursorArgs, DateTime, Month, Page, QueryArgs, WholeNumber
from qcflow.region.models import KINDS, OUTBOX_STATES

#: The centre's standing answer (comparisons.standing writes it).
STANDING_SCHEMA = "qcflow.region-standing/1"
PERIOD = re.compile(r"^\d{4}(-(0[1-9]|1[0-2]|Q[1-4]))?$")


class OutboxListArgs(CursorArgs):
    state = Choice(OUTBOX_STATES, example="rejected", label_kind="region_outbox_state", load_default=None)
    kind = Choice(KINDS, example="month", label_kind="region_kind", load_default=None)
    period = fields.String(load_default=None, validate=validate.Regexp(PERIOD), metadata={
        "description": "2026-03 (month), 2026 (annual form) or 2026-Q1 (quarterly report)", "example": "2026-03"})


class OutboxOut(BaseSchema):
    id = WholeNumber()
    kind = fields.String()
    period = fields.String()
    revision = WholeNumber(metadata={"description": "The version the centre receives: 1, 2, … per kind and period"})
    state = fields.String()
    state_label = fields.String()
    attempts = WholeNumber()
    next_attempt_at = DateTime(allow_none=True)
    last_attempt_at = DateTime(allow_none=True)
    last_error = fields.String(allow_none=True)
    answered_at = DateTime(allow_none=True)
    created_at = DateTime()
    digest = fields.String()
    version = WholeNumber(metadata={"description": "The row's version: send it back with send and requeue"})


class OutboxDetailOut(OutboxOut):
    document = fields.Dict(metadata={"description": "The document as sent (without the envelope)"})
    answer = fields.Dict(allow_none=True, metadata={"description": "The centre's receipt or its reasons"})


class OutboxPage(Page):
    items = fields.List(fields.Nested(OutboxOut))


class OutboxActionIn(BaseSchema):
    version = WholeNumber(required=True, metadata={"description": "The version of the row you read; stale → 409."})


class SendOut(OutboxDetailOut):
    outcome = fields.String(metadata={"description": "accept, reject or wait: what the centre's answer led to"})


class MonthQueueOut(BaseSchema):
    queued = fields.Nested(OutboxOut, allow_none=True, metadata={
        "description": "The new version queued; null when the month's values did not change"})


class StandingArgs(QueryArgs):
    indicator = fields.String(load_default=None, validate=validate.Length(min=1, max=60))
    from_ = Month(data_key="from", load_default=None)
    to = Month(load_default=None)


# The centre's answers, as the hospital reads them ------------------------------------------------------------------

class _Number(fields.Float):
    """A finite JSON number only: a string, a boolean or NaN in a signed answer is a malformed answer."""

    def __init__(self, **kwargs):
        super().__init__(allow_nan=False, **kwargs)

    def _validated(self, value):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.make_error("invalid", input=value)
        return super()._validated(value)


class _Whole(fields.Integer):
    """A whole JSON number only (not a string, a boolean or 1.5)."""

    def __init__(self, **kwargs):
        super().__init__(strict=True, **kwargs)

    def _validated(self, value):
        if isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return super()._validated(value)


class _Answer(Schema):
    """A part of the centre's answer: fields a newer centre adds are left out, not an error."""

    class Meta:
        unknown = EXCLUDE


class StandingIndicatorAnswer(_Answer):
    code = fields.String(required=True)
    unit = fields.String(required=True)
    direction = fields.String(required=True)


class StandingRegionalAnswer(_Answer):
    value = _Number(required=True, allow_none=True)


class StandingOwnAnswer(_Answer):
    numerator = _Whole(required=True, allow_none=True)
    denominator = _Whole(required=True, allow_none=True)
    value = _Number(required=True, allow_none=True)
    small = fields.Boolean(required=True, truthy={True}, falsy={False})
    rank = _Whole(required=True, allow_none=True, validate=validate.Range(min=1))
    outside = fields.String(required=True, allow_none=True, validate=validate.OneOf(["above", "below"]))


class StandingPeerAnswer(_Answer):
    value = _Number(required=True, allow_none=True)
    denominator = _Whole(required=True, allow_none=True, validate=validate.Range(min=0))
    suppressed = fields.Boolean(required=True, truthy={True}, falsy={False})


class StandingLimitAnswer(_Answer):
    denominator = _Whole(required=True, validate=validate.Range(min=1))
    lower95 = _Number(required=True)
    upper95 = _Number(required=True)
    lower998 = _Number(required=True)
    upper998 = _Number(required=True)


class StandingTargetAnswer(_Answer):
    comparison = fields.String(required=True)
    value = _Number(required=True)


class StandingAnswer(_Answer):
    """The centre's standing (comparisons.standing, qcflow.region-standing/1), checked before a page draws it."""

    schema = fields.String(required=True, validate=validate.Equal(STANDING_SCHEMA))
    indicator = fields.Nested(StandingIndicatorAnswer, required=True)
    too_few_hospitals = fields.Boolean(required=True, truthy={True}, falsy={False})
    regional = fields.Nested(StandingRegionalAnswer, required=True)
    own = fields.Nested(StandingOwnAnswer, required=True)
    ranked = _Whole(required=True, validate=validate.Range(min=0))
    peers = fields.List(fields.Nested(StandingPeerAnswer), required=True)
    limits = fields.List(fields.Nested(StandingLimitAnswer), required=True)
    target = fields.Nested(StandingTargetAnswer, required=True, allow_none=True)
    k = _Whole(required=True)


class RefusalAnswer(_Answer):
    """The part of a centre's refusal the pages read: its message and its reasons by field."""

    message = fields.String(load_default=None, allow_none=True)
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()), load_default=dict,
                         allow_none=True)
