"""Shapes of regional mode's hospital side over the API and the pages' query strings."""
from __future__ import annotations

import re

from marshmallow import fields, validate

from qcflow.core.schemas import BaseSchema, Choice, CursorArgs, DateTime, Month, Page, QueryArgs, WholeNumber
from qcflow.region.models import KINDS, OUTBOX_STATES

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
