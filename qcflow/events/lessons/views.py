"""Lesson pages: the library and its search, one lesson, writing a lesson from a closed case, the quality
office's review queue and the workflow steps."""
from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import gettext as _
from marshmallow import ValidationError

from qcflow.auth.permissions import allowed, can, current_actor
from qcflow.auth.queries import active_departments
from qcflow.core.errors import DomainError, page_refusal
from qcflow.core.forms import load_args, load_form
from qcflow.core.i18n import label
from qcflow.core.time import now
from qcflow.events.lessons import queries, services
from qcflow.events.lessons.schemas import LessonIn, LessonListArgs, LessonTransitionIn, LessonUpdateIn
from qcflow.events.lessons.workflow import LESSON_WORKFLOW
from qcflow.events.models import EventCategory
from qcflow.events.queries import load_event
from qcflow.extensions import db

bp = Blueprint("lessons", __name__)


def filter_choices() -> dict:
    categories = db.session.scalars(sa.select(EventCategory).where(EventCategory.parent_code.is_(None))
                                    .order_by(EventCategory.sort_order))
    return {"categories": list(categories), "departments": active_departments()}


@bp.get("/lessons")
@allowed("lessons")
def library():
    """The case-learning library: search, filter by category and department, newest first."""
    args, errors = load_args(LessonListArgs())
    items, next_cursor, status = [], None, 200
    if not errors:
        try:
            items, next_cursor = queries.library(**args)
        except DomainError as error:
            errors, status = page_refusal(error)
    else:
        status = 422
    older = None
    if next_cursor:
        older = url_for("lessons.library", **{k: v for k, v in request.args.items() if k != "cursor"}, cursor=next_cursor)
    return render_template("lessons/library.html", items=items, older_url=older, errors=errors,
                           args=request.args, excerpt=queries.excerpt, **filter_choices()), status


@bp.get("/lessons/review")
@allowed("handle_cases")
def review_queue():
    """The quality office's lessons not yet published: in review, then drafts."""
    actor = current_actor()
    items = queries.review_queue(actor)
    return render_template("lessons/review.html", items=items, names=services.author_names(items))


@bp.get("/lessons/<int:lesson_id>")
@allowed("lessons")
def show(lesson_id):
    """One lesson: what happened, why, what changed (its case only for a reader who may open it)."""
    actor = current_actor()
    lesson = queries.load_lesson(lesson_id, actor)
    return lesson_page(lesson, actor, {}, 200)


def lesson_page(lesson, actor, errors, status):
    quality = can(actor, "handle_cases")
    return render_template(
        "lessons/lesson.html", lesson=lesson, case=queries.case_link(lesson, actor), errors=errors,
        transitions=LESSON_WORKFLOW.available(lesson, actor) if quality else [],
        names=services.author_names([lesson]) if quality else {}, quality=quality,
        is_author=services.is_author(lesson, actor)), status


@bp.post("/lessons/<int:lesson_id>/transitions")
@allowed("handle_cases")
def transition(lesson_id):
    """Take a workflow step from the lesson page (send for review, send back, publish, withdraw)."""
    actor = current_actor()
    lesson = queries.load_lesson(lesson_id, actor)
    try:
        data = load_form(LessonTransitionIn())
        action, version = data.pop("action"), data.pop("version")
        services.transition(lesson, action, data, actor=actor, now=now(), expected_version=version)
    except (ValidationError, DomainError) as error:
        errors, status = page_refusal(error)
        return lesson_page(queries.load_lesson(lesson_id, actor), actor, errors, status)
    return redirect(url_for("lessons.show", lesson_id=lesson.id))


@bp.route("/events/<int:event_id>/lesson", methods=["GET", "POST"])
@allowed("handle_cases")
def write(event_id):
    """Write the lesson of a closed case, or change its draft; the scrubber's findings are shown."""
    actor = current_actor()
    event = load_event(event_id, actor)
    lesson = services.lesson_of(event)
    if lesson is not None and not services.may_edit(lesson, actor):
        if request.method == "POST" and LESSON_WORKFLOW.in_phase(lesson, "editable"):
            services.check_author(lesson, actor)  # another member of the quality office: 403, the form is not theirs
        return redirect(url_for("lessons.show", lesson_id=lesson.id))
    errors, status, values = {}, 200, request.form
    if request.method == "POST":
        try:
            if lesson is None:
                lesson = services.write(event, load_form(LessonIn()), actor=actor, now=now())
            else:
                data = load_form(LessonUpdateIn())
                version = data.pop("version")
                services.update(lesson, data, actor=actor, now=now(), expected_version=version)
            if request.form.get("then") == "submit_review" and not lesson.scrub_findings:
                services.transition(lesson, "submit_review", {}, actor=actor, now=now())
                return redirect(url_for("lessons.show", lesson_id=lesson.id))
            return redirect(url_for("lessons.write", event_id=event.id))
        except (ValidationError, DomainError) as error:
            errors, status = page_refusal(error)
            lesson = services.lesson_of(event)
    elif lesson is None:
        values = {"category_code": event.category_code or "", "department_id": str(event.department_id or "")}
    else:
        values = {name: getattr(lesson, name) or "" for name in services.FIELDS}
    suggestions = {f: services.suggestion(lesson, f) for f in services.TEXT_FIELDS} if lesson is not None else {}
    return render_template("lessons/write.html", event=event, lesson=lesson, values=values, errors=errors,
                           suggestions=suggestions, may_write=lesson is not None or services.may_write(event),
                           **filter_choices()), status


def lesson_step(event, actor) -> dict | None:
    """The case page's link to its lesson, for the quality office: write one once the case is closed, or open it."""
    if not can(actor, "handle_cases"):
        return None
    lesson = services.lesson_of(event)
    if lesson is not None:
        return {"url": url_for("lessons.show", lesson_id=lesson.id),
                "text": _("Lesson for the case library (%(state)s)", state=label("lesson_state", lesson.state))}
    if services.may_write(event):
        return {"url": url_for("lessons.write", event_id=event.id), "text": _("Write a lesson for the case library")}
    return None
