"""Leader lock so that only one scheduler process runs jobs.

PostgreSQL: a session-level advisory lock on a dedicated connection.
SQLite: an exclusive file lock next to the database file.
Correctness never depends on it (unique keys do); it avoids wasted double work.
"""
from __future__ import annotations

import fcntl
import os

import sqlalchemy as sa
from flask import Flask

#: First half of the advisory-lock key; the second is the database name's hash, so two
#: qcflow databases on one PostgreSQL server do not block each other's scheduler.
ADVISORY_CLASS = 0x71CF10


class LeaderLock:
    def __init__(self, engine: sa.Engine, lock_path: str):
        self.engine = engine
        self.lock_path = lock_path
        self._conn = None
        self._fd = None

    @classmethod
    def for_app(cls, app: Flask) -> "LeaderLock":
        from qcflow.extensions import db

        with app.app_context():
            engine = db.engine
        database = engine.url.database if engine.dialect.name == "sqlite" else None
        if database and database != ":memory:":
            path = database + ".scheduler.lock"
        else:
            path = os.path.join(app.instance_path, "scheduler.lock")
        return cls(engine, path)

    def acquire(self) -> bool:
        if self.engine.dialect.name == "postgresql":
            conn = self.engine.connect()
            got = conn.execute(sa.text("SELECT pg_try_advisory_lock(:k, hashtext(current_database()))"),
                               {"k": ADVISORY_CLASS}).scalar()
            conn.commit()
            if got:
                self._conn = conn
                return True
            conn.close()
            return False
        os.makedirs(os.path.dirname(self.lock_path) or ".", exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._conn is not None:
            self._conn.execute(sa.text("SELECT pg_advisory_unlock(:k, hashtext(current_database()))"),
                               {"k": ADVISORY_CLASS})
            self._conn.close()
            self._conn = None
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
