from marshmallow import fields

from qcflow.core.schemas import BaseSchema, WholeNumber


class DepartmentOut(BaseSchema):
    id = WholeNumber()
    code = fields.String(metadata={"description": "Accepted wherever the API takes a department, as is the id"})
    name = fields.String(metadata={"description": "Chinese name"})
    name_en = fields.String(allow_none=True, metadata={"description": "English name, if the hospital gave one"})
    kind = fields.String(metadata={"enum": ["clinical", "nursing", "functional"]})
    is_active = fields.Boolean()


class MeOut(BaseSchema):
    id = WholeNumber()
    username = fields.String()
    display_name = fields.String()
    roles = fields.List(fields.String(), attribute="sorted_roles")
    department = fields.Nested(DepartmentOut)
    locale = fields.String(allow_none=True)
