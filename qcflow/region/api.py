"""JSON API of regional mode (hospital side)."""
from __future__ import annotations

from flask_smorest import Blueprint

from qcflow.region.installation import only_on

blp = Blueprint("region_api", __name__, url_prefix="/api/v1/region", description="Regional centre: what this hospital sent (区域质控中心报送)")
blp.before_request(only_on("hospital"))
