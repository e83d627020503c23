"""The case-learning library over the JSON API."""
from __future__ import annotations

from qcflow.auth.permissions import allowed, current_actor
from qcflow.core.api import Blueprint, created_links
from qcflow.core.time import now
from qcflow.events.lessons import queries, services
from qcflow.events.lessons.schemas import (
    LessonIn,
    LessonListArgs,
    LessonOut,
    LessonPage,
    LessonTransitionIn,
    LessonUpdateIn,
)
from qcflow.events.queries import load_event

blp = Blueprint("lessons_api", __name__, url_prefix="/api/v1", description="Case-learning library (典型案例库)")


@blp.get("/lessons")
@allowed("lessons")
@blp.arguments(LessonListArgs, location="query")
@blp.response(200, LessonPage)
@blp.alt_response(422, description="A search too long")
def list_lessons(args):
    """Published lessons, newest first: search (`q`, every word must occur), filter by category and department."""
    args.pop("lang", None)
    actor = current_actor()
    items, next_cursor = queries.library(**args)
    return {"items": [queries.present(lesson, actor) for lesson in items], "next_cursor": next_cursor}


@blp.get("/lessons/<int:lesson_id>")
@allowed("lessons")
@blp.response(200, LessonOut)
@blp.alt_response(404, description="No such lesson, or not published and you are not the quality office")
def get_lesson(lesson_id):
    """One lesson (its case only for a reader who may open the case)."""
    actor = current_actor()
    return queries.present(queries.load_lesson(lesson_id, actor), actor)


@blp.post("/events/<int:event_id>/lesson")
@allowed("handle_cases")
@blp.arguments(LessonIn)
@blp.response(201, LessonOut)
@blp.alt_response(409, description="The case is not closed, or already has a lesson (lesson_id given)")
@blp.doc(**created_links(GetLesson=("get", "/api/v1/lessons/{lesson_id}", {"lesson_id": "$response.body#/id"})))
def write_lesson(data, event_id):
    """Write the lesson of a closed case (a draft; the scrubber's findings come back in `scrub_findings`)."""
    actor = current_actor()
    lesson = services.write(load_event(event_id, actor), data, actor=actor, now=now())
    return queries.present(lesson, actor)


@blp.patch("/lessons/<int:lesson_id>")
@allowed("handle_cases")
@blp.arguments(LessonUpdateIn)
@blp.response(200, LessonOut)
@blp.alt_response(403, description="Not the lesson's author: only the author changes its text")
@blp.alt_response(409, description="Not a draft, or stale version")
def update_lesson(data, lesson_id):
    """Change a draft lesson, giving the `version` you read (its author only; a reviewer sends it back instead)."""
    actor = current_actor()
    version = data.pop("version")
    lesson = services.update(queries.load_lesson(lesson_id, actor), data, actor=actor, now=now(),
                             expected_version=version)
    return queries.present(lesson, actor)


@blp.post("/lessons/<int:lesson_id>/transitions")
@allowed("handle_cases")
@blp.arguments(LessonTransitionIn)
@blp.response(200, LessonOut)
@blp.alt_response(403, description="Your role or relation may not take this step (the author never publishes)")
@blp.alt_response(409, description="Not possible now, stale version, or the scrubber still finds something")
@blp.alt_response(422, description="The step's required fields are missing")
def transition_lesson(data, lesson_id):
    """Take a step: submit_review, return_draft (reason), publish (checked; not the author), withdraw (reason)."""
    actor = current_actor()
    lesson = queries.load_lesson(lesson_id, actor)
    action, version = data.pop("action"), data.pop("version")
    services.transition(lesson, action, data, actor=actor, now=now(), expected_version=version)
    return queries.present(lesson, actor)
