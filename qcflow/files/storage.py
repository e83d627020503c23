"""Where the bytes of attachments are kept: one small interface, the filesystem by default.

Keys are random (nothing in a key says whose file it is or when it came); the database row keeps the key.
Another store (an S3-compatible object store) is a class with the same four methods, added to STORAGES.
"""
from __future__ import annotations

import os
import re
import secrets
import tempfile
from datetime import datetime, timezone
from typing import Iterator, Protocol

from flask import current_app

from qcflow.core.errors import NotFound
from qcflow.core.time import coarse

KEY = re.compile(r"^[0-9a-f]{32}$")


class Storage(Protocol):
    def put(self, data: bytes, *, at: datetime | None = None) -> str:
        """Keep the bytes under a new random key, dated `at` (to the hour; default: this hour); returns the key."""

    def get(self, key: str) -> bytes:
        """The bytes kept under `key` (NotFound when there are none)."""

    def delete(self, key: str) -> None:
        """Forget `key` (nothing when it is already gone)."""

    def keys(self) -> Iterator[tuple[str, datetime]]:
        """Every key kept, with when it was stored (the orphan sweep)."""


class FileSystemStorage:
    """Files under `root` (outside the web root): `ab/cd/abcd…`, written to a temporary file and renamed
    into place (never half a file under a key), readable by the service's user alone (0600, folders 0700),
    their modification and access times (and their folders') set to the start of the hour they were stored in."""

    def __init__(self, root: str):
        self.root = os.path.realpath(root)

    def path(self, key: str) -> str:
        if not KEY.match(key or ""):
            raise NotFound()
        return os.path.join(self.root, key[:2], key[2:4], key)

    def put(self, data: bytes, *, at: datetime | None = None) -> str:
        key = secrets.token_hex(16)
        path = self.path(key)
        folder = os.path.dirname(path)
        os.makedirs(folder, mode=0o700, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=".tmp-")  # created 0600
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, path)
        except BaseException:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise
        # Every file and the folders it changed say only the hour (an anonymous reporter's file among others):
        # the inode's ctime stays exact on this filesystem, and backups must not keep it (docs/deploy.md).
        hour = coarse(at or datetime.now(timezone.utc)).timestamp()
        for where in (path, folder, os.path.dirname(folder), self.root):
            os.utime(where, (hour, hour))
        return key

    def get(self, key: str) -> bytes:
        try:
            with open(self.path(key), "rb") as stored:
                return stored.read()
        except FileNotFoundError:
            raise NotFound() from None

    def delete(self, key: str) -> None:
        try:
            os.unlink(self.path(key))
        except FileNotFoundError:
            pass

    def keys(self) -> Iterator[tuple[str, datetime]]:
        for folder, _dirs, names in os.walk(self.root):
            for name in names:
                if KEY.match(name):
                    stat = os.stat(os.path.join(folder, name))
                    yield name, datetime.fromtimestamp(stat.st_mtime, timezone.utc)


def _filesystem(app) -> FileSystemStorage:
    return FileSystemStorage(app.config.get("ATTACHMENT_DIR") or os.path.join(app.instance_path, "attachments"))


#: ATTACHMENT_STORAGE → how to build the storage from the app's config.
STORAGES = {"filesystem": _filesystem}


def storage() -> Storage:
    """The app's storage of attachments (config ATTACHMENT_STORAGE), built once per app."""
    app = current_app._get_current_object()
    made = app.extensions.get("qcflow.attachment_storage")
    if made is None:
        choice = app.config.get("ATTACHMENT_STORAGE", "filesystem")
        if choice not in STORAGES:
            raise RuntimeError(f"ATTACHMENT_STORAGE is {choice!r}: choose one of {', '.join(STORAGES)}")
        made = app.extensions["qcflow.attachment_storage"] = STORAGES[choice](app)
    return made
