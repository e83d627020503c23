"""The patient's page (/f/<token>): no login, no session; a second factor that is not in the link."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("invitations", __name__)
