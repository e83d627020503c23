"""Who am I, over the JSON API (checks a bearer token)."""
from flask_login import current_user

from qcflow.auth.permissions import authenticated
from qcflow.core.api import Blueprint
from qcflow.auth.schemas import MeOut

blp = Blueprint("auth_api", __name__, url_prefix="/api/v1", description="Accounts")


@blp.get("/me")
@authenticated
@blp.response(200, MeOut)
@blp.alt_response(401, description="No or invalid credentials")
def me():
    """Return the calling user, roles and department."""
    return current_user
