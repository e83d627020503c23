"""Writing, changing and publishing lessons: the quality office writes one from a closed case, the scrubber
checks it at every save, another member of the quality office publishes it (LESSON_WORKFLOW)."""
from __future__ import annotations

import difflib
import re
from datetime import datetime

import sqlalchemy as sa
from flask_babel import gettext as _, lazy_gettext as _l

from qcflow.auth.models import Department, User
from qcflow.auth.permissions import can
from qcflow.core import audit
from qcflow.core.actors import Actor
from qcflow.core.errors import Conflict, Forbidden, Unprocessable
from qcflow.core.i18n import register_labels
from qcflow.events.lessons import search
from qcflow.events.lessons.models import Lesson
from qcflow.events.lessons.workflow import LESSON_WORKFLOW, LessonState
from qcflow.events.models import AdverseEvent, EventCategory
from qcflow.events.scrub import PLACEHOLDERS, Own, own_data, personal_names, scrub
from qcflow.events.workflow import EventState
from qcflow.extensions import db

#: The lesson's texts, in the order the page shows them (the scrubber reads each).
TEXT_FIELDS = ("title", "what_happened", "why", "what_changed")
FIELDS = (*TEXT_FIELDS, "category_code", "department_id")

register_labels({"lesson_field": {"title": _l("Title"), "what_happened": _l("What happened"), "why": _l("Why"),
                                  "what_changed": _l("What changed")}})


def case_data(event: AdverseEvent) -> tuple[list[str], Own]:
    """What the scrubber removes from a lesson of this case: the names of staff, users and the case's patient,
    and the case's own data (events.scrub.own_data: the reporter's contact, the patient's record number) with the
    case's reference, which a lesson does not name either."""
    return personal_names([event.patient_mrn]), own_data(event, reference=True)


#: Splits a scrubbed text around its placeholders, keeping each whole.
_PLACEHOLDER = re.compile("(" + "|".join(map(re.escape, PLACEHOLDERS)) + ")")


def findings(lesson: Lesson, event: AdverseEvent) -> list[dict]:
    """What the scrubber would replace in each text of the lesson: the words found and their replacement."""
    names, own = case_data(event)
    found = []
    for field in TEXT_FIELDS:
        text = getattr(lesson, field) or ""
        clean = scrub(text, names, own=own)
        if clean == text:
            continue
        # Each placeholder is one token, so "12床" → "[床号]" is one finding, not "12" → "[" and "" → "号]".
        tokens = [piece for part in _PLACEHOLDER.split(clean) for piece in ([part] if part in PLACEHOLDERS else part)]
        matcher = difflib.SequenceMatcher(None, list(text), tokens, autojunk=False)
        for op, i1, i2, j1, j2 in matcher.get_opcodes():
            if op != "equal" and text[i1:i2].strip():
                found.append({"field": field, "found": text[i1:i2], "replacement": "".join(tokens[j1:j2])})
        if not any(f["field"] == field for f in found):  # only invisible characters removed
            found.append({"field": field, "found": text, "replacement": clean})
    return found


def suggestion(lesson: Lesson, field: str) -> str:
    """The text of `field` with everything the scrubber finds replaced (the author may take it)."""
    event = db.session.get(AdverseEvent, lesson.event_id)
    names, own = case_data(event)
    return scrub(getattr(lesson, field) or "", names, own=own)


def _check_choices(data: dict) -> None:
    errors = {}
    if data.get("category_code") and db.session.get(EventCategory, data["category_code"]) is None:
        errors["category_code"] = [_("No such category.")]
    if data.get("department_id") and db.session.get(Department, data["department_id"]) is None:
        errors["department_id"] = [_("No such department.")]
    for field in TEXT_FIELDS:
        if field in data and not (data[field] or "").strip():
            errors[field] = [_("This field is required.")]
    if errors:
        raise Unprocessable(errors=errors)


def _save(lesson: Lesson, event: AdverseEvent, now: datetime) -> None:
    lesson.scrub_findings = findings(lesson, event)
    lesson.updated_at = now
    db.session.flush()
    search.reindex(lesson)


def lesson_of(event: AdverseEvent) -> Lesson | None:
    return db.session.scalar(sa.select(Lesson).where(Lesson.event_id == event.id))


def may_write(event: AdverseEvent) -> bool:
    """Whether a lesson may be written from the case now: once it is closed."""
    return event.state == EventState.CLOSED


