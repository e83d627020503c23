"""Adverse events over the JSON API (DESIGN §10)."""
from __future__ import annotations

from flask import request
from flask_login import current_user
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException

from qcflow.auth.permissions import allowed, authenticated, current_actor, public
from qcflow.core.api import Blueprint, created_links
from qcflow.core.time import now
from qcflow.core.web import session_free
from qcflow.events import queries, services
from qcflow.events.models import Mode
from qcflow.events.queries import load_action, load_event, load_own_draft, present
from qcflow.events.receipts import find_receipt
from qcflow.events.schemas import (
    ActionIn,
    ActionOut,
    ActionTransitionIn,
    DraftIn,
    EventListArgs,
    EventOut,
    EventPage,
    ExternalReportIn,
    MessageIn,
    MessageOut,
    ReceiptLookupIn,
    ReceiptOut,
    ReceiptReplyIn,
    ReportCreated,
    ReportIn,
    TransitionIn,
)
from qcflow.extensions import db

blp = Blueprint("events_api", __name__, url_prefix="/api/v1", description="Adverse events (不良事件)")


def names_its_reporter(request) -> bool:
    """A named or confidential report over the API needs the login; any other one opens no session.
    Read from the body before the session would be opened."""
    if (request.content_length or 0) > (request.max_content_length or 1 << 20):
        return False
    try:
        body = request.get_json(silent=True)
    except (HTTPException, RecursionError):  # refused with its own message once the request runs
        return False
    return isinstance(body, dict) and body.get("mode") in (Mode.NAMED, Mode.CONFIDENTIAL)


@blp.post("/events")
@public
@session_free(unless=names_its_reporter)
@blp.arguments(ReportIn)
@blp.response(201, ReportCreated)
@blp.alt_response(409, description="Same Idempotency-Key already used")
@blp.doc(**created_links(
    GetEvent=("get", "/api/v1/events/{event_id}", {"event_id": "$response.body#/id"}),
    StepEvent=("post", "/api/v1/events/{event_id}/transitions", {"event_id": "$response.body#/id"}),
    AddAction=("post", "/api/v1/events/{event_id}/actions", {"event_id": "$response.body#/id"}),
    AskReporter=("post", "/api/v1/events/{event_id}/messages", {"event_id": "$response.body#/id"}),
))
@blp.alt_response(422, description="Missing or invalid fields, each named")
def file_event(data):
    """File an adverse-event report; without credentials it is anonymous and returns a receipt code once.

    Send `Idempotency-Key` to make client retries safe.
    """
    mode, submit = data.pop("mode"), data.pop("submit")
    key = request.headers.get("Idempotency-Key")
    try:
        event, code = services.file_report(data, mode=mode, actor=current_actor(), now=now(), submit=submit,
                                           idempotency_key=key)
        db.session.flush()  # a simultaneous retry's key surfaces here, where it is answered as a retry
        body = {"id": event.id, "reference": event.reference, "state": event.state, "version": event.version}
    except IntegrityError:
        # A simultaneous retry with the same key won the race: answer as a sequential retry is answered (R12).
        db.session.rollback()
        if key:
            services.refuse_replayed_key(key, scope=services.idempotency_scope(mode, current_actor()))
        raise
    if code:
        body["receipt_code"] = code
    return body


@blp.patch("/events/<int:event_id>")
@authenticated
@blp.arguments(DraftIn)
@blp.response(200, EventOut)
@blp.alt_response(404, description="Not one of your drafts")
@blp.alt_response(409, description="Stale version: the draft changed since you read it")
def update_draft(data, event_id):
    """Change one of my drafts, giving the `version` you read (submit it with the `submit` transition)."""
    actor = current_actor()
    version = data.pop("version")
    event = services.update_draft(load_own_draft(event_id, actor), data, actor=actor, now=now(),
                                  expected_version=version)
    return present(event, actor)


@blp.get("/events")
@allowed("department_cases")
@blp.arguments(EventListArgs, location="query")
@blp.response(200, EventPage)
def list_events(args):
    """List cases (quality office: all; department heads: their department), newest first."""
    args.pop("lang", None)
    actor = current_actor()
    items, next_cursor = queries.list_events(actor, now=now(), **args)
    return {"items": queries.present_all(items, actor), "next_cursor": next_cursor}


