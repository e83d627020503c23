"""Read side of events: the inbox list, counts, the reporter's own list, the timeline."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import g
from flask_babel import gettext as _

from qcflow.auth.models import Department
from qcflow.auth.permissions import can, department_for, get_scoped_or_404, scoped, sees_all_departments
from qcflow.core.actors import Actor
from qcflow.core.audit import AnonymousAuditEntry, AuditEntry
from qcflow.core.errors import NotFound
from qcflow.core.i18n import current_language, label, label_list
from qcflow.core.pagination import keyset_page
from qcflow.events.models import AdverseEvent, CorrectiveAction, EventCategory
from qcflow.events.schemas import ActionOut, EventOut
from qcflow.events.scrub import own_data, personal_names, scrub
from qcflow.events.services import DEADLINES, messages
from qcflow.events.workflow import EventState
from qcflow.extensions import db
from qcflow.extraction.queries import facts_text

SCOPE = [AdverseEvent.department_id, AdverseEvent.handling_department_id]


def overdue_clause(now: datetime):
    """A case with any running deadline already passed."""
    parts = []
    for name, (due_column, states) in DEADLINES.items():
        part = sa.and_(due_column.is_not(None), due_column < now, AdverseEvent.state.in_([s.value for s in states]))
        if name == "external_report":
            part = sa.and_(part, AdverseEvent.external_reported_at.is_(None))
        parts.append(part)
    return sa.or_(*parts)


def overdue_ids(event_ids, now: datetime) -> set[int]:
    """Which of these cases are overdue now (the same rule as the inbox filter)."""
    if not event_ids:
        return set()
    return set(db.session.scalars(sa.select(AdverseEvent.id).where(AdverseEvent.id.in_(list(event_ids)),
                                                                  overdue_clause(now))))


def list_events(actor: Actor, *, now: datetime, state=None, grade=None, category=None, department_id=None,
                overdue=None, reported_by=None, cursor=None, limit=50) -> tuple[list[AdverseEvent], int | None]:
    """Cases the actor may see, newest first, keyset-paginated; drafts are never listed.

    Newest first is by submission time, then id: an anonymous report's stored hour places it after the
    named reports of that hour, so a list position tells nothing finer than its hour (ids do not
    follow time). The cursor is the id of the previous page's last case.
    """
    where = [AdverseEvent.state != EventState.DRAFT.value]
    if state:
        where.append(AdverseEvent.state == state)
    if grade:
        where.append(sa.func.coalesce(AdverseEvent.confirmed_grade, AdverseEvent.reporter_grade) == grade)
    if category:
        where.append(AdverseEvent.category_code == category)
    if department_id:
        department_id = department_for(actor, department_id, field="department_id")
        where.append(sa.or_(AdverseEvent.department_id == department_id,
                            AdverseEvent.handling_department_id == department_id))
    if reported_by == "public":
        where.append(AdverseEvent.public_role.is_not(None))
    elif reported_by == "staff":
        where.append(AdverseEvent.public_role.is_(None))
    if overdue is not None:
        clause = overdue_clause(now)
        where.append(clause if overdue else sa.not_(clause))
    if cursor:
        after = db.session.scalar(sa.select(AdverseEvent.submitted_at).where(AdverseEvent.id == cursor))
        if after is None:
            return [], None
        where.append(sa.tuple_(AdverseEvent.submitted_at, AdverseEvent.id) < sa.tuple_(after, cursor))
    newest = (AdverseEvent.submitted_at.desc(), AdverseEvent.id.desc())

    def read(n: int):
        if sees_all_departments(actor):
            stmt = scoped(sa.select(AdverseEvent), SCOPE, actor).where(*where)
        else:
            # A department sees cases it reported or handles. One newest-first page per scope column, then
            # the page of their union: an OR over the two columns makes SQLite collect every case of the
            # department from both indexes and sort them all, to keep 50.
            pages = [scoped(sa.select(AdverseEvent.id), [column], actor).where(*where).order_by(*newest).limit(n)
                     .subquery() for column in SCOPE]
            ids = sa.union(*(sa.select(page.c.id) for page in pages))
            stmt = sa.select(AdverseEvent).where(AdverseEvent.id.in_(ids))
        return db.session.scalars(stmt.order_by(*newest).limit(n))

    return keyset_page(read, limit, key=lambda event: event.id)


def state_counts(actor: Actor, now: datetime) -> dict:
    """Counts by state and of overdue cases, for the inbox header."""
    base = scoped(sa.select(AdverseEvent.state, sa.func.count()), SCOPE, actor).where(
        AdverseEvent.state != EventState.DRAFT.value)
    counts = dict(db.session.execute(base.group_by(AdverseEvent.state)).all())
    overdue = db.session.scalar(scoped(sa.select(sa.func.count()).select_from(AdverseEvent), SCOPE, actor)
                                .where(overdue_clause(now)))
    return {"by_state": counts, "overdue": overdue}


def my_reports(user_id: int) -> list[AdverseEvent]:
    """A reporter's own named and confidential reports and drafts."""
    return list(db.session.scalars(sa.select(AdverseEvent).where(AdverseEvent.reporter_user_id == user_id)
                                   .order_by(AdverseEvent.id.desc())))


