"""Adverse-event case workflow and the corrective-action workflow (DESIGN §4)."""
from __future__ import annotations

from enum import StrEnum

from flask_babel import gettext as _

from qcflow import reactions
from qcflow.auth.permissions import PERMISSIONS
from qcflow.core.workflow import Transition as T, Workflow


class EventState(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    INFO_REQUESTED = "info_requested"
    TRIAGED = "triaged"
    INVESTIGATING = "investigating"
    ACTIONS_OPEN = "actions_open"
    VERIFYING = "verifying"
    CLOSED = "closed"
    DUPLICATE = "duplicate"
    NOT_REPORTABLE = "not_reportable"
    WITHDRAWN = "withdrawn"


class ActionState(StrEnum):
    OPEN = "open"
    DONE = "done"
    VERIFIED = "verified"
    CANCELLED = "cancelled"


def _required(data: dict, *fields: str) -> str | None:
    missing = [f for f in fields if data.get(f) in (None, "", [])]
    if missing:
        return _("Required for this step: %(fields)s.", fields=", ".join(missing))
    return None


def submit_guard(event, data):
    from qcflow.events.services import missing_required_fields

    missing = missing_required_fields(event)
    return _("Fill in before submitting: %(fields)s.", fields=", ".join(missing)) if missing else None


def message_guard(event, data):
    return _required(data, "message")


def triage_guard(event, data):
    """A report without a category (one from a patient or a family) gets it at triage."""
    needed = ("confirmed_grade", "handling_department_id", "external_severity")
    return _required(data, *needed, *(() if event.category_code else ("category_code",)))


def duplicate_guard(event, data):
    return _required(data, "duplicate_of_id")


def reason_guard(event, data):
    return _required(data, "reason")


def has_live_action(event) -> str | None:
    live = [a for a in event.actions if a.state != ActionState.CANCELLED]
    return None if live else _("Add at least one corrective action first.")


def plan_actions_guard(event, data):
    return _required(data, "rca_cause_domains", "rca_factors") or has_live_action(event)


def discussion_guard(event) -> str | None:
    """Grade I/II and unplanned-reoperation cases close only with a linked case-review record."""
    if event.confirmed_grade in ("I", "II") or event.is_unplanned_reoperation:
        if not reactions.ask("event.has_signed_case_review", event):
            return _("Grade I/II and unplanned-reoperation cases need a linked case-review discussion record before closing.")
    return None


def closes_without_investigation(event) -> str | None:
    if event.confirmed_grade not in ("III", "IV"):
        return _("Only grade III/IV cases can close without an investigation.")
    return discussion_guard(event)


def close_from_triage_guard(event, data):
    if event.confirmed_grade not in ("III", "IV"):
        return closes_without_investigation(event)
    return _required(data, "analysis", "feedback") or discussion_guard(event)


def actions_done(event) -> str | None:
    live = [a for a in event.actions if a.state != ActionState.CANCELLED]
    if not live or any(a.state == ActionState.OPEN for a in live):
        return _("Every corrective action must be done first.")
    return None


def verify_guard(event, data):
    return actions_done(event)


def actions_verified(event) -> str | None:
    live = [a for a in event.actions if a.state != ActionState.CANCELLED]
    if any(a.state != ActionState.VERIFIED for a in live):
        return _("Every corrective action must be verified first.")
    return discussion_guard(event)


def close_after_verification_guard(event, data):
    live = [a for a in event.actions if a.state != ActionState.CANCELLED]
    if any(a.state != ActionState.VERIFIED for a in live):
        return actions_verified(event)
    return _required(data, "improvement_types", "feedback") or discussion_guard(event)


#: (action, state) → the part of the step's guard that no field of its form can satisfy: the case page
#: says it before the form is filled, instead of refusing the filled form.
PRECONDITIONS = {
    ("plan_actions", "investigating"): has_live_action,
    ("verify", "actions_open"): actions_done,
    ("close", "triaged"): closes_without_investigation,
    ("close", "verifying"): actions_verified,
}


def waiting_for(event, action: str) -> str | None:
    """Why `action` cannot be taken on `event` yet, whatever its form says (None: it can)."""
    check = PRECONDITIONS.get((action, event.state))
    return check(event) if check else None


def event_relations(event, actor):
    roles = set()
    if actor.user_id is not None and actor.user_id == event.reporter_user_id:
        roles.add("reporter")
    return roles


S = EventState
QUALITY = PERMISSIONS["handle_cases"]

#: States in which the case is still open (counts, inbox default, deadlines, messages with the reporter).
OPEN_STATES = (S.SUBMITTED, S.INFO_REQUESTED, S.TRIAGED, S.INVESTIGATING, S.ACTIONS_OPEN, S.VERIFYING)
#: States in which the triage deadline runs (the inbox's next deadline is the triage one).
AWAITING_TRIAGE = (S.SUBMITTED, S.INFO_REQUESTED)
#: States in which corrective actions may be added.
TAKES_ACTIONS = (S.INVESTIGATING, S.ACTIONS_OPEN)

EVENT_WORKFLOW = Workflow(
    "event",
    EventState,
    [
        #  action                from                                    to                 roles                              guard
        T("submit",              {S.DRAFT},                              S.SUBMITTED,       {"reporter"},                      submit_guard),
        T("request_info",        {S.SUBMITTED},                          S.INFO_REQUESTED,  QUALITY,                           message_guard),
        T("provide_info",        {S.INFO_REQUESTED},                     S.SUBMITTED,       {"reporter", "receipt_holder"},    message_guard),
        T("triage",              {S.SUBMITTED, S.INFO_REQUESTED},        S.TRIAGED,         QUALITY,                           triage_guard),
        T("mark_duplicate",      {S.SUBMITTED, S.INFO_REQUESTED},        S.DUPLICATE,       QUALITY,                           duplicate_guard),
        T("reject",              {S.SUBMITTED, S.INFO_REQUESTED},        S.NOT_REPORTABLE,  QUALITY,                           reason_guard),
        T("withdraw",            {S.DRAFT, S.SUBMITTED},                 S.WITHDRAWN,       {"reporter"}),
        T("start_investigation", {S.TRIAGED},                            S.INVESTIGATING,   QUALITY),
        T("plan_actions",        {S.INVESTIGATING},                      S.ACTIONS_OPEN,    QUALITY,                           plan_actions_guard),
        T("close",               {S.TRIAGED},                            S.CLOSED,          QUALITY,                           close_from_triage_guard),
        T("verify",              {S.ACTIONS_OPEN},                       S.VERIFYING,       QUALITY,                           verify_guard),
        T("close",               {S.VERIFYING},                          S.CLOSED,          QUALITY,                           close_after_verification_guard),
        T("reopen",              {S.CLOSED},                             S.INVESTIGATING,   QUALITY,                           reason_guard),
    ],
    relations=event_relations,
    initial=S.DRAFT,
    table="adverse_event",
    phases={
        "open": OPEN_STATES,
        "awaiting_triage": AWAITING_TRIAGE,
        "takes_actions": TAKES_ACTIONS,
        # closing after verification records the improvement made (close_after_verification_guard)
        "records_improvement": {S.VERIFYING},
    },
)

#: The status a patient or a family reads on the receipt page, in plain words: a few steps instead of the
#: workflow's states (every state is in exactly one; labels under "plain_status" in events.models).
PLAIN_STATUS = {
    "received": (S.DRAFT, S.SUBMITTED, S.TRIAGED),
    "question": (S.INFO_REQUESTED,),
    "looking_into": (S.INVESTIGATING,),
    "improving": (S.ACTIONS_OPEN, S.VERIFYING),
    "done": (S.CLOSED, S.DUPLICATE, S.NOT_REPORTABLE, S.WITHDRAWN),
}


def plain_status(state: str) -> str:
    """The plain status of a case's state (PLAIN_STATUS)."""
    return next(status for status, states in PLAIN_STATUS.items() if state in states)


A = ActionState

ACTION_WORKFLOW = Workflow(
    "corrective_action",
    ActionState,
    [
        T("complete", {A.OPEN},           A.DONE,      QUALITY | {"owner"}, lambda action, data: _required(data, "evidence")),
        T("verify",   {A.DONE},           A.VERIFIED,  QUALITY),
        T("reopen",   {A.DONE},           A.OPEN,      QUALITY, reason_guard),
        T("cancel",   {A.OPEN, A.DONE},   A.CANCELLED, QUALITY, reason_guard),
    ],
    relations=lambda action, actor: {"owner"} if actor.user_id is not None and (
        actor.user_id == action.owner_user_id
        or ("dept_head" in actor.roles and actor.department_id == action.owner_department_id)) else set(),
    initial=A.OPEN,
    table="corrective_action",
)
