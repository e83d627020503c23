"""A lesson of the case-learning library, and its search terms."""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Mapped, mapped_column

from qcflow.core.db import Base, Versioned, enum_check
from qcflow.core.i18n import register_labels
from qcflow.events.lessons.workflow import LessonState


class Lesson(Versioned, Base):
    """What one closed case teaches, de-identified: what happened, why, what changed. The case it was written from is
    kept for the quality office; readers see the lesson only (never a link to a case they may not open)."""

    __tablename__ = "event_lesson"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(sa.ForeignKey("adverse_event.id"), unique=True)
    state: Mapped[str] = mapped_column(sa.String(10), default=LessonState.DRAFT.value)
    title: Mapped[str] = mapped_column(sa.String(120))
    what_happened: Mapped[str] = mapped_column(sa.Text)
    why: Mapped[str] = mapped_column(sa.Text)
    what_changed: Mapped[str] = mapped_column(sa.Text)
    #: Copied from the case when the lesson is written (the library's filters); the author may change them.
    category_code: Mapped[str | None] = mapped_column(sa.ForeignKey("event_category.code"))
    department_id: Mapped[int | None] = mapped_column(sa.ForeignKey("department.id"))
    author_user_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id"))
    reviewer_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))
    #: What the scrubber found at the latest save (kinds and the words it would replace), for the author and
    #: the reviewer; empty when it found nothing.
    scrub_findings: Mapped[list | None] = mapped_column(sa.JSON)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    published_at: Mapped[datetime | None]
    withdrawn_at: Mapped[datetime | None]
    #: Why the reviewer sent it back, or why it was withdrawn.
    note: Mapped[str | None] = mapped_column(sa.Text)

    __table_args__ = (
        enum_check("state", LessonState),
        sa.CheckConstraint("state != 'published' OR published_at IS NOT NULL", name="published_has_published_at"),
        # The library's order: newest published first (keyset on published_at, id).
        sa.Index("ix_event_lesson_state_published_at_id", "state", "published_at", "id"),
    )


class LessonTerm(Base):
    """One search term of one lesson (search.terms_of): each CJK character and each pair of neighbouring CJK
    characters, and each latin word or number, lower-cased. A query matches the lessons that hold all its terms,
    the same SQL on SQLite and PostgreSQL, with no extension and no word list to install."""

    __tablename__ = "event_lesson_term"

    term: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    lesson_id: Mapped[int] = mapped_column(sa.ForeignKey("event_lesson.id"), primary_key=True, index=True)


register_labels({
    "lesson_state": {
        "draft": _l("Draft"), "in_review": _l("In review"), "published": _l("Published"), "withdrawn": _l("Withdrawn"),
    },
    "lesson_action": {
        "submit_review": _l("Send for review"), "return_draft": _l("Send back to the author"),
        "publish": _l("Publish"), "withdraw": _l("Withdraw"),
    },
})
