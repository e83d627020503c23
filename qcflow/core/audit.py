"""Append-only, hash-chained audit trail written in the same transaction as the change.

Each entry's hash is sha256(prev_hash ‖ canonical_json(entry)). The single-row
`audit_head` holds the chain's tip; updating it serialises concurrent writers
(row lock on PostgreSQL, the write lock on SQLite), so the chain never forks.
The database refuses UPDATE and DELETE on `audit_entry` (triggers in the migration).

`record()` checks and canonicalises an entry at once (a bad detail fails at the call site) and
queues it on the session; the session's commit writes the queued entries as the transaction's
last writes (a `before_commit` hook: ORM flush, then one bump of the head by n, one multi-row
INSERT executemany, the new tip hash). The entries are thus still written inside the same transaction as
the change, but the head's lock is held only from the end of the work to the COMMIT instead of
for the whole rest of the request. A rollback (or closing the session) drops the queue. qcflow uses no savepoints, and
a savepoint is refused (RuntimeError): rolling one back could not take back what was queued in it.

Before the commit, queued entries are not rows yet. A query that reads `audit_entry` through the
session writes them first (like autoflush, and not inside `no_autoflush`); `flush_pending()`
does it explicitly. `session.flush()` alone does not write them. Code that commits a bare
Connection (not the Session) never writes queued entries.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from qcflow.core.db import Base
from qcflow.extensions import db

log = logging.getLogger(__name__)
GENESIS = "0" * 64


class AuditEntry(Base):
    __tablename__ = "audit_entry"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Position in the chain, 1-based, gap-free.
    seq: Mapped[int] = mapped_column(sa.Integer, unique=True)
    at: Mapped[datetime]
    #: "user:<id>", "anonymous" or "system:<job>".
    actor: Mapped[str] = mapped_column(sa.String(80))
    action: Mapped[str] = mapped_column(sa.String(80))
    object_type: Mapped[str] = mapped_column(sa.String(60))
    object_id: Mapped[str | None] = mapped_column(sa.String(60))
    #: Canonical JSON of what changed: {"before": …, "after": …, …}.
    detail: Mapped[str] = mapped_column(sa.Text)
    prev_hash: Mapped[str] = mapped_column(sa.String(64))
    hash: Mapped[str] = mapped_column(sa.String(64))

    __table_args__ = (sa.Index("ix_audit_entry_object", "object_type", "object_id"),)

    def canonical(self) -> str:
        return canonical_json(
            {
                "seq": self.seq,
                "at": self.at.isoformat(),
                "actor": self.actor,
                "action": self.action,
                "object_type": self.object_type,
                "object_id": self.object_id,
                "detail": self.detail,
            }
        )


class AuditHead(Base):
    """The tip of the chain (one row, id = 1)."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(sa.Integer)
    hash: Mapped[str] = mapped_column(sa.String(64))


