"""The files of a case over the JSON API: list, add (multipart), download (audited)."""
from __future__ import annotations

from flask import request

from qcflow.auth.permissions import allowed, current_actor
from qcflow.core.api import Blueprint
from flask_babel import gettext as _

from qcflow.core.errors import Forbidden, Unprocessable
from qcflow.core.schemas import Dumped
from qcflow.core.time import now
from qcflow.core.web import accepts_files, file_response
from qcflow.events import queries as event_queries
from qcflow.files import services
from qcflow.files.models import with_extension
from qcflow.files.schemas import AttachmentList, AttachmentOut, FileIn
from qcflow.files.views import readable_case_file

blp = Blueprint("files_api", __name__, url_prefix="/api/v1", description="Attachments of cases (附件)")


@blp.get("/events/<int:event_id>/files")
@allowed("department_cases")
@blp.response(200, AttachmentList)
@blp.alt_response(404, description="Not a case of your departments")
def list_case_files(event_id):
    """The files of a case (and of its corrective actions: action_id)."""
    actor = current_actor()
    event = event_queries.load_event(event_id, actor)
    items = services.files_of("adverse_event", event.id)
    names = event_queries.file_names(event, items, actor)
    return Dumped(items=[{**AttachmentOut().dump(f), **({"name": with_extension(names[f.id], f.extension)}
                                                        if f.id in names else {})} for f in items])


@blp.post("/events/<int:event_id>/files")
@allowed("department_cases")
@accepts_files
@blp.doc(requestBody={"required": True, "content": {"multipart/form-data": {"schema": FileIn}}})
@blp.response(201, AttachmentOut)
@blp.alt_response(403, description="Only the quality office and the heads of the case's departments add files")
@blp.alt_response(404, description="Not a case of your departments")
@blp.alt_response(409, description="The case is no longer open (closed, duplicate, not reportable, withdrawn)")
@blp.alt_response(413, description="The body is larger than UPLOAD_MAX_CONTENT_LENGTH")
@blp.alt_response(422, description="Not an accepted kind of file (by content), damaged, or over a limit")
def add_case_file(event_id):
    """Attach a file to a case (multipart/form-data, field `file`; `action_id` in the query for a corrective
    action). Photos are stored re-encoded without metadata."""
    actor = current_actor()
    event = event_queries.load_event(event_id, actor)
    if not services.may_act_on_case(event, actor):
        raise Forbidden()
    services.check_case_takes_files(event)
    action_id = request.args.get("action_id", type=int)
    if action_id is not None:
        event_queries.load_action(event.id, action_id, actor)
    posted = services.read_uploads(request.files.getlist("file"), field="file")
    if len(posted) != 1:
        raise Unprocessable(errors={"file": [_("Send one file in the multipart field \"file\".")]})
    return services.attach("adverse_event", event.id, posted[0], stage=event.state, action_id=action_id, actor=actor,
                           now=now())


@blp.get("/events/<int:event_id>/files/<int:attachment_id>")
@allowed("department_cases")
@blp.response(200, content_type="application/octet-stream", description="The stored bytes (audited)")
@blp.alt_response(404, description="Not a file of a case you may read")
def get_case_file(event_id, attachment_id):
    """Download a file of a case; every download is audited."""
    actor = current_actor()
    attachment = readable_case_file(event_id, attachment_id, actor)
    return file_response(services.read(attachment, actor=actor, now=now()), attachment)
