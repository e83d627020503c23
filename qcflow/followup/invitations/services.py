"""Invitations: who is invited when, what the sending job sends next, what the gateway reports, the patient's
second factor and answers, and the nurse's confirmation. Services flush and never commit; callers pass `now`."""
from __future__ import annotations

import base64
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeTimedSerializer

from qcflow.auth.models import Role
from qcflow.clinical.models import Patient
from qcflow.core import audit
from qcflow.core.actors import Actor
from qcflow.core.errors import Conflict, Unprocessable
from qcflow.core.security import derived_key, keyed_hash
from qcflow.core.time import local
from qcflow.extensions import db
from qcflow.notify.mail import one_line
from qcflow.followup.invitations import questions
from qcflow.followup.invitations.models import Invitation, InvitationMessage
from qcflow.followup.invitations.queries import invitation_of
from qcflow.followup.invitations.workflow import INVITATION_WORKFLOW, LIVE, InvitationState
from qcflow.followup.models import OPEN_TASK_STATES, Attempt, Protocol, ProtocolPhase, Task
from qcflow.followup.schedule import expand
from qcflow.followup.services import claim_task, complete_task, open_prompt
from qcflow.followup.workflow import TaskState
from qcflow.notify.services import notify, users_with_role

#: The sending job and the gateway's reports act as the system; the patient's page as "patient" (audit name).
SYSTEM = Actor.system("followup.invitations")
PATIENT = Actor("patient", roles=frozenset({"system"}))
#: What a link's token looks like (43 URL-safe characters: 256 bits); anything else is not looked up.
TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")
#: Minutes the sending job holds an invitation while its message is out (a crash mid-send retries after it).
LEASE_MINUTES = 10
#: In a delivery log's detail: a link's path, anything long enough to be a token, a number however it is spaced.
_LINK_OR_TOKEN = re.compile(r"/f/\S*|[A-Za-z0-9_-]{16,}")
_NUMBER = re.compile(r"\+?\d[\d\s().-]*\d")
#: Digits from which a number may be a phone or an ID number.
_LONG_NUMBER_DIGITS = 7


def safe_detail(text: str | None) -> str | None:
    """A gateway's or a connection's words as the delivery log keeps them (nurses read it, the journal prints it;
    docs/deploy.md §13.5): one short line without a link, a token or any number of 7 digits or more, however it is
    spaced (+86 138 1234 0098)."""
    if not text:
        return None
    text = _LINK_OR_TOKEN.sub("…", text)
    text = _NUMBER.sub(lambda m: "…" if sum(c.isdigit() for c in m.group()) >= _LONG_NUMBER_DIGITS else m.group(), text)
    return one_line(text)[:300] or None


def token_of(invitation: Invitation) -> str:
    """The link's token: an HMAC of the stored seed under a key derived from SECRET_KEY."""
    raw = hmac.new(derived_key("invitation-link").encode(), invitation.token_seed.encode(), "sha256").digest()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def hash_token(token: str) -> str:
    return keyed_hash(derived_key("invitation-token"), token)


def link_of(invitation: Invitation) -> str:
    return f"{current_app.config['INVITATION_LINK_BASE'].rstrip('/')}/f/{token_of(invitation)}"


def find(token: str) -> Invitation | None:
    """The invitation of a link's token, whatever its state; None for anything that is not one."""
    if not TOKEN.match(token or ""):
        return None
    return db.session.scalar(sa.select(Invitation).where(Invitation.token_hash == hash_token(token)))


def enabled() -> bool:
    """Invitations go out only when the hospital configured a sender and the link's address."""
    config = current_app.config
    return bool(config.get("INVITATION_SENDERS")) and bool(config.get("INVITATION_LINK_BASE"))


def factor_for(patient) -> str | None:
    """The second factor this patient confirms themselves with: the configured one if the record holds it, else the
    other; None when the record holds neither (the call stays a phone call)."""
    preferred = current_app.config["INVITATION_SECOND_FACTOR"]
    available = {"birth_year": patient.birth_on is not None,
                 "id_last4": bool(patient.id_number and len(patient.id_number.strip()) >= 4)}
    for factor in (preferred, *(f for f in available if f != preferred)):
        if available.get(factor):
            return factor
    return None


def _self_report_slots(protocol_ids) -> dict[int, set[int]]:
    """For each protocol version: the occurrence numbers whose phase allows self-report."""
    result = {}
    for protocol in db.session.scalars(sa.select(Protocol).where(Protocol.id.in_(protocol_ids))):
        result[protocol.id] = {slot.number for slot in expand(protocol.schedule_phases()) if slot.self_report}
    return result


