"""Sending for real: the job posts to a fake SMS gateway on localhost (a real HTTP server) and records what it
answered; retries, reminders that stop, expiry; the job run by the scheduler in its own process."""
from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta

import sqlalchemy as sa

from tests.followup.invitations.conftest import LINK_BASE

ANSWERS = {"respondent": "patient", "condition": "better", "complication": False, "unplanned_readmission": False,
           "reoperation": False, "satisfaction": 5}


def run(at):
    from qcflow.followup.invitations import jobs

    return jobs.send_invitations(at)


def his_id_of(task):
    from qcflow.clinical.models import Patient
    from qcflow.extensions import db

    return db.session.get(Patient, task.patient_id).his_id


def log_of(invitation):
    from qcflow.extensions import db
    from qcflow.followup.invitations.models import InvitationMessage

    return db.session.scalars(sa.select(InvitationMessage).where(InvitationMessage.invitation_id == invitation.id)
                              .order_by(InvitationMessage.id)).all()


def test_the_gateway_gets_the_phone_the_link_and_plain_chinese_words_signed(gateway, surgery_call, frozen):
    from qcflow.followup.invitations import queries, services

    assert run(frozen) == "invited 1, ended 0, sent 1, failed 0"
    invitation = queries.invitation_of(surgery_call)
    request, = gateway.requests
    body = request["json"]
    link = services.link_of(invitation)
    assert body == {"reference": f"qcflow-{invitation.id}-invitation", "kind": "invitation", "phone": "13912345678",
                    "text": f"【郑州市第一人民医院】您好，请点击链接完成随访问卷，约需2分钟：{link}", "link": link,
                    "language": "zh"}
    assert link.startswith(f"{LINK_BASE}/f/") and services.find(link.rsplit("/", 1)[1]).id == invitation.id
    raw = request["body"].decode()
    assert "王建国" not in raw and "BA4001" not in raw and his_id_of(surgery_call) not in raw
    assert request["headers"]["X-Qcflow-Signature"] == \
        "sha256=" + hmac.new(b"webhook-secret", request["body"], hashlib.sha256).hexdigest()
    assert invitation.state == "sent" and invitation.sent_at == frozen
    assert invitation.next_send_at == frozen + timedelta(hours=48)
    message, = log_of(invitation)
    assert (message.kind, message.status, message.provider_message_id) == ("invitation", "sent", "gw-1")

    assert run(frozen + timedelta(minutes=1)) == "invited 0, ended 0, sent 0, failed 0"
    assert len(gateway.requests) == 1


def test_a_refused_or_unanswered_message_is_retried_after_its_back_off_then_sent(gateway, surgery_call, frozen):
    from qcflow.followup.invitations import queries, services

    gateway.mode = 500
    assert run(frozen).endswith("sent 0, failed 1")
    invitation = queries.invitation_of(surgery_call)
    assert invitation.state == "queued" and invitation.next_send_at == frozen + timedelta(minutes=5)
    refused, = log_of(invitation)
    assert refused.status == "failed" and refused.detail.startswith("HTTP 500: refused")
    assert "13912345678" not in refused.detail and "/f/" not in refused.detail

    assert run(frozen + timedelta(minutes=4)).endswith("sent 0, failed 0")  # waits for its back-off
    gateway.mode = "hang"
    assert run(frozen + timedelta(minutes=5)).endswith("sent 0, failed 1")
    assert log_of(invitation)[-1].detail == "timeout: no answer within 0.5 s"
    assert invitation.next_send_at == frozen + timedelta(minutes=35)

    gateway.mode = "accept"
    assert run(frozen + timedelta(minutes=35)).endswith("sent 1, failed 0")
    assert invitation.state == "sent" and invitation.send_failures == 0
    assert [m.status for m in log_of(invitation)] == ["failed", "failed", "sent"]
    references = {body["reference"] for body in gateway.bodies}
    assert references == {f"qcflow-{invitation.id}-invitation"}  # the same message each time


