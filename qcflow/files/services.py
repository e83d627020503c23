"""Attachments: add a file to a record, read it (audited), remove it, sweep stored bytes nobody refers to.

Services flush and never commit; callers pass `actor` and `now`, and have checked that the actor may add to
or read the record (the owning domain's rule). Bytes are written to the storage before the row is flushed:
a transaction rolled back deletes what it stored, and bytes left by a process that died before its commit
are swept after a day (sweep_orphans).
"""
from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from qcflow.auth.models import Role
from qcflow.auth.permissions import can
from qcflow.core import audit
from qcflow.core.actors import Actor
from qcflow.core.db import new_id
from qcflow.core.errors import Conflict, Forbidden, NotFound, Unprocessable
from qcflow.core.time import coarse
from qcflow.events.workflow import EVENT_WORKFLOW
from qcflow.extensions import db
from qcflow.files import content
from qcflow.files.models import Attachment, with_extension
from qcflow.files.storage import storage
from qcflow.mdt import services as mdt_services
from qcflow.mdt.workflow import DISCUSSION_WORKFLOW

#: Stored bytes with no row are deleted by the sweep once older than this (a request in flight has a row by then).
ORPHAN_AGE = timedelta(days=1)
#: Longest original name kept.
NAME_LENGTH = 200
STORED = "qcflow.files.stored"
TO_DELETE = "qcflow.files.to_delete"


@dataclass(frozen=True)
class Upload:
    """A file as the route received it: its bytes (read up to one byte beyond the limit) and the name the
    uploader's device gave it."""

    data: bytes
    filename: str | None = None


def read_uploads(posted, *, anonymous: bool = False, field: str = "files") -> list[Upload]:
    """The posted files (werkzeug FileStorage) as Uploads, each read up to one byte beyond the limit per file
    (enough to refuse it); the empty part a form sends when no file was chosen is no file.

    What one request may cost is bounded here, before any image is decoded: at most
    ATTACHMENT_MAX_FILES_PER_RECORD files at once (ATTACHMENT_MAX_FILES_PER_ANONYMOUS_REPORT for the anonymous
    reporter's), and at most ATTACHMENT_MAX_PIXELS_PER_REQUEST pixels to decode together (read from the headers).
    """
    config = current_app.config
    limit = config["ATTACHMENT_MAX_BYTES"]
    found = []
    for part in posted:
        data = part.stream.read(limit + 1)
        if data or part.filename:
            found.append(Upload(data, part.filename))
    if anonymous and len(found) > config["ATTACHMENT_MAX_FILES_PER_ANONYMOUS_REPORT"]:
        raise too_many_anonymous(field)
    if len(found) > config["ATTACHMENT_MAX_FILES_PER_RECORD"]:
        raise Unprocessable(errors={field: [_("At most %(n)d files can be sent at once. Choose fewer files.",
                                              n=config["ATTACHMENT_MAX_FILES_PER_RECORD"])]})
    budget = config["ATTACHMENT_MAX_PIXELS_PER_REQUEST"]
    if sum(content.decoded_pixels(upload.data, config["ATTACHMENT_MAX_SIDE"]) for upload in found) > budget:
        raise Unprocessable(errors={field: [_(
            "These photos together have too many pixels to be taken in one go (at most %(n)s million pixels at "
            "once). Send fewer photos at a time.", n=content.millions(budget))]})
    return found


def too_many_anonymous(field: str) -> Unprocessable:
    return Unprocessable(errors={field: [_("An anonymous report takes at most %(n)d photos from its reporter. "
                                           "Choose fewer photos.",
                                           n=current_app.config["ATTACHMENT_MAX_FILES_PER_ANONYMOUS_REPORT"])]})