@dataclass(frozen=True)
class HourEntry:
    """An anonymous-chain entry as the timeline shows it: the span of its stored hour, like the message card
    ("12:35–13:00" after a question of 12:35), never a finer time than the one stored."""
    at: datetime
    until: datetime
    action: str
    actor: str
    #: A reply placed at the message it follows: shown after the entries of that moment.
    follows: bool = False
    chain: str = AnonymousAuditEntry.chain


def timeline(event: AdverseEvent) -> list[AuditEntry | HourEntry]:
    """The case's audit entries in time order, from both chains (an anonymous reporter's are in their own).

    An anonymous reporter's entries are stored to the hour only: each shows as its hour's span, and a reply
    starts at the message it follows in the conversation (dialogue), so it comes after the question it
    answers, not at the start of its hour before it.
    """
    named = list(db.session.scalars(sa.select(AuditEntry).where(
        AuditEntry.object_type == "adverse_event", AuditEntry.object_id == str(event.id)).order_by(AuditEntry.seq)))
    anonymous = list(db.session.scalars(sa.select(AnonymousAuditEntry).where(
        AnonymousAuditEntry.object_type == "adverse_event", AnonymousAuditEntry.object_id == str(event.id))
        .order_by(AnonymousAuditEntry.seq)))
    replies = [entry for entry in anonymous if entry.action in REPLY_ACTIONS]
    spans = [m["shown_from"] for m in dialogue(event) if m["shown_until"]] if replies else []
    placed = {id(entry): start for entry, start in zip(replies, spans)}
    shown = [HourEntry(placed.get(id(entry), entry.at), entry.at + timedelta(hours=1), entry.action,
                       reporter_actor(event) if entry.actor == "anonymous" else entry.actor,
                       follows=id(entry) in placed) for entry in anonymous]
    return sorted(named + shown, key=lambda entry: (entry.at, isinstance(entry, HourEntry) and entry.follows))


def reporter_actor(event: AdverseEvent) -> str:
    """Who the anonymous chain's reporter of this case is, as the timeline names them: a patient or family
    member for a report from the public form (never "anonymous reporter"), else the anonymous reporter."""
    return "public" if event.public_role else "anonymous"


#: Audit actions of a reporter's reply (with or without a pending question).
REPLY_ACTIONS = ("event.provide_info", "event.message_from_reporter")