def write(event: AdverseEvent, data: dict, *, actor: Actor, now: datetime) -> Lesson:
    """Write the lesson of a closed case (one per case), as a draft of the quality office."""
    if not can(actor, "handle_cases"):
        raise Forbidden()
    if not may_write(event):
        raise Conflict(_("A lesson is written once the case is closed."))
    existing = lesson_of(event)
    if existing is not None:
        raise Conflict(_("This case already has a lesson: open it to change it."), lesson_id=existing.id)
    data = {key: value for key, value in data.items() if key in FIELDS}
    data.setdefault("category_code", event.category_code)
    data.setdefault("department_id", event.department_id)
    _check_choices({field: data.get(field) for field in TEXT_FIELDS} | data)
    lesson = Lesson(event_id=event.id, state=LessonState.DRAFT.value, author_user_id=actor.user_id, created_at=now,
                    updated_at=now, **data)
    db.session.add(lesson)
    _save(lesson, event, now)
    audit.record(actor.audit_name, "event_lesson.write", "event_lesson", lesson.id, now, event_id=event.id,
                 findings=len(lesson.scrub_findings))
    return lesson


def may_edit(lesson: Lesson, actor: Actor) -> bool:
    """Whether this reader may change the lesson's text now: its author, while it is a draft."""
    return LESSON_WORKFLOW.in_phase(lesson, "editable") and is_author(lesson, actor)


def is_author(lesson: Lesson, actor: Actor) -> bool:
    return actor.user_id is not None and actor.user_id == lesson.author_user_id


def check_author(lesson: Lesson, actor: Actor) -> None:
    """Only the author changes the text (the reviewer sends it back with a reason), so whoever publishes a
    lesson has written none of it: four eyes read every word."""
    if not can(actor, "handle_cases") or not is_author(lesson, actor):
        raise Forbidden(_("Only the lesson's author changes its text. Another member of the quality office reads "
                          "it and sends it back with a reason."))


def update(lesson: Lesson, data: dict, *, actor: Actor, now: datetime, expected_version: int | None) -> Lesson:
    """Change a draft lesson from the version the author read (stale → 409); the scrubber reads it again."""
    check_author(lesson, actor)
    if not LESSON_WORKFLOW.in_phase(lesson, "editable"):
        raise Conflict(_("Only a draft lesson can be changed: send it back to its author first."))
    if expected_version != lesson.version:
        raise Conflict(current_version=lesson.version)
    data = {key: value for key, value in data.items() if key in FIELDS}
    _check_choices(data)
    for key, value in data.items():
        setattr(lesson, key, value)
    _save(lesson, db.session.get(AdverseEvent, lesson.event_id), now)
    audit.record(actor.audit_name, "event_lesson.update", "event_lesson", lesson.id, now, fields=sorted(data),
                 findings=len(lesson.scrub_findings))
    return lesson


def transition(lesson: Lesson, action: str, data: dict, *, actor: Actor, now: datetime,
               expected_version: int | None = None) -> Lesson:
    """Take a step of the lesson's workflow (the engine checks who may and audits it)."""
    if action in ("submit_review", "publish"):
        # The scrubber reads it again: a name may have come into its lists since the lesson was saved.
        current = findings(lesson, db.session.get(AdverseEvent, lesson.event_id))
        if current != (lesson.scrub_findings or []):
            lesson.scrub_findings = current
    LESSON_WORKFLOW.check(lesson, action, actor=actor, data=data, expected_version=expected_version)
    if action == "publish" and lesson.scrub_findings:
        raise Conflict(_("The lesson still holds what could identify a person: send it back to its author."))
    if action == "publish":
        lesson.published_at, lesson.reviewer_user_id, lesson.note = now, actor.user_id, None
    elif action == "withdraw":
        lesson.withdrawn_at, lesson.note = now, data["reason"].strip()
    elif action == "return_draft":
        lesson.note = data["reason"].strip()
    lesson.updated_at = now
    LESSON_WORKFLOW.apply(lesson, action, actor=actor, now=now, data=data, expected_version=expected_version)
    return lesson


def author_names(lessons) -> dict[int, str]:
    """Display names of the lessons' authors and reviewers (the quality office's pages)."""
    ids = {i for lesson in lessons for i in (lesson.author_user_id, lesson.reviewer_user_id) if i}
    return dict(db.session.execute(sa.select(User.id, User.display_name).where(User.id.in_(ids))).all()) if ids else {}
