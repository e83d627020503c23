"""The audit trail: same transaction, append-only in the database, hash-chained."""
import pytest
import sqlalchemy as sa

from qcflow.core import audit
from tests.conftest import AUDIT_KEY, PG_URL


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
    # Sealed with the configured AUDIT_KEY (HMAC), not a hash anyone could recompute.
    assert entries[2].hash == chain_hash(entries[1].hash, entries[2].canonical(), AUDIT_KEY)
    assert entries[2].hash != chain_hash(entries[1].hash, entries[2].canonical())
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


def edit_and_rehash_without_the_key(seq, actor):
    """What a database administrator without AUDIT_KEY can do: edit an entry, recompute every hash from the genesis."""
    from qcflow.core.audit import GENESIS, AuditEntry, chain_hash
    from qcflow.extensions import db

    prev, statements = GENESIS, [f"UPDATE audit_entry SET actor = '{actor}' WHERE seq = {seq}"]
    for entry in db.session.scalars(sa.select(AuditEntry).order_by(AuditEntry.seq)).all():
        if entry.seq == seq:
            entry.actor = actor
        entry.prev_hash = prev
        prev = chain_hash(prev, entry.canonical())
        statements.append(f"UPDATE audit_entry SET prev_hash = '{entry.prev_hash}', hash = '{prev}' WHERE seq = {entry.seq}")
    db.session.expunge_all()
    statements.append(f"UPDATE audit_head SET hash = '{prev}' WHERE id = 1")
    return statements


def test_an_edit_re_hashed_without_the_key_fails_verification(ctx, now):
    write_entries(now)
    without_trigger(edit_and_rehash_without_the_key(2, "user:2"))
    result = audit.verify()
    assert not result.ok and result.broken_seq == 1 and "without the audit key" in result.reason


def test_newest_entries_deleted_and_the_head_moved_back_fail_against_the_anchor(ctx, now, tmp_path):
    from qcflow.extensions import db

    anchors = tmp_path / "audit-anchor.log"
    write_entries(now)
    audit.write_anchor(str(anchors), now)
    write_entries(now)
    audit.write_anchor(str(anchors), now)
    assert audit.verify(anchors=audit.read_anchors(str(anchors))).ok
    # A database administrator cuts off the newest entries and moves the head back to the 3rd:
    # every remaining link and hash is genuine, so the chain alone cannot tell.
    third = db.session.execute(sa.text("SELECT hash FROM audit_entry WHERE seq = 3")).scalar()
    without_trigger(["DELETE FROM audit_entry WHERE seq > 3", f"UPDATE audit_head SET seq = 3, hash = '{third}' WHERE id = 1"])
    assert audit.verify().ok
    result = audit.verify(anchors=audit.read_anchors(str(anchors)))
    assert not result.ok and result.broken_seq == 4 and "anchor" in result.reason


def test_a_deleted_head_is_reported_not_passed_as_intact(ctx, now):
    write_entries(now)
    without_trigger(["DELETE FROM audit_head WHERE id = 1"])
    result = audit.verify()
    assert not result.ok and "head is missing" in result.reason


def test_a_chain_rebuilt_with_the_key_from_an_earlier_point_fails_against_the_anchor(ctx, app, now, tmp_path):
    """Even with the key (the app's environment), a chain rewritten below an anchor no longer matches it."""
    from qcflow.core.audit import chain_hash
    from qcflow.extensions import db

    anchors = tmp_path / "audit-anchor.log"
    write_entries(now)
    audit.write_anchor(str(anchors), now)
    key = app.config["AUDIT_KEY"]
    rows = db.session.execute(sa.text("SELECT seq, hash FROM audit_entry ORDER BY seq")).all()
    entry = db.session.scalars(sa.select(audit.AuditEntry).where(audit.AuditEntry.seq == 3)).one()
    entry.detail = "forged"
    forged = chain_hash(rows[1].hash, entry.canonical(), key)
    db.session.expunge_all()
    without_trigger([f"UPDATE audit_entry SET detail = 'forged', hash = '{forged}' WHERE seq = 3",
                     f"UPDATE audit_head SET hash = '{forged}' WHERE id = 1"])
    assert audit.verify().ok  # consistent in itself
    result = audit.verify(anchors=audit.read_anchors(str(anchors)))
    assert not result.ok and result.broken_seq == 3 and "anchor" in result.reason


