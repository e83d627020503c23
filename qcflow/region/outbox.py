"""The hospital side of regional mode (docs/region.md, Sending): what is sent to the centre, the outbox's versions,
and the delivery with retry and back-off.

A month's document holds one value per indicator of the plan's catalogue that has one: computed (SQL, counted
again now, not the bulletin's frozen snapshot: a late HIS fact or a correction reaches the centre as the next
version), the survival estimates, and reported values once APPROVED. Archived annual and quarterly forms are sent
as their JSON twins under their own revision.
"""
from __future__ import annotations

import json
import os
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _, lazy_gettext as _l
from marshmallow import ValidationError

from qcflow.auth.models import Role
from qcflow.core.actors import Actor
from qcflow.core.canonical import canonical as canonical_text
from qcflow.core.errors import Conflict, NotFound, Unprocessable
from qcflow.core.i18n import register_labels
from qcflow.core.periods import add_months, month_end, month_start, parse_month
from qcflow.core.time import today
from qcflow.extensions import db
from qcflow.indicators import catalogue, queries
from qcflow.indicators.models import IndicatorForm
from qcflow.indicators.reporting import RATE_UNITS, deadline
from qcflow.notify.services import notify, users_with_role
from qcflow.region import keys, protocol
from qcflow.region.models import RegionOutbox
from qcflow.region.schemas import RefusalAnswer, StandingAnswer
from qcflow.region.workflow import OUTBOX_WORKFLOW, OutboxState

SUBMISSIONS_PATH = "/api/v1/centre/submissions"
STANDING_PATH = "/api/v1/centre/standing"
FORM_KINDS = {"annual": "annual_form", "quarterly": "quarterly_form"}
#: The sending job's actor (and the CLI's `region send`).
SENDER = Actor.system("region.send")

#: Why an attempt failed: `last_error` starts with one of these codes, then ": " and the detail (an HTTP status,
#: the connection's error) that the pages show as it is.
SEND_ERRORS = ("unreachable", "timeout", "server_error", "unsigned", "bad_answer", "held")
register_labels({"region_send_error": {
    "held": _l("Held back, not sent: a value the centre would refuse. Correct it, then check this month again"),
    "unreachable": _l("The centre could not be reached"),
    "timeout": _l("The centre did not answer in time"),
    "server_error": _l("The centre had an error"),
    "unsigned": _l("The answer was not signed by the centre's key: not trusted"),
    "bad_answer": _l("The centre's answer could not be read"),
}})


# Settings -------------------------------------------------------------------------------------------------------

def missing_settings() -> list[str]:
    """The settings sending still needs (names of settings, or the key file's path)."""
    config = current_app.config
    missing = [name for name in ("REGION_CENTRE_URL", "HOSPITAL_CODE", "REGION_CENTRE_KEY") if not config.get(name)]
    if not os.path.exists(keys.key_path()):
        missing.append("REGION_KEY_FILE")
    return missing


def can_queue() -> bool:
    return bool(current_app.config.get("REGION_CENTRE_URL") and current_app.config.get("HOSPITAL_CODE"))


# What is sent ---------------------------------------------------------------------------------------------------

def month_values(month: date, *, now: datetime) -> list[dict]:
    """The month's values as the protocol sends them (protocol.month_document's `values`)."""
    first = month_start(month)
    found = queries.catalogue_values(first, month_end(first), now=now)
    values = []
    for entry in catalogue.entries(include_local=False):
        value = found.get(entry.code)
        if entry.method == "not_applicable" or value is None or value.value is None:
            continue
        if entry.unit in RATE_UNITS and value.denominator:
            values.append({"code": entry.code, "unit": entry.unit, "numerator": int(value.numerator),
                           "denominator": int(value.denominator), "value": float(value.value)})
        else:
            # A value without parts: a survival estimate, a count, a time, a ratio, a status.
            values.append({"code": entry.code, "unit": entry.unit, "numerator": None, "denominator": None,
                           "value": float(value.value)})
    return values