def canonical_json(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def chain_hash(prev_hash: str, canonical: str) -> str:
    return hashlib.sha256((prev_hash + canonical).encode("utf-8")).hexdigest()


#: Session.info key: the entries record() queued for this session's commit.
PENDING = "qcflow_audit_pending"


def record(actor: str, action: str, object_type: str, object_id, now: datetime, **detail) -> AuditEntry:
    """Queue one audit entry; the current transaction's commit writes it (see the module docstring).

    The entry is checked and canonicalised here, so a bad argument raises at the call site. The
    returned entry is not in the session; its seq, prev_hash and hash are set when it is written.
    """
    session = db.session()
    entry = AuditEntry(
        at=now.astimezone(timezone.utc),
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        detail=canonical_json(detail),
    )
    for name in ("actor", "action", "object_type", "object_id"):
        value, limit = getattr(entry, name), AuditEntry.__table__.c[name].type.length
        if value is not None and (not isinstance(value, str) or len(value) > limit):
            raise ValueError(f"audit {name} must be a string of at most {limit} characters: {value!r}")
    session.connection()  # join (or begin) the transaction whose end writes or drops the queue
    session.info.setdefault(PENDING, []).append(entry)
    return entry


def flush_pending(session: Session | None = None) -> int:
    """Write the entries queued on the session now (normally its commit does); return how many.

    From here to the commit the transaction holds the chain's head lock.
    """
    session = db.session() if session is None else session
    written = 0
    while True:
        if session.new or session.dirty or session.deleted:
            session.flush()  # the ORM's own writes first: the head lock is taken last
        entries = session.info.pop(PENDING, None)
        if not entries:
            return written
        _write(session, entries)
        written += len(entries)


def pending(session: Session | None = None) -> int:
    """How many entries are queued on the session, not yet written."""
    session = db.session() if session is None else session
    return len(session.info.get(PENDING) or ())


def _write(session: Session, entries: list[AuditEntry]) -> None:
    head_table = AuditHead.__table__
    n = len(entries)
    # Bump and read the tip in one statement (PostgreSQL, SQLite ≥ 3.35): the bump takes the lock.
    bump = (head_table.update().where(head_table.c.id == 1).values(seq=head_table.c.seq + n)
            .returning(head_table.c.seq, head_table.c.hash))
    tip = session.execute(bump).one_or_none()
    if tip is None:  # the very first entry: create the head (once, even when two writers race), bump again
        session.execute(_insert_head_if_missing(session))
        tip = session.execute(bump).one()
    last_seq, prev_hash = tip
    rows = []
    for seq, entry in enumerate(entries, start=last_seq - n + 1):
        entry.seq, entry.prev_hash = seq, prev_hash
        entry.hash = prev_hash = chain_hash(prev_hash, entry.canonical())
        rows.append({"seq": seq, "at": entry.at, "actor": entry.actor, "action": entry.action,
                     "object_type": entry.object_type, "object_id": entry.object_id, "detail": entry.detail,
                     "prev_hash": entry.prev_hash, "hash": entry.hash})
    session.execute(AuditEntry.__table__.insert(), rows)
    session.execute(head_table.update().where(head_table.c.id == 1).values(hash=prev_hash))


def _insert_head_if_missing(session: Session):
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        return AuditHead.__table__.insert().values(id=1, seq=0, hash=GENESIS)
    return insert(AuditHead.__table__).values(id=1, seq=0, hash=GENESIS).on_conflict_do_nothing()


@sa.event.listens_for(Session, "before_commit")
def _write_at_commit(session: Session) -> None:
    if session.info.get(PENDING):
        flush_pending(session)


@sa.event.listens_for(Session, "after_transaction_create")
def _refuse_savepoints(session: Session, transaction) -> None:
    if transaction.nested:
        raise RuntimeError("audit entries are written at the outermost commit; savepoints are not supported")


@sa.event.listens_for(Session, "after_commit")
def _check_nothing_left(session: Session) -> None:
    # Only reachable by queueing entries from a hook that runs after before_commit: they are lost.
    if session.info.get(PENDING):
        log.error("%d audit entries were queued but not written by the commit", len(session.info[PENDING]))


@sa.event.listens_for(Session, "after_transaction_end")
def _forget(session: Session, transaction) -> None:
    if transaction.parent is None:
        # Committed (already written), rolled back or closed: nothing queued may outlive it.
        session.info.pop(PENDING, None)


@sa.event.listens_for(Session, "do_orm_execute")
def _write_before_reading(state) -> None:
    """Read-your-writes: a statement that touches audit_entry first writes the queued entries."""
    session = state.session
    if not session.info.get(PENDING) or not session.autoflush:
        return
    if _touches_audit_entry(state.statement):
        flush_pending(session)


def _touches_audit_entry(statement) -> bool:
    if isinstance(statement, sa.TextClause):
        return "audit_entry" in statement.text.lower()
    return any(isinstance(element, sa.TableClause) and element.name == "audit_entry"
               for element in sa.sql.visitors.iterate(statement))


def note_read(actor: str, action: str, object_type: str, object_id, **detail) -> None:
    """Remember a read of sensitive data; the after-request hook audits it once the answer is sent.

    Reads happen in GET handlers that commit nothing; qcflow.core.web.audit_reads writes these
    entries after a successful response, in their own transaction.
    """
    from flask import g

    g.setdefault("audited_reads", []).append((actor, action, object_type, object_id, detail))


@dataclass
class VerifyResult:
    ok: bool
    checked: int
    #: Position in the chain (1-based) of the first entry that fails.
    broken_seq: int | None = None
    reason: str | None = None


def verify(batch: int = 5000) -> VerifyResult:
    """Walk the chain in order; report the first entry that does not link or hash."""
    prev_hash, expected_seq, checked, last_id = GENESIS, 1, 0, 0
    while True:
        rows = db.session.scalars(
            sa.select(AuditEntry).where(AuditEntry.id > last_id).order_by(AuditEntry.id).limit(batch)
        ).all()
        if not rows:
            break
        for entry in rows:
            if entry.seq != expected_seq:
                return VerifyResult(False, checked, expected_seq, f"found seq {entry.seq} (entries deleted or reordered)")
            if entry.prev_hash != prev_hash:
                return VerifyResult(False, checked, expected_seq, "prev_hash does not match the previous entry")
            if chain_hash(prev_hash, entry.canonical()) != entry.hash:
                return VerifyResult(False, checked, expected_seq, "content does not match its hash (edited)")
            prev_hash, expected_seq, checked, last_id = entry.hash, expected_seq + 1, checked + 1, entry.id
        db.session.expunge_all()
    head = db.session.get(AuditHead, 1)
    if head is not None and (head.seq != checked or head.hash != prev_hash):
        return VerifyResult(False, checked, checked + 1, "chain ends before the recorded head (entries deleted at the end)")
    return VerifyResult(True, checked)
