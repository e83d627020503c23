"""Adverse events: intake, receipts, workflow steps, corrective actions, escalation.

Services flush and never commit; callers pass `actor` and `now`.
"""
from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _, lazy_gettext as _l

from qcflow.auth.models import Department, Role, User
from qcflow.auth.permissions import can
from qcflow.core import audit
from qcflow.core.actors import Actor
from qcflow.core.db import new_id
from qcflow.core.errors import Conflict, Forbidden, NotFound, Unprocessable
from qcflow.core.i18n import register_labels
from qcflow.core.schemas import CONTROL_MESSAGE, control_characters_in
from qcflow.core.security import derived_key, keyed_hash
from qcflow.core.time import CLOCK_SLACK, coarse, local, when_it_happened
from qcflow.events import deadlines
from qcflow.events.models import (
    CARE_STAGES,
    HARM,
    PUBLIC_ROLES,
    AdverseEvent,
    CorrectiveAction,
    EventCategory,
    EventEscalation,
    EventMessage,
    IdempotencyKey,
    Mode,
)
from qcflow.events.scrub import own_data, personal_names, scrub
from qcflow.events.workflow import ACTION_WORKFLOW, AWAITING_TRIAGE, EVENT_WORKFLOW, OPEN_STATES, EventState
from qcflow.extensions import db
from qcflow.notify.services import notify, users_with_role

#: Fields a report needs before it can be submitted.
REQUIRED_FIELDS = ("category_code", "reporter_grade", "care_stage", "occurred_at", "discovered_at",
                   "location", "department_id", "description")

#: Fields a report from a patient or a family needs (the public form): no category, grade or care stage,
#: which the quality office sets at triage (triage_guard).
PUBLIC_REQUIRED_FIELDS = ("public_role", "occurred_at", "department_id", "description")

#: Fields a reporter fills in (intake and drafts); nothing else can be set through intake.
REPORT_FIELDS = REQUIRED_FIELDS + ("subcategory_code", "harm", "ncc_merp", "clinical_state", "patient_mrn",
                                   "operation_id", "is_unplanned_reoperation", "immediate_actions",
                                   "wants_feedback")



RECEIPT_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read aloud and typed by hand


def new_receipt_code() -> str:
    """A random receipt code of 26 symbols from a 31-letter alphabet (≈ 129 bits), in groups of 4."""
    raw = "".join(secrets.choice(RECEIPT_ALPHABET) for _ in range(26))
    return "-".join(raw[i:i + 4] for i in range(0, len(raw), 4))


def receipt_code_for(seed: str) -> str:
    """The receipt code of the report filed with a form's one-time token (keyed, so only the server can
    compute it): the same form sent again is answered with the same code instead of a second report."""
    number = int(keyed_hash(derived_key("receipt-code"), seed), 16)  # 256 bits for 26 symbols of 31 (≈ 129)
    raw = ""
    for _ in range(26):
        number, symbol = divmod(number, len(RECEIPT_ALPHABET))
        raw += RECEIPT_ALPHABET[symbol]
    return "-".join(raw[i:i + 4] for i in range(0, len(raw), 4))


def _comparable(value):
    """A report field as compared between a form sent again and the report filed: whitespace runs are one
    space, an empty text is no text, and an unticked box (sent as nothing, stored as false) is no answer."""
    if isinstance(value, str):
        value = " ".join(value.split())
    return None if value == "" or value is False else value


def same_report(event: AdverseEvent, data: dict) -> bool:
    """Whether a form's fields (loaded by ReportIn) are those of the report it filed."""
    data = {"wants_feedback": True, **data}  # as file_report stores them
    return all(_comparable(getattr(event, name)) == _comparable(data.get(name)) for name in REPORT_FIELDS)


def receipt_of_resent_form(seed: str, data: dict) -> tuple[AdverseEvent, str] | None:
    """The report and receipt code filed with an anonymous form's key, when the form sent again is that
    same report; None for other content (whoever holds a used key learns nothing of the first report)
    and for a report filed without a receipt code (nothing to compare it with, nothing to give back)."""
    code = receipt_code_for(seed)
    event = db.session.scalar(sa.select(AdverseEvent).where(AdverseEvent.receipt_hash == receipt_hash(code)))
    if event is None or not same_report(event, data):
        return None
    return event, code


def normalise_receipt_code(code: str) -> str:
    cleaned = "".join(c for c in (code or "").upper() if c.isalnum())[:64]
    return "-".join(cleaned[i:i + 4] for i in range(0, len(cleaned), 4))


