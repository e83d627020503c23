"""Pages of regional mode (hospital side)."""
from __future__ import annotations

from flask import Blueprint

from qcflow.region.installation import only_on

bp = Blueprint("region", __name__, url_prefix="/region")
bp.before_request(only_on("hospital"))
