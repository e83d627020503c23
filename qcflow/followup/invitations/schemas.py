"""Shapes of the gateways' delivery reports (docs/deploy.md §13)."""
from __future__ import annotations

from marshmallow import EXCLUDE, fields, validate

from qcflow.core.schemas import BaseSchema, no_control_characters
from qcflow.followup.invitations.services import DELIVERY_STATUSES


class DeliveryReportIn(BaseSchema):
    """A gateway's report on a message it accepted. Other fields a gateway adds (its own timestamps, codes) are
    ignored: the body is signed, nothing can be smuggled in."""

    class Meta:
        unknown = EXCLUDE

    message_id = fields.String(required=True, validate=[validate.Length(min=1, max=100), no_control_characters()],
                               metadata={"description": "The gateway's id of the message, as its answer gave it",
                                         "example": "gw-20260302-0001"})
    status = fields.String(required=True, validate=validate.OneOf(DELIVERY_STATUSES),
                           metadata={"description": "delivered, or undelivered (the carrier gave up)"})
    detail = fields.String(load_default=None, allow_none=True,
                           validate=[validate.Length(max=300), no_control_characters()],
                           metadata={"description": "The gateway's or carrier's reason, kept in the delivery log; "
                                                    "no phone number", "example": "UNDELIV: absent subscriber"})


class DeliveryReportOut(BaseSchema):
    message_id = fields.String()
    status = fields.String()
    recorded = fields.Boolean(metadata={"description": "false: the same report came before; nothing changed"})