def receipt_hash(code: str) -> str:
    """Keyed hash of a receipt code; the same work for well-formed and malformed codes."""
    key = current_app.config.get("RECEIPT_KEY") or derived_key("receipt")
    return keyed_hash(key, normalise_receipt_code(code))



#: What a generated report's origin stands in for: its place and its opening sentence.
ORIGIN_COVERS = ("location", "description")


def missing_required_fields(event: AdverseEvent) -> list[str]:
    covered = ORIGIN_COVERS if event.origin else ()
    required = PUBLIC_REQUIRED_FIELDS if getattr(event, "public_role", None) else REQUIRED_FIELDS
    return [f for f in required if f not in covered and getattr(event, f) in (None, "")]


def check_report_rules(data: dict, now: datetime) -> None:
    """Rules across fields and against reference data (the schema checked the shape)."""
    errors: dict[str, list[str]] = {}
    category = db.session.get(EventCategory, data["category_code"]) if data.get("category_code") else None
    if data.get("category_code") and (category is None or category.parent_code or not category.is_active):
        errors["category_code"] = [_("Unknown category.")]
    if data.get("subcategory_code"):
        sub = db.session.get(EventCategory, data["subcategory_code"])
        if sub is None or sub.parent_code != data.get("category_code"):
            errors["subcategory_code"] = [_("This subcategory does not belong to the category.")]
    if data.get("ncc_merp") and data.get("category_code") != "medication":
        errors["ncc_merp"] = [_("NCC MERP levels apply to medication events only.")]
    for field in ("occurred_at", "discovered_at"):
        if data.get(field) and data[field] > now + CLOCK_SLACK:
            errors[field] = [_("This time is in the future.")]
    if data.get("occurred_at") and data.get("discovered_at") and data["discovered_at"] < data["occurred_at"]:
        errors["discovered_at"] = [_("Discovery cannot be before the event happened.")]
    if data.get("department_id") and db.session.get(Department, data["department_id"]) is None:
        errors["department_id"] = [_("Unknown department.")]
    if data.get("care_stage") and data["care_stage"] not in CARE_STAGES:
        errors["care_stage"] = [_("Unknown care stage.")]
    if errors:
        raise Unprocessable(errors=errors)


def file_report(data: dict, *, mode: str, actor: Actor, now: datetime, submit: bool = True,
                idempotency_key: str | None = None, receipt_seed: str | None = None) -> tuple[AdverseEvent, str | None]:
    """File a report (or save a draft); returns the event and, for anonymous reports, the receipt code.

    Anonymous reports keep no trace of the reporter: no user, and times coarsened to the hour.
    `submitted_at` (in `data`): when a paper report was handed in (submitted_time_of).
    `receipt_seed`: the form's one-time token, from which the receipt code is derived (receipt_code_for),
    so that the same form sent again can be shown the same receipt; without it the code is random.
    `data["origin"]` and `data["found_by"]` (no form or API schema has them) are given only by another domain
    generating the report.
    """
    scope = idempotency_scope(mode, actor)
    if idempotency_key:
        refuse_replayed_key(idempotency_key, scope=scope)
    checked_at = now  # the real time: an event of 10 minutes ago is not "in the future" of the coarsened hour
    data = dict(data)
    given = data.pop("submitted_at", None)
    submitted_at = submitted_time_of(given, data, mode=mode, actor=actor, now=now) if submit else None
    if given is not None and not submit:
        raise Unprocessable(errors={"submitted_at": [_("A draft has no submission time: give it when you submit.")]})
    if mode == Mode.ANONYMOUS:
        actor, now = Actor.anonymous(), coarse(now)
        submitted_at = coarse(submitted_at) if submitted_at else None
        if not submit:
            raise Unprocessable(errors={"mode": [_("Anonymous reports cannot be saved as drafts.")]})
    elif actor.user_id is None:
        raise Unprocessable(errors={"mode": [_("Log in to file a named or confidential report, or choose anonymous.")]})
    check_report_rules(data, checked_at)
    data = {"wants_feedback": True, **data}
    event = AdverseEvent(id=new_id(db.session, AdverseEvent, unordered=mode == Mode.ANONYMOUS), mode=mode,
                         reporter_user_id=None if mode == Mode.ANONYMOUS else actor.user_id, created_at=now,
                         origin=data.get("origin"), found_by=data.get("found_by") or "reporter",
                         **{k: v for k, v in data.items() if k in REPORT_FIELDS})
    code = None
    if mode == Mode.ANONYMOUS:
        code = receipt_code_for(receipt_seed) if receipt_seed else new_receipt_code()
        event.receipt_hash = receipt_hash(code) if event.wants_feedback else None
        if not event.wants_feedback:
            code = None
    db.session.add(event)
    db.session.flush()
    audit.record(actor.audit_name, "event.create", "adverse_event", event.id, now, after={"mode": mode})
    if idempotency_key:
        db.session.add(IdempotencyKey(key_hash=idempotency_hash(scope, idempotency_key),
                                      event_id=None if mode == Mode.ANONYMOUS else event.id, created_at=now))
    if submit:
        submit_report(event, actor=actor if mode != Mode.ANONYMOUS else Actor("anonymous", roles=frozenset({"reporter"})),
                      now=now, submitted_at=submitted_at)
    return event, code


