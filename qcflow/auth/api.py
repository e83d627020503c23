"""Who am I and the hospital's departments, over the JSON API (checks a bearer token)."""
from flask_login import current_user

from qcflow.auth.permissions import authenticated
from qcflow.auth.queries import active_departments
from qcflow.core.api import Blueprint
from qcflow.auth.schemas import DepartmentOut, MeOut

blp = Blueprint("auth_api", __name__, url_prefix="/api/v1", description="Accounts")


@blp.get("/me")
@authenticated
@blp.response(200, MeOut)
@blp.alt_response(401, description="No or invalid credentials")
def me():
    """Return the calling user, roles and department."""
    return current_user


@blp.get("/departments")
@authenticated
@blp.response(200, DepartmentOut(many=True))
@blp.alt_response(401, description="No or invalid credentials")
def list_departments():
    """List the active departments by code: every filter and body field that takes a department takes
    its id or its code."""
    return active_departments(by_kind=False)
