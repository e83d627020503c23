"""Append-only, hash-chained audit trail written in the same transaction as the change.

Each entry's hash is sha256(prev_hash ‖ canonical_json(entry)). The single-row
`audit_head` holds the chain's tip; updating it first serialises concurrent
writers (row lock on PostgreSQL, the write lock on SQLite), so the chain never forks.
The database refuses UPDATE and DELETE on `audit_entry` (triggers in the migration).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from qcflow.core.db import Base
from qcflow.extensions import db

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


def record(actor: str, action: str, object_type: str, object_id, now: datetime, **detail) -> AuditEntry:
    """Append one audit entry in the current transaction and flush it."""
    session = db.session
    head_table = AuditHead.__table__
    # Bump and read the tip in one statement (PostgreSQL, SQLite ≥ 3.35): the bump takes the lock.
    bump = (head_table.update().where(head_table.c.id == 1).values(seq=head_table.c.seq + 1)
            .returning(head_table.c.seq, head_table.c.hash))
    tip = session.execute(bump).one_or_none()
    if tip is None:
        session.execute(head_table.insert().values(id=1, seq=1, hash=GENESIS))
        tip = (1, GENESIS)
    seq, prev_hash = tip
    entry = AuditEntry(
        seq=seq,
        at=now.astimezone(timezone.utc),
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        detail=canonical_json(detail),
        prev_hash=prev_hash,
    )
    entry.hash = chain_hash(prev_hash, entry.canonical())
    session.add(entry)
    session.execute(head_table.update().where(head_table.c.id == 1).values(hash=entry.hash))
    session.flush()
    return entry


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
