"""Read side of the lesson library: the published lessons for every member of staff, the quality office's
queue of drafts and lessons in review, one lesson, and the lessons of a month for the bulletin."""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from flask_babel import gettext as _

from qcflow.auth.models import Department
from qcflow.auth.permissions import can
from qcflow.core.actors import Actor
from qcflow.core.errors import NotFound, Unprocessable
from qcflow.core.pagination import keyset_page
from qcflow.events.lessons import search
from qcflow.events.lessons.models import Lesson
from qcflow.events.lessons.workflow import LESSON_WORKFLOW, LessonState
from qcflow.events.models import AdverseEvent
from qcflow.events.queries import load_event
from qcflow.extensions import db

#: The library's order: newest published first.
NEWEST = (Lesson.published_at.desc(), Lesson.id.desc())


def parse_query(q: str | None) -> list[str]:
    """The terms of a search, or 422 when it is too long to be a search."""
    q = q or ""
    terms = search.query_terms(q)
    if len(q) > search.MAX_QUERY_LENGTH or len(terms) > search.MAX_QUERY_TERMS:
        raise Unprocessable(errors={"q": [_("Search with a few words (at most %(n)d characters).",
                                            n=search.MAX_QUERY_LENGTH)]})
    return terms


def library(*, q: str | None = None, category: str | None = None, department_id: int | None = None,
            cursor: int | None = None, limit: int = 20) -> tuple[list[Lesson], int | None]:
    """Published lessons, newest first, keyset-paginated: those holding every term of `q`, of a category (or
    its subcategories' parent) and a department. Every member of staff reads the whole library."""
    where = [Lesson.state == LessonState.PUBLISHED.value]
    matching = search.matching(parse_query(q))
    if matching is not None:
        where.append(Lesson.id.in_(matching))
    if category:
        where.append(Lesson.category_code == category)
    if department_id:
        if db.session.get(Department, department_id) is None:
            raise Unprocessable(errors={"department_id": [_("No such department.")]})
        where.append(Lesson.department_id == department_id)
    if cursor:
        after = db.session.scalar(sa.select(Lesson.published_at).where(Lesson.id == cursor, *where[:1]))
        if after is None:
            return [], None
        where.append(sa.tuple_(Lesson.published_at, Lesson.id) < sa.tuple_(after, cursor))
    return keyset_page(lambda n: db.session.scalars(sa.select(Lesson).where(*where).order_by(*NEWEST).limit(n)),
                       limit, key=lambda lesson: lesson.id)


def review_queue(actor: Actor) -> list[Lesson]:
    """The quality office's unpublished lessons: in review first (oldest waiting first), then drafts."""
    if not can(actor, "handle_cases"):
        raise NotFound()
    stmt = sa.select(Lesson).where(Lesson.state.in_([LessonState.IN_REVIEW.value, LessonState.DRAFT.value]))
    order = sa.case((Lesson.state == LessonState.IN_REVIEW.value, 0), else_=1)
    return list(db.session.scalars(stmt.order_by(order, Lesson.updated_at, Lesson.id)))


def load_lesson(lesson_id: int, actor: Actor) -> Lesson:
    """A lesson for this reader: a published one for every member of staff, any other only for the quality
    office (404 for the others, as if it did not exist)."""
    lesson = db.session.get(Lesson, lesson_id)
    if lesson is None or not (can(actor, "handle_cases") or (can(actor, "lessons")
                                                             and LESSON_WORKFLOW.in_phase(lesson, "shown"))):
        raise NotFound()
    return lesson


def case_link(lesson: Lesson, actor: Actor) -> AdverseEvent | None:
    """The case the lesson was written from, when this reader may open it; None for everyone else (the
    lesson then names no case at all)."""
    if not can(actor, "department_cases"):
        return None
    try:
        return load_event(lesson.event_id, actor)
    except NotFound:
        return None


def published_in(start: datetime, end: datetime) -> list[Lesson]:
    """The lessons published in [start, end) and still published (the bulletin's lessons of the month)."""
    return list(db.session.scalars(sa.select(Lesson).where(
        Lesson.state == LessonState.PUBLISHED.value, Lesson.published_at >= start, Lesson.published_at < end)
        .order_by(Lesson.published_at, Lesson.id)))


def excerpt(text: str, length: int = 80) -> str:
    """The start of a text, cut at `length` characters."""
    text = " ".join((text or "").split())
    return text if len(text) <= length else text[:length].rstrip() + "…"


def present(lesson: Lesson, actor: Actor) -> dict:
    """A lesson as this reader may see it: the case it came from only for a reader who may open the case, the
    scrubber's findings and the people only for the quality office."""
    data = {name: getattr(lesson, name) for name in (
        "id", "state", "title", "what_happened", "why", "what_changed", "category_code", "department_id",
        "published_at", "version")}
    event = case_link(lesson, actor)
    data["event_id"] = event.id if event is not None else None
    data["case_reference"] = event.reference if event is not None else None
    if can(actor, "handle_cases"):
        data.update(scrub_findings=lesson.scrub_findings or [], note=lesson.note, created_at=lesson.created_at,
                    updated_at=lesson.updated_at, withdrawn_at=lesson.withdrawn_at,
                    author_user_id=lesson.author_user_id, reviewer_user_id=lesson.reviewer_user_id)
    return data
