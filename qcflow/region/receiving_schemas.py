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


# The JSON twin of an archived form (indicators.forms.snapshot), as a hospital signs it ----------------------------

class _Number(fields.Float):
    """A number as JSON writes it: never a string, a boolean, NaN or an infinity."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


def _count(**kw):
    return fields.Integer(strict=True, validate=validate.Range(min=0, max=10**12), **kw)


def _number(**kw):
    return _Number(allow_nan=False, validate=validate.Range(min=-10**12, max=10**12), **kw)


def _text(limit: int, **kw):
    return fields.String(validate=[validate.Length(max=limit), no_control_characters(long_text=True)], **kw)


_MONTH = validate.Regexp(r"^\d{4}-(0[1-9]|1[0-2])$")
_NULL = {"load_default": None, "allow_none": True}


class _FormTarget(BaseSchema):
    comparison = fields.String(validate=validate.OneOf(("ge", "gt", "le", "lt", "eq")), **_NULL)
    value = _number(**_NULL)
    text = _text(500, load_default="")
    source = _text(500, **_NULL)
    set_by = _text(40, **_NULL)


class _FormMonth(BaseSchema):
    month = fields.String(required=True, validate=_MONTH)
    value = _number(**_NULL)
    numerator = _count(**_NULL)
    denominator = _count(**_NULL)


class _FormLine(BaseSchema):
    code = fields.String(required=True, validate=validate.Regexp(r"^[a-z0-9_.-]{1,80}$"))
    name = _text(300, load_default="")
    name_en = _text(300, load_default="")
    unit = _text(20, load_default="")
    method = _text(20, load_default="")
    value = _number(**_NULL)
    numerator = _count(**_NULL)
    denominator = _count(**_NULL)
    target = fields.Nested(_FormTarget, **_NULL)
    met = fields.Boolean(truthy=(True,), falsy=(False,), **_NULL)
    status = _text(20, load_default="")
    reason = _text(500, load_default="")
    pending = _count(load_default=0)
    months_approved = _count(**_NULL)
    months = fields.List(fields.Nested(_FormMonth), validate=validate.Length(max=12), load_default=list)


class _FormRow(BaseSchema):
    seq = fields.Integer(strict=True, validate=validate.Range(min=0, max=10_000), **_NULL)
    dimension = _text(300, load_default="")
    dimension_en = _text(300, load_default="")
    wording = _text(2000, load_default="")
    wording_en = _text(2000, load_default="")
    target_text = _text(500, load_default="")
    responsible = _text(300, load_default="")
    codes = fields.List(fields.Nested(_FormLine), validate=validate.Length(max=100), load_default=list)


class _FormPlan(BaseSchema):
    key = fields.String(required=True, validate=validate.Regexp(r"^[a-z0-9_]{1,20}$"))
    title = _text(300, load_default="")
    title_en = _text(300, load_default="")


class _FormPeriod(BaseSchema):
    year = fields.Integer(strict=True, required=True)
    quarter = fields.Integer(strict=True, validate=validate.Range(min=1, max=4), **_NULL)
    start = fields.String(validate=validate.Regexp(r"^\d{4}-\d{2}-\d{2}$"))
    end = fields.String(validate=validate.Regexp(r"^\d{4}-\d{2}-\d{2}$"))
    months = fields.List(fields.String(validate=_MONTH), validate=validate.Length(max=12))


class _FormHospital(BaseSchema):
    name = _text(200, load_default="")
    level = fields.String(validate=validate.OneOf(HOSPITAL_LEVELS), **_NULL)


class FormDocument(BaseSchema):
    """An archived annual or quarterly form (its JSON twin): every part typed and bounded, no other keys, no
    control characters, so what the centre keeps and shows is what a hospital's qcflow generates."""

    schema = fields.String(required=True)
    plan = fields.Nested(_FormPlan, required=True)
    kind = fields.String(required=True, validate=validate.OneOf(("annual", "quarterly")))
    period = fields.Nested(_FormPeriod, required=True)
    hospital = fields.Nested(_FormHospital, **_NULL)
    generated_at = fields.String(validate=validate.Length(max=40), **_NULL)
    generated_by = _text(120, **_NULL)
    revision = fields.Integer(strict=True, validate=validate.Range(min=1), **_NULL)
    draft = fields.Boolean(truthy=(True,), falsy=(False,), load_default=False)
    xlsx_sha256 = fields.String(validate=validate.Regexp(r"^[0-9a-f]{64}$"), **_NULL)
    rows = fields.List(fields.Nested(_FormRow), required=True, validate=validate.Length(max=500))