def clean_name(name: str | None, extension: str | None = None) -> str | None:
    """The name to show: no folders, no control or format characters, ending in `extension` (the stored
    content's: models.with_extension), at most NAME_LENGTH characters."""
    if not name:
        return None
    name = re.split(r"[\\/]", name)[-1]
    name = "".join(c for c in unicodedata.normalize("NFC", name) if unicodedata.category(c)[0] != "C").strip()
    if name and extension:
        name = with_extension(name, extension)
    if len(name) > NAME_LENGTH:
        stem, dot, extension = name.rpartition(".")
        name = (stem[:NAME_LENGTH - len(extension) - 1] + dot + extension) if dot and len(extension) <= 10 \
            else name[:NAME_LENGTH]
    return name or None


def megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB".replace(".0 MB", " MB")


def files_of(record_type: str, record_id: int, *, from_reporter: bool | None = None,
             removed: bool = False) -> list[Attachment]:
    """A record's files in the order they were added (anonymous ones are ordered among others by their
    hour, then by id: random, so nothing finer than the hour)."""
    stmt = sa.select(Attachment).where(Attachment.record_type == record_type, Attachment.record_id == record_id)
    if not removed:
        stmt = stmt.where(Attachment.removed_at.is_(None))
    if from_reporter is not None:
        stmt = stmt.where(Attachment.from_reporter.is_(from_reporter))
    return list(db.session.scalars(stmt.order_by(Attachment.uploaded_at, Attachment.id)))


def load_attachment(attachment_id: int, record_type: str, record_id: int) -> Attachment:
    """A file of this record that has not been removed (anything else is 404)."""
    attachment = db.session.get(Attachment, attachment_id)
    if (attachment is None or attachment.record_type != record_type or attachment.record_id != record_id
            or attachment.removed_at is not None):
        raise NotFound()
    return attachment


def own_report_file(attachment_id: int, actor: Actor) -> Attachment:
    """A file the actor attached, as reporter, to their own report (anything else is 404)."""
    attachment = db.session.get(Attachment, attachment_id)
    if (attachment is None or attachment.removed_at is not None or not attachment.from_reporter
            or actor.user_id is None or attachment.uploaded_by_user_id != actor.user_id):
        raise NotFound()
    return attachment


def check_limits(record_type: str, record_id: int, size: int, *, field: str) -> None:
    """The limits per file, per record (bytes) and on the number of a record's files (422 with the numbers)."""
    config = current_app.config
    if size > config["ATTACHMENT_MAX_BYTES"]:
        raise Unprocessable(errors={field: [_(
            "This file is larger than %(limit)s, the limit per file. Make it smaller (a photo at a lower "
            "resolution, a PDF scanned in black and white) and attach it again.",
            limit=megabytes(config["ATTACHMENT_MAX_BYTES"]))]})
    count, total = db.session.execute(
        sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(Attachment.size), 0)).where(
            Attachment.record_type == record_type, Attachment.record_id == record_id,
            Attachment.removed_at.is_(None))).one()
    if count >= config["ATTACHMENT_MAX_FILES_PER_RECORD"]:
        raise Unprocessable(errors={field: [_(
            "This record already has %(n)d files, the most it may have. Remove one it no longer needs first.",
            n=count)]})
    if total + size > config["ATTACHMENT_MAX_BYTES_PER_RECORD"]:
        raise Unprocessable(errors={field: [_(
            "The files of this record would together exceed %(limit)s. Remove a file it no longer needs or "
            "attach a smaller one.", limit=megabytes(config["ATTACHMENT_MAX_BYTES_PER_RECORD"]))]})


