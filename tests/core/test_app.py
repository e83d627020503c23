"""The app factory, configuration, database settings and the clock helpers."""
import os
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from hypothesis import given, strategies as st
from sqlalchemy.dialects import sqlite

from qcflow import create_app
from qcflow.core import time as clock
from tests.conftest import PG_URL, ROOT, make_app


def test_production_refuses_default_secret_key(tmp_path):
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        make_app(f"sqlite:///{tmp_path}/x.sqlite3", str(tmp_path), ENV="production",
                 SECRET_KEY="dev-only-not-secret")


@pytest.mark.parametrize("audit_key", [None, "", "too-short"])
def test_production_refuses_a_missing_or_short_audit_key(tmp_path, audit_key):
    """Without the key outside the database, a database administrator could re-hash the audit chain."""
    with pytest.raises(RuntimeError, match="QCFLOW_AUDIT_KEY"):
        make_app(f"sqlite:///{tmp_path}/x.sqlite3", str(tmp_path), ENV="production",
                 SECRET_KEY="a-long-random-production-secret", AUDIT_KEY=audit_key)


def test_production_starts_with_a_real_secret_and_secure_cookies(tmp_path):
    app = make_app(f"sqlite:///{tmp_path}/x.sqlite3", str(tmp_path), ENV="production",
                   SECRET_KEY="a-long-random-production-secret")
    assert app.config["SESSION_COOKIE_SECURE"] is True


def test_config_from_instance_file_and_environment(tmp_path, monkeypatch):
    (tmp_path / "config.py").write_text('TIMEZONE = "Asia/Urumqi"\nHOSPITAL_LEVEL = "secondary"\n')
    monkeypatch.setenv("QCFLOW_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("QCFLOW_DATABASE_URL", f"sqlite:///{tmp_path}/env.sqlite3")
    monkeypatch.setenv("QCFLOW_HOSPITAL_LEVEL", "tertiary")
    app = create_app()
    assert app.config["TIMEZONE"] == "Asia/Urumqi"  # from instance/config.py
    assert app.config["HOSPITAL_LEVEL"] == "tertiary"  # environment wins over the file
    assert app.config["SQLALCHEMY_DATABASE_URI"].endswith("env.sqlite3")


def test_default_database_is_the_instance_sqlite_file(tmp_path, monkeypatch):
    monkeypatch.setenv("QCFLOW_INSTANCE_PATH", str(tmp_path))
    monkeypatch.delenv("QCFLOW_DATABASE_URL", raising=False)
    app = create_app()
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path}/qcflow.sqlite3"


@pytest.mark.skipif(PG_URL is not None, reason="SQLite settings")
def test_sqlite_runs_in_wal_mode_with_busy_timeout_and_foreign_keys(app, ctx):
    from qcflow.extensions import db

    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA mmap_size").scalar() == 0  # jobs and commands: no map


