"""An attachment: one stored file of one record, and what the pages show of it."""
from __future__ import annotations

import re
from datetime import datetime

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Mapped, mapped_column

from qcflow.core.db import Base, enum_check
from qcflow.core.i18n import register_labels

#: The records files belong to: a report / case (and its corrective actions), an MDT discussion.
RECORD_TYPES = ("adverse_event", "mdt_discussion")
#: What a file is, by its content (content.identify).
KINDS = ("image", "pdf", "document")


class Attachment(Base):
    """One file of one record. The bytes are in the storage under `storage_key`; readers get them only through
    the owning record's routes, which check that they may read the record, and each read is audited."""

    __tablename__ = "attachment"

    #: Random for files an anonymous reporter attached (core.db.new_id): no order among other files.
    id: Mapped[int] = mapped_column(primary_key=True)
    record_type: Mapped[str] = mapped_column(sa.String(20))
    record_id: Mapped[int]
    #: A part of the record the file belongs to: the corrective action of a case (NULL: the record itself).
    action_id: Mapped[int | None]
    #: The record's state when the file was added (the case step: "submitted", "investigating", …).
    stage: Mapped[str] = mapped_column(sa.String(20))
    kind: Mapped[str] = mapped_column(sa.String(10))
    #: The media type of the stored bytes (image/jpeg for every re-encoded photo) and its file extension.
    content_type: Mapped[str] = mapped_column(sa.String(100))
    extension: Mapped[str] = mapped_column(sa.String(8))
    size: Mapped[int]
    #: SHA-256 of the stored bytes (the case PDF lists it: a printed case says which file it meant).
    sha256: Mapped[str] = mapped_column(sa.String(64))
    storage_key: Mapped[str] = mapped_column(sa.String(80), unique=True)
    thumbnail_key: Mapped[str | None] = mapped_column(sa.String(80))
    width: Mapped[int | None]
    height: Mapped[int | None]
    #: The name the uploader's device gave it; NULL for files of anonymous reports (a name can identify).
    original_name: Mapped[str | None] = mapped_column(sa.String(200))
    #: Staff who added it; NULL for the anonymous reporter (and for public reports).
    uploaded_by_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))
    #: Added by the report's reporter (with the report, or later with the receipt code): the receipt page lists
    #: only these.
    from_reporter: Mapped[bool] = mapped_column(default=False)
    #: Coarsened to the hour for files of anonymous reports, as every time stored about them.
    uploaded_at: Mapped[datetime]
    #: A removed file: its bytes are deleted, the row stays for the record's history.
    removed_at: Mapped[datetime | None]
    removed_by_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))

    __table_args__ = (
        enum_check("record_type", RECORD_TYPES),
        enum_check("kind", KINDS),
        sa.CheckConstraint("size >= 0", name="size_not_negative"),
        sa.Index("ix_attachment_record", "record_type", "record_id", "id"),
    )

    @property
    def name(self) -> str:
        """What the pages call the file and download it as: its own name ending in the extension of what it holds,
        or for a nameless one "attachment-<id>.<ext>"."""
        return with_extension(self.original_name, self.extension) if self.original_name else \
            f"attachment-{self.id}.{self.extension}"


#: A file name's extension: a dot and up to ten letters or digits at its end.
EXTENSION = re.compile(r"\.([A-Za-z0-9]{1,10})$")
#: Extensions that name the same content as the stored one.
SAME_EXTENSION = {"jpg": {"jpg", "jpeg"}}


def with_extension(name: str, extension: str) -> str:
    """The name ending in the stored content's extension (never the uploader's): "检查结果.html" holding a PDF is
    "检查结果.pdf", "scan" is "scan.pdf"; "IMG.JPEG" holding a JPEG stays as it is."""
    found = EXTENSION.search(name)
    if found and found.group(1).lower() in SAME_EXTENSION.get(extension, {extension}):
        return name
    stem = name[:found.start()] if found else name
    return f"{stem or 'attachment'}.{extension}"


register_labels({
    "attachment_kind": {"image": _l("Image"), "pdf": _l("PDF"), "document": _l("Office document")},
})
