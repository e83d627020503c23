"""Chinese full-text search of the lesson library, the same SQL on SQLite and PostgreSQL.

A lesson's terms are every CJK character (unigram) and every pair of neighbouring CJK characters (bigram)
within a run of CJK text, and every latin word or number, lower-cased, after NFKC normalisation (full-width
letters and digits count like ASCII ones). A query asks for the bigrams of each CJK run of two characters or
more (the unigram of a run of one) and its latin words; a lesson matches when it holds every one of them. A
two-character word is then found exactly; a longer phrase is found where its bigrams all occur, which for the
short texts of a lesson is almost always where the phrase occurs. No extension, no word list to install.
"""
from __future__ import annotations

import re
import unicodedata

import sqlalchemy as sa

from qcflow.auth.models import Department
from qcflow.events.lessons.models import Lesson, LessonTerm
from qcflow.events.models import EventCategory
from qcflow.extensions import db

#: CJK ideographs (unified, extension A, compatibility) – what a Chinese reader searches by.
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CJK}]+|[a-z0-9]+")
_IS_CJK = re.compile(rf"[{_CJK}]")
#: The column's width: a longer latin word is cut to it (both when indexing and when searching).
TERM_LENGTH = LessonTerm.__table__.c.term.type.length
#: The most terms one query may ask for (a query longer than this is refused, 422).
MAX_QUERY_TERMS = 20
#: The longest query text accepted.
MAX_QUERY_LENGTH = 100


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(unicodedata.normalize("NFKC", text or "").lower())


def terms_of(text: str) -> set[str]:
    """Every term a lesson's text is found by: each CJK character and neighbouring pair, each latin word."""
    terms: set[str] = set()
    for token in _tokens(text):
        if _IS_CJK.match(token):
            terms.update(token)
            terms.update(token[i:i + 2] for i in range(len(token) - 1))
        else:
            terms.add(token[:TERM_LENGTH])
    return terms


def query_terms(q: str) -> list[str]:
    """The terms a lesson must all hold to match the query `q` (empty: no usable term, every lesson matches)."""
    terms: list[str] = []
    for token in _tokens(q):
        if _IS_CJK.match(token):
            found = [token] if len(token) == 1 else [token[i:i + 2] for i in range(len(token) - 1)]
        else:
            found = [token[:TERM_LENGTH]]
        terms.extend(term for term in found if term not in terms)
    return terms


def indexed_text(lesson: Lesson) -> str:
    """What a lesson is found by: its title, its three texts, and the names of its category (and the category's
    parent) and department in both languages, so that 跌倒 or "medication" finds the lessons of that kind even
    when their text says 摔倒 or 给药."""
    names = []
    code = lesson.category_code
    while code:  # the category, then its parent
        category = db.session.get(EventCategory, code)
        names += [category.name, category.name_en] if category else []
        code = category.parent_code if category else None
    department = db.session.get(Department, lesson.department_id) if lesson.department_id else None
    if department is not None:
        names += [department.name, department.name_en or ""]
    return "\n".join((lesson.title or "", lesson.what_happened or "", lesson.why or "", lesson.what_changed or "",
                      *names))


def reindex(lesson: Lesson) -> None:
    """Replace the lesson's terms by those of its current text (in the caller's transaction)."""
    db.session.flush()
    db.session.execute(sa.delete(LessonTerm).where(LessonTerm.lesson_id == lesson.id))
    terms = sorted(terms_of(indexed_text(lesson)))
    if terms:
        db.session.execute(sa.insert(LessonTerm), [{"term": term, "lesson_id": lesson.id} for term in terms])


def matching(terms: list[str]):
    """The ids of the lessons holding every one of `terms` (a subquery), or None when there is no term."""
    if not terms:
        return None
    return (sa.select(LessonTerm.lesson_id).where(LessonTerm.term.in_(terms)).group_by(LessonTerm.lesson_id)
            .having(sa.func.count(sa.distinct(LessonTerm.term)) == len(terms)))