def test_the_anchor_job_appends_the_heads_of_both_chains(ctx, app, now, tmp_path):
    from qcflow.scheduling.jobs import find_job
    from qcflow.scheduling.runner import run_job

    anchors = tmp_path / "audit-anchor.log"
    app.config["AUDIT_ANCHOR_FILE"] = str(anchors)
    write_entries(now)
    audit.record("anonymous", "test.anonymous", "thing", 9, now)
    from qcflow.extensions import db

    db.session.commit()
    run = run_job(find_job("audit.anchor"), now)
    assert run.status == "ok"
    written = audit.read_anchors(str(anchors))
    assert {(a.chain, a.seq) for a in written} == {("main", 3), ("anonymous", 1)}
    assert audit.verify(anchors=written).ok and audit.verify(anchors=written).anchors_checked == 2


def test_cli_anchor_and_verify_exit_codes(ctx, runner, now, tmp_path):
    anchors = str(tmp_path / "audit-anchor.log")
    write_entries(now)
    assert runner.invoke(args=["qcflow", "audit", "anchor"]).exit_code == 2  # nowhere to write
    written = runner.invoke(args=["qcflow", "audit", "anchor", "--file", anchors])
    assert written.exit_code == 0 and "seq 3" in written.output
    missing = runner.invoke(args=["qcflow", "audit", "verify", "--anchor", str(tmp_path / "missing.log")])
    assert missing.exit_code == 2 and "cannot read" in missing.output
    ok = runner.invoke(args=["qcflow", "audit", "verify", "--anchor", anchors])
    assert ok.exit_code == 0 and "3 entries, 0 in the anonymous chain, 1 anchors matched" in ok.output
    without_trigger(["DELETE FROM audit_entry WHERE seq = 3", "UPDATE audit_head SET seq = 2, hash = "
                     "(SELECT hash FROM audit_entry WHERE seq = 2) WHERE id = 1"])
    assert runner.invoke(args=["qcflow", "audit", "verify"]).exit_code == 0  # the database alone cannot tell
    broken = runner.invoke(args=["qcflow", "audit", "verify", "--anchor", anchors])
    assert broken.exit_code == 1 and "seq 3" in broken.output and "anchor" in broken.output
    (tmp_path / "garbage.log").write_text("not json\n")
    garbage = runner.invoke(args=["qcflow", "audit", "verify", "--anchor", str(tmp_path / "garbage.log")])
    assert garbage.exit_code == 2 and "line 1" in garbage.output


def test_anonymous_entries_have_their_own_verified_append_only_chain(ctx, now):
    from qcflow.extensions import db

    write_entries(now)
    audit.record("anonymous", "test.anonymous", "thing", 9, now)
    db.session.commit()
    assert raw("SELECT count(*) FROM audit_anonymous_entry").scalar() == 1
    assert raw("SELECT max(seq) FROM audit_entry").scalar() == 3
    assert audit.verify().ok and audit.verify().checked == 4
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        raw("DELETE FROM audit_anonymous_entry")
    db.session.rollback()
    without_anonymous_trigger(["UPDATE audit_anonymous_entry SET detail = 'forged'"])
    result = audit.verify()
    assert not result.ok and result.chain == "anonymous" and result.broken_seq == 1


def without_anonymous_trigger(statements):
    if PG_URL:
        raw("ALTER TABLE audit_anonymous_entry DISABLE TRIGGER audit_anonymous_entry_append_only")
    else:
        raw("DROP TRIGGER audit_anonymous_entry_no_update")
        raw("DROP TRIGGER audit_anonymous_entry_no_delete")
    for sql in statements:
        raw(sql)
    if PG_URL:
        raw("ALTER TABLE audit_anonymous_entry ENABLE TRIGGER audit_anonymous_entry_append_only")
    from qcflow.extensions import db

    db.session.commit()


def test_an_existing_unkeyed_chain_is_sealed_from_the_configured_seq_on(ctx, app, now):
    """Upgrading an installation: entries before AUDIT_KEY_SINCE_SEQ keep the plain hash, later ones need the key."""
    app.config["AUDIT_KEY"] = None
    write_entries(now)
    app.config["AUDIT_KEY"], app.config["AUDIT_KEY_SINCE_SEQ"] = AUDIT_KEY, 4
    write_entries(now)
    assert audit.verify().ok and audit.verify().checked == 6
    app.config["AUDIT_KEY_SINCE_SEQ"] = 1  # the key claimed for entries written without it
    result = audit.verify()
    assert not result.ok and result.broken_seq == 1
    app.config["AUDIT_KEY_SINCE_SEQ"] = 4
    without_trigger(edit_and_rehash_without_the_key(5, "user:9"))  # the keyed part re-hashed without the key
    result = audit.verify()
    assert not result.ok and result.broken_seq == 4
