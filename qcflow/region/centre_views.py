"""Pages of regional mode (centre side)."""
from __future__ import annotations

from flask import Blueprint

from qcflow.region.installation import only_on

bp = Blueprint("centre", __name__, url_prefix="/centre")
bp.before_request(only_on("centre"))