@pytest.mark.skipif(PG_URL is not None, reason="SQLite settings")
def test_the_web_workers_read_sqlite_through_a_memory_map(tmp_path, monkeypatch):
    import runpy

    from qcflow.extensions import db

    monkeypatch.setenv("QCFLOW_SQLITE_MMAP", "")  # so that what the settings file sets is undone after
    monkeypatch.delenv("QCFLOW_SQLITE_MMAP")
    runpy.run_path(os.path.join(ROOT, "scripts", "gunicorn.conf.py"))
    assert os.environ["QCFLOW_SQLITE_MMAP"] == "true"
    monkeypatch.setenv("QCFLOW_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("QCFLOW_DATABASE_URL", f"sqlite:///{tmp_path}/web.sqlite3")
    app = create_app()
    with app.app_context(), db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA mmap_size").scalar() == 1 << 30
    with app.app_context():
        db.engine.dispose()


def test_foreign_keys_are_enforced(ctx):
    from qcflow.auth.models import UserSession
    from qcflow.extensions import db

    at = datetime.now(timezone.utc)
    db.session.add(UserSession(key_hash="x" * 64, user_id=999, created_at=at, last_seen_at=at, expires_at=at))
    with pytest.raises(sa.exc.IntegrityError):
        db.session.flush()
    db.session.rollback()


def test_datetimes_come_back_aware_utc(ctx, create_user):
    from qcflow.auth.models import User
    from qcflow.extensions import db

    shanghai_noon = datetime.fromisoformat("2026-05-01T12:00:00+08:00")
    user = create_user(created_at=shanghai_noon, password_changed_at=shanghai_noon)
    db.session.commit()
    db.session.expire_all()
    loaded = db.session.get(User, user.id)
    assert loaded.created_at.tzinfo is timezone.utc
    assert loaded.created_at == shanghai_noon


def test_datetimes_written_by_other_hands_come_back_aware_utc(ctx, create_user, is_postgres):
    """Values not written through the column type (bulk SQL, a date, another session time zone) are
    still read as UTC instants."""
    from qcflow.auth.models import User
    from qcflow.extensions import db

    user = create_user()
    db.session.commit()
    if is_postgres:
        assert db.session.scalar(sa.text("SHOW TIME ZONE")) == "UTC"
        stored = ["2026-05-01 12:00:00+08", "2026-05-01 04:00:00.000001+00"]
    else:
        stored = ["2026-05-01 04:00:00", "2026-05-01 04:00:00.000001", "2026-05-01"]
    for text in stored:
        db.session.execute(sa.text("UPDATE user_account SET created_at = :at WHERE id = :id"), {"at": text, "id": user.id})
        db.session.expire_all()
        loaded = db.session.get(User, user.id).created_at
        assert loaded.tzinfo is timezone.utc
        assert loaded.replace(microsecond=0) == datetime(2026, 5, 1, 4 if text != "2026-05-01" else 0, tzinfo=timezone.utc)


@given(st.datetimes(min_value=datetime(1000, 1, 2), max_value=datetime(9999, 12, 30),
                    timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=8)),
                                               timezone(timedelta(hours=-5, minutes=-30))])))
def test_sqlite_stores_the_text_sqlalchemy_writes(value):
    """The one-step SQLite writer of UTC timestamps stores exactly the text the general path (UTC,
    then SQLAlchemy's DATETIME) stores, so text order stays time order and old rows compare equal."""
    from qcflow.core.db import UTCDateTime

    dialect = sqlite.dialect()
    general = sa.DateTime()._cached_bind_processor(dialect)
    assert UTCDateTime()._cached_bind_processor(dialect)(value) == general(
        value.astimezone(timezone.utc).replace(tzinfo=None))


def test_naive_datetimes_are_refused(ctx, create_user):
    with pytest.raises(sa.exc.StatementError, match="naive datetime"):
        create_user(created_at=datetime(2026, 5, 1, 12, 0))


def test_today_is_the_hospital_calendar_day(ctx):
    # 16:30 UTC is already 00:30 the next day in Shanghai.
    late_utc = datetime(2026, 2, 28, 16, 30, tzinfo=timezone.utc)
    assert str(clock.today(late_utc)) == "2026-03-01"
    assert clock.now().tzinfo is not None


def test_parse_instant_reads_offsetless_input_as_hospital_time(ctx):
    assert clock.parse_instant("2026-01-31T08:00:00") == datetime(2026, 1, 31, 0, 0, tzinfo=timezone.utc)
    assert clock.parse_instant("2026-01-31T08:00:00+00:00") == datetime(2026, 1, 31, 8, 0, tzinfo=timezone.utc)


def test_health_check_answers_without_login(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json == {"status": "ok"}


def test_pages_send_security_headers_and_no_store(client):
    response = client.get("/login")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"


def test_pages_reference_no_external_origin(client):
    html = client.get("/login").get_data(as_text=True)
    assert "http://" not in html and "https://" not in html and "//cdn" not in html


def test_starting_a_worker_imports_no_document_or_chart_library(tmp_path):
    """P12 cold start: PDFs, charts and spreadsheets load at their first use, not in every worker's start."""
    import subprocess
    import sys

    code = ("import sys; from qcflow import create_app; "
            f"app = create_app({{'SECRET_KEY': 'x', 'DATABASE_URL': 'sqlite:///{tmp_path}/db.sqlite3'}}); "
            "app.test_client().get('/healthz'); "
            "print(sorted(m for m in ('weasyprint', 'pygal', 'xlsxwriter', 'schemathesis', 'playwright') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**__import__("os").environ, "QCFLOW_INSTANCE_PATH": str(tmp_path)})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