def idempotency_scope(mode: str, actor: Actor) -> str:
    """Whose retries a key protects: the logged-in reporter's (session or token), or for anonymous
    reports one scope shared by every anonymous client, so that no key leads back to a reporter."""
    return "anonymous" if mode == Mode.ANONYMOUS else f"user:{actor.user_id}"


def idempotency_hash(scope: str, key: str) -> str:
    """Keyed hash of a client's Idempotency-Key: the key is never stored, and one client's key is not another's."""
    return keyed_hash(derived_key("idempotency"), f"{scope}\n{key}")


def filed_with_key(key: str | None, *, scope: str) -> IdempotencyKey | None:
    """The record of a report this client already filed with this key, if any."""
    return db.session.get(IdempotencyKey, idempotency_hash(scope, key)) if key else None


def refuse_replayed_key(key: str, *, scope: str) -> None:
    """409 if this client already filed a report with this Idempotency-Key.

    The answer names the report only to the logged-in reporter who filed it; an anonymous replay
    learns that the report was received, not which one (whoever sends the key is not known to be
    its reporter).
    """
    existing = filed_with_key(key, scope=scope)
    if existing is None:
        return
    if existing.event_id is None:
        raise Conflict(_("This report was already received. Its receipt code was shown after the first submission."))
    raise Conflict(_("This report was already received (same Idempotency-Key)."), event_id=existing.event_id)


def purge_idempotency_keys(now: datetime) -> int:
    """Delete Idempotency-Keys older than IDEMPOTENCY_KEY_HOURS (housekeeping); returns how many."""
    cutoff = now - timedelta(hours=current_app.config["IDEMPOTENCY_KEY_HOURS"])
    return db.session.execute(sa.delete(IdempotencyKey).where(IdempotencyKey.created_at < cutoff)).rowcount


def update_draft(event: AdverseEvent, data: dict, *, actor: Actor, now: datetime,
                 expected_version: int | None) -> AdverseEvent:
    """Change a draft; only its reporter can, from the version they read (stale or missing → 409)."""
    if event.state != EventState.DRAFT or event.reporter_user_id != actor.user_id:
        raise Conflict(_("Only your own drafts can be edited."))
    if expected_version != event.version:
        raise Conflict(current_version=event.version)
    check_report_rules(data, now)
    for key, value in data.items():
        if key in REPORT_FIELDS:
            setattr(event, key, value)
    db.session.flush()
    audit.record(actor.audit_name, "event.update_draft", "adverse_event", event.id, now, fields=sorted(data))
    return event


def submitted_time_of(given: datetime | None, report: dict, *, mode: str, actor: Actor, now: datetime) -> datetime:
    """When a report was submitted: `now`, or the time a paper report was handed in, typed in later.

    Its reporter may give it for a named or confidential report; only the quality office for an
    anonymous paper report (which keeps only its hour). Not before the event was discovered (or
    happened), not in the future, not more than BACKDATE_MAX_DAYS back unless the quality office.
    """
    if given is not None and mode == Mode.ANONYMOUS and not can(actor, "handle_cases"):
        raise Unprocessable(errors={"submitted_at": [
            _("Only the quality office gives the submission time of an anonymous paper report.")]})
    return when_it_happened(
        "submitted_at", given, now=now, not_before=report.get("discovered_at") or report.get("occurred_at"),
        too_early=_("A report cannot be submitted before the event was discovered."),
        unlimited=can(actor, "backdate_freely"))