def dialogue(event: AdverseEvent, names: list[str] | None = None) -> list[dict]:
    """The case's messages in conversation order, each with the time to show.

    An anonymous reporter's reply is stored to the hour (decisions.md): it is shown as the span from
    the message before it (or the hour's start) to the hour's end, e.g. 12:35–13:00 after a question
    of 12:35, never as 12:00. `names`: scrub the bodies of these personal names (the reporter's pages).
    """
    shown, previous = [], None
    for m in messages(event):
        start, until = m.created_at, None
        if event.is_anonymous and m.direction == "from_reporter":
            until = m.created_at + timedelta(hours=1)
            if previous is not None and previous > start:
                start = min(previous, until)
        previous = start
        shown.append({"id": m.id, "number": m.number, "direction": m.direction, "created_at": m.created_at,
                      "body": scrub(m.body, names) if names is not None else m.body,
                      "shown_from": start, "shown_until": until})
    return shown


def load_event(event_id: int, actor: Actor) -> AdverseEvent:
    """A case for this actor: their own report, or one in their departments (others are 404)."""
    event = db.session.get(AdverseEvent, event_id)
    if event is not None and actor.user_id is not None and event.reporter_user_id == actor.user_id:
        return event
    if not can(actor, "department_cases"):
        raise NotFound()
    return get_scoped_or_404(AdverseEvent, event_id, actor)


def load_own_draft(event_id: int, actor: Actor) -> AdverseEvent:
    """The actor's own draft (anything else is not found)."""
    event = db.session.get(AdverseEvent, event_id)
    if event is None or actor.user_id is None or event.reporter_user_id != actor.user_id or event.state != "draft":
        raise NotFound()
    return event


def load_action(event_id: int, action_id: int, actor: Actor) -> CorrectiveAction:
    """A corrective action of a visible case, or one the actor's department owns."""
    action = db.session.get(CorrectiveAction, action_id)
    if action is None or action.event_id != event_id:
        raise NotFound()
    if action.owner_user_id == actor.user_id or action.owner_department_id == actor.department_id:
        return action
    load_event(event_id, actor)
    return action


#: Every free-text field of a case: scrubbed wherever a case is shown outside the quality office.
FREE_TEXT = ("description", "immediate_actions", "location", "clinical_state", "analysis", "rca_factors",
             "feedback", "reject_reason")
#: Free text of a corrective action.
ACTION_TEXT = ("title", "evidence", "note")


def sees_raw_text(actor: Actor) -> bool:
    """Only the quality office reads free text as written."""
    return can(actor, "handle_cases")


def scrub_action(action: CorrectiveAction, names: list[str]) -> dict:
    """A corrective action's fields, its free text scrubbed (its case's own data too)."""
    data = {name: getattr(action, name) for name in (*ActionOut._declared_fields, *ACTION_TEXT)}
    own = own_data(action.event)
    for field in ACTION_TEXT:
        if data[field]:
            data[field] = scrub(data[field], names, own=own)
    return data


def present_action(action: CorrectiveAction, actor: Actor) -> CorrectiveAction | dict:
    """A corrective action as this actor may see it (outside the quality office: scrubbed)."""
    if sees_raw_text(actor):
        return action
    return scrub_action(action, personal_names([action.event.patient_mrn]))


def present_all(events, actor: Actor) -> list[dict]:
    """`present` for a page of cases: the names to scrub are read once for the page, not once per case."""
    names = None if sees_raw_text(actor) else personal_names(e.patient_mrn for e in events)
    return [present(event, actor, names) for event in events]


def reports_about(mrn: str | None, start: datetime, end: datetime, actor: Actor) -> list[AdverseEvent]:
    """The reports about a patient's harm that happened between `start` and `end`, as the actor may read them
    (a head: their department's, as the case list scopes them): a confirmed trigger firing is linked to one of
    them rather than filed twice. Drafts, withdrawn, duplicate and not-reportable reports, and anonymous
    reports not yet announced (their hour has not ended), are not among them."""
    if not mrn:
        return []
    stmt = sa.select(AdverseEvent).where(
        AdverseEvent.patient_mrn == mrn, AdverseEvent.occurred_at >= start, AdverseEvent.occurred_at <= end,
        AdverseEvent.is_announced.is_(True),
        AdverseEvent.state.not_in([EventState.DRAFT.value, EventState.WITHDRAWN.value, EventState.DUPLICATE.value,
                                   EventState.NOT_REPORTABLE.value]))
    return list(db.session.scalars(scoped(stmt, SCOPE, actor).order_by(AdverseEvent.occurred_at, AdverseEvent.id)))