def test_retries_used_up_fail_the_invitation_and_leave_the_call_to_the_nurses(gateway, surgery_call, frozen):
    from qcflow.followup.invitations import queries, services

    gateway.mode = 503
    for minutes in (0, 5, 35):
        run(frozen + timedelta(minutes=minutes))
    invitation = queries.invitation_of(surgery_call)
    assert len(gateway.requests) == 3
    assert invitation.state == "failed" and invitation.next_send_at is None
    assert surgery_call.state == "pending"  # still in the nurse's queue for a phone call
    assert run(frozen + timedelta(hours=3)).endswith("sent 0, failed 0") and len(gateway.requests) == 3


def test_reminders_reuse_the_link_at_their_offsets_and_stop_once_the_patient_answers(gateway, surgery_call, frozen):
    from qcflow.extensions import db
    from qcflow.followup.invitations import queries, services

    run(frozen)
    invitation = queries.invitation_of(surgery_call)
    link = services.link_of(invitation)
    run(frozen + timedelta(hours=47, minutes=59))
    assert len(gateway.requests) == 1
    assert run(frozen + timedelta(hours=48)).endswith("sent 1, failed 0")
    reminder = gateway.bodies[-1]
    assert reminder["kind"] == "reminder" and reminder["reference"] == f"qcflow-{invitation.id}-reminder-1"
    assert reminder["link"] == link and "提醒" in reminder["text"] and reminder["text"].endswith(link)
    assert invitation.reminders_sent == 1 and invitation.next_send_at == frozen + timedelta(hours=168)

    at = frozen + timedelta(hours=50)
    assert services.check_factor(invitation, "1961", now=at)
    services.answer(invitation, ANSWERS, now=at)
    db.session.commit()
    assert run(frozen + timedelta(hours=168)).endswith("sent 0, failed 0")
    assert len(gateway.requests) == 2 and invitation.state == "answered"


def test_no_reminder_once_a_nurse_completed_the_call_by_phone(gateway, surgery_call, frozen, actor_of):
    from qcflow.extensions import db
    from qcflow.followup import services as followup
    from qcflow.followup.invitations import queries, services

    run(frozen)
    nurse = actor_of("nurse")
    followup.claim_task(surgery_call, actor=nurse, now=frozen + timedelta(hours=1))
    followup.complete_task(surgery_call, {"respondent": "patient", "complication": False,
                                          "unplanned_readmission": False, "reoperation": False,
                                          "vital_status": "alive"}, actor=nurse, now=frozen + timedelta(hours=1))
    db.session.commit()
    assert run(frozen + timedelta(hours=48)) == "invited 0, ended 1, sent 0, failed 0"
    invitation = queries.invitation_of(surgery_call)
    assert len(gateway.requests) == 1 and invitation.state == "closed" and invitation.next_send_at is None


def test_the_invitation_expires_when_the_window_closes(gateway, surgery_call, frozen):
    from qcflow.followup.invitations import queries, services

    run(frozen)
    closes = surgery_call.closes_at
    assert run(closes).startswith("invited 0, ended 1")
    invitation = queries.invitation_of(surgery_call)
    assert invitation.state == "expired" and not services.usable(invitation, closes)
    assert len(gateway.requests) == 1  # the reminder due meanwhile is not sent once the window closed
    assert invitation.next_send_at is None and invitation.ended_at == closes


def test_english_invitations_and_the_wechat_template_message(app, gateway, surgery_call, frozen):
    from qcflow.followup.invitations import queries, services

    app.config.update(BABEL_DEFAULT_LOCALE="en", INVITATION_SENDERS=[
        {"channel": "wechat", "url": gateway.url, "template_id": "TM-0042", "timeout": 0.5}])
    assert run(frozen).endswith("sent 1, failed 0")
    invitation = queries.invitation_of(surgery_call)
    link = services.link_of(invitation)
    body, = gateway.bodies
    assert body["template_id"] == "TM-0042" and body["url"] == link and body["phone"] == "13912345678"
    assert body["patient_his_id"] == his_id_of(surgery_call) and body["language"] == "en"
    assert body["data"]["first"]["value"] == \
        "郑州市第一人民医院: please answer your follow-up questionnaire (about 2 minutes)"
    assert body["data"]["keyword1"] == {"value": "郑州市第一人民医院"} and "X-Qcflow-Signature" not in \
        gateway.requests[0]["headers"]
    assert invitation.channel == "wechat" and invitation.state == "sent"