def submit_report(event: AdverseEvent, *, actor: Actor, now: datetime, expected_version: int | None = None,
                  submitted_at: datetime | None = None) -> AdverseEvent:
    """Submit: required fields checked, reference and triage deadline set.

    `submitted_at` (checked by submitted_time_of) is when it was handed in, `now` when it is recorded:
    the triage deadline runs from the recording, when the quality office can first see the report.
    """
    EVENT_WORKFLOW.check(event, "submit", actor=actor, expected_version=expected_version)
    event.submitted_at, event.submitted_recorded_at = submitted_at or now, now
    event.reference = f"AE-{local(event.submitted_at).year}-{event.id:06d}"
    event.triage_due_at = deadlines.triage_due(event.reporter_grade, now)
    # An anonymous report is announced after its hour has ended (announce_anonymous_reports).
    event.is_announced = not event.is_anonymous
    EVENT_WORKFLOW.apply(event, "submit", actor=actor, now=now,
                         audit_detail=audit.happened_detail(event.submitted_at, now))
    if event.is_announced:
        announce(event, now)
    return event


def announce(event: AdverseEvent, now: datetime) -> None:
    """Tell the quality office about a new report."""
    notify(users_with_role(Role.QUALITY), "event.submitted", {"ref": event.reference}, now=now, link=f"/events/{event.id}")


def announce_anonymous_reports(now: datetime) -> int:
    """Announce the anonymous reports submitted in hours that have ended, in random order; return how many.

    Announcing at submission would give the notification (its id, time, the e-mail's arrival) the
    exact order of the report among named ones. Each report is claimed by a conditional update, so a
    second run announces nothing twice.
    """
    table = AdverseEvent.__table__
    ids = list(db.session.scalars(sa.select(AdverseEvent.id).where(
        AdverseEvent.mode == Mode.ANONYMOUS.value, AdverseEvent.is_announced.is_(False),
        AdverseEvent.submitted_recorded_at.is_not(None), AdverseEvent.submitted_recorded_at < coarse(now))))
    secrets.SystemRandom().shuffle(ids)
    announced = 0
    for event_id in ids:
        claimed = db.session.execute(table.update().where(table.c.id == event_id, table.c.is_announced.is_(False))
                                     .values(is_announced=True))
        if claimed.rowcount == 1:
            announce(db.session.get(AdverseEvent, event_id), coarse(now))  # the run's minute would date it too
            announced += 1
    return announced



def _set_fields(event: AdverseEvent, action: str, data: dict, actor: Actor, now: datetime) -> None:
    """The fields each step records (guards have checked they are present)."""
    if action == "triage":
        check_triage_category(event, data, now)
        # A public report's category and care stage are first set here; a staff reporter's may be corrected
        # (the step's audit entry keeps what was given).
        for name in ("category_code", "subcategory_code", "care_stage"):
            if data.get(name):
                setattr(event, name, data[name])
        event.confirmed_grade = data["confirmed_grade"]
        event.handling_department_id = data["handling_department_id"]
        event.external_severity = data["external_severity"]
        if data.get("harm"):
            event.harm = data["harm"]
        event.triaged_at = now
        event.investigation_due_at = deadlines.investigation_due(event.confirmed_grade, now)
        event.external_report_due_at = deadlines.external_report_due(
            event.external_severity, event.discovered_at or event.submitted_at)
    elif action == "mark_duplicate":
        original = db.session.get(AdverseEvent, data["duplicate_of_id"])
        if original is None or original.id == event.id or original.state == EventState.DRAFT:
            raise Unprocessable(errors={"duplicate_of_id": [_("Choose another submitted report.")]})
        event.duplicate_of_id = original.id
    elif action in ("reject", "reopen"):
        if action == "reject":
            event.reject_reason = data["reason"]
            event.feedback = data.get("feedback") or data["reason"]
        event.closed_at = None
    elif action == "plan_actions":
        event.rca_cause_domains = ",".join(data["rca_cause_domains"])
        event.rca_factors = data["rca_factors"]
        event.analysis = data.get("analysis") or event.analysis
    elif action == "close":
        event.analysis = data.get("analysis") or event.analysis
        event.feedback = data["feedback"]
        if data.get("improvement_types"):
            event.improvement_types = ",".join(data["improvement_types"])
        event.closed_at = now
    if action in ("request_info", "provide_info"):
        direction = "to_reporter" if action == "request_info" else "from_reporter"
        add_message(event, direction, data["message"], actor=actor, now=now, audit_it=False)