def invite_due(now: datetime, *, limit: int = 500, task_ids=None) -> int:
    """Create the invitations of calls whose window has opened: open calls of a self-report phase, not invited
    yet, whose patient is alive and has a phone and a second factor on record. Reads only calls whose window is
    open now (O(due)); each invitation is audited. Returns how many were created. `task_ids`: only these calls
    (the demo's history)."""
    if not enabled():
        return 0
    has_self_report = sa.exists().where(ProtocolPhase.protocol_id == Task.protocol_id, ProtocolPhase.self_report)
    rows = db.session.execute(
        sa.select(Task, Patient).join(Patient, Patient.id == Task.patient_id)
        .outerjoin(Invitation, Invitation.task_id == Task.id)
        .where(Task.state.in_(OPEN_TASK_STATES), Task.opens_at <= now, Task.closes_at > now,
               Invitation.id.is_(None), has_self_report, Patient.phone.is_not(None), Patient.died_on.is_(None),
               *([Task.id.in_(list(task_ids))] if task_ids is not None else []))
        .order_by(Task.closes_at, Task.id).limit(limit)).all()
    slots = _self_report_slots({task.protocol_id for task, _patient in rows})
    channel = current_app.config["INVITATION_SENDERS"][0]["channel"]
    created = 0
    for task, patient in rows:
        factor = factor_for(patient)
        if task.occurrence not in slots.get(task.protocol_id, ()) or factor is None:
            continue
        seed = base64.b32encode(secrets.token_bytes(20)).decode()
        invitation = Invitation(task_id=task.id, patient_id=task.patient_id, department_id=task.department_id,
                                token_seed=seed, token_hash="", channel=channel, factor=factor,
                                language=current_app.config["BABEL_DEFAULT_LOCALE"], created_at=now,
                                expires_at=task.closes_at, next_send_at=now, alarms="")
        invitation.token_hash = hash_token(token_of(invitation))
        db.session.add(invitation)
        db.session.flush()
        audit.record(SYSTEM.audit_name, "followup_invitation.create", "followup_invitation", invitation.id, now,
                     after={"task_id": task.id, "channel": channel, "factor": factor, "state": invitation.state})
        created += 1
    return created


def _end(invitation: Invitation, action: str, now: datetime, **detail) -> None:
    invitation.next_send_at = None
    invitation.ended_at = now
    INVITATION_WORKFLOW.apply(invitation, action, actor=SYSTEM, now=now, audit_detail=detail or None)


def settle(invitation: Invitation, now: datetime) -> bool:
    """End a live invitation whose window closed (expired) or whose call was closed another way (closed); True
    when it is still live."""
    if invitation.state not in LIVE:
        return False
    if invitation.task.state not in OPEN_TASK_STATES:
        _end(invitation, "close", now, task_state=invitation.task.state)
        return False
    if invitation.expires_at <= now:
        _end(invitation, "expire", now)
        return False
    return True


def settle_due(now: datetime, *, limit: int = 1000) -> int:
    """Expire the live invitations whose window closed, close those whose call was closed first."""
    ended = 0
    stale = (sa.select(Invitation).join(Task, Task.id == Invitation.task_id)
             .where(Invitation.state.in_([s.value for s in LIVE]),
                    sa.or_(Invitation.expires_at <= now, Task.state.not_in(OPEN_TASK_STATES)))
             .order_by(Invitation.id).limit(limit))
    for invitation in db.session.scalars(stale):
        ended += not settle(invitation, now)
    return ended


@dataclass(frozen=True)
class Outgoing:
    """A message the sending job is to send now (taken under a lease, committed before it leaves)."""

    invitation_id: int
    kind: str  # "invitation" or "reminder"
    #: Which reminder (1, 2, …); 0 for the invitation.
    number: int
    channel: str
    language: str
    link: str
    phone: str
    patient_his_id: str


