"""The gateway's delivery reports: signed with the shared secret, recorded once, refused when unsigned."""
from __future__ import annotations

import hashlib
import hmac
import json

import pytest
import sqlalchemy as sa

URL = "/api/v1/followup/invitations/delivery-reports"
SECRET = "report-secret-of-the-gateway"


@pytest.fixture
def reports(app, invited):
    app.config.update(INVITATION_REPORT_SECRET=SECRET)
    return invited


def post(client, report, *, secret=SECRET, signature=None, **headers):
    body = json.dumps(report).encode()
    if signature is None and secret:
        signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if signature:
        headers["X-Qcflow-Signature"] = signature
    return client.post(URL, data=body, content_type="application/json", headers=headers)


def log_of(invitation):
    from qcflow.extensions import db
    from qcflow.followup.invitations.models import InvitationMessage

    return [(m.kind, m.status, m.detail) for m in db.session.scalars(
        sa.select(InvitationMessage).where(InvitationMessage.invitation_id == invitation.id)
        .order_by(InvitationMessage.id))]


def audit_actions(invitation):
    from qcflow.core.audit import AuditEntry
    from qcflow.extensions import db

    return db.session.scalars(sa.select(AuditEntry.action).where(AuditEntry.object_type == "followup_invitation",
                                                                 AuditEntry.object_id == str(invitation.id))
                              .order_by(AuditEntry.seq)).all()


def test_a_signed_report_marks_the_invitation_delivered_once(client, reports, frozen):
    from qcflow.extensions import db

    response = post(client, {"message_id": "gw-1", "status": "delivered", "detail": "DELIVRD"})
    assert response.status_code == 200, response.json
    assert response.json == {"message_id": "gw-1", "status": "delivered", "recorded": True}
    assert "Set-Cookie" not in response.headers
    db.session.expire_all()
    assert reports.state == "delivered" and reports.delivered_at == frozen
    assert log_of(reports)[-1] == ("report", "delivered", "DELIVRD")
    before = (log_of(reports), audit_actions(reports), reports.version)
    assert before[1][-1].endswith("deliver"), before[1]

    again = post(client, {"message_id": "gw-1", "status": "delivered", "detail": "DELIVRD"})
    assert again.status_code == 200 and again.json["recorded"] is False
    db.session.expire_all()
    assert (log_of(reports), audit_actions(reports), reports.version) == before


def test_an_undelivered_report_is_logged_and_the_invitation_stays_sent(client, reports):
    from qcflow.extensions import db

    response = post(client, {"message_id": "gw-1", "status": "undelivered", "detail": "UNDELIV: absent",
                             "carrier": "CMCC"})
    assert response.status_code == 200 and response.json["recorded"] is True
    db.session.expire_all()
    assert reports.state == "sent" and log_of(reports)[-1] == ("report", "undelivered", "UNDELIV: absent")


@pytest.mark.parametrize("signature", [None, "sha256=" + "0" * 64, "deadbeef", "wrong"])
def test_an_unsigned_or_wrongly_signed_report_is_refused_and_changes_nothing(client, reports, signature):
    from qcflow.extensions import db

    before = log_of(reports)
    response = post(client, {"message_id": "gw-1", "status": "delivered"}, secret=None, signature=signature)
    assert response.status_code == 401
    assert "X-Qcflow-Signature" in response.json["message"]
    db.session.expire_all()
    assert reports.state == "sent" and log_of(reports) == before


def test_a_report_signed_with_another_secret_is_refused_in_the_language_asked(client, reports):
    response = post(client, {"message_id": "gw-1", "status": "delivered"}, secret="not-the-secret",
                    **{"Accept-Language": "en"})
    assert response.status_code == 401 and response.json["message"].startswith("Wrong signature")
    zh = post(client, {"message_id": "gw-1", "status": "delivered"}, secret="not-the-secret")
    assert zh.status_code == 401 and zh.json["code"] == "not_authenticated"


def test_a_report_of_a_message_qcflow_never_sent_is_a_404(client, reports):
    from qcflow.extensions import db

    before = log_of(reports)
    response = post(client, {"message_id": "gw-999", "status": "delivered"}, **{"Accept-Language": "en"})
    assert response.status_code == 404 and "message_id" in response.json["message"]
    db.session.expire_all()
    assert log_of(reports) == before


def test_a_malformed_report_names_its_fields(client, reports):
    response = post(client, {"message_id": "gw-1", "status": "read"})
    assert response.status_code == 422 and set(response.json["errors"]) == {"status"}
    assert post(client, {"status": "delivered"}).json["errors"].keys() == {"message_id"}


def test_without_a_secret_configured_reports_are_not_taken(app, client, invited):
    app.config.update(INVITATION_REPORT_SECRET=None)
    response = post(client, {"message_id": "gw-1", "status": "delivered"}, secret="anything",
                    **{"Accept-Language": "en"})
    assert response.status_code == 404 and "INVITATION_REPORT_SECRET" in response.json["message"]


def test_the_report_endpoint_is_public_and_session_free(app):
    from qcflow.auth.permissions import access_of

    with app.test_request_context(URL):
        assert access_of("invitations_api.report_delivery").public
    assert getattr(app.view_functions["invitations_api.report_delivery"], "qc_session_free", False)


def test_a_report_quoting_the_phone_keeps_no_number_in_the_log(client, reports):
    from qcflow.extensions import db

    response = post(client, {"message_id": "gw-1", "status": "undelivered",
                             "detail": "UNDELIV 13912345678 to 139 1234 5678 (+86-139-1234-5678)"})
    assert response.status_code == 200
    db.session.expire_all()
    kind, status, detail = log_of(reports)[-1]
    assert status == "undelivered" and detail.startswith("UNDELIV") and "5678" not in detail, detail