def transition_event(event: AdverseEvent, action: str, data: dict, *, actor: Actor, now: datetime,
                     expected_version: int | None = None) -> AdverseEvent:
    """Take one workflow step on a case, with the fields that step records."""
    if action == "submit":
        EVENT_WORKFLOW.check(event, action, actor=actor, expected_version=expected_version)  # who, before when
        submitted_at = submitted_time_of(data.get("submitted_at"), {"discovered_at": event.discovered_at,
                                         "occurred_at": event.occurred_at}, mode=event.mode, actor=actor, now=now)
        return submit_report(event, actor=actor, now=now, expected_version=expected_version,
                             submitted_at=submitted_at)
    EVENT_WORKFLOW.check(event, action, actor=actor, data=data, expected_version=expected_version)
    if event.is_anonymous and action == "provide_info":
        now = coarse(now)
    _set_fields(event, action, data, actor, now)
    detail = {k: v for k, v in data.items() if k not in ("message", "version")}
    EVENT_WORKFLOW.apply(event, action, actor=actor, now=now, data=data, audit_detail={"data": detail})
    if action in ("close", "reject") and event.reporter_user_id and event.wants_feedback:
        notify([event.reporter_user_id], "event.feedback", {"ref": event.reference}, now=now, link="/my/reports")
    if action == "request_info" and event.reporter_user_id:
        notify([event.reporter_user_id], "event.question", {"ref": event.reference}, now=now, link="/my/reports")
    return event


def add_message(event: AdverseEvent, direction: str, body: str, *, actor: Actor, now: datetime,
                audit_it: bool = True) -> EventMessage:
    """Add a question to the reporter or a reply from the reporter."""
    body = (body or "").strip()
    if not body:
        raise Unprocessable(errors={"message": [_("Write a message.")]})
    if control_characters_in(body, long_text=True):  # the receipt page's reply comes through no schema
        raise Unprocessable(errors={"message": [str(CONTROL_MESSAGE)]})
    if event.state not in OPEN_STATES:
        raise Conflict(_("The case is no longer open for messages."))
    author = actor.user_id if direction == "to_reporter" else None
    anonymous_reply = event.is_anonymous and direction == "from_reporter"
    at = coarse(now) if anonymous_reply else now
    # Counted in the INSERT: the next place in this case's conversation.
    number = (sa.select(sa.func.coalesce(sa.func.max(EventMessage.number), 0) + 1)
              .where(EventMessage.event_id == event.id).scalar_subquery())
    message = EventMessage(id=new_id(db.session, EventMessage, unordered=anonymous_reply), event_id=event.id,
                           number=number, direction=direction, author_user_id=author, body=body, created_at=at)
    db.session.add(message)
    db.session.flush()
    if audit_it:
        audit.record(actor.audit_name, f"event.message_{direction}", "adverse_event", event.id, at)
    return message


def messages(event: AdverseEvent) -> list[EventMessage]:
    """A case's messages in conversation order (by their number, not their time: replies are kept to the hour)."""
    return list(db.session.scalars(
        sa.select(EventMessage).where(EventMessage.event_id == event.id).order_by(EventMessage.number)))


def reporter_identity(event: AdverseEvent, *, actor: Actor, now: datetime) -> User | None:
    """The reporter of a named or confidential report, for the quality office; confidential reads are audited."""
    if event.reporter_user_id is None or not can(actor, "handle_cases"):
        return None
    if event.mode == Mode.CONFIDENTIAL:
        audit.record(actor.audit_name, "event.read_reporter", "adverse_event", event.id, now)
    return db.session.get(User, event.reporter_user_id)



def find_by_receipt(code: str) -> AdverseEvent:
    """The report a receipt code belongs to; any unknown or malformed code is the same 404."""
    event = db.session.scalar(sa.select(AdverseEvent).where(AdverseEvent.receipt_hash == receipt_hash(code)))
    if event is None:
        raise NotFound(_("No report matches this receipt code. Check it and try again."))
    return event


def reply_by_receipt(code: str, body: str, *, now: datetime, seen: int | None = None) -> AdverseEvent:
    """An anonymous reporter answers: provide_info when asked, otherwise a message on the case.

    `seen`: the number of the last message on the reporter's page. A reply that repeats the reporter's
    latest message, added after that page was shown and with nothing from the quality office after it,
    is that page sent again (a reload, a double tap): it is not added twice. The same words after
    another question ("是" twice) are another answer, and are added.
    """
    event = find_by_receipt(code)
    conversation = messages(event)
    latest = conversation[-1] if conversation else None
    if (seen is not None and latest is not None and latest.direction == "from_reporter" and latest.number > seen
            and latest.body == (body or "").strip()):
        return event
    holder = Actor("anonymous", roles=frozenset({"receipt_holder"}))
    if event.state == EventState.INFO_REQUESTED:
        return transition_event(event, "provide_info", {"message": body}, actor=holder, now=now)
    add_message(event, "from_reporter", body, actor=holder, now=now)
    return event