def with_origin(origin: dict | None, location: str | None, description: str | None) -> tuple[str | None, str]:
    """A report's place and description as read: a generated report's (`AdverseEvent.origin`) place and opening
    sentence are written in the reader's language, before the words people stored."""
    if origin and origin.get("kind") == "trigger":
        name = origin["name_en"] if current_language() == "en" else origin["name"]
        sentence = _("Found in the HIS data by the trigger “%(name)s” and confirmed by a reviewer: %(facts)s.",
                     name=name, facts=_("; ").join(facts_text(origin["facts"])))
        return location, " ".join(p for p in (sentence, description) if p)
    if not origin or origin.get("kind") != "followup_call":
        return location, description or ""
    sentence = _("Found at follow-up call %(n)d (%(pathway)s, due %(due)s): %(findings)s.",
                 n=origin["call"], pathway=label("fu_pathway", origin["pathway"]), due=origin["due_on"],
                 findings=label_list("fu_item", origin["findings"]))
    return location or _("After discharge (found at follow-up)"), " ".join(p for p in (sentence, description) if p)


def present(event: AdverseEvent, actor: Actor, names: list[str] | None = None) -> dict:
    """The case as this actor may see it: free text scrubbed of personal data outside the quality office, the
    contact details and record number the case itself holds included (they are not shown there either).

    `names`: personal_names() of the case, when the caller has already read them (present_all).
    """
    data = {name: getattr(event, name) for name in EventOut._declared_fields if hasattr(event, name)}
    data["location"], data["description"] = with_origin(event.origin, data.get("location"), data.get("description"))
    if not sees_raw_text(actor):
        names = personal_names([event.patient_mrn]) if names is None else names
        own = own_data(event)
        for field in FREE_TEXT:
            if data.get(field):
                data[field] = scrub(data[field], names, own=own)
        data["actions"] = [scrub_action(action, names) for action in event.actions]
        data["patient_mrn"] = None
    return data


def file_names(event: AdverseEvent, attachments, actor: Actor) -> dict[int, str]:
    """The names the case's files came with, as this reader may see them: outside the quality office scrubbed like
    the case's text (a photo may be named after the patient)."""
    named = [f for f in attachments if f.original_name]
    if can(actor, "handle_cases"):
        return {f.id: f.original_name for f in named}
    names, own = personal_names([event.patient_mrn]), own_data(event)
    return {f.id: scrub(f.original_name, names, own=own) for f in named}


def present_receipt(event: AdverseEvent) -> dict:
    """What the reporter reads (receipt, my reports): the messages and, once decided, the feedback, scrubbed."""
    names = personal_names([event.patient_mrn])
    feedback = event.feedback if event.state in ("closed", "not_reportable") else None
    return {"messages": dialogue(event, names), "feedback": scrub(feedback, names) if feedback else None}


def category_label(code: str | None) -> str:
    """A category's or subcategory's name in the reader's language (the taxonomy is a table, so its
    names are read from it, once per request)."""
    if not code:
        return ""
    names = g.get("event_category_names")
    if names is None:
        language = current_language()
        names = g.event_category_names = {c.code: c.label(language)
                                          for c in db.session.scalars(sa.select(EventCategory))}
    return names.get(code, code)


def department_label(department_id: int | None) -> str:
    """A department's name in the reader's language."""
    department = db.session.get(Department, department_id) if department_id else None
    return department.label(current_language()) if department else ""


def reference_of(event_id: int | None) -> str | None:
    """The reference of another case (the original of a duplicate)."""
    return db.session.scalar(sa.select(AdverseEvent.reference).where(AdverseEvent.id == event_id)) if event_id else None