def month_document(month: date, *, now: datetime) -> dict:
    return protocol.month_document(month_start(month), catalogue.plan(), month_values(month, now=now))


def first_month(now: datetime) -> date:
    """The first month sent: REGION_SEND_FROM, else the month a year before this one."""
    configured = parse_month(current_app.config.get("REGION_SEND_FROM") or "")
    return configured or add_months(month_start(today(now)), -12)


def is_due(month: date, now: datetime) -> bool:
    """A month is sent once its reporting deadline has passed."""
    return deadline(month) < today(now)


def due_months(now: datetime) -> list[date]:
    month, found = first_month(now), []
    while is_due(month, now):
        found.append(month)
        month = add_months(month, 1)
    return found


def latest(kind: str, period: str) -> RegionOutbox | None:
    return db.session.scalar(sa.select(RegionOutbox).where(RegionOutbox.kind == kind, RegionOutbox.period == period)
                             .order_by(RegionOutbox.revision.desc()).limit(1))


def _queue(kind: str, period: str, revision: int, document: dict, *, actor: Actor, now: datetime) -> RegionOutbox:
    row = RegionOutbox(kind=kind, period=period, revision=revision, document=canonical_text(document),
                       digest=protocol.digest(document), state=OutboxState.NEW.value, attempts=0,
                       next_attempt_at=now, created_at=now, created_by=actor.audit_name)
    OUTBOX_WORKFLOW.check(row, "queue", actor=actor)
    db.session.add(row)
    OUTBOX_WORKFLOW.apply(row, "queue", actor=actor, now=now, audit_detail={
        "kind": kind, "period": period, "revision": revision, "digest": row.digest})
    return row


def held_reasons(document: dict) -> list[str]:
    """Why the centre would refuse a month's document as this hospital computed it (protocol.month_value_errors:
    a value out of its plausible range, each message naming its indicator); empty when it would not."""
    units = {entry.code: entry.unit for entry in catalogue.entries(include_local=False)}
    _values, errors = protocol.month_value_errors(document, units)
    return [message for _field, messages in sorted(errors.items()) for message in messages]


def queue_month(month: date, *, actor: Actor, now: datetime, document: dict | None = None) -> RegionOutbox | None:
    """Queue the month's document when it differs from the latest version queued (None: nothing new, or no value
    at all to send). A document the centre would refuse is queued held back: never sent by the job, its reasons in
    `last_error` for the submissions page, until a corrected month is queued as the next version."""
    document = document or month_document(month, now=now)
    if not document["values"]:
        return None
    period = protocol.period_text("month", month_start(month))
    previous = latest("month", period)
    if previous is not None and previous.digest == protocol.digest(document):
        return None
    row = _queue("month", period, previous.revision + 1 if previous else 1, document, actor=actor, now=now)
    reasons = held_reasons(document)
    if reasons:
        row.next_attempt_at = None
        row.last_error = ("held: " + "; ".join(reasons))[:500]
        tell_the_office(row, "region.held", now=now)
    return row


def tell_the_office(row: RegionOutbox, kind: str, *, now: datetime) -> None:
    """The quality office hears of a submission that needs it (refused by the centre, or held back here): nobody
    would see it otherwise until they opened the submissions page."""
    notify(users_with_role(Role.QUALITY), kind, {"kind": row.kind, "period": row.period, "version": row.revision},
           now=now, link=f"/region/submissions/{row.id}")


def queue_forms(*, actor: Actor, now: datetime) -> list[RegionOutbox]:
    """Queue every archived form of the plan (from REGION_SEND_FROM's year) not queued yet, under its revision."""
    since = date(first_month(now).year, 1, 1)
    queued = {(kind, period, revision) for kind, period, revision in db.session.execute(
        sa.select(RegionOutbox.kind, RegionOutbox.period, RegionOutbox.revision)
        .where(RegionOutbox.kind.in_(FORM_KINDS.values())))}
    rows = []
    for form in db.session.scalars(sa.select(IndicatorForm).where(
            IndicatorForm.plan == catalogue.plan(), IndicatorForm.starts_on >= since)
            .order_by(IndicatorForm.starts_on, IndicatorForm.kind, IndicatorForm.revision)):
        kind = FORM_KINDS[form.kind]
        period = protocol.period_text(kind, form.starts_on)
        if (kind, period, form.revision) in queued:
            continue
        rows.append(_queue(kind, period, form.revision, json.loads(form.snapshot), actor=actor, now=now))
    return rows