def attach(record_type: str, record_id: int, upload: Upload, *, stage: str, actor: Actor, now: datetime,
           action_id: int | None = None, anonymous: bool = False, from_reporter: bool = False,
           keep_name: bool | None = None, images_only: bool = False, field: str = "file") -> Attachment:
    """Add one file to a record: checked by its content, an image encoded again without metadata, stored,
    its row added and the addition audited.

    `anonymous`: the anonymous reporter's file: random id, time to the hour, no user, no name, and the
    audit entry in the anonymous chain. `keep_name`: keep the device's file name (default: unless anonymous).
    `images_only`: refuse PDFs and office documents (their metadata names their author and cannot be removed).
    """
    check_limits(record_type, record_id, len(upload.data), field=field)
    found = content.identify(upload.data, field=field)
    if anonymous and from_reporter and db.session.scalar(sa.select(sa.func.count()).where(
            Attachment.record_type == record_type, Attachment.record_id == record_id, Attachment.from_reporter,
            Attachment.uploaded_by_user_id.is_(None), Attachment.removed_at.is_(None))) >= current_app.config[
            "ATTACHMENT_MAX_FILES_PER_ANONYMOUS_REPORT"]:
        raise too_many_anonymous(field)
    if images_only and found.kind != "image":
        raise Unprocessable(errors={field: [_(
            "Only photos and screenshots (JPEG, PNG) can be attached to an anonymous report: a PDF or office "
            "document carries its author's name inside it. Take a photo or a screenshot of it instead.")]})
    data, width, height, thumbnail = upload.data, None, None, None
    content_type, extension = found.content_type, found.extension
    if found.kind == "image":
        image = content.clean_image(upload.data, max_pixels=current_app.config["ATTACHMENT_MAX_PIXELS"],
                                    max_side=current_app.config["ATTACHMENT_MAX_SIDE"], field=field)
        data, width, height, thumbnail = image.data, image.width, image.height, image.thumbnail
        content_type, extension = image.content_type, image.extension
        check_limits(record_type, record_id, len(data), field=field)  # a re-encoded image may be larger
    if anonymous:
        actor, now = Actor.anonymous(), coarse(now)
    keep_name = not anonymous if keep_name is None else keep_name and not anonymous
    storage_key = _store(data, now)
    thumbnail_key = _store(thumbnail, now) if thumbnail is not None else None
    attachment = Attachment(
        id=new_id(db.session, Attachment, unordered=anonymous), record_type=record_type, record_id=record_id,
        action_id=action_id, stage=stage, kind=found.kind, content_type=content_type, extension=extension,
        size=len(data), sha256=hashlib.sha256(data).hexdigest(), storage_key=storage_key,
        thumbnail_key=thumbnail_key, width=width, height=height,
        original_name=clean_name(upload.filename, extension) if keep_name else None,
        uploaded_by_user_id=None if anonymous else actor.user_id, from_reporter=from_reporter, uploaded_at=now)
    db.session.add(attachment)
    db.session.flush()
    audit.record(actor.audit_name, "attachment.add", record_type, record_id, now, attachment_id=attachment.id,
                 action_id=action_id, kind=found.kind, size=len(data), sha256=attachment.sha256)
    return attachment


def read(attachment: Attachment, *, actor: Actor, now: datetime, thumbnail: bool = False) -> bytes:
    """The stored bytes of a file (or its thumbnail); every read is audited, thumbnails too."""
    if attachment.removed_at is not None:
        raise NotFound()
    key = attachment.thumbnail_key if thumbnail else attachment.storage_key
    if key is None:
        raise NotFound()
    data = storage().get(key)
    if actor.audit_name == "anonymous":
        now = coarse(now)
    audit.record(actor.audit_name, "attachment.read", "attachment", attachment.id, now,
                 record_type=attachment.record_type, record_id=attachment.record_id, thumbnail=thumbnail)
    return data


def may_act_on_case(event, actor: Actor) -> bool:
    """Who may add files to a case (events' AdverseEvent): the quality office, and the head of a department
    the case happened in or is handled by."""
    return can(actor, "handle_cases") or (
        Role.DEPT_HEAD in actor.roles and actor.department_id is not None
        and actor.department_id in (event.department_id, event.handling_department_id))


def case_takes_files(event) -> bool:
    """Whether a case's files may still change: only while it is open (not closed, a duplicate, not reportable
    or withdrawn), as its messages and actions."""
    return EVENT_WORKFLOW.in_phase(event, "open")


def check_case_takes_files(event) -> None:
    """Refuse adding or removing a file of a case that is no longer open (409)."""
    if not case_takes_files(event):
        raise Conflict(_("This case is no longer open (closed, a duplicate, not reportable or withdrawn): its files "
                         "can no longer be added or removed."), state=event.state)