def take_due(now: datetime, *, limit: int = 100) -> list[Outgoing]:
    """The messages due now, each invitation held for LEASE_MINUTES (next_send_at moves on), so a second job run
    or a crash mid-send does not send it twice at once. Invitations that ended are settled instead. The caller
    commits before sending."""
    due = db.session.scalars(
        sa.select(Invitation).where(Invitation.next_send_at <= now).order_by(Invitation.next_send_at, Invitation.id)
        .limit(limit).with_for_update(skip_locked=True, of=Invitation))
    taken = []
    for invitation in due:
        if not settle(invitation, now):
            continue
        patient = db.session.get(Patient, invitation.patient_id)
        if patient.phone is None:
            _end(invitation, "close", now, reason="no_phone")
            continue
        invitation.next_send_at = now + timedelta(minutes=LEASE_MINUTES)
        kind = "invitation" if invitation.state == InvitationState.QUEUED else "reminder"
        number = invitation.reminders_sent + 1 if kind == "reminder" else 0
        taken.append(Outgoing(invitation.id, kind, number, invitation.channel, invitation.language, link_of(invitation),
                              patient.phone, patient.his_id))
    db.session.flush()
    return taken


def _next_reminder(invitation: Invitation) -> datetime | None:
    hours = current_app.config["INVITATION_REMINDER_HOURS"]
    if invitation.reminders_sent >= len(hours) or invitation.sent_at is None:
        return None
    at = invitation.sent_at + timedelta(hours=hours[invitation.reminders_sent])
    return at if at < invitation.expires_at else None


def record_send(invitation_id: int, kind: str, *, ok: bool, provider_message_id: str | None = None,
                detail: str | None = None, now: datetime) -> Invitation:
    """Log a send (or its failure) on the invitation and decide what is sent next: the next reminder after a
    success; after a failure a retry (INVITATION_RETRY_MINUTES), then, when the retries are used up, the invitation
    fails (or, for a reminder, the next reminder is waited for)."""
    invitation = db.session.get(Invitation, invitation_id)
    db.session.add(InvitationMessage(invitation_id=invitation.id, kind=kind, channel=invitation.channel,
                                     status="sent" if ok else "failed", at=now,
                                     provider_message_id=provider_message_id, detail=safe_detail(detail)))
    if invitation.state not in LIVE:  # answered or closed while the message was out
        db.session.flush()
        return invitation
    retries = current_app.config["INVITATION_RETRY_MINUTES"]
    if ok:
        invitation.send_failures = 0
        if kind == "reminder":
            invitation.reminders_sent += 1
        if invitation.state == InvitationState.QUEUED:
            invitation.sent_at = now
            INVITATION_WORKFLOW.apply(invitation, "send", actor=SYSTEM, now=now,
                                      audit_detail={"provider_message_id": provider_message_id})
        else:
            audit.record(SYSTEM.audit_name, "followup_invitation.remind", "followup_invitation", invitation.id, now,
                         after={"reminders_sent": invitation.reminders_sent})
        invitation.next_send_at = (None if invitation.state == InvitationState.ANSWERED
                                   else _next_reminder(invitation))
    elif invitation.send_failures < len(retries):
        invitation.next_send_at = now + timedelta(minutes=retries[invitation.send_failures])
        invitation.send_failures += 1
        audit.record(SYSTEM.audit_name, "followup_invitation.send_failed", "followup_invitation", invitation.id, now,
                     after={"kind": kind, "failures": invitation.send_failures})
    elif invitation.state == InvitationState.QUEUED:
        _end(invitation, "fail", now, failures=invitation.send_failures + 1)
    else:  # a reminder could not be sent: the next one may be
        invitation.send_failures = 0
        invitation.reminders_sent += 1
        invitation.next_send_at = _next_reminder(invitation)
        audit.record(SYSTEM.audit_name, "followup_invitation.send_failed", "followup_invitation", invitation.id, now,
                     after={"kind": kind, "gave_up": True})
    db.session.flush()
    return invitation


DELIVERY_STATUSES = ("delivered", "undelivered")


def record_delivery(provider_message_id: str, status: str, *, now: datetime, detail: str | None = None
                    ) -> tuple[Invitation | None, bool]:
    """The gateway's delivery report of a message it accepted: logged on the invitation; the first "delivered"
    marks the invitation delivered. Returns the invitation (None when no message has that id) and whether the
    report was recorded: the same report again (a gateway retrying one it thinks was lost) changes nothing."""
    sent = db.session.scalar(sa.select(InvitationMessage).where(
        InvitationMessage.provider_message_id == provider_message_id, InvitationMessage.status == "sent")
        .order_by(InvitationMessage.id.desc()).limit(1))
    if sent is None:
        return None, False
    invitation = db.session.get(Invitation, sent.invitation_id)
    reported_before = db.session.scalar(sa.select(sa.literal(True)).where(
        InvitationMessage.kind == "report", InvitationMessage.provider_message_id == provider_message_id,
        InvitationMessage.status == status).limit(1))
    if reported_before:
        return invitation, False
    db.session.add(InvitationMessage(invitation_id=invitation.id, kind="report", channel=sent.channel, status=status,
                                     at=now, provider_message_id=provider_message_id, detail=safe_detail(detail)))
    if status == "delivered" and invitation.state == InvitationState.SENT:
        invitation.delivered_at = now
        INVITATION_WORKFLOW.apply(invitation, "deliver", actor=SYSTEM, now=now,
                                  audit_detail={"provider_message_id": provider_message_id})
    else:
        audit.record(SYSTEM.audit_name, "followup_invitation.delivery_report", "followup_invitation", invitation.id,
                     now, after={"status": status, "provider_message_id": provider_message_id})
    db.session.flush()
    return invitation, True


