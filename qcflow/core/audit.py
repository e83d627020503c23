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

Two chains. Entries whose actor is "anonymous" (anonymous reports and their replies) go into their
own chain, `audit_anonymous_entry` with its own head (audit_head id 2): a position in the main chain
would order an anonymous report among named ones more finely than its stored hour. Their time is
the stored (hour) time the service passes.

The hashes are keyed (HMAC-SHA256 with AUDIT_KEY) when a key is configured, so whoever can write the
database but does not know the key cannot re-hash a chain after an edit; `write_anchor()` appends
the heads to a file outside the database, so cutting off the newest entries (and moving the head)
no longer matches an anchor written earlier (docs/deploy.md, "The audit trail's threat model").
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from qcflow.core.db import Base
from qcflow.extensions import db

log = logging.getLogger(__name__)
GENESIS = "0" * 64


class _EntryColumns:
    """The columns and the canonical form shared by both chains' entries."""

    #: Name of the chain (the audit_head row is CHAIN_HEADS[chain]).
    chain = "main"

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

    def canonical(self) -> str:
        # The main chain's form is unchanged since the first entry; the other chains name themselves.
        named = {} if self.chain == "main" else {"chain": self.chain}
        return canonical_json(
            {
                **named,
                "seq": self.seq,
                "at": self.at.isoformat(),
                "actor": self.actor,
                "action": self.action,
                "object_type": self.object_type,
                "object_id": self.object_id,
                "detail": self.detail,
            }
        )


class AuditEntry(_EntryColumns, Base):
    """The main chain: every audited change except those of anonymous reporters."""

    __tablename__ = "audit_entry"
    chain = "main"

    __table_args__ = (sa.Index("ix_audit_entry_object", "object_type", "object_id"),)


class AnonymousAuditEntry(_EntryColumns, Base):
    """The chain of anonymous reporters' entries (submissions, replies); times are the stored hours."""

    __tablename__ = "audit_anonymous_entry"
    chain = "anonymous"

    __table_args__ = (sa.Index("ix_audit_anonymous_entry_object", "object_type", "object_id"),)


#: chain name → (entry class, audit_head row id)
CHAINS: dict[str, tuple[type[_EntryColumns], int]] = {"main": (AuditEntry, 1), "anonymous": (AnonymousAuditEntry, 2)}
#: Entries by this actor go into the anonymous chain.
ANONYMOUS_ACTOR = "anonymous"


class AuditHead(Base):
    """The tip of each chain (id 1: main, id 2: anonymous)."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(sa.Integer)
    hash: Mapped[str] = mapped_column(sa.String(64))


def canonical_json(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def chain_hash(prev_hash: str, canonical: str, key: str | None = None) -> str:
    """sha256(prev ‖ entry), or HMAC-SHA256 with `key`: without the key nobody can re-hash the chain."""
    message = (prev_hash + canonical).encode("utf-8")
    if key:
        return hmac.new(key.encode("utf-8"), message, hashlib.sha256).hexdigest()
    return hashlib.sha256(message).hexdigest()


def entry_key(chain: str, seq: int) -> str | None:
    """The key that seals entry `seq` of `chain`: AUDIT_KEY, except main-chain entries written before it was set.

    AUDIT_KEY_SINCE_SEQ (config, outside the database) is the first main-chain entry sealed with the
    key on an installation that had entries before the key was configured.
    """
    from flask import current_app

    key = current_app.config.get("AUDIT_KEY")
    if key and chain == "main" and seq < int(current_app.config.get("AUDIT_KEY_SINCE_SEQ") or 1):
        return None
    return key or None


def entry_hash(entry: _EntryColumns) -> str:
    return chain_hash(entry.prev_hash, entry.canonical(), entry_key(entry.chain, entry.seq))


#: Session.info key: the entries record() queued for this session's commit.
PENDING = "qcflow_audit_pending"


def record(actor: str, action: str, object_type: str, object_id, now: datetime, **detail) -> AuditEntry:
    """Queue one audit entry; the current transaction's commit writes it (see the module docstring).

    The entry is checked and canonicalised here, so a bad argument raises at the call site. The
    returned entry is not in the session; its seq, prev_hash and hash are set when it is written.
    """
    session = db.session()
    entry_class = AnonymousAuditEntry if actor == ANONYMOUS_ACTOR else AuditEntry
    entry = entry_class(
        at=now.astimezone(timezone.utc),
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        detail=canonical_json(detail),
    )
    for name in ("actor", "action", "object_type", "object_id"):
        value, limit = getattr(entry, name), entry_class.__table__.c[name].type.length
        if value is not None and (not isinstance(value, str) or len(value) > limit):
            raise ValueError(f"audit {name} must be a string of at most {limit} characters: {value!r}")
    session.connection()  # join (or begin) the transaction whose end writes or drops the queue
    session.info.setdefault(PENDING, []).append(entry)
    return entry


def happened_detail(happened_at: datetime, recorded_at: datetime) -> dict:
    """The detail of a fact recorded late: when it happened and when it was recorded (none when the same).

    The entry's own time is the recording; indicators count the fact when it happened."""
    if happened_at == recorded_at:
        return {}
    return {"happened_at": happened_at.astimezone(timezone.utc).isoformat(),
            "recorded_at": recorded_at.astimezone(timezone.utc).isoformat()}


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


