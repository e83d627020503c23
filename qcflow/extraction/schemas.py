"""Triggers over the JSON API: read, create, tune, switch off."""
from __future__ import annotations

from marshmallow import fields, validate

from qcflow.core.schemas import BaseSchema, DateTime, DepartmentId
from qcflow.extraction.models import RULES
from qcflow.extraction.rules import RULES as RULE_TABLE

Name = lambda **kw: fields.String(validate=validate.Length(min=1, max=100), **kw)  # noqa: E731


class TriggerOut(BaseSchema):
    code = fields.String()
    name = fields.String(metadata={"description": "Chinese name"})
    name_en = fields.String()
    rule = fields.String(metadata={"enum": list(RULES)})
    #: The fact kinds its rule reads.
    reads = fields.Function(lambda t: sorted(RULE_TABLE[t.rule].reads))
    params = fields.Raw()
    window_hours = fields.Integer(allow_none=True)
    reviewer_department_id = fields.Integer(allow_none=True, metadata={
        "description": "Who reviews a firing besides the quality office; null: the stay's or operation's department"})
    is_active = fields.Boolean()
    version = fields.Integer()
    updated_at = DateTime()


class TriggerChangeIn(BaseSchema):
    """What may change on a trigger; a field left out keeps its value."""

    version = fields.Integer(required=True, metadata={"description": "The version you read; stale → 409."})
    name = Name()
    name_en = Name()
    params = fields.Dict(keys=fields.String(), metadata={"description": "The rule's parameters (see GET)"})
    window_hours = fields.Integer(allow_none=True)
    reviewer_department_id = DepartmentId(allow_none=True)
    is_active = fields.Boolean()


class TriggerIn(BaseSchema):
    """A new trigger of one of the rules (e.g. another critical result)."""

    code = fields.String(required=True, validate=validate.Regexp(r"^[a-z][a-z0-9_]{1,39}$", error=(
        "Use 2 to 40 lower-case letters, digits and underscores, starting with a letter.")))
    name = Name(required=True)
    name_en = Name(required=True)
    rule = fields.String(required=True, validate=validate.OneOf(RULES))
    params = fields.Dict(keys=fields.String(), load_default=dict)
    window_hours = fields.Integer(allow_none=True, load_default=None)
    reviewer_department_id = DepartmentId(allow_none=True, load_default=None)
    is_active = fields.Boolean(load_default=True)
