"""File pages: add, read and remove the files of a case (and its corrective actions) and of an MDT discussion.

Who may read a file is the owning record's rule (a case: events.queries.load_event; a discussion: the
MDT domain's "read"); who may add one is who may act on the record. Every read is audited (services.read).
"""
from __future__ import annotations


from flask import Blueprint, current_app, redirect, request, url_for
from flask_babel import gettext as _

from qcflow.auth.permissions import allowed, current_actor
from qcflow.core.actors import Actor
from qcflow.core.errors import Forbidden, NotFound, Unprocessable
from qcflow.core.time import now
from qcflow.core.web import accepts_files, file_response
from qcflow.events import queries as event_queries
from qcflow.files import services
from qcflow.files.models import Attachment
from qcflow.mdt import queries as mdt_queries, services as mdt_services

bp = Blueprint("files", __name__)


@bp.app_template_global()
def file_size_limit() -> str:
    """The largest file a form takes (ATTACHMENT_MAX_BYTES), as its hint says it."""
    return services.megabytes(current_app.config["ATTACHMENT_MAX_BYTES"])

def confirmed_removal() -> None:
    """A file is removed only with the form's confirmation ticked (its bytes are gone for good)."""
    if request.form.get("confirm") != "1":
        raise Unprocessable(errors={"confirm": [_("Tick the box to confirm that the file is to be removed.")]})


def uploads() -> list[services.Upload]:
    """The files posted under `files` (at least one), each read up to one byte beyond the limit per file."""
    posted = services.read_uploads(request.files.getlist("files"))
    if not posted:
        raise Unprocessable(errors={"files": [_("Choose a file to attach.")]})
    return posted


def readable_case_file(event_id: int, attachment_id: int, actor: Actor) -> Attachment:
    """A file of a case the actor may read (the case's rule: its departments, the quality office)."""
    event = event_queries.load_event(event_id, actor)
    return services.load_attachment(attachment_id, "adverse_event", event.id)


@bp.get("/my/files/<int:my_file_id>")
@allowed("own_reports")
def my_file(my_file_id):
    """A file I attached to my own named or confidential report (My reports; audited)."""
    actor = current_actor()
    attachment = services.own_report_file(my_file_id, actor)
    return file_response(services.read(attachment, actor=actor, now=now()), attachment)


@bp.get("/events/<int:event_id>/files/<int:attachment_id>")
@allowed("department_cases")
def case_file(event_id, attachment_id):
    """A file of a case (audited)."""
    actor = current_actor()
    attachment = readable_case_file(event_id, attachment_id, actor)
    return file_response(services.read(attachment, actor=actor, now=now()), attachment)


@bp.get("/events/<int:event_id>/files/<int:attachment_id>/thumbnail")
@allowed("department_cases")
def case_thumbnail(event_id, attachment_id):
    """The thumbnail of an image of a case (audited like the file)."""
    actor = current_actor()
    attachment = readable_case_file(event_id, attachment_id, actor)
    return file_response(services.read(attachment, actor=actor, now=now(), thumbnail=True), attachment,
                         thumbnail=True)


@bp.post("/events/<int:event_id>/files")
@allowed("department_cases")
@accepts_files
def add_case_files(event_id):
    """Add files to a case, or to one of its corrective actions."""
    actor = current_actor()
    event = event_queries.load_event(event_id, actor)
    if not services.may_act_on_case(event, actor):
        raise Forbidden(_("Files are added by the quality office and the heads of the case's departments."))
    services.check_case_takes_files(event)
    action_id = request.form.get("action_id", type=int)
    if action_id is not None:
        event_queries.load_action(event.id, action_id, actor)
    for upload in uploads():
        services.attach("adverse_event", event.id, upload, stage=event.state, action_id=action_id, actor=actor,
                        now=now(), field="files")
    return redirect(url_for("events.detail", event_id=event.id) + (f"#action-{action_id}" if action_id else
                                                                    "#attachments"))


@bp.post("/events/<int:event_id>/files/<int:attachment_id>/remove")
@allowed("department_cases")
def remove_case_file(event_id, attachment_id):
    """Remove a file from a case (its uploader or the quality office)."""
    actor = current_actor()
    event = event_queries.load_event(event_id, actor)
    attachment = services.load_attachment(attachment_id, "adverse_event", event.id)
    services.check_case_takes_files(event)
    confirmed_removal()
    services.remove(attachment, actor=actor, now=now())
    return redirect(url_for("events.detail", event_id=event.id) + "#attachments")


def readable_discussion_file(discussion_id: int, discussion_file_id: int, actor: Actor) -> Attachment:
    discussion = mdt_queries.load_discussion(discussion_id, actor)
    if not mdt_services.may(discussion, actor, "read"):
        raise NotFound()
    return services.load_attachment(discussion_file_id, "mdt_discussion", discussion.id)


@bp.get("/mdt/<int:discussion_id>/files/<int:discussion_file_id>")
@allowed("mdt")
def discussion_file(discussion_id, discussion_file_id):
    """A file of an MDT discussion (audited)."""
    actor = current_actor()
    attachment = readable_discussion_file(discussion_id, discussion_file_id, actor)
    return file_response(services.read(attachment, actor=actor, now=now()), attachment)


@bp.get("/mdt/<int:discussion_id>/files/<int:discussion_file_id>/thumbnail")
@allowed("mdt")
def discussion_thumbnail(discussion_id, discussion_file_id):
    """The thumbnail of an image of an MDT discussion (audited like the file)."""
    actor = current_actor()
    attachment = readable_discussion_file(discussion_id, discussion_file_id, actor)
    return file_response(services.read(attachment, actor=actor, now=now(), thumbnail=True), attachment,
                         thumbnail=True)


@bp.post("/mdt/<int:discussion_id>/files")
@allowed("mdt")
@accepts_files
def add_discussion_files(discussion_id):
    """Add files to an MDT discussion (those who may record it)."""
    actor = current_actor()
    discussion = mdt_queries.load_discussion(discussion_id, actor)
    services.check_may_add_to_discussion(discussion, actor)
    for upload in uploads():
        services.attach("mdt_discussion", discussion.id, upload, stage=discussion.state, actor=actor, now=now(),
                        field="files")
    return redirect(url_for("mdt.detail", discussion_id=discussion.id) + "#attachments")


@bp.post("/mdt/<int:discussion_id>/files/<int:discussion_file_id>/remove")
@allowed("mdt")
def remove_discussion_file(discussion_id, discussion_file_id):
    """Remove a file from an MDT discussion while it may be recorded (its uploader, a head of the organising
    department, or the quality office)."""
    actor = current_actor()
    attachment = readable_discussion_file(discussion_id, discussion_file_id, actor)
    discussion = mdt_queries.load_discussion(discussion_id, actor)
    services.check_may_remove_from_discussion(attachment, discussion, actor)
    confirmed_removal()
    services.remove(attachment, actor=actor, now=now(), checked=True)
    return redirect(url_for("mdt.detail", discussion_id=discussion_id) + "#attachments")