def test_a_sender_set_up_wrong_invites_nobody(app, gateway, surgery_call, frozen):
    from qcflow.followup.invitations import queries, services

    app.config.update(INVITATION_SENDERS=[{"channel": "wechat", "url": gateway.url}])
    assert run(frozen) == "not sending (INVITATION_SENDERS #1 (wechat): template_id not set); ended 0"
    assert queries.invitation_of(surgery_call) is None and gateway.requests == []


def test_the_scheduler_sends_from_its_own_process(app, database_url, tmp_path, gateway, surgery_call, frozen):
    from qcflow.extensions import db
    from qcflow.followup.invitations import queries, services
    from qcflow.scheduling.models import JobRun
    from tests.conftest import AUDIT_KEY, scheduler_tick

    proc = scheduler_tick(database_url, tmp_path, frozen, "followup.send_invitations",
                          QCFLOW_SECRET_KEY=app.config["SECRET_KEY"], QCFLOW_AUDIT_KEY=AUDIT_KEY,
                          QCFLOW_HOSPITAL_NAME="郑州市第一人民医院", QCFLOW_INVITATION_LINK_BASE=LINK_BASE,
                          QCFLOW_INVITATION_SENDERS=json.dumps(app.config["INVITATION_SENDERS"]))
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, output
    assert "followup.send_invitations: ok invited 1, ended 0, sent 1, failed 0" in output
    db.session.expire_all()
    invitation = queries.invitation_of(surgery_call)
    body, = gateway.bodies
    assert body["link"] == services.link_of(invitation) and body["phone"] == "13912345678"
    assert invitation.state == "sent" and log_of(invitation)[0].provider_message_id == "gw-1"
    assert db.session.scalar(sa.select(JobRun.status).where(JobRun.job_id == "followup.send_invitations")) == "ok"


def test_e_mail_to_an_sms_gateway_through_the_smtp_settings(app, senders, surgery_call, frozen):
    import threading

    from qcflow.followup.invitations import queries, services
    from tests.notify.test_mail import SMTPReceiver

    server = SMTPReceiver()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=server.server_address[1], SMTP_FROM="fu@hospital.example",
                          HOSPITAL_NAME="郑州市第一人民医院",
                          INVITATION_SENDERS=[{"channel": "email", "to": "{phone}@sms.example.cn"}])
        assert run(frozen).endswith("sent 1, failed 0")
    finally:
        server.shutdown()
        server.server_close()
    invitation = queries.invitation_of(surgery_call)
    (envelope, message), = server.messages
    assert envelope["to"] == ["13912345678@sms.example.cn"] and message["Subject"] == "郑州市第一人民医院随访问卷"
    assert message.get_content().strip() == \
        f"【郑州市第一人民医院】您好，请点击链接完成随访问卷，约需2分钟：{services.link_of(invitation)}"
    assert log_of(invitation)[0].provider_message_id == message["Message-ID"].strip().strip("<>")

    app.config.update(SMTP_PORT=server.server_address[1])  # closed now: the reminder cannot go
    assert run(frozen + timedelta(hours=48)).endswith("sent 0, failed 1")
    detail = log_of(invitation)[-1].detail
    assert detail.startswith("SMTP unreachable") and "13912345678" not in detail


def test_a_gateway_that_quotes_the_phone_and_the_message_leaves_neither_in_the_log(gateway, surgery_call, frozen,
                                                                                   caplog):
    """The gateway's error quotes the phone spaced out and the whole text with the link: the delivery log (and the
    journal) keep neither, nor any part of the token (it was once shortened before it was scrubbed)."""
    from qcflow.followup.invitations import queries, services

    gateway.mode, gateway.says = 400, "blocked word!!; to +86 139 1234 5678; text={text}"
    run(frozen)
    invitation = queries.invitation_of(surgery_call)
    token = services.token_of(invitation)
    message, = log_of(invitation)
    assert message.status == "failed" and message.detail.startswith("HTTP 400: blocked word!!"), message.detail
    for secret in (token[:12], token[-12:], "1234 5678", "/f/"):
        assert secret not in message.detail and secret not in caplog.text, (secret, message.detail)