# The patient's page -------------------------------------------------------------------------------------------

def usable(invitation: Invitation | None, now: datetime) -> bool:
    """Whether the link still leads to the questions (live, window open, call open)."""
    return (invitation is not None and invitation.state in LIVE and invitation.task.opens_at <= now
            < invitation.expires_at and invitation.task.state in OPEN_TASK_STATES)


def is_locked(invitation: Invitation, now: datetime) -> bool:
    return invitation.locked_until is not None and invitation.locked_until > now


def _factor_value(invitation: Invitation) -> str:
    patient = db.session.get(Patient, invitation.patient_id)
    if invitation.factor == "birth_year":
        return str(patient.birth_on.year) if patient.birth_on else ""
    return (patient.id_number or "").strip().upper()[-4:]


#: What each second factor looks like; anything else is a typing slip, answered with the field's error and not
#: counted as a wrong try.
FACTOR_FORMATS = {"birth_year": re.compile(r"^[0-9]{4}$"), "id_last4": re.compile(r"^[0-9X]{4}$")}


def factor_format_error(invitation: Invitation, given: str) -> str | None:
    """Why `given` cannot be this invitation's second factor at all (not four digits…), or None."""
    if FACTOR_FORMATS[invitation.factor].match((given or "").strip().upper()):
        return None
    if invitation.factor == "birth_year":
        return _("Enter the year of birth as four digits, for example 1958.")
    return _("Enter the last four characters of the ID number (digits, or X).")


def check_factor(invitation: Invitation, given: str, *, now: datetime) -> bool:
    """Check the patient's second factor. Right: the invitation is opened (once). Wrong: counted; every
    INVITATION_WRONG_FACTORS wrong tries the invitation refuses every answer for INVITATION_LOCK_MINUTES (the caller
    tells the patient to wait, without saying whether the last one was right), and after INVITATION_MAX_WRONG_FACTORS
    the link is closed for good (the call goes back to the phone; the department's nurses are told). Refused while
    locked, and once the link no longer works. Something that cannot be a factor at all (factor_format_error) is a
    422 on `factor`, not a try."""
    if is_locked(invitation, now) or not usable(invitation, now):
        return False
    error = factor_format_error(invitation, given)
    if error:
        raise Unprocessable(errors={"factor": [error]})
    expected = _factor_value(invitation)
    right = bool(expected) and hmac.compare_digest((given or "").strip().upper().encode(), expected.encode())
    config = current_app.config
    if not right:
        invitation.wrong_factors += 1
        if invitation.wrong_factors % config["INVITATION_WRONG_FACTORS"] == 0:
            invitation.locked_until = now + timedelta(minutes=config["INVITATION_LOCK_MINUTES"])
        db.session.flush()
        audit.record(PATIENT.audit_name, "followup_invitation.wrong_factor", "followup_invitation", invitation.id,
                     now, after={"wrong_factors": invitation.wrong_factors,
                                 "locked_until": invitation.locked_until.isoformat() if is_locked(invitation, now)
                                 else None})
        if invitation.wrong_factors >= config["INVITATION_MAX_WRONG_FACTORS"]:
            _end(invitation, "close", now, reason="wrong_factors")
            task = invitation.task
            notify(users_with_role(Role.NURSE, task.department_id), "followup.invitation_closed",
                   {"id": task.id}, now=now, link=f"/followup/tasks/{task.id}")
        return False
    invitation.wrong_factors = 0
    if invitation.state != InvitationState.OPENED:
        invitation.opened_at = now
        INVITATION_WORKFLOW.apply(invitation, "open", actor=PATIENT, now=now)
    return True


def _proofs() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(derived_key("invitation-proof"), salt="followup-invitation")


def proof_of(invitation: Invitation) -> str:
    """A signed, short-lived mark that this invitation's patient passed the second factor (the page keeps it in a
    cookie limited to the link's path, or a hidden field): no session, nothing stored."""
    return _proofs().dumps([invitation.id, invitation.token_hash[:16]])