def add_action(event: AdverseEvent, data: dict, *, actor: Actor, now: datetime) -> CorrectiveAction:
    """Add a corrective action to a case under investigation or with actions open."""
    if not can(actor, "handle_cases"):
        raise Forbidden()
    if not EVENT_WORKFLOW.in_phase(event, "takes_actions"):
        raise Conflict(_("Corrective actions are added while the case is under investigation or has actions open."),
                       allowed_actions=EVENT_WORKFLOW.allowed_actions(EventState(event.state)), state=event.state)
    if db.session.get(Department, data["owner_department_id"]) is None:
        raise Unprocessable(errors={"owner_department_id": [_("Unknown department.")]})
    if data.get("owner_user_id") and db.session.get(User, data["owner_user_id"]) is None:
        raise Unprocessable(errors={"owner_user_id": [_("Unknown user.")]})
    action = CorrectiveAction(event_id=event.id, created_at=now, **data)
    db.session.add(action)
    db.session.flush()
    audit.record(actor.audit_name, "corrective_action.create", "corrective_action", action.id, now,
                 after={"event_id": event.id, "title": action.title, "due_on": str(action.due_on)})
    owners = [action.owner_user_id] if action.owner_user_id else users_with_role(Role.DEPT_HEAD, action.owner_department_id)
    title = scrub(action.title, personal_names([event.patient_mrn]), own=own_data(event))  # read by department heads
    notify(owners, "action.assigned", {"ref": event.reference, "title": title}, now=now, link=f"/events/{event.id}")
    db.session.refresh(event, ["actions"])
    return action


def transition_action(action: CorrectiveAction, name: str, data: dict, *, actor: Actor, now: datetime,
                      expected_version: int | None = None) -> CorrectiveAction:
    """Complete, verify, reopen or cancel a corrective action."""
    ACTION_WORKFLOW.check(action, name, actor=actor, data=data, expected_version=expected_version)
    if name == "complete":
        action.evidence, action.done_at = data["evidence"], now
    elif name == "verify":
        action.verified_at = now
    elif name in ("reopen", "cancel"):
        action.note = data["reason"]
    ACTION_WORKFLOW.apply(action, name, actor=actor, now=now, data=data)
    return action



#: deadline → (due column, states in which it still runs)
DEADLINES = {
    "triage": (AdverseEvent.triage_due_at, AWAITING_TRIAGE),
    "investigation": (AdverseEvent.investigation_due_at, (EventState.TRIAGED, EventState.INVESTIGATING)),
    "external_report": (AdverseEvent.external_report_due_at, tuple(EventState)),
}


def _escalation_targets(event: AdverseEvent, level: int) -> list[int]:
    quality = users_with_role(Role.QUALITY)
    if level == 1:  # the owner: the handling department's head, else the quality office
        owners = users_with_role(Role.DEPT_HEAD, event.handling_department_id) if event.handling_department_id else []
        return owners or quality
    if level == 2:  # the head of the department where it happened
        return users_with_role(Role.DEPT_HEAD, event.department_id) or quality
    return quality


def escalate_breaches(now: datetime) -> int:
    """Escalate each breached deadline once per level (owner → department head → quality office)."""
    ladder = current_app.config["EVENT_ESCALATION_AFTER_HOURS"]
    sent = 0
    for name, (due_column, states) in DEADLINES.items():
        stmt = sa.select(AdverseEvent).where(due_column.is_not(None), due_column <= now,
                                             AdverseEvent.state.in_([s.value for s in states]))
        if name == "external_report":
            stmt = stmt.where(AdverseEvent.external_reported_at.is_(None))
        for event in db.session.scalars(stmt):
            due = getattr(event, due_column.key)
            for level, after_hours in sorted(ladder.items()):
                if now < due + timedelta(hours=after_hours):
                    break
                done = db.session.scalar(sa.select(EventEscalation.id).where(
                    EventEscalation.event_id == event.id, EventEscalation.deadline == name,
                    EventEscalation.level == level))
                if done is not None:
                    continue
                db.session.add(EventEscalation(event_id=event.id, deadline=name, level=level, escalated_at=now))
                db.session.flush()
                audit.record("system:events.escalate", "event.deadline_breached", "adverse_event", event.id, now,
                             deadline=name, level=level, due_at=due.isoformat())
                notify(_escalation_targets(event, level), "event.deadline_breached",
                       {"deadline": name, "ref": event.reference, "level": level}, now=now, link=f"/events/{event.id}")
                sent += 1
    return sent