def queue_due(*, actor: Actor, now: datetime) -> list[RegionOutbox]:
    """Queue every due month whose values changed since its latest version, and every archived form not queued;
    nothing while REGION_CENTRE_URL or HOSPITAL_CODE is unset."""
    if not can_queue():
        return []
    rows = [row for month in due_months(now) if (row := queue_month(month, actor=actor, now=now)) is not None]
    return rows + queue_forms(actor=actor, now=now)


def check_month(month: date, *, actor: Actor, now: datetime) -> RegionOutbox | None:
    """Queue one month again when its values changed ("check this month again"); refused before its deadline."""
    if not can_queue():
        raise Conflict(_("Sending is not set up: set REGION_CENTRE_URL and HOSPITAL_CODE first."))
    if month < date(2000, 1, 1) or not is_due(month, now):
        raise Unprocessable(_("A month is sent once its reporting deadline has passed."), errors={"month": [
            _("%(month)s is due by %(day)s: check it again after that day.", month=f"{month:%Y-%m}",
              day=deadline(month).isoformat())]})
    document = month_document(month, now=now)
    if not document["values"]:
        message = _("%(month)s has no indicator value to send.", month=f"{month:%Y-%m}")
        raise Unprocessable(message, errors={"month": [message]})
    return queue_month(month, actor=actor, now=now, document=document)


# Sending --------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Answer:
    """What came back from the centre: an HTTP status and body, or the connection's error."""

    status: int | None
    body: bytes = b""
    signature: str | None = None
    error: str | None = None
    #: The SHA-256 of what this hospital signed for the request: the centre's answer must carry it.
    request_digest: str | None = None


def post(url: str, body: bytes, headers: dict, timeout: float) -> Answer:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    return replace(_exchange(request, timeout), request_digest=protocol.sha256(body))


def get(url: str, headers: dict, timeout: float, signed: bytes) -> Answer:
    """A signed GET; `signed` is the text its signature covers (protocol.request_text)."""
    answer = _exchange(urllib.request.Request(url, headers=headers, method="GET"), timeout)
    return replace(answer, request_digest=protocol.sha256(signed))


def _exchange(request: urllib.request.Request, timeout: float) -> Answer:
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Answer(response.status, response.read(protocol.MAX_BODY_BYTES + 1),
                          response.headers.get(protocol.HEADER_SIGNATURE))
    except urllib.error.HTTPError as error:
        with error:
            return Answer(error.code, error.read(protocol.MAX_BODY_BYTES + 1),
                          error.headers.get(protocol.HEADER_SIGNATURE) if error.headers else None)
    except (TimeoutError, socket.timeout):
        return Answer(None, error=f"timeout: no answer within {timeout:g} s")
    except urllib.error.URLError as error:
        reason = error.reason
        code = "timeout" if isinstance(reason, (TimeoutError, socket.timeout)) else "unreachable"
        return Answer(None, error=f"{code}: {reason}"[:500])
    except (OSError, ValueError) as error:
        return Answer(None, error=f"unreachable: {error}"[:500])


def retry_delay(attempts: int) -> timedelta:
    minutes = current_app.config["REGION_RETRY_MINUTES"]
    return timedelta(minutes=minutes[min(max(attempts, 1) - 1, len(minutes) - 1)])


def stuck_before(now: datetime) -> datetime:
    """A row still "sent" whose attempt began before this time was cut off (a crash after the commit)."""
    return now - timedelta(seconds=2 * current_app.config["REGION_TIMEOUT_SECONDS"])