def has_proof(invitation: Invitation, proof: str | None) -> bool:
    if not proof:
        return False
    try:
        value = _proofs().loads(proof, max_age=current_app.config["INVITATION_PROOF_MINUTES"] * 60)
    except BadSignature:
        return False
    return value == [invitation.id, invitation.token_hash[:16]] and invitation.opened_at is not None


def _jsonable(answers: dict) -> dict:
    return {name: value.isoformat() if isinstance(value, date) else value for name, value in answers.items()
            if value is not None and value != ""}


def saved_answers(stored: dict | None) -> dict:
    """Stored answers (a draft or the answers sent) back as the schema loads them (dates as dates)."""
    values = dict(stored or {})
    if values.get("died_on"):
        values["died_on"] = date.fromisoformat(values["died_on"])
    return values


def save_draft(invitation: Invitation, answers: dict, *, now: datetime) -> Invitation:
    """Keep what the patient has written so far (a reload shows it again); not audited, it is not an answer."""
    if not usable(invitation, now):
        raise Conflict(_("This link can no longer be used."))
    invitation.draft = _jsonable(answers)
    db.session.flush()
    return invitation


def answer(invitation: Invitation, answers: dict, *, now: datetime) -> Invitation:
    """The patient sends their answers: kept as the call's pending outcome for the nurse to confirm; reminders
    stop. Alarming answers put the call at the top of the queue, open a possible-event prompt and tell the
    department's nurses. 422 names each question still to answer."""
    if not usable(invitation, now):
        raise Conflict(_("This link can no longer be used."))
    task = invitation.task
    protocol = db.session.get(Protocol, task.protocol_id)
    errors = questions.missing(answers, protocol)
    errors.update(questions.date_errors(answers, today=local(now).date(), anchor_day=local(task.plan.anchor_at).date()))
    if errors:
        raise Unprocessable(errors=errors)
    alarms = questions.alarms_of(answers)
    invitation.answers, invitation.draft = _jsonable(answers), None
    invitation.alarms = ",".join(alarms)
    invitation.answered_at, invitation.next_send_at = now, None
    INVITATION_WORKFLOW.apply(invitation, "answer", actor=PATIENT, now=now, audit_detail={"alarms": alarms})
    if alarms:
        task.alarm = True
        db.session.flush()
        audit.record(PATIENT.audit_name, "followup_task.alarm", "followup_task", task.id, now,
                     after={"alarm": True, "alarms": alarms})
        open_prompt(task, now=now, found=alarms)
        notify(users_with_role(Role.NURSE, task.department_id), "followup.alarming_answer",
               {"id": task.id, "alarms": alarms}, now=now, link=f"/followup/tasks/{task.id}")
    return invitation


# The nurse ----------------------------------------------------------------------------------------------------

def confirm(task: Task, *, actor: Actor, now: datetime, expected_version: int | None = None) -> Task:
    """The nurse confirms the patient's online answers in one step: the call is claimed if nobody holds it and
    completed with the answers as its outcome (channel online), judged on time at the moment the patient answered.
    409 when there are no answers to confirm, the call is held by another nurse, or the answers are alarming and
    nobody has reached the patient by another channel since they answered."""
    invitation = invitation_of(task)
    if invitation is None or invitation.state != InvitationState.ANSWERED:
        raise Conflict(_("This call has no online answers to confirm. Call the patient instead."))
    # a call about these answers: one that reached the patient after they answered (not an earlier one)
    reached = db.session.scalar(sa.select(sa.literal(True)).where(
        Attempt.task_id == task.id, Attempt.result == "reached", Attempt.attempted_at >= invitation.answered_at)
        .limit(1))
    if invitation.alarms and not reached:
        raise Conflict(_("The patient's answers are alarming: call the patient first (log the call), then confirm "
                         "the answers or complete the call with what you learned."))
    if expected_version is not None and expected_version != task.version:
        raise Conflict(current_version=task.version)
    if task.state == TaskState.PENDING:
        claim_task(task, actor=actor, now=now)
    protocol = db.session.get(Protocol, task.protocol_id)
    data = questions.outcome_of(saved_answers(invitation.answers), protocol)
    complete_task(task, data, actor=actor, now=now, answered_at=invitation.answered_at)
    audit.record(actor.audit_name, "followup_invitation.confirm", "followup_invitation", invitation.id, now,
                 after={"task_id": task.id, "is_effective": task.is_effective})
    return task