def _write(session: Session, entries: list[_EntryColumns]) -> None:
    for chain, (entry_class, head_id) in CHAINS.items():
        of_chain = [entry for entry in entries if isinstance(entry, entry_class)]
        if of_chain:
            _write_chain(session, of_chain, entry_class, head_id)


def _write_chain(session: Session, entries: list[_EntryColumns], entry_class, head_id: int) -> None:
    head_table = AuditHead.__table__
    n = len(entries)
    # Bump and read the tip in one statement (PostgreSQL, SQLite ≥ 3.35): the bump takes the lock.
    bump = (head_table.update().where(head_table.c.id == head_id).values(seq=head_table.c.seq + n)
            .returning(head_table.c.seq, head_table.c.hash))
    tip = session.execute(bump).one_or_none()
    if tip is None:  # the very first entry: create the head (once, even when two writers race), bump again
        session.execute(_insert_head_if_missing(session, head_id))
        tip = session.execute(bump).one()
    last_seq, prev_hash = tip
    rows = []
    for seq, entry in enumerate(entries, start=last_seq - n + 1):
        entry.seq, entry.prev_hash = seq, prev_hash
        entry.hash = prev_hash = entry_hash(entry)
        rows.append({"seq": seq, "at": entry.at, "actor": entry.actor, "action": entry.action,
                     "object_type": entry.object_type, "object_id": entry.object_id, "detail": entry.detail,
                     "prev_hash": entry.prev_hash, "hash": entry.hash})
    session.execute(entry_class.__table__.insert(), rows)
    session.execute(head_table.update().where(head_table.c.id == head_id).values(hash=prev_hash))


def _insert_head_if_missing(session: Session, head_id: int):
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        return AuditHead.__table__.insert().values(id=head_id, seq=0, hash=GENESIS)
    return insert(AuditHead.__table__).values(id=head_id, seq=0, hash=GENESIS).on_conflict_do_nothing()


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


ENTRY_TABLES = frozenset(entry_class.__tablename__ for entry_class, _ in CHAINS.values())


def _touches_audit_entry(statement) -> bool:
    if isinstance(statement, sa.TextClause):
        return any(name in statement.text.lower() for name in ENTRY_TABLES)
    return any(isinstance(element, sa.TableClause) and element.name in ENTRY_TABLES
               for element in sa.sql.visitors.iterate(statement))


def note_read(actor: str, action: str, object_type: str, object_id, **detail) -> None:
    """Remember a read of sensitive data; the request's commit audits it once the answer is built.

    Reads happen while a page or answer is presented; qcflow.core.web.commit_request writes these
    entries only if the answer is a success, in the request's one commit.
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
    #: The chain that fails ("main" or "anonymous").
    chain: str = "main"
    #: Anchors (written heads) the chains were checked against.
    anchors_checked: int = 0
    #: Entries checked per chain.
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Anchor:
    """A chain's head as written outside the database at some time."""

    chain: str
    seq: int
    hash: str
    at: str = ""

    def line(self) -> str:
        return canonical_json({"at": self.at, "chain": self.chain, "seq": self.seq, "hash": self.hash})


class AnchorFileError(ValueError):
    """The anchor file cannot be read or a line of it is not an anchor."""


