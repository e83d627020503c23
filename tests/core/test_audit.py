"""The audit trail: same transaction, append-only in the database, hash-chained."""
import pytest
import sqlalchemy as sa

from qcflow.core import audit
from tests.conftest import PG_URL


def write_entries(now, n=3):
    from qcflow.extensions import db

    for i in range(n):
        audit.record("user:1", "test.thing", "thing", i, now, after={"i": i, "名称": "中文"})
    db.session.commit()


def raw(sql):
    from qcflow.extensions import db

    return db.session.execute(sa.text(sql))


def test_entries_chain_from_genesis(ctx, now):
    write_entries(now)
    from qcflow.core.audit import GENESIS, AuditEntry, chain_hash
    from qcflow.extensions import db

    entries = db.session.scalars(sa.select(AuditEntry).order_by(AuditEntry.seq)).all()
    assert [e.seq for e in entries] == [1, 2, 3]
    assert entries[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in zip(entries, entries[1:]))
    assert entries[2].hash == chain_hash(entries[1].hash, entries[2].canonical())
    assert audit.verify().ok and audit.verify().checked == 3


@pytest.mark.parametrize("sql", ["UPDATE audit_entry SET actor = 'someone-else'", "DELETE FROM audit_entry"])
def test_database_refuses_update_and_delete(ctx, now, sql):
    write_entries(now)
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        raw(sql)
    from qcflow.extensions import db

    db.session.rollback()
    assert audit.verify().ok


def without_trigger(statements):
    """Run tampering SQL with the append-only protection switched off (as an attacker with DDL rights)."""
    if PG_URL:
        raw("ALTER TABLE audit_entry DISABLE TRIGGER audit_entry_append_only")
    else:
        raw("DROP TRIGGER audit_entry_no_update")
        raw("DROP TRIGGER audit_entry_no_delete")
    for sql in statements:
        raw(sql)
    if PG_URL:
        raw("ALTER TABLE audit_entry ENABLE TRIGGER audit_entry_append_only")
    from qcflow.extensions import db

    db.session.commit()


@pytest.mark.parametrize(
    "tampering,broken_seq",
    [
        (["UPDATE audit_entry SET detail = 'forged' WHERE seq = 2"], 2),
        (["DELETE FROM audit_entry WHERE seq = 2"], 2),
        (["DELETE FROM audit_entry WHERE seq = 3"], 3),
        # Swap the first two entries' row order.
        (["UPDATE audit_entry SET id = -1 WHERE seq = 1", "UPDATE audit_entry SET id = 1 WHERE seq = 2",
          "UPDATE audit_entry SET id = 2 WHERE id = -1"], 1),
        # Swap their order and renumber them, so the sequence looks gap-free.
        (["UPDATE audit_entry SET seq = -1 WHERE seq = 1", "UPDATE audit_entry SET seq = 1 WHERE seq = 2",
          "UPDATE audit_entry SET seq = 2 WHERE seq = -1"], 1),
    ],
    ids=["edited", "deleted-middle", "deleted-last", "reordered", "reordered-renumbered"],
)
def test_verify_finds_the_first_broken_link(ctx, now, tampering, broken_seq):
    write_entries(now)
    without_trigger(tampering)
    result = audit.verify()
    assert not result.ok and result.broken_seq == broken_seq


def test_cli_verify_reports_intact_and_broken(ctx, runner, now):
    write_entries(now)
    ok = runner.invoke(args=["qcflow", "audit", "verify"])
    assert ok.exit_code == 0 and "3 entries" in ok.output
    without_trigger(["UPDATE audit_entry SET actor = 'user:2' WHERE seq = 2"])
    broken = runner.invoke(args=["qcflow", "audit", "verify"])
    assert broken.exit_code == 1 and "seq 2" in broken.output


def test_a_failure_after_the_audit_insert_leaves_nothing(app, now):
    """Fault injection: the change and its audit row live or die together."""
    from qcflow.auth import services
    from qcflow.auth.models import Department
    from qcflow.core.actors import Actor
    from qcflow.extensions import db

    with app.app_context():
        services.create_department("ICU", "重症医学科", "clinical", actor=Actor.system("test"), now=now)
        assert db.session.scalar(sa.select(sa.func.count()).select_from(audit.AuditEntry)) == 1
        db.session.rollback()  # what every entrypoint does when anything raises before commit
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Department)) == 0
        assert db.session.scalar(sa.select(sa.func.count()).select_from(audit.AuditEntry)) == 0
        assert audit.verify().ok


def test_a_request_that_fails_after_auditing_persists_nothing(app):
    from qcflow.auth import services
    from qcflow.auth.models import Department
    from qcflow.auth.permissions import public
    from qcflow.core.actors import Actor
    from qcflow.core.time import now as clock_now
    from qcflow.extensions import db

    @app.post("/api/v1/test-fault")
    @public
    def fault():
        services.create_department("ICU", "重症医学科", "clinical", actor=Actor.anonymous(), now=clock_now())
        raise RuntimeError("injected after the audit insert, before commit")

    response = app.test_client().post("/api/v1/test-fault")
    assert response.status_code == 500 and response.json["code"] == "internal_error"
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Department)) == 0
        assert db.session.scalar(sa.select(sa.func.count()).select_from(audit.AuditEntry)) == 0
