"""Marshmallow base schema and shared fields."""
from marshmallow import RAISE, Schema, fields, validate


class BaseSchema(Schema):
    class Meta:
        # Unknown fields are an error: a body cannot smuggle in state, version or owner.
        unknown = RAISE


class QueryArgs(BaseSchema):
    """Base of every query-string schema: `lang` is accepted everywhere."""

    lang = fields.String(load_default=None, validate=validate.OneOf(["zh", "en"]))


class CursorArgs(QueryArgs):
    """Keyset pagination: pass the previous page's next_cursor."""

    cursor = fields.Integer(load_default=None, validate=validate.Range(min=1))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=100))