def record_external_report(event: AdverseEvent, *, actor: Actor, now: datetime, reported_at: datetime,
                           expected_version: int | None) -> AdverseEvent:
    """Record when the case was reported to the health authority, from the version read (stale → 409)."""
    if expected_version != event.version:
        raise Conflict(current_version=event.version)
    if reported_at > now + CLOCK_SLACK:
        raise Unprocessable(errors={"reported_at": [_("This time is in the future.")]})
    if event.discovered_at is not None and reported_at < event.discovered_at:
        raise Unprocessable(errors={"reported_at": [_("The event was reported before it was discovered: check the time.")]})
    event.external_reported_at = reported_at
    db.session.flush()
    audit.record(actor.audit_name, "event.external_reported", "adverse_event", event.id, now,
                 reported_at=reported_at.isoformat())
    return event



# Reports from patients and families (the public form reached from a ward poster's QR code).

#: Fields a patient or a family fills in on the public form; nothing else can be set through it.
PUBLIC_FIELDS = PUBLIC_REQUIRED_FIELDS + ("location", "harm", "immediate_actions", "contact_name", "contact_phone",
                                          "wants_feedback")
#: The kinds of department patients stay in or visit: the public form lists them and the wards' posters
#: are printed for them (never a functional office such as the equipment or the medical affairs office).
PATIENT_DEPARTMENT_KINDS = ("clinical", "nursing")


def patient_departments() -> list[Department]:
    """The active departments patients stay in or visit, as the public form and the posters list them."""
    return list(db.session.scalars(sa.select(Department).where(
        Department.is_active.is_(True), Department.kind.in_(PATIENT_DEPARTMENT_KINDS)).order_by(
        Department.kind, Department.code)))


#: How far back a patient or a family may date what happened.
PUBLIC_REPORT_MAX_AGE_DAYS = 365
#: A phone number as people write it: digits, spaces, hyphens, brackets, a leading +; 7 to 15 digits.
PHONE_SHAPE = re.compile(r"^\+?[0-9][0-9 ()\-]{5,23}$")

register_labels({
    #: Who filed a report: staff, or a patient or a family on the public form (the inbox's filter).
    "reported_by": {"staff": _l("Staff"), "public": _l("Patients and families")},
    #: Harm in plain words, as the public form asks it (the codes are HARM's; "unknown" stores nothing).
    "public_harm": {
        "none": _l("No, nobody was hurt"), "mild": _l("Yes, a little (discomfort, a minor injury)"),
        "moderate": _l("Yes, extra treatment was needed"), "severe": _l("Yes, seriously hurt"),
        "death": _l("The patient died"), "unknown": _l("I don't know"),
    },
})


def check_public_report(data: dict, now: datetime) -> dict:
    """The rules of the public form (the schema checked the shape): what happened is neither in the future
    nor more than a year back, the ward exists, the phone looks like one; returns the fields to store."""
    errors: dict[str, list[str]] = {}
    occurred = data.get("occurred_at")
    if occurred is not None and occurred > now + CLOCK_SLACK and local(occurred).date() <= local(now).date():
        errors["occurred_time"] = [_("This time is later than now: give the time it happened, or leave it empty.")]
    elif occurred is not None and occurred > now + CLOCK_SLACK:
        errors["occurred_on"] = [_("This date is in the future: give the day it happened.")]
    elif occurred is not None and occurred < now - timedelta(days=PUBLIC_REPORT_MAX_AGE_DAYS + 1):
        errors["occurred_on"] = [_("This is more than a year ago: please contact the hospital's patient service "
                                   "office instead.")]
    if data.get("public_role") and data["public_role"] not in PUBLIC_ROLES:
        errors["public_role"] = [_("Choose who you are.")]
    department = db.session.get(Department, data["department_id"]) if data.get("department_id") else None
    if data.get("department_id") and (department is None or not department.is_active
                                      or department.kind not in PATIENT_DEPARTMENT_KINDS):
        errors["department_id"] = [_("Choose a ward or department from the list.")]
    if data.get("harm") and data["harm"] not in HARM:
        errors["harm"] = [_("Choose an answer from the list.")]
    phone = (data.get("contact_phone") or "").strip()
    if phone and (not PHONE_SHAPE.match(phone) or not 7 <= sum(c.isdigit() for c in phone) <= 15):
        errors["contact_phone"] = [_("This does not look like a phone number: write digits only, e.g. 13800138000.")]
    if len((data.get("description") or "").strip()) < 5:
        errors.setdefault("description", [_("Tell us in a few words what happened.")])
    missing = [name for name in PUBLIC_REQUIRED_FIELDS if data.get(name) in (None, "")]
    for name in missing:
        errors.setdefault("occurred_on" if name == "occurred_at" else name, [_("Please answer this question.")])
    if errors:
        raise Unprocessable(errors=errors)
    fields = {k: v for k, v in data.items() if k in PUBLIC_FIELDS}
    for name in ("contact_name", "contact_phone", "location", "immediate_actions"):
        fields[name] = (fields.get(name) or "").strip() or None
    fields["immediate_actions"] = fields["immediate_actions"] or ""
    fields["description"] = fields["description"].strip()
    return {"wants_feedback": True, **fields}