def due_rows(now: datetime, limit: int = 100) -> list[RegionOutbox]:
    """Rows to send now, oldest first: queued or waiting ones whose time has come, and stuck "sent" ones."""
    waiting = sa.and_(RegionOutbox.state.in_([OutboxState.QUEUED.value, OutboxState.WAITING.value]),
                      RegionOutbox.next_attempt_at <= now)
    stuck = sa.and_(RegionOutbox.state == OutboxState.SENT.value, RegionOutbox.last_attempt_at < stuck_before(now))
    return list(db.session.scalars(sa.select(RegionOutbox).where(sa.or_(waiting, stuck))
                                   .order_by(RegionOutbox.id).limit(limit)))


def _json(body: bytes):
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def record_answer(row: RegionOutbox, answer: Answer, *, actor: Actor, now: datetime) -> str:
    """Apply what the centre answered (accept, reject or wait) and return the action taken."""
    data = _json(answer.body) if answer.status is not None else None
    signed = answer.status is not None and keys.verify_centre_answer(answer.body, answer.signature)
    error = None
    if answer.status is None:
        error = answer.error or "unreachable: no answer"
    elif answer.status >= 500:
        error = f"server_error: HTTP {answer.status}"
    elif not signed:
        error = f"unsigned: HTTP {answer.status}"
    elif data is None:
        error = f"bad_answer: HTTP {answer.status}, not a JSON object"
    elif unbound := protocol.binding_error(data, answer.status, answer.request_digest):
        error = unbound
    elif answer.status == 201:
        if not _is_receipt_of(row, data):
            error = "unbound: the receipt is for another submission"
        else:
            return _answered(row, "accept", data, actor=actor, now=now)
    elif (answer.status == 409 and data.get("code") == "already_received"
          and _is_receipt_of(row, data.get("receipt"))):
        return _answered(row, "accept", data["receipt"], actor=actor, now=now)
    elif 400 <= answer.status < 500:
        return _answered(row, "reject", data, actor=actor, now=now, status=answer.status)
    else:
        error = f"bad_answer: HTTP {answer.status}"
    row.last_error = error[:500]
    row.next_attempt_at = now + retry_delay(row.attempts)
    OUTBOX_WORKFLOW.apply(row, "wait", actor=actor, now=now, audit_detail={
        "error": row.last_error, "next_attempt_at": row.next_attempt_at.isoformat()})
    return "wait"


def _is_receipt_of(row: RegionOutbox, receipt) -> bool:
    """Whether a receipt names this submission: this hospital, its kind, period, version and document digest."""
    return isinstance(receipt, dict) and (
        receipt.get("hospital"), receipt.get("kind"), receipt.get("period"), receipt.get("version"),
        receipt.get("digest")) == (current_app.config["HOSPITAL_CODE"], row.kind, row.period, row.revision,
                                   row.digest)


def _answered(row: RegionOutbox, action: str, data: dict, *, actor: Actor, now: datetime,
              status: int | None = None) -> str:
    row.answer = data
    row.answered_at = now
    row.next_attempt_at = None
    row.last_error = None if action == "accept" else f"HTTP {status}: {str(data.get('message') or '')}"[:500]
    OUTBOX_WORKFLOW.apply(row, action, actor=actor, now=now, audit_detail={
        "status": status or 201, "code": data.get("code"), "receipt": data.get("submission")})
    if action == "reject":
        tell_the_office(row, "region.rejected", now=now)
    return action


def _mark_sent(row: RegionOutbox, *, actor: Actor, now: datetime) -> None:
    row.attempts += 1
    row.last_attempt_at = now
    row.next_attempt_at = None
    OUTBOX_WORKFLOW.apply(row, "send", actor=actor, now=now, audit_detail={"attempt": row.attempts})