@blp.get("/events/mine")
@authenticated
@blp.response(200, EventPage)
def my_events():
    """List my own named and confidential reports, with their feedback."""
    actor = current_actor()
    return {"items": queries.present_all(queries.my_reports(current_user.id), actor), "next_cursor": None}


@blp.get("/events/<int:event_id>")
@allowed("department_cases")
@blp.response(200, EventOut)
@blp.alt_response(404, description="No such case in your departments")
def get_event(event_id):
    """Show one case (never who reported it)."""
    actor = current_actor()
    return present(load_event(event_id, actor), actor)


@blp.post("/events/<int:event_id>/transitions")
@authenticated
@blp.arguments(TransitionIn)
@blp.response(200, EventOut)
@blp.alt_response(403, description="Your role may not take this step")
@blp.alt_response(409, description="Not possible in the current state (allowed_actions listed) or stale version")
@blp.alt_response(422, description="The step's required fields are missing")
def transition(data, event_id):
    """Take a workflow step: submit, request_info, provide_info, triage, mark_duplicate, reject, withdraw,
    start_investigation, plan_actions, verify, close, reopen."""
    actor = current_actor()
    event = load_event(event_id, actor)
    action, version = data.pop("action"), data.pop("version")
    services.transition_event(event, action, data, actor=actor, now=now(), expected_version=version)
    return present(event, actor)


@blp.post("/events/<int:event_id>/actions")
@allowed("handle_cases")
@blp.arguments(ActionIn)
@blp.response(201, ActionOut)
@blp.doc(**created_links(StepAction=("post", "/api/v1/events/{event_id}/actions/{action_id}/transitions",
                                     {"event_id": "$request.path.event_id", "action_id": "$response.body#/id"})))
def add_action(data, event_id):
    """Add a corrective action (owner department, due date)."""
    actor = current_actor()
    return services.add_action(load_event(event_id, actor), data, actor=actor, now=now())


@blp.post("/events/<int:event_id>/actions/<int:action_id>/transitions")
@authenticated
@blp.arguments(ActionTransitionIn)
@blp.response(200, ActionOut)
def transition_action(data, event_id, action_id):
    """Complete (owner), verify, reopen or cancel a corrective action."""
    actor = current_actor()
    action = load_action(event_id, action_id, actor)
    name, version = data.pop("action"), data.pop("version")
    services.transition_action(action, name, data, actor=actor, now=now(), expected_version=version)
    return queries.present_action(action, actor)


@blp.post("/events/<int:event_id>/messages")
@allowed("handle_cases")
@blp.arguments(MessageIn)
@blp.response(201, MessageOut)
def post_message(data, event_id):
    """Send a question to the reporter (by receipt for anonymous reports)."""
    actor = current_actor()
    return services.add_message(load_event(event_id, actor), "to_reporter", data["message"], actor=actor, now=now())


@blp.post("/events/<int:event_id>/external-report")
@allowed("handle_cases")
@blp.arguments(ExternalReportIn)
@blp.response(200, EventOut)
@blp.alt_response(409, description="Stale version")
def external_report(data, event_id):
    """Record when the case was reported to the health authority (stops that deadline), from the case's `version`."""
    actor = current_actor()
    event = services.record_external_report(load_event(event_id, actor), actor=actor, now=now(),
                                            reported_at=data["reported_at"], expected_version=data["version"])
    return present(event, actor)


def receipt_view(event) -> dict:
    return {"reference": event.reference, "state": event.state, **queries.present_receipt(event)}


@blp.post("/receipts/lookup")
@public
@session_free
@blp.arguments(ReceiptLookupIn)
@blp.response(200, ReceiptOut)
@blp.alt_response(404, description="Unknown or malformed code (indistinguishable)")
@blp.alt_response(429, description="Too many lookups")
def receipt_lookup(data):
    """Read a report's status, questions and feedback with its receipt code."""
    return receipt_view(find_receipt(data["receipt_code"]))


@blp.post("/receipts/reply")
@public
@session_free
@blp.arguments(ReceiptReplyIn)
@blp.response(200, ReceiptOut)
@blp.alt_response(404, description="Unknown or malformed code")
def receipt_reply(data):
    """Answer the quality office's question anonymously, with the receipt code."""
    event = find_receipt(data["receipt_code"], data["message"], at=now())
    return receipt_view(event)
