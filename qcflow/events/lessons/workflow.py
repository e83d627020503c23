"""A lesson's states: a draft the author edits, in review (checked by the scrubber; a second person reads it),
published (every member of staff may read it), withdrawn (no longer shown; the row stays)."""
from __future__ import annotations

from enum import StrEnum

from flask_babel import gettext as _

from qcflow.auth.permissions import PERMISSIONS
from qcflow.core.workflow import Gate, Transition as T, Workflow


class LessonState(StrEnum):
    DRAFT = "draft"
    IN_REVIEW = "in_review"
    PUBLISHED = "published"
    WITHDRAWN = "withdrawn"


def reason_guard(lesson, data):
    return None if (data.get("reason") or "").strip() else _("Give the reason.")


def checked_guard(lesson, data):
    """The reviewer says they read it for anything that could identify a patient, a member of staff or a reporter."""
    return None if data.get("checked") else _("Confirm that you read the lesson and it identifies nobody.")


def lesson_relations(lesson, actor):
    """The author of a lesson, and its reviewer: any other member of the quality office (four eyes)."""
    if actor.user_id is not None and actor.user_id == lesson.author_user_id:
        return {"author"}
    return {"reviewer"} if set(actor.roles) & QUALITY else set()


def scrub_findings(lesson) -> list[str]:
    """What the scrubber still finds in the lesson (stored at its latest save), one line each."""
    from qcflow.core.i18n import label

    return [_("%(field)s: “%(found)s” → %(replacement)s", field=label("lesson_field", f["field"]), found=f["found"],
              replacement=f["replacement"]) for f in lesson.scrub_findings or ()]


#: Nothing the scrubber would replace: the lesson goes to review, and is published, only without it.
SCRUBBED = Gate(
    "scrubbed",
    missing=scrub_findings,
    refusal=lambda missing: _("The lesson still holds what could identify a person; change it first: %(found)s",
                              found="; ".join(missing)),
)

S = LessonState
QUALITY = PERMISSIONS["handle_cases"]

LESSON_WORKFLOW = Workflow(
    "event_lesson",
    LessonState,
    [
        #  action             from           to            roles             guard
        T("submit_review",   {S.DRAFT},      S.IN_REVIEW,  {"author"},       SCRUBBED),
        T("return_draft",    {S.IN_REVIEW},  S.DRAFT,      QUALITY,          reason_guard),
        T("publish",         {S.IN_REVIEW},  S.PUBLISHED,  {"reviewer"},     checked_guard),
        T("withdraw",        {S.PUBLISHED},  S.WITHDRAWN,  QUALITY,          reason_guard),
    ],
    relations=lesson_relations,
    initial=S.DRAFT,
    table="event_lesson",
    phases={"editable": {S.DRAFT}, "shown": {S.PUBLISHED}},
)
