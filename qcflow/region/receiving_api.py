"""JSON API of regional mode (centre side)."""
from __future__ import annotations

from flask_smorest import Blueprint

from qcflow.region.installation import only_on

blp = Blueprint("centre_intake_api", __name__, url_prefix="/api/v1/centre", description="Centre: signed submissions from hospitals, and the hospitals registered")
blp.before_request(only_on("centre"))