def check_may_add_to_discussion(discussion, actor: Actor) -> None:
    """Files are added to a discussion by those who may record it, while it may be recorded (signed or cancelled:
    409)."""
    mdt_services.check_editable(discussion, actor)


def may_remove_from_discussion(attachment: Attachment, discussion, actor: Actor) -> bool:
    """While a discussion may be recorded, its uploader removes their own file; a head of the organising
    department and the quality office any (not every clinician of the department)."""
    if not mdt_services.allowed_here(discussion, actor)["record"]:
        return False
    keepers = DISCUSSION_WORKFLOW.roles_of(discussion, actor)
    return ((actor.user_id is not None and attachment.uploaded_by_user_id == actor.user_id)
            or "organising_head" in keepers or can(actor, "handle_cases"))


def check_may_remove_from_discussion(attachment: Attachment, discussion, actor: Actor) -> None:
    """Refuse removing a discussion's file once it is signed or cancelled (409), or by anyone but its uploader,
    a head of the organising department and the quality office (403)."""
    mdt_services.check_editable(discussion, actor)
    if not may_remove_from_discussion(attachment, discussion, actor):
        raise Forbidden(_("Only whoever added this file, a head of the organising department or the quality office "
                          "may remove it."))


def may_remove(attachment: Attachment, actor: Actor) -> bool:
    """The uploader may remove their own file, the quality office any."""
    return (actor.user_id is not None and attachment.uploaded_by_user_id == actor.user_id) or can(actor, "handle_cases")


def remove(attachment: Attachment, *, actor: Actor, now: datetime, checked: bool = False) -> Attachment:
    """Remove a file: the row stays for the record's history, its bytes are deleted once this commits.

    `checked`: the owning record's rule has allowed it (an MDT discussion: check_may_remove_from_discussion);
    otherwise the uploader or the quality office.
    """
    if not (checked or may_remove(attachment, actor)):
        raise Forbidden(_("Only whoever added this file, or the quality office, may remove it."))
    if attachment.removed_at is not None:
        return attachment
    attachment.removed_at, attachment.removed_by_user_id = now, actor.user_id
    db.session.flush()
    audit.record(actor.audit_name, "attachment.remove", attachment.record_type, attachment.record_id, now,
                 attachment_id=attachment.id, sha256=attachment.sha256)
    pending = db.session.info.setdefault(TO_DELETE, [])
    pending.extend(key for key in (attachment.storage_key, attachment.thumbnail_key) if key)
    return attachment


def _store(data: bytes, now: datetime) -> str:
    """Put bytes into the storage, dated to the hour; a rollback of this transaction deletes them again."""
    where = storage()
    key = where.put(data, at=coarse(now))
    db.session.info.setdefault(STORED, []).append((where, key))
    return key


def sweep_orphans(now: datetime) -> int:
    """Delete stored bytes older than ORPHAN_AGE that no file in use refers to; returns how many."""
    known = set()
    for key, thumbnail in db.session.execute(sa.select(Attachment.storage_key, Attachment.thumbnail_key)
                                             .where(Attachment.removed_at.is_(None))):
        known.add(key)
        if thumbnail:
            known.add(thumbnail)
    where, swept = storage(), 0
    for key, stored_at in list(where.keys()):
        if key not in known and stored_at < now - ORPHAN_AGE:
            where.delete(key)
            swept += 1
    return swept


@sa.event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    session.info.pop(STORED, None)
    keys = session.info.pop(TO_DELETE, None)
    if keys:
        where = storage()
        for key in keys:
            try:
                where.delete(key)
            except OSError:  # left for the sweep
                pass


@sa.event.listens_for(Session, "after_transaction_end")
def _after_transaction_end(session: Session, transaction) -> None:
    """A transaction that ended without its commit (rolled back, or its session closed): what it stored goes."""
    if transaction.parent is not None:
        return
    session.info.pop(TO_DELETE, None)
    for where, key in session.info.pop(STORED, None) or ():
        try:
            where.delete(key)
        except OSError:  # left for the sweep
            pass
