"""The SMS or WeChat gateway's delivery reports (signed with INVITATION_REPORT_SECRET)."""
from __future__ import annotations

from qcflow.core.api import Blueprint

blp = Blueprint("invitations_api", __name__, url_prefix="/api/v1/followup/invitations",
                description="Follow-up invitations: the gateways' delivery reports")
