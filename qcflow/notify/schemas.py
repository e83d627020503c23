from marshmallow import fields

from qcflow.core.schemas import BaseSchema, DateTime, Page, WholeNumber
from qcflow.notify.messages import texts


class NotificationOut(BaseSchema):
    id = WholeNumber()
    kind = fields.String()
    #: What the message says, as codes, ids, numbers and ISO times (null on notifications from before).
    params = fields.Dict(allow_none=True)
    #: The message in the request's language.
    title = fields.Function(lambda row: texts(row)[0])
    body = fields.Function(lambda row: texts(row)[1])
    link = fields.String(allow_none=True)
    created_at = DateTime()
    read_at = DateTime(allow_none=True)


class NotificationPage(Page):
    items = fields.List(fields.Nested(NotificationOut))
    unread = WholeNumber()
