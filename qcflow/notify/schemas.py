from marshmallow import fields

from qcflow.core.schemas import BaseSchema, DateTime


class NotificationOut(BaseSchema):
    id = fields.Integer()
    kind = fields.String()
    title = fields.String()
    body = fields.String()
    link = fields.String(allow_none=True)
    created_at = DateTime()
    read_at = DateTime(allow_none=True)


class NotificationPage(BaseSchema):
    items = fields.List(fields.Nested(NotificationOut))
    unread = fields.Integer()
    next_cursor = fields.Integer(allow_none=True)