def file_public_report(data: dict, *, now: datetime, receipt_seed: str | None = None,
                       idempotency_key: str | None = None) -> tuple[AdverseEvent, str | None]:
    """File a report from a patient or a family; returns it and its receipt code (None if no answer is wanted).

    Filed like an anonymous staff report (no user, times kept to the hour, a random id, a receipt code derived
    from the form's one-time key): the contact details the person chose to leave are the only identifying
    data, kept in their own two columns and shown only to the quality office (public_contact). Category,
    grade and care stage are left to the quality office's triage.
    """
    scope = idempotency_scope(Mode.ANONYMOUS, Actor.anonymous())
    if idempotency_key:
        refuse_replayed_key(idempotency_key, scope=scope)
    fields = check_public_report(data, now)  # the real time: "today" is not in the future of the hour
    actor, hour = Actor.anonymous(), coarse(now)
    event = AdverseEvent(id=new_id(db.session, AdverseEvent, unordered=True), mode=Mode.ANONYMOUS.value,
                         reporter_user_id=None, created_at=hour, found_by="reporter", **fields)
    code = receipt_code_for(receipt_seed) if receipt_seed else new_receipt_code()
    event.receipt_hash = receipt_hash(code) if event.wants_feedback else None
    code = code if event.wants_feedback else None
    db.session.add(event)
    db.session.flush()
    audit.record(actor.audit_name, "event.create", "adverse_event", event.id, hour,
                 after={"mode": Mode.ANONYMOUS.value, "public_role": event.public_role})
    if idempotency_key:
        db.session.add(IdempotencyKey(key_hash=idempotency_hash(scope, idempotency_key), event_id=None,
                                      created_at=hour))
    submit_report(event, actor=Actor("anonymous", roles=frozenset({"reporter"})), now=hour)
    return event, code


def same_public_report(event: AdverseEvent, data: dict) -> bool:
    """Whether a public form's fields (as check_public_report keeps them) are those of the report it filed."""
    return all(_comparable(getattr(event, name)) == _comparable(data.get(name)) for name in PUBLIC_FIELDS)


def receipt_of_resent_public_form(seed: str, data: dict, now: datetime) -> tuple[AdverseEvent, str] | None:
    """The report and receipt code filed with a public form's key when the form sent again is that same report
    (receipt_of_resent_form for the public form); None otherwise."""
    try:
        fields = check_public_report(data, now)
    except Unprocessable:
        return None
    code = receipt_code_for(seed)
    event = db.session.scalar(sa.select(AdverseEvent).where(AdverseEvent.receipt_hash == receipt_hash(code)))
    if event is None or event.public_role is None or not same_public_report(event, fields):
        return None
    return event, code


def public_contact(event: AdverseEvent, *, actor: Actor, now: datetime) -> dict | None:
    """The contact details a patient or a family left, for the quality office only; each read is audited."""
    if not can(actor, "handle_cases") or not (event.contact_name or event.contact_phone):
        return None
    audit.record(actor.audit_name, "event.read_contact", "adverse_event", event.id, now)
    return {"name": event.contact_name, "phone": event.contact_phone}


def check_triage_category(event: AdverseEvent, data: dict, now: datetime) -> None:
    """At triage, the category (and care stage) a report lacks, as a report's are checked (check_report_rules)."""
    given = {k: data.get(k) for k in ("category_code", "subcategory_code", "care_stage") if data.get(k)}
    if given:
        check_report_rules(given, now)
