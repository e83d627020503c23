"""Shapes of attachment requests and responses (rules live in services)."""
from flask_smorest.fields import Upload
from marshmallow import fields

from qcflow.core.schemas import BaseSchema, DateTime, WholeNumber


class FileIn(BaseSchema):
    file = Upload(required=True, metadata={"description": "The file: a photo (JPEG, PNG, GIF, WebP), a PDF or an "
                                                         "office document (Word, Excel, PowerPoint without macros)"})


class AttachmentOut(BaseSchema):
    id = WholeNumber()
    action_id = WholeNumber(allow_none=True)
    stage = fields.String()
    kind = fields.String(metadata={"description": "image, pdf or document (by content)"})
    content_type = fields.String()
    size = WholeNumber()
    sha256 = fields.String()
    width = WholeNumber(allow_none=True)
    height = WholeNumber(allow_none=True)
    name = fields.String(metadata={"description": "The uploader's file name ending in the stored type's extension, "
                                                  "or attachment-<id>.<ext>"})
    from_reporter = fields.Boolean()
    uploaded_at = DateTime()


class AttachmentList(BaseSchema):
    items = fields.List(fields.Nested(AttachmentOut))