def _deliver(row: RegionOutbox, *, actor: Actor, now: datetime) -> str:
    """Send one marked-and-committed row and record the answer (committed). The envelope is signed anew."""
    config = current_app.config
    body = protocol.envelope(config["HOSPITAL_CODE"], row.kind, row.period, row.revision, json.loads(row.document),
                             signed_at=now)
    headers = {"Content-Type": "application/json", "Accept-Language": "zh",
               protocol.HEADER_HOSPITAL: config["HOSPITAL_CODE"],
               protocol.HEADER_SIGNATURE: protocol.sign(keys.own_key(), body)}
    answer = post(config["REGION_CENTRE_URL"].rstrip("/") + SUBMISSIONS_PATH, body, headers,
                  config["REGION_TIMEOUT_SECONDS"])
    action = record_answer(row, answer, actor=actor, now=now)
    db.session.commit()
    return action


def sending_problem() -> str | None:
    """Why nothing can be sent now (in words, for the job's result), or None."""
    missing = [name for name in missing_settings() if name != "REGION_CENTRE_KEY"]
    if missing:
        return "not configured: " + ", ".join(missing) + " (run `flask --app wsgi qcflow region keygen` for the key)"
    return None


def send_due(*, now: datetime, actor: Actor = SENDER) -> dict[str, int]:
    """Send every due row (oldest first). Unlike other services this one commits: each row is marked "sent" and
    committed before its request leaves the process, and its answer is committed before the next row."""
    counts = {"accept": 0, "reject": 0, "wait": 0}
    if sending_problem():
        return counts
    rows = due_rows(now)
    for row in rows:
        _mark_sent(row, actor=actor, now=now)
    db.session.commit()
    for row in rows:
        counts[_deliver(row, actor=actor, now=now)] += 1
    return counts


def requeue(row: RegionOutbox, *, actor: Actor, now: datetime, expected_version: int | None = None) -> RegionOutbox:
    """Queue a rejected row again, the same version (after its cause was fixed at the centre)."""
    row.next_attempt_at = now
    OUTBOX_WORKFLOW.apply(row, "requeue", actor=actor, now=now, expected_version=expected_version)
    return row


def send_now(row: RegionOutbox, *, actor: Actor, now: datetime, expected_version: int | None = None) -> str:
    """Send one row at once (queued, waiting, or stuck sent): marked and committed, then sent, its answer
    committed. Returns the action the answer led to."""
    problem = sending_problem()
    if problem:
        raise Conflict(_("Sending is not set up: %(missing)s.", missing=", ".join(
            n for n in missing_settings() if n != "REGION_CENTRE_KEY")))
    OUTBOX_WORKFLOW.check(row, "send", actor=actor, expected_version=expected_version)
    row.next_attempt_at = now
    _mark_sent(row, actor=actor, now=now)
    db.session.commit()
    return _deliver(row, actor=actor, now=now)


# Reading --------------------------------------------------------------------------------------------------------

def get_row(row_id: int) -> RegionOutbox:
    row = db.session.get(RegionOutbox, row_id)
    if row is None:
        raise NotFound(_("No submission %(id)s.", id=row_id))
    return row


def rows(*, state: str | None = None, kind: str | None = None, period: str | None = None,
         before_id: int | None = None, limit: int = 50) -> list[RegionOutbox]:
    """The outbox newest first, keyset by id (`limit` rows read: ask for one more to know if more follow)."""
    stmt = sa.select(RegionOutbox)
    if state:
        stmt = stmt.where(RegionOutbox.state == state)
    if kind:
        stmt = stmt.where(RegionOutbox.kind == kind)
    if period:
        stmt = stmt.where(RegionOutbox.period == period)
    if before_id:
        stmt = stmt.where(RegionOutbox.id < before_id)
    return list(db.session.scalars(stmt.order_by(RegionOutbox.id.desc()).limit(limit)))


def error_parts(text: str | None) -> tuple[str | None, str]:
    """`last_error` split into its code (a region_send_error label) and its detail."""
    if not text:
        return None, ""
    code, _sep, detail = text.partition(": ")
    return (code, detail) if code in SEND_ERRORS else (None, text)


