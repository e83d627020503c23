"""How an invitation's message leaves qcflow: the hospital's SMS gateway (a JSON webhook), its WeChat
template-message service (a JSON webhook) or e-mail through the SMTP_* settings (docs/deploy.md §13).

One interface: `send(outgoing, text, config) -> Result`. A sender never raises for the gateway's sake (a refusal,
a connection error, a timeout are a failed Result) and its `detail` never holds the phone number or the link:
it is stored in the delivery log and shown to nurses.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from flask import current_app

from qcflow.followup.invitations.models import CHANNELS
from qcflow.followup.invitations.services import Outgoing, safe_detail
from qcflow.notify.mail import one_line, settings as smtp_settings

#: The header of our webhooks' signature (and of the gateway's delivery reports): "sha256=<hex HMAC of the body>".
SIGNATURE_HEADER = "X-Qcflow-Signature"
#: Seconds a gateway has to answer when its sender sets no "timeout".
DEFAULT_TIMEOUT = 10
#: The most of a gateway's answer read (an answer holds a message id, not a page).
MAX_ANSWER_BYTES = 64 * 1024
#: What a sender's setting needs besides its channel.
REQUIRED = {"sms": ("url",), "wechat": ("url", "template_id"), "email": ("to",)}

#: The message, by language and kind. Plain words, the hospital's name and the link: no name, no diagnosis
#: (an SMS is read on a lock screen, by whoever holds the phone).
TEXTS = {
    "zh": {"invitation": "【{hospital}】您好，请点击链接完成随访问卷，约需2分钟：{link}",
           "reminder": "【{hospital}】提醒：您的随访问卷尚未完成，请点击链接填写，约需2分钟：{link}"},
    "en": {"invitation": "{hospital}: please answer your follow-up questionnaire (about 2 minutes): {link}",
           "reminder": "{hospital} reminder: your follow-up questionnaire is still waiting (about 2 minutes): {link}"},
}
#: The WeChat template's fields besides "first" (the message itself): what it is about and what to do.
WECHAT_WORDS = {"zh": {"subject": "随访问卷", "remark": "点击填写，约需2分钟。"},
                "en": {"subject": "Follow-up questionnaire", "remark": "Tap to answer (about 2 minutes)."}}
#: The e-mail's subject.
SUBJECTS = {"zh": "{hospital}随访问卷", "en": "{hospital}: your follow-up questionnaire"}


@dataclass(frozen=True)
class Result:
    """What a sender made of one message: accepted (with the gateway's id of it) or failed (with why)."""

    ok: bool
    provider_message_id: str | None = None
    detail: str | None = None


def hospital_name() -> str:
    return current_app.config.get("HOSPITAL_NAME") or "qcflow"


def _language(outgoing: Outgoing) -> str:
    return outgoing.language if outgoing.language in TEXTS else "zh"


def text_of(outgoing: Outgoing) -> str:
    """The message in the invitation's language: the hospital's name, what to do, the link."""
    return TEXTS[_language(outgoing)][outgoing.kind].format(hospital=hospital_name(), link=outgoing.link)


def reference_of(outgoing: Outgoing) -> str:
    """Our reference of a message, the same for each attempt at it (a gateway that remembers references can drop
    a repeat after a lost answer): the invitation's id, the kind and, for a reminder, which one."""
    return f"qcflow-{outgoing.invitation_id}-{outgoing.kind}" + (f"-{outgoing.number}" if outgoing.number else "")


def sender_for(channel: str) -> dict | None:
    """The configured sender of this channel (the first one when several are)."""
    return next((s for s in current_app.config.get("INVITATION_SENDERS") or [] if s.get("channel") == channel), None)


def config_problem() -> str | None:
    """What is wrong with INVITATION_SENDERS (None when every sender is usable): checked before anything is
    invited, so a typo in the configuration leaves the calls to the nurses instead of failing them."""
    senders = current_app.config.get("INVITATION_SENDERS") or []
    if not isinstance(senders, list):
        return "INVITATION_SENDERS must be a list of senders"
    for number, sender in enumerate(senders, 1):
        channel = sender.get("channel") if isinstance(sender, dict) else None
        if channel not in CHANNELS:
            return f"INVITATION_SENDERS #{number}: channel must be one of {', '.join(CHANNELS)}"
        missing = [key for key in REQUIRED[channel] if not sender.get(key)]
        if missing:
            return f"INVITATION_SENDERS #{number} ({channel}): {', '.join(missing)} not set"
        if channel == "email" and smtp_settings() is None:
            return f"INVITATION_SENDERS #{number} (email): SMTP_HOST not set"
    return None


def scrub(text: str, outgoing: Outgoing) -> str:
    """`text` without the phone number, the link or its token, as the delivery log keeps it (services.safe_detail:
    also no other link, token or long number); scrubbed whole, then shortened, so no part of a secret is left."""
    token = outgoing.link.rsplit("/", 1)[-1]
    for secret in (outgoing.link, token, outgoing.phone):
        if secret:
            text = text.replace(secret, "…")
    return safe_detail(text)[:200]


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def send(outgoing: Outgoing, text: str, config: dict | None = None) -> Result:
    """Send one message through the sender of its channel (or `config`)."""
    config = config or sender_for(outgoing.channel)
    if config is None:
        return Result(False, detail=f"no sender configured for the {outgoing.channel} channel")
    reference = reference_of(outgoing)
    try:
        return SENDERS[config["channel"]](outgoing, text, config, reference)
    except Exception as error:  # a sender's bug must not lose the message's log line, nor leak what it held
        return Result(False, detail=scrub(f"sender error: {type(error).__name__}", outgoing))


# Webhooks ---------------------------------------------------------------------------------------------------------

def _post_json(url: str, payload: dict, config: dict, outgoing: Outgoing) -> Result:
    """POST `payload`; accepted when the answer is 2xx JSON naming a "message_id"."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "qcflow-invitations",
               **{str(k): str(v) for k, v in (config.get("headers") or {}).items()}}
    if config.get("secret"):
        headers[SIGNATURE_HEADER] = sign(config["secret"], body)
    timeout = float(config.get("timeout") or DEFAULT_TIMEOUT)
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, answer = response.status, response.read(MAX_ANSWER_BYTES)
    except urllib.error.HTTPError as error:
        with error:
            return Result(False, detail=scrub(f"HTTP {error.code}{_said(error.read(MAX_ANSWER_BYTES))}", outgoing))
    except (TimeoutError, socket.timeout):
        return Result(False, detail=f"timeout: no answer within {timeout:g} s")
    except urllib.error.URLError as error:
        timed_out = isinstance(error.reason, (TimeoutError, socket.timeout))
        reason = f"timeout: no answer within {timeout:g} s" if timed_out else f"unreachable: {error.reason}"
        return Result(False, detail=scrub(reason, outgoing))
    except (OSError, ValueError) as error:
        return Result(False, detail=scrub(f"unreachable: {error}", outgoing))
    message_id = _message_id(answer)
    if not 200 <= status < 300 or message_id is None:
        return Result(False, detail=scrub(f"HTTP {status} without a message_id{_said(answer)}", outgoing))
    return Result(True, provider_message_id=message_id)


def _message_id(answer: bytes) -> str | None:
    try:
        data = json.loads(answer)
    except ValueError:
        return None
    value = data.get("message_id") if isinstance(data, dict) else None
    if isinstance(value, (str, int)) and not isinstance(value, bool) and 0 < len(str(value)) <= 100:
        return str(value)
    return None


def _said(answer: bytes) -> str:
    """The gateway's own reason ("error" or "message" of a JSON answer), if it gave one."""
    try:
        data = json.loads(answer)
    except ValueError:
        return ""
    if not isinstance(data, dict):
        return ""
    said = data.get("error") or data.get("message")
    return f": {said}" if said else ""  # shortened by scrub(), after the secrets are out


def send_sms(outgoing: Outgoing, text: str, config: dict, reference: str) -> Result:
    """The hospital's SMS gateway: it gets the phone, the text, the link and our reference."""
    payload = {"reference": reference, "kind": outgoing.kind, "phone": outgoing.phone, "text": text,
               "link": outgoing.link, "language": _language(outgoing)}
    return _post_json(config["url"], payload, config, outgoing)


def send_wechat(outgoing: Outgoing, text: str, config: dict, reference: str) -> Result:
    """The hospital's WeChat middleware: it finds the patient's openid (from the HIS number or the phone) and
    sends the template message; the data is in WeChat's own shape ({"value": …} per field)."""
    language = _language(outgoing)
    words = WECHAT_WORDS[language]
    data = {"first": text.replace(outgoing.link, "").rstrip("：: "), "keyword1": hospital_name(),
            "keyword2": words["subject"], "remark": words["remark"]}
    payload = {"reference": reference, "kind": outgoing.kind, "patient_his_id": outgoing.patient_his_id,
               "phone": outgoing.phone, "template_id": config["template_id"], "url": outgoing.link,
               "language": language, "data": {key: {"value": value} for key, value in data.items()}}
    return _post_json(config["url"], payload, config, outgoing)


# E-mail -----------------------------------------------------------------------------------------------------------

def send_email(outgoing: Outgoing, text: str, config: dict, reference: str) -> Result:
    """One e-mail through the SMTP_* settings to config["to"] with {phone} filled in (an e-mail-to-SMS gateway,
    typically). Its Message-ID is the message's id (a gateway's report may name it)."""
    smtp = smtp_settings()
    if smtp is None:
        return Result(False, detail="SMTP_HOST not set")
    message = EmailMessage()
    message["Subject"] = one_line(SUBJECTS[_language(outgoing)].format(hospital=hospital_name()))
    message["From"] = smtp["sender"]
    message["To"] = one_line(config["to"].format(phone=outgoing.phone))
    message["Date"] = formatdate(localtime=False)
    message_id = make_msgid(idstring=reference, domain=smtp["sender"].rpartition("@")[2] or "localhost")
    message["Message-ID"] = message_id
    message.set_content(text + "\n")
    timeout = float(config.get("timeout") or smtp["timeout"])
    try:
        with smtplib.SMTP(smtp["host"], smtp["port"], timeout=timeout) as client:
            if smtp["starttls"]:
                client.starttls()
            if smtp["user"]:
                client.login(smtp["user"], smtp["password"] or "")
            client.send_message(message)
    except smtplib.SMTPRecipientsRefused:
        return Result(False, detail="SMTP: the recipient was refused")
    except smtplib.SMTPResponseException as error:
        return Result(False, detail=scrub(f"SMTP {error.smtp_code}", outgoing))
    except (TimeoutError, socket.timeout):
        return Result(False, detail=f"SMTP timeout: no answer within {timeout:g} s")
    except (OSError, smtplib.SMTPException) as error:
        return Result(False, detail=scrub(f"SMTP unreachable: {type(error).__name__}", outgoing))
    return Result(True, provider_message_id=message_id.strip("<>")[:100])


SENDERS = {"sms": send_sms, "wechat": send_wechat, "email": send_email}
