from marshmallow import fields

from qcflow.core.schemas import BaseSchema


class DepartmentOut(BaseSchema):
    id = fields.Integer()
    code = fields.String()
    name = fields.String()
    name_en = fields.String(allow_none=True)
    kind = fields.String()


class MeOut(BaseSchema):
    id = fields.Integer()
    username = fields.String()
    display_name = fields.String()
    roles = fields.List(fields.String(), attribute="sorted_roles")
    department = fields.Nested(DepartmentOut)
    locale = fields.String(allow_none=True)
