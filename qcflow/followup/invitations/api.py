"""The SMS or WeChat gateway's delivery reports (signed with INVITATION_REPORT_SECRET; docs/deploy.md §13)."""
from __future__ import annotations

import hmac

from flask import current_app, request
from flask_babel import gettext as _
from marshmallow import ValidationError

from qcflow.auth.permissions import public
from qcflow.core.api import Blueprint
from qcflow.core.errors import NotAuthenticated, NotFound, Unprocessable
from qcflow.core.i18n import client_program
from qcflow.core.time import now
from qcflow.core.web import session_free
from qcflow.extensions import db
from qcflow.followup.invitations import services
from qcflow.followup.invitations.schemas import DeliveryReportIn, DeliveryReportOut
from qcflow.followup.invitations.senders import SIGNATURE_HEADER, sign

blp = Blueprint("invitations_api", __name__, url_prefix="/api/v1/followup/invitations",
                description="Follow-up invitations: the gateways' delivery reports")




def _check_signature(body: bytes) -> None:
    """401 unless the body is signed with INVITATION_REPORT_SECRET (404 while none is configured)."""
    secret = current_app.config.get("INVITATION_REPORT_SECRET")
    if not secret:
        raise NotFound(_("Delivery reports are not enabled here: INVITATION_REPORT_SECRET is not set."))
    given = request.headers.get(SIGNATURE_HEADER, "")
    if not given:
        raise NotAuthenticated(_("Sign the report: header X-Qcflow-Signature: sha256=<hex HMAC-SHA256 of the body "
                                 "under the shared secret>."))
    if not hmac.compare_digest(given.strip().lower().encode(), sign(secret, body).encode()):
        raise NotAuthenticated(_("Wrong signature: sign the exact body with HMAC-SHA256 under the shared secret "
                                 "(header X-Qcflow-Signature: sha256=<hex>)."))


def _report_doc() -> dict:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": DeliveryReportIn}}},
            "parameters": [{"in": "header", "name": SIGNATURE_HEADER, "required": True,
                            "schema": {"type": "string"},
                            "description": "sha256=<hex HMAC-SHA256 of the raw body under INVITATION_REPORT_SECRET>"}]}


@blp.post("/delivery-reports")
@public
@session_free
@client_program
@blp.doc(**_report_doc())
@blp.response(200, DeliveryReportOut, description="Recorded (recorded=false: the same report came before)")
@blp.alt_response(401, description="Missing or wrong signature: nothing recorded")
@blp.alt_response(404, description="No message qcflow sent has this id, or delivery reports are not enabled")
@blp.alt_response(422, description="A malformed report")
def report_delivery():
    """A gateway reports whether a message it accepted reached the patient's phone.

    Authenticated by its signature only (no session, no token). A report repeated changes nothing."""
    body = request.get_data(cache=True)
    _check_signature(body)
    try:
        report = DeliveryReportIn().load(request.get_json(silent=True))
    except ValidationError as error:
        raise Unprocessable(errors=error.messages) from None
    invitation, recorded = services.record_delivery(report["message_id"], report["status"], now=now(),
                                                    detail=report["detail"])
    if invitation is None:
        raise NotFound(_("No message sent by qcflow has this message_id."))
    db.session.commit()
    return {"message_id": report["message_id"], "status": report["status"], "recorded": recorded}

