"""R9: backup while writes continue, then a restore drill: integrity check, row counts, `audit verify`,
and the application boots and serves a login on the restored database. SQLite: `qcflow backup`;
PostgreSQL: `pg_dump -Fc` / `pg_restore` into a fresh database."""
from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa

from tests.conftest import PG_URL, ROOT, login, make_app

TABLES = ("adverse_event", "audit_entry", "followup_task", "user_account", "patient", "mdt_discussion")


def writer(app, stop, department_id, written):
    """File reports continuously through the service, one commit each (the app keeps working)."""
    from qcflow.core.actors import Actor
    from qcflow.core.time import now
    from qcflow.events import services
    from qcflow.extensions import db

    with app.app_context():
        while not stop.is_set():
            at = now()
            services.file_report({"category_code": "medication", "subcategory_code": "wrong_dose",
                                  "reporter_grade": "IV", "care_stage": "medication",
                                  "occurred_at": at - timedelta(hours=1), "discovered_at": at - timedelta(minutes=30),
                                  "location": "病区", "department_id": department_id, "description": "备份期间的写入"},
                                 mode="anonymous", actor=Actor.anonymous(), now=at)
            db.session.commit()
            written.append(1)
        db.session.remove()


def counts(url):
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar() for t in TABLES}  # noqa: S608 (fixed names)
    finally:
        engine.dispose()


def cli(database_url, instance, *args):
    env = {**os.environ, "QCFLOW_DATABASE_URL": database_url, "QCFLOW_INSTANCE_PATH": str(instance)}
    return subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "qcflow", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def boots_and_serves(url, instance):
    """The app starts on the restored database, answers /healthz and logs a user in."""
    app = make_app(url, str(instance))
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    assert login(client, "quality").status_code == 302
    assert client.get("/api/v1/me").json["username"] == "quality"
    from qcflow.extensions import db

    with app.app_context():  # let the restored database go (the PostgreSQL drill drops it)
        db.session.remove()
        db.engine.dispose()


def under_load(app, world, action):
    stop, written = threading.Event(), []
    thread = threading.Thread(target=writer, args=(app, stop, world["A"]["department"].id, written))
    thread.start()
    try:
        while len(written) < 5:
            time.sleep(0.05)
        before = len(written)
        result = action()
        during = len(written) - before
    finally:
        stop.set()
        thread.join(60)
    return result, during


@pytest.mark.skipif(PG_URL is not None, reason="SQLite backup; PostgreSQL has its own drill below")
def test_sqlite_backup_while_writing_then_restore_drill(app, world, database_url, tmp_path):
    from qcflow.extensions import db

    db.session.commit()
    backup = tmp_path / "backup.sqlite3"
    result, during = under_load(app, world, lambda: cli(database_url, tmp_path, "backup", str(backup)))
    assert result.returncode == 0, result.stderr
    assert during >= 1, "the writer did not run during the backup"

    restored_dir = tmp_path / "restored"
    restored_dir.mkdir()
    restored = restored_dir / "qcflow.sqlite3"
    shutil.copyfile(backup, restored)
    with sqlite3.connect(restored) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    url = f"sqlite:///{restored}"
    restored_counts = counts(url)
    live = counts(database_url)
    assert all(restored_counts[t] <= live[t] for t in TABLES)  # a snapshot of an earlier moment…
    assert restored_counts["adverse_event"] >= 2 + 5 and restored_counts["user_account"] == live["user_account"]
    verified = cli(url, restored_dir, "audit", "verify")  # …whose audit chain is complete
    assert verified.returncode == 0 and f"{restored_counts['audit_entry']} entries" in verified.stdout, verified.stdout
    boots_and_serves(url, restored_dir)


@pytest.mark.skipif(PG_URL is None or shutil.which("pg_dump") is None, reason="PostgreSQL drill (pg_dump, pg_restore)")
def test_postgresql_dump_while_writing_then_restore_drill(app, world, database_url, tmp_path):
    from qcflow.extensions import db

    db.session.commit()
    plain = sa.engine.make_url(PG_URL).set(drivername="postgresql")
    dump = tmp_path / "qcflow.dump"
    result, during = under_load(app, world, lambda: subprocess.run(
        ["pg_dump", "-Fc", "-f", str(dump), plain.render_as_string(hide_password=False)],
        capture_output=True, text=True, timeout=300))
    assert result.returncode == 0, result.stderr
    name = f"qcflow_restore_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(plain.set(database="postgres", drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))  # noqa: S608 (generated name)
    target = plain.set(database=name)
    try:
        started = time.monotonic()
        restore = subprocess.run(["pg_restore", "--exit-on-error", "--no-owner", "-d",
                                  target.render_as_string(hide_password=False), str(dump)],
                                 capture_output=True, text=True, timeout=300)
        rto = time.monotonic() - started
        assert restore.returncode == 0, restore.stderr
        url = target.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
        restored_counts, live = counts(url), counts(PG_URL)
        assert all(restored_counts[t] <= live[t] for t in TABLES)
        assert restored_counts["adverse_event"] >= 2 and restored_counts["user_account"] == live["user_account"]
        verified = cli(url, tmp_path, "audit", "verify")
        assert verified.returncode == 0, verified.stdout + verified.stderr
        restored_engine = sa.create_engine(url)
        try:
            with restored_engine.connect() as conn:  # the append-only trigger came back with the restore
                with pytest.raises(sa.exc.DBAPIError, match="append-only"):
                    conn.execute(sa.text("DELETE FROM audit_entry"))
        finally:
            restored_engine.dispose()
        boots_and_serves(url, tmp_path)
        print(f"R9: pg_restore took {rto:.1f} s")
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
