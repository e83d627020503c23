"""Shapes of lesson requests and responses (rules live in services)."""
from marshmallow import fields, validate

from qcflow.core.schemas import BaseSchema, CursorArgs, DateTime, DepartmentId, Page, Text, WholeNumber

TITLE_LENGTH = 120


class LessonFields(BaseSchema):
    title = Text(TITLE_LENGTH, metadata={"example": "夜班高警示药品配药未双人核对"})
    what_happened = Text(5000, metadata={"example": "夜班配药时胰岛素剂量多抽 4 单位，发药前核对发现，未给患者使用。"})
    why = Text(5000, metadata={"example": "夜班人手少，双人核对流于形式；系统无剂量上限提醒。"})
    what_changed = Text(5000, metadata={"example": "高警示药品配药实行双人签名核对；信息系统增加剂量上限提醒。"})
    category_code = Text(40, allow_none=True, metadata={"example": "medication"})
    department_id = DepartmentId(allow_none=True)


class LessonIn(LessonFields):
    """A new lesson of a closed case: category and department default to the case's."""

    title = Text(TITLE_LENGTH, required=True, metadata={"example": "夜班高警示药品配药未双人核对"})
    what_happened = Text(5000, required=True)
    why = Text(5000, required=True)
    what_changed = Text(5000, required=True)


class LessonUpdateIn(LessonFields):
    version = WholeNumber(required=True, metadata={"description": "The version you read; stale → 409."})


class LessonTransitionIn(BaseSchema):
    action = fields.String(required=True, validate=validate.OneOf(["submit_review", "return_draft", "publish",
                                                                   "withdraw"]))
    version = WholeNumber(required=True, metadata={"description": "The version you read; stale → 409."})
    reason = Text(2000)
    checked = fields.Boolean(metadata={"description": "publish: the reviewer read it and it identifies nobody."})


class FindingOut(BaseSchema):
    field = fields.String()
    found = fields.String()
    replacement = fields.String()


class LessonOut(BaseSchema):
    id = WholeNumber()
    state = fields.String()
    title = fields.String()
    what_happened = fields.String()
    why = fields.String()
    what_changed = fields.String()
    category_code = fields.String(allow_none=True)
    department_id = WholeNumber(allow_none=True)
    published_at = DateTime(allow_none=True)
    version = WholeNumber()
    event_id = WholeNumber(allow_none=True, metadata={"description": "Only for a reader who may open the case."})
    case_reference = fields.String(allow_none=True, metadata={"description": "Only for a reader who may open it."})
    scrub_findings = fields.List(fields.Nested(FindingOut), metadata={"description": "Quality office only."})
    note = fields.String(allow_none=True)
    created_at = DateTime()
    updated_at = DateTime()
    withdrawn_at = DateTime(allow_none=True)
    author_user_id = WholeNumber()
    reviewer_user_id = WholeNumber(allow_none=True)


class LessonPage(Page):
    items = fields.List(fields.Nested(LessonOut))


class LessonListArgs(CursorArgs):
    q = fields.String(metadata={"example": "双人核对", "description": "Words to find (Chinese or latin)"})
    category = Text(40)
    department_id = DepartmentId()
    limit = WholeNumber(load_default=20, validate=validate.Range(min=1, max=100))
