"""Optional SMTP delivery of notifications: after commit, never on rollback, off by default."""
import base64
import email
import socketserver
import threading
import time
from email.policy import default as default_policy

import pytest

from qcflow.notify import services
from tests.conftest import make_app


class SMTPReceiver(socketserver.ThreadingTCPServer):
    """A tiny SMTP server (enough of RFC 5321 for smtplib): records logins and messages."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), SMTPHandler)
        self.messages, self.logins, self.arrived = [], [], threading.Event()


class SMTPHandler(socketserver.StreamRequestHandler):
    def reply(self, line: str):
        self.wfile.write((line + "\r\n").encode())

    def handle(self):
        self.reply("220 test ESMTP")
        envelope = {"to": []}
        while True:
            line = self.rfile.readline().decode().rstrip("\r\n")
            verb = line.split(" ", 1)[0].upper()
            if not line or verb == "QUIT":
                self.reply("221 bye")
                return
            if verb == "EHLO":
                self.reply("250-test")
                self.reply("250 AUTH PLAIN")
            elif verb == "HELO":
                self.reply("250 test")
            elif verb == "AUTH":
                _plain, blob = line.split(" ", 2)[1:]
                self.server.logins.append(base64.b64decode(blob).split(b"\0")[1:])
                self.reply("235 ok")
            elif verb == "MAIL":
                envelope = {"from": line[10:].strip("<>"), "to": []}
                self.reply("250 ok")
            elif verb == "RCPT":
                envelope["to"].append(line[8:].strip("<>"))
                self.reply("250 ok")
            elif verb == "DATA":
                self.reply("354 go on")
                data = []
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    data.append(chunk[1:] if chunk.startswith(b"..") else chunk)
                message = email.message_from_bytes(b"".join(data), policy=default_policy)
                self.server.messages.append((envelope, message))
                self.server.arrived.set()
                self.reply("250 queued")
            elif verb in ("RSET", "NOOP"):
                self.reply("250 ok")
            else:
                self.reply("502 not implemented")


@pytest.fixture
def smtp():
    server = SMTPReceiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def mail_app(database_url, tmp_path, smtp, **overrides):
    config = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": smtp.server_address[1], "SMTP_FROM": "qcflow@hospital.example",
              "SMTP_RECIPIENT_TEMPLATE": "{username}@hospital.example",
              "SMTP_LINK_BASE": "https://qcflow.hospital.example", **overrides}
    return make_app(database_url, str(tmp_path), **config)


def two_users(now):
    from qcflow.auth.models import Department, User
    from qcflow.extensions import db

    dept = Department(code="QC", name="质控办", kind="functional", created_at=now)
    db.session.add(dept)
    db.session.flush()
    users = [User(username=name, display_name=name, password_hash="x", department_id=dept.id, created_at=now,
                  password_changed_at=now, locale=locale) for name, locale in (("zhao", None), ("qian", "en"))]
    db.session.add_all(users)
    db.session.flush()
    return [u.id for u in users]


def test_each_recipient_gets_a_mail_after_commit(database_url, tmp_path, smtp, now):
    from qcflow.extensions import db

    app = mail_app(database_url, tmp_path, smtp, SMTP_USER="qcflow", SMTP_PASSWORD="s3cret")
    with app.app_context():
        ids = two_users(now)
        services.notify(ids, "operation.emergency_override", {"id": "OP-9", "code": "47.0901", "procedure": "阑尾切除术",
                                                                 "reason": "急性腹膜炎"}, now=now, link="/operations/1")
        assert not smtp.arrived.wait(0.3)  # nothing leaves before the commit
        db.session.commit()
    deadline = time.monotonic() + 5
    while len(smtp.messages) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sorted(env["to"][0] for env, _m in smtp.messages) == ["qian@hospital.example", "zhao@hospital.example"]
    # Each in the recipient's language: zhao has no setting (the hospital's Chinese), qian chose English.
    by_address = {env["to"][0]: message for env, message in smtp.messages}
    assert all(env["from"] == "qcflow@hospital.example" for env, _m in smtp.messages)
    assert by_address["zhao@hospital.example"]["Subject"] == "未经多学科讨论的急诊手术预约：阑尾切除术（手术 OP-9）"
    assert by_address["qian@hospital.example"]["Subject"] == "Emergency booking without MDT: 阑尾切除术 (operation OP-9)"
    body = by_address["zhao@hospital.example"].get_content()
    assert "急性腹膜炎" in body and "https://qcflow.hospital.example/operations/1" in body
    assert "Reason: 急性腹膜炎" in by_address["qian@hospital.example"].get_content()
    assert smtp.logins == [[b"qcflow", b"s3cret"]]


def test_no_mail_when_the_transaction_rolls_back(database_url, tmp_path, smtp, now):
    from qcflow.extensions import db

    app = mail_app(database_url, tmp_path, smtp)
    with app.app_context():
        services.notify(two_users(now), "mdt.signed", now=now)
        db.session.rollback()
        db.session.commit()
    assert not smtp.arrived.wait(0.5) and smtp.messages == []


def test_mail_is_off_without_smtp_host(database_url, tmp_path, smtp, now):
    from qcflow.extensions import db

    app = make_app(database_url, str(tmp_path), SMTP_RECIPIENT_TEMPLATE="{username}@hospital.example")
    with app.app_context():
        services.notify(two_users(now), "mdt.signed", now=now)
        db.session.commit()
    assert not smtp.arrived.wait(0.5)


def test_fixed_recipients_and_an_unreachable_server_do_not_break_the_request(database_url, tmp_path, smtp, now, caplog):
    from qcflow.extensions import db
    from qcflow.notify import mail

    app = mail_app(database_url, tmp_path, smtp, SMTP_RECIPIENT_TEMPLATE=None, SMTP_TO="qc-office@hospital.example")
    with app.app_context():
        services.notify(two_users(now), "mdt.signed", now=now)
        db.session.commit()
    assert smtp.arrived.wait(5)
    assert [env["to"] for env, _m in smtp.messages] == [["qc-office@hospital.example"]]
    # A mail server that is down is logged, never raised.
    closed = {"host": "127.0.0.1", "port": 1, "user": None, "password": None, "sender": "a@b", "starttls": False,
              "timeout": 1.0, "link_base": ""}
    mail.send(closed, [(["x@y"], {"title": "t", "body": "", "link": None})])
    assert "mail via 127.0.0.1:1 failed" in caplog.text


def wait_for(smtp, count, seconds=5):
    deadline = time.monotonic() + seconds
    while len(smtp.messages) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return smtp.messages


def test_a_line_break_in_a_typed_title_stays_in_the_subject_and_adds_no_header(database_url, tmp_path, smtp, now):
    """A corrective action titled "line1\\r\\nBcc: …" is mailed with that title on one line, to its
    recipients only."""
    from qcflow.extensions import db

    app = mail_app(database_url, tmp_path, smtp)
    with app.app_context():
        services.notify(two_users(now), "action.assigned",
                        {"ref": "AE-2026-7", "title": "核对医嘱\r\nBcc: outsider@elsewhere.example\u2028再次核对"},
                        now=now, link="/events/7")
        db.session.commit()
    messages = wait_for(smtp, 2)
    assert sorted(env["to"][0] for env, _m in messages) == ["qian@hospital.example", "zhao@hospital.example"]
    by_address = {env["to"][0]: message for env, message in messages}
    zhao = by_address["zhao@hospital.example"]
    assert zhao["Subject"] == "AE-2026-7 的整改措施：核对医嘱 Bcc: outsider@elsewhere.example 再次核对"
    assert by_address["qian@hospital.example"]["Subject"] == \
        "Corrective action for AE-2026-7: 核对医嘱 Bcc: outsider@elsewhere.example 再次核对"
    assert all(message["Bcc"] is None for _env, message in messages)
    assert not any("outsider@elsewhere.example" in env["to"] for env, _m in messages)


def test_a_message_that_cannot_be_built_is_logged_and_the_others_are_sent(database_url, tmp_path, smtp, now, caplog):
    from qcflow.extensions import db

    broken = "qc-office@hospital.example\r\nBcc: outsider@elsewhere.example"
    app = mail_app(database_url, tmp_path, smtp, SMTP_TO=[broken, "archive@hospital.example"])
    with app.app_context():
        services.notify(two_users(now), "mdt.signed", now=now)
        db.session.commit()
    messages = wait_for(smtp, 3)
    assert sorted(env["to"][0] for env, _m in messages) == [
        "archive@hospital.example", "qian@hospital.example", "zhao@hospital.example"]
    assert "a mdt.signed mail could not be built (ValueError); skipped" in caplog.text
    assert "qc-office" not in caplog.text and "outsider" not in caplog.text


def test_a_notification_stored_before_its_message_named_the_procedure_still_reads_as_words(ctx):
    from qcflow.notify.messages import render

    title, body = render("operation.emergency_override", {"id": "OP-9", "code": "47.0901", "reason": "急性腹膜炎"})
    assert title == "未经多学科讨论的急诊手术预约：47.0901（手术 OP-9）" and body == "原因：急性腹膜炎"