def read_anchors(path: str) -> list[Anchor]:
    """Every anchor in the file written by write_anchor(); a line that is not one is an error."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError as error:
        raise AnchorFileError(f"cannot read the anchor file {path}: {error.strerror}") from error
    anchors = []
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            value = json.loads(text)
            anchor = Anchor(str(value["chain"]), int(value["seq"]), str(value["hash"]), str(value.get("at", "")))
        except (ValueError, KeyError, TypeError) as error:
            raise AnchorFileError(f"{path} line {number} is not an audit anchor") from error
        if anchor.chain not in CHAINS:
            raise AnchorFileError(f"{path} line {number} names an unknown chain {anchor.chain!r}")
        anchors.append(anchor)
    return anchors


def heads(now: datetime) -> list[Anchor]:
    """The current head of each chain that has entries."""
    rows = db.session.execute(sa.select(AuditHead.id, AuditHead.seq, AuditHead.hash)).all()
    chain_of = {head_id: chain for chain, (_, head_id) in CHAINS.items()}
    at = now.astimezone(timezone.utc).isoformat()
    return [Anchor(chain_of[head_id], seq, hash_, at) for head_id, seq, hash_ in sorted(rows)
            if head_id in chain_of and seq > 0]


def write_anchor(path: str, now: datetime) -> list[Anchor]:
    """Append the chains' heads to `path` (append-only, synced) and log them (syslog/journal)."""
    anchors = heads(now)
    if not anchors:
        return []
    text = "".join(anchor.line() + "\n" for anchor in anchors)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, text.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    for anchor in anchors:
        log.info("audit anchor %s", anchor.line())
    return anchors


def anchor_job(now: datetime) -> str:
    """Scheduled: append the heads to AUDIT_ANCHOR_FILE (or only log them when none is configured)."""
    from flask import current_app

    path = current_app.config.get("AUDIT_ANCHOR_FILE")
    if path:
        anchors = write_anchor(path, now)
    else:
        anchors = heads(now)
        for anchor in anchors:
            log.info("audit anchor %s", anchor.line())
    return ", ".join(f"{a.chain} seq {a.seq}" for a in anchors) or "no entries"


def verify(batch: int = 5000, anchors: list[Anchor] | None = None) -> VerifyResult:
    """Walk each chain in order; report the first entry that does not link, hash or match an anchor."""
    counts, anchors = {}, list(anchors or ())
    for chain, (entry_class, head_id) in CHAINS.items():
        expected = {}
        for anchor in anchors:
            if anchor.chain == chain:
                expected.setdefault(anchor.seq, set()).add(anchor.hash)
        result = _verify_chain(entry_class, head_id, batch, expected)
        if not result.ok:
            return result
        counts[chain] = result.checked
    return VerifyResult(True, sum(counts.values()), anchors_checked=len(anchors), counts=counts)


def _verify_chain(entry_class, head_id: int, batch: int, anchored: dict[int, set[str]]) -> VerifyResult:
    chain = entry_class.chain
    prev_hash, expected_seq, checked, last_id = GENESIS, 1, 0, 0
    while True:
        rows = db.session.scalars(
            sa.select(entry_class).where(entry_class.id > last_id).order_by(entry_class.id).limit(batch)
        ).all()
        if not rows:
            break
        for entry in rows:
            fail = VerifyResult(False, checked, expected_seq, chain=chain)
            if entry.seq != expected_seq:
                fail.reason = f"found seq {entry.seq} (entries deleted or reordered)"
                return fail
            if entry.prev_hash != prev_hash:
                fail.reason = "prev_hash does not match the previous entry"
                return fail
            if entry_hash(entry) != entry.hash:
                fail.reason = "content does not match its hash (edited, or re-hashed without the audit key)"
                return fail
            if entry.seq in anchored and entry.hash not in anchored[entry.seq]:
                fail.reason = "the entry does not match the anchor written for it (chain rewritten)"
                return fail
            prev_hash, expected_seq, checked, last_id = entry.hash, expected_seq + 1, checked + 1, entry.id
        db.session.expunge_all()
    beyond = [seq for seq in anchored if seq > checked]
    if beyond:
        return VerifyResult(False, checked, checked + 1, f"the chain ends before seq {min(beyond)}, which an "
                            "anchor records (newest entries deleted)", chain=chain)
    head = db.session.get(AuditHead, head_id)
    if head is None and checked:
        return VerifyResult(False, checked, checked + 1, "the chain's head is missing (deleted)", chain=chain)
    if head is not None and (head.seq != checked or head.hash != prev_hash):
        return VerifyResult(False, checked, checked + 1, "chain ends before the recorded head (entries deleted at the end)",
                            chain=chain)
    return VerifyResult(True, checked, chain=chain)