def value_lines(row: RegionOutbox, language: str) -> list[dict]:
    """A month's values as sent, each with its indicator's name and the centre's reasons for it (by values[i])."""
    document = json.loads(row.document)
    names = {e.code: e for e in catalogue.entries(include_local=False)}
    errors = _refusal_errors(row) or {}
    lines = []
    for index, item in enumerate(document.get("values") or []):
        entry = names.get(item.get("code"))
        # The centre names the indicator by its code ("code: message"); the page names it already.
        prefix = f"{item.get('code')}: "
        reasons = [message.removeprefix(prefix) for key, messages in errors.items()
                   if key == f"values[{index}]" or key.startswith(f"values[{index}].") for message in messages]
        lines.append({**item, "index": index, "name": entry.label(language) if entry else item.get("code"),
                      "reasons": reasons})
    return lines


def other_reasons(row: RegionOutbox) -> list[tuple[str, str]]:
    """The centre's reasons that are not about one value (field, message)."""
    if row.state != OutboxState.REJECTED.value:
        return []
    errors = _refusal_errors(row)
    if errors is None:
        return [("answer", _("The centre's answer could not be read."))]
    return [(key, message) for key, messages in errors.items() if not key.startswith("values[")
            for message in messages]


def _refusal_errors(row: RegionOutbox) -> dict[str, list[str]] | None:
    """The centre's reasons by field for a rejected row ({} for another row), None when they are not a mapping of
    fields to messages (the answer cannot be read)."""
    if row.state != OutboxState.REJECTED.value:
        return {}
    answer = row.answer if isinstance(row.answer, dict) else {}
    errors = answer.get("errors")
    if isinstance(errors, dict):
        # A single message where a list is expected is still a reason.
        errors = {key: messages if isinstance(messages, list) else [messages] for key, messages in errors.items()}
    try:
        return RefusalAnswer().load({"errors": errors})["errors"] or {}
    except ValidationError:
        return None


# Where the hospital stands among its peers (the centre's answer) -------------------------------------------------

class StandingUnavailable(Exception):
    """The centre's standing could not be had (not reachable, refused, or not signed by it): a message to show."""

    def __init__(self, message: str, detail: str = ""):
        super().__init__(message)
        self.message, self.detail = message, detail


def standing(code: str, first: date, last: date, *, now: datetime) -> dict:
    """Ask the centre where this hospital stands for one indicator over months first..last (a signed GET); the
    answer counts only when the centre signed it."""
    config = current_app.config
    missing = [name for name in missing_settings() if name != "REGION_KEY_FILE"]
    if missing or not keys_present():
        raise StandingUnavailable(_("Sending is not set up, so the centre cannot be asked."),
                                  ", ".join(missing or ["REGION_KEY_FILE"]))
    path = f"{STANDING_PATH}?indicator={code}&from={first:%Y-%m}&to={last:%Y-%m}"
    headers = keys.signed_request_headers("GET", path, now)
    answer = get(config["REGION_CENTRE_URL"].rstrip("/") + path, headers, config["REGION_TIMEOUT_SECONDS"],
                 protocol.request_text("GET", path, headers[protocol.HEADER_SIGNED_AT]))
    if answer.status is None:
        raise StandingUnavailable(_("The centre could not be reached. Try again later."), answer.error or "")
    if not keys.verify_centre_answer(answer.body, answer.signature):
        raise StandingUnavailable(_("The answer was not signed by the centre's key, so it is not shown."),
                                  f"HTTP {answer.status}")
    data = _json(answer.body)
    unbound = protocol.binding_error(data, answer.status, answer.request_digest) if data is not None else None
    if unbound:
        raise StandingUnavailable(_("The answer was not signed by the centre's key, so it is not shown."), unbound)
    if answer.status != 200 or data is None:
        try:
            message = RefusalAnswer().load(data or {})["message"]
        except ValidationError:
            message = None
        raise StandingUnavailable(message or _("The centre did not give the standing."), f"HTTP {answer.status}")
    try:
        return StandingAnswer().load(data)
    except ValidationError as error:
        raise StandingUnavailable(_("The centre's answer could not be read."),
                                  ", ".join(sorted(error.messages))[:120]) from None


def keys_present() -> bool:
    return os.path.exists(keys.key_path())
