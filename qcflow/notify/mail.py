"""Optional e-mail: one message per recipient of a notification, sent after commit, dropped on rollback.

Off unless SMTP_HOST is set. Users have no e-mail column yet, so addresses come from
SMTP_RECIPIENT_TEMPLATE (e.g. "{username}@hospital.example") and/or the fixed SMTP_TO list
(a shared mailbox that receives every notification).
"""
from __future__ import annotations

import logging
import re
import smtplib
import threading
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import sqlalchemy as sa
from flask import current_app, has_app_context
from sqlalchemy.orm import Session

from qcflow.auth.models import User
from qcflow.extensions import db

log = logging.getLogger(__name__)
PENDING = "qcflow_mail"

#: What a mail header cannot hold: control characters (CR and LF above all, which would start another
#: header) and Unicode's line and paragraph separators.
NOT_IN_A_HEADER = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def one_line(text: str) -> str:
    """`text` as one header line: every run of control characters becomes a single space."""
    return re.sub(r" {2,}", " ", NOT_IN_A_HEADER.sub(" ", str(text))).strip()


def settings() -> dict | None:
    """The SMTP settings, or None when mail is off."""
    if not has_app_context():
        return None
    config = current_app.config
    if not config.get("SMTP_HOST"):
        return None
    return {
        "host": config["SMTP_HOST"], "port": int(config.get("SMTP_PORT") or 25),
        "user": config.get("SMTP_USER"), "password": config.get("SMTP_PASSWORD"),
        "sender": config.get("SMTP_FROM") or "qcflow@localhost",
        "starttls": bool(config.get("SMTP_STARTTLS")), "timeout": float(config.get("SMTP_TIMEOUT_SECONDS") or 10),
        "link_base": (config.get("SMTP_LINK_BASE") or "").rstrip("/"),
    }


def recipients(user_ids) -> list[tuple[str, str]]:
    """(address, language) for these users (from the template, in their language setting) plus the
    fixed SMTP_TO list (in the hospital's language)."""
    config = current_app.config
    default = config["BABEL_DEFAULT_LOCALE"]
    addresses: list[tuple[str, str]] = []
    template = config.get("SMTP_RECIPIENT_TEMPLATE")
    if template and user_ids:
        rows = db.session.execute(sa.select(User.username, User.locale)
                                  .where(User.id.in_(list(user_ids)), User.is_active.is_(True)).order_by(User.id))
        addresses += [(template.format(username=name), locale or default) for name, locale in rows]
    fixed = config.get("SMTP_TO") or []
    if isinstance(fixed, str):
        fixed = [a.strip() for a in fixed.split(",")]
    addresses += [(a, default) for a in fixed if a]
    first: dict[str, str] = {}
    for address, language in addresses:
        first.setdefault(address, language)
    return list(first.items())


def queue_mail(payload: dict, user_ids) -> None:
    """Queue one notification's e-mails in the current transaction (sent only if it commits), each
    rendered in its recipient's language."""
    smtp = settings()
    if smtp is None:
        return
    to = recipients(user_ids)
    if not to:
        return
    from qcflow.notify.services import rendered  # notify.services imports this module

    by_language: dict[str, list[str]] = {}
    for address, language in to:
        by_language.setdefault(language, []).append(address)
    for language, addresses in by_language.items():
        title, body = rendered(payload["kind"], payload["params"], language)
        db.session().info.setdefault(PENDING, []).append(
            (smtp, addresses, {**payload, "title": title, "body": body}))


def build(smtp: dict, to: str, payload: dict) -> EmailMessage:
    message = EmailMessage()
    # A title holds typed text (a corrective action's title): it may not add lines to the header.
    subject = one_line(payload["title"])
    message["Subject"] = subject
    message["From"] = smtp["sender"]
    message["To"] = to
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=smtp["sender"].rpartition("@")[2] or "localhost")
    lines = [subject]
    if payload.get("body"):
        lines += ["", payload["body"]]
    if payload.get("link"):
        lines += ["", smtp["link_base"] + payload["link"]]
    message.set_content("\n".join(lines) + "\n")  # UTF-8 text; Chinese titles are encoded by the library
    return message


def deliver(client: smtplib.SMTP, smtp: dict, address: str, payload: dict) -> None:
    """Send one message; one that cannot be built or is refused is logged (its kind, never the address
    or the text) and the others still go."""
    try:
        message = build(smtp, address, payload)
    except Exception as error:  # whatever one message's text does, the others must still go
        log.warning("a %s mail could not be built (%s); skipped", payload.get("kind"), type(error).__name__)
        return
    try:
        client.send_message(message)
    except (smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError) as error:
        log.warning("a %s mail was refused by the server (%s); skipped", payload.get("kind"), type(error).__name__)


def send(smtp: dict, batch: list[tuple[list[str], dict]]) -> None:
    """Deliver a committed transaction's messages over one SMTP connection; failures are logged, not raised."""
    try:
        with smtplib.SMTP(smtp["host"], smtp["port"], timeout=smtp["timeout"]) as client:
            if smtp["starttls"]:
                client.starttls()
            if smtp["user"]:
                client.login(smtp["user"], smtp["password"] or "")
            for to, payload in batch:
                for address in to:
                    deliver(client, smtp, address, payload)
    except (OSError, smtplib.SMTPException) as error:
        log.warning("mail via %s:%s failed: %s", smtp["host"], smtp["port"], error)


@sa.event.listens_for(Session, "after_commit")
def _send(session: Session) -> None:
    pending = session.info.pop(PENDING, [])
    if not pending:
        return
    smtp = pending[0][0]
    # Off the request thread: a slow mail server must not slow the user down.
    threading.Thread(target=send, args=(smtp, [(to, payload) for _smtp, to, payload in pending]), daemon=True).start()


@sa.event.listens_for(Session, "after_soft_rollback")
def _drop(session: Session, previous_transaction) -> None:
    session.info.pop(PENDING, None)
