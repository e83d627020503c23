"""Triggers over the JSON API: read, create, tune, switch off."""
from __future__ import annotations

import re

from flask_babel import gettext as _
from marshmallow import ValidationError, fields, validate

from qcflow.core.schemas import BaseSchema, DateTime, DepartmentId, WholeNumber, no_control_characters
from qcflow.extraction.models import RULES
from qcflow.extraction.rules import RULES as RULE_TABLE

CODE = re.compile(r"[a-z][a-z0-9_]{1,39}")


def _code(value: str) -> None:
    if not CODE.fullmatch(value):
        raise ValidationError(_("Use 2 to 40 lower-case letters, digits and underscores, starting with a letter."))


def _named(value: str) -> None:
    if not value.strip():
        raise ValidationError(_("Give a name."))


Name = lambda **kw: fields.String(  # noqa: E731
    validate=[validate.Length(min=1, max=100), no_control_characters(), _named], **kw)
Window = lambda **kw: WholeNumber(strict=True, allow_none=True, **kw)  # noqa: E731


class TriggerOut(BaseSchema):
    code = fields.String()
    name = fields.String(metadata={"description": "Chinese name"})
    name_en = fields.String()
    rule = fields.String(metadata={"enum": list(RULES)})
    #: The fact kinds its rule reads.
    reads = fields.Function(lambda t: sorted(RULE_TABLE[t.rule].reads))
    params = fields.Raw()
    window_hours = WholeNumber(allow_none=True)
    reviewer_department_id = WholeNumber(allow_none=True, metadata={
        "description": "Who reviews a firing besides the quality office; null: the stay's or operation's department"})
    is_active = fields.Boolean()
    version = WholeNumber()
    updated_at = DateTime()


class TriggerChangeIn(BaseSchema):
    """What may change on a trigger; a field left out keeps its value."""

    version = WholeNumber(required=True, metadata={"description": "The version you read; stale → 409."})
    name = Name()
    name_en = Name()
    params = fields.Dict(keys=fields.String(), metadata={"description": "The rule's parameters (see GET)"})
    window_hours = Window()
    reviewer_department_id = DepartmentId(allow_none=True)
    is_active = fields.Boolean()


class TriggerIn(BaseSchema):
    """A new trigger of one of the rules (e.g. another critical result)."""

    code = fields.String(required=True, validate=_code)
    name = Name(required=True)
    name_en = Name(required=True)
    rule = fields.String(required=True, validate=validate.OneOf(RULES))
    params = fields.Dict(keys=fields.String(), load_default=dict)
    window_hours = Window(load_default=None)
    reviewer_department_id = DepartmentId(allow_none=True, load_default=None)
    is_active = fields.Boolean(load_default=True)


class TriggerNamesIn(BaseSchema):
    """A trigger's names as the page's form sends them."""

    name = Name(required=True)
    name_en = Name(required=True)
