"""Schemas of the centre's intake API: hospitals, signed submissions and their receipts."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from qcflow.core.api import ErrorSchema
from qcflow.core.schemas import BaseSchema, DateTime, QueryArgs, WholeNumber, no_control_characters
from qcflow.indicators.models import HOSPITAL_LEVELS
from qcflow.region.models import KINDS, OWNERSHIPS

CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$"
_KEY = {"description": "Ed25519 public key: base64 of its 32 bytes (what `region keygen` printed)",
        "example": "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="}


class CentreHospitalIn(BaseSchema):
    code = fields.String(required=True, validate=validate.Regexp(CODE_PATTERN),
                         metadata={"description": "The hospital's HOSPITAL_CODE", "example": "H410100001"})
    name = fields.String(required=True, validate=[validate.Length(min=1, max=100), no_control_characters()])
    name_en = fields.String(load_default=None, allow_none=True,
                            validate=[validate.Length(max=100), no_control_characters()])
    level = fields.String(required=True, validate=validate.OneOf(HOSPITAL_LEVELS))
    ownership = fields.String(required=True, validate=validate.OneOf(OWNERSHIPS))
    region = fields.String(required=True, validate=[validate.Length(min=1, max=60), no_control_characters()],
                           metadata={"description": "City or county"})
    public_key = fields.String(required=True, validate=validate.Length(min=1, max=64), metadata=_KEY)


class CentreHospitalChangeIn(BaseSchema):
    name = fields.String(validate=[validate.Length(min=1, max=100), no_control_characters()])
    name_en = fields.String(allow_none=True, validate=[validate.Length(max=100), no_control_characters()])
    level = fields.String(validate=validate.OneOf(HOSPITAL_LEVELS))
    ownership = fields.String(validate=validate.OneOf(OWNERSHIPS))
    region = fields.String(validate=[validate.Length(min=1, max=60), no_control_characters()])
    public_key = fields.String(validate=validate.Length(min=1, max=64), metadata=_KEY)
    is_active = fields.Boolean(metadata={"description": "false: retired (its signatures are refused)"})
    version = WholeNumber(required=True, validate=validate.Range(min=1), metadata={"description": "stale → 409"})


class CentreHospitalOut(BaseSchema):
    code = fields.String()
    name = fields.String()
    name_en = fields.String(allow_none=True)
    level = fields.String()
    ownership = fields.String()
    region = fields.String()
    public_key = fields.String()
    key_fingerprint = fields.String(metadata={"description": "SHA-256 of the key's text, first 16 hex digits"})
    is_active = fields.Boolean()
    months_sent = WholeNumber(metadata={"description": "Distinct months this hospital has sent"})
    updated_at = DateTime()
    version = WholeNumber()


class CentreHospitalArgs(QueryArgs):
    level = fields.String(load_default=None, validate=validate.OneOf(HOSPITAL_LEVELS))
    region = fields.String(load_default=None, validate=[validate.Length(min=1, max=60), no_control_characters()])
    active = fields.Boolean(load_default=None)
    cursor = fields.String(load_default=None, validate=validate.Regexp(CODE_PATTERN),
                           metadata={"description": "The previous page's next_cursor (a hospital's code)"})
    limit = WholeNumber(load_default=100, validate=validate.Range(min=1, max=500))


class CentreHospitalPage(BaseSchema):
    items = fields.List(fields.Nested(CentreHospitalOut))
    next_cursor = fields.String(allow_none=True)


class ReceivedArgs(QueryArgs):
    hospital = fields.String(load_default=None, validate=validate.Regexp(CODE_PATTERN))
    kind = fields.String(load_default=None, validate=validate.OneOf(KINDS))
    period = fields.String(load_default=None, validate=validate.Regexp(r"^\d{4}(-(0[1-9]|1[0-2]|Q[1-4]))?$"),
                           metadata={"example": "2026-03"})
    current = fields.Boolean(load_default=False, metadata={"description": "true: only the current versions"})
    cursor = WholeNumber(load_default=None, validate=validate.Range(min=1))
    limit = WholeNumber(load_default=50, validate=validate.Range(min=1, max=100))


class ReceivedOut(BaseSchema):
    id = WholeNumber()
    hospital = fields.String(metadata={"description": "The hospital's code"})
    hospital_name = fields.String()
    kind = fields.String()
    period = fields.String()
    version = WholeNumber()
    digest = fields.String()
    signed_at = DateTime()
    received_at = DateTime()
    is_current = fields.Boolean()
    values = WholeNumber(metadata={"description": "Monthly values kept with this version"})


class ReceivedPage(BaseSchema):
    items = fields.List(fields.Nested(ReceivedOut))
    next_cursor = WholeNumber(allow_none=True)


class ReceivedVersionOut(BaseSchema):
    id = WholeNumber()
    version = WholeNumber()
    digest = fields.String()
    received_at = DateTime()
    is_current = fields.Boolean()


class ReceivedDetailOut(ReceivedOut):
    document = fields.Dict(metadata={"description": "The document as received (canonical JSON)"})
    versions = fields.List(fields.Nested(ReceivedVersionOut), metadata={"description": "Every version of the period, "
                                                                               "newest first"})


class AnswerBinding(Schema):
    """What ties a signed answer to its request (the signature does not cover the HTTP status line)."""

    status = WholeNumber(metadata={"description": "The HTTP status of this answer"})
    request_digest = fields.String(allow_none=True, metadata={
        "description": "SHA-256 (hex) of the request's body: the hospital trusts only an answer to its own request"})


class SubmissionReceipt(Schema):
    """The centre's receipt of one submission, as it is stored and repeated."""

    schema = fields.String(metadata={"example": "qcflow.region-receipt/1"})
    submission = WholeNumber()
    hospital = fields.String()
    kind = fields.String()
    period = fields.String()
    version = WholeNumber()
    digest = fields.String()
    received_at = fields.String(metadata={"description": "ISO 8601 UTC"})
    values = WholeNumber()
    replaced = WholeNumber(allow_none=True, metadata={"description": "The version this one replaced, if any"})


class SubmissionReceiptOut(SubmissionReceipt, AnswerBinding):
    """The centre's receipt (signed: X-Qcflow-Signature over the exact body), bound to the request."""


class SubmissionRefusalOut(ErrorSchema, AnswerBinding):
    """A refusal of a submission (signed and bound like the receipt)."""

    receipt = fields.Nested(SubmissionReceipt, metadata={"description": "409 already_received: the stored receipt"})
    newest_version = WholeNumber(metadata={"description": "409 version_taken / stale_version: the newest kept"})
