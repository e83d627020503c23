"""The audit trail is written at commit: record() queues, the commit writes the queue last, a rollback drops it."""
import threading

import pytest
import sqlalchemy as sa

from qcflow.core import audit


def count_entries():
    from qcflow.extensions import db

    return db.session.scalar(sa.select(sa.func.count()).select_from(audit.AuditEntry))


class Statements:
    """The SQL the app's engine sends, in order."""

    def __init__(self, engine):
        self.engine, self.sql = engine, []

    def _note(self, _conn, _cursor, statement, *_args):
        self.sql.append(" ".join(statement.split()).upper())

    def __enter__(self):
        sa.event.listen(self.engine, "before_cursor_execute", self._note)
        return self

    def __exit__(self, *_exc):
        sa.event.remove(self.engine, "before_cursor_execute", self._note)

    def touching(self, table):
        return [s for s in self.sql if table.upper() in s]


def test_record_writes_nothing_until_the_commit_and_then_last(ctx, now):
    from qcflow.auth import services
    from qcflow.auth.models import Department
    from qcflow.core.actors import Actor
    from qcflow.extensions import db

    audit.record("user:1", "test.first", "thing", 0, now)  # the first entry also creates the head row
    db.session.commit()
    with Statements(db.engine) as seen:
        services.create_department("ICU", "重症医学科", "clinical", actor=Actor.system("test"), now=now)
        audit.record("user:1", "test.thing", "thing", 1, now, after={"i": 1})
        assert seen.touching("audit_") == [] and audit.pending() == 2
        db.session.add(Department(code="CCU", name="心脏监护", kind="clinical", created_at=now))  # flushed by the commit
        db.session.commit()
    audit_sql = [i for i, s in enumerate(seen.sql) if "AUDIT_" in s]
    # one bump by 2 (RETURNING), one INSERT (executemany), one tip update, and nothing but COMMIT after it
    assert [seen.sql[i].split()[0] for i in audit_sql] == ["UPDATE", "INSERT", "UPDATE"]
    assert "RETURNING" in seen.sql[audit_sql[0]]
    assert audit_sql[-1] == max(i for i, s in enumerate(seen.sql) if not s.startswith(("COMMIT", "RELEASE")))
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Department)) == 2
    entries = db.session.scalars(sa.select(audit.AuditEntry).order_by(audit.AuditEntry.seq)).all()
    assert [(e.seq, e.action) for e in entries] == [(1, "test.first"), (2, "department.create"), (3, "test.thing")]
    assert entries[0].prev_hash == audit.GENESIS and entries[2].prev_hash == entries[1].hash
    assert audit.verify().ok and audit.verify().checked == 3 and audit.pending() == 0


def test_record_returns_the_entry_filled_in_at_commit(ctx, now):
    from qcflow.extensions import db

    entry = audit.record("user:1", "test.thing", "thing", 7, now, n=1)
    assert entry.seq is None and entry.hash is None
    db.session.commit()
    stored = db.session.scalars(sa.select(audit.AuditEntry)).one()
    assert (entry.seq, entry.prev_hash, entry.hash) == (stored.seq, stored.prev_hash, stored.hash)


def test_bad_input_fails_at_the_call_site(ctx, now):
    from qcflow.extensions import db

    with pytest.raises(TypeError):
        audit.record("user:1", "test.thing", "thing", 1, now, after={1: "a", "b": 2})  # keys cannot be sorted
    with pytest.raises(ValueError, match="actor"):
        audit.record("x" * 81, "test.thing", "thing", 1, now)
    assert audit.pending() == 0
    db.session.commit()
    assert count_entries() == 0


def test_a_rollback_drops_the_queue(ctx, now):
    from qcflow.extensions import db

    audit.record("user:1", "test.dropped", "thing", 1, now)
    db.session.rollback()
    assert audit.pending() == 0
    audit.record("user:1", "test.kept", "thing", 2, now)
    db.session.commit()
    assert db.session.scalars(sa.select(audit.AuditEntry.action)).all() == ["test.kept"]
    assert audit.verify().ok


def test_closing_the_session_drops_the_queue(app, now):
    from qcflow.extensions import db

    with app.app_context():
        audit.record("user:1", "test.dropped", "thing", 1, now)
    with app.app_context():  # the previous context's session was removed (closed) at teardown
        assert audit.pending() == 0
        db.session.commit()
        assert count_entries() == 0


def test_queries_of_the_audit_table_see_queued_entries(ctx, now):
    """Read-your-writes, like autoflush: the query writes the queue first; a rollback still undoes it."""
    from qcflow.extensions import db

    audit.record("user:1", "test.thing", "thing", 1, now)
    assert count_entries() == 1 and audit.pending() == 0
    audit.record("user:1", "test.thing", "thing", 2, now)
    with db.session.no_autoflush:
        assert count_entries() == 1
    assert audit.flush_pending() == 1 and audit.flush_pending() == 0
    db.session.rollback()
    assert count_entries() == 0 and audit.verify().ok


def test_savepoints_are_refused(ctx, now):
    """A savepoint's rollback could not take back the entries queued in it, so there are none."""
    from qcflow.extensions import db

    audit.record("user:1", "test.before", "thing", 1, now)
    with pytest.raises(RuntimeError, match="savepoints"):
        db.session.begin_nested()
    db.session.commit()
    assert db.session.scalars(sa.select(audit.AuditEntry.action)).all() == ["test.before"]


def test_concurrent_committers_keep_one_gap_free_chain(app, now):
    """Several threads, each with its own session, queueing 1–3 entries per transaction."""
    from qcflow.extensions import db

    threads, per_thread, errors = 6, 8, []
    barrier = threading.Barrier(threads)

    def work(t):
        try:
            with app.app_context():
                barrier.wait()
                for i in range(per_thread):
                    for k in range(1 + (t + i) % 3):
                        audit.record(f"user:{t}", "test.concurrent", "thing", f"{t}-{i}-{k}", now)
                    if i % 4 == 3:  # a failed request: nothing of it may remain
                        audit.record(f"user:{t}", "test.rolled_back", "thing", f"{t}-{i}", now)
                        db.session.rollback()
                    else:
                        db.session.commit()
        except Exception as error:  # reported below, not lost in the thread
            errors.append(error)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert not errors, errors
    expected = sum(1 + (t + i) % 3 for t in range(threads) for i in range(per_thread) if i % 4 != 3)
    with app.app_context():
        seqs = db.session.scalars(sa.select(audit.AuditEntry.seq).order_by(audit.AuditEntry.seq)).all()
        assert seqs == list(range(1, expected + 1))
        assert db.session.get(audit.AuditHead, 1).seq == expected
        result = audit.verify()
        assert result.ok and result.checked == expected
