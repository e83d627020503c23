"""Test fixtures: every test starts from an empty, migrated database.

SQLite (default): migrations run once into a template file, copied for each test.
PostgreSQL (QCFLOW_TEST_DATABASE_URL): migrations run once, tables are emptied per test.
"""
from __future__ import annotations

import os
import re
import shutil
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from qcflow import create_app

PG_URL = os.environ.get("QCFLOW_TEST_DATABASE_URL")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIGRATIONS = os.path.join(ROOT, "migrations")
PASSWORD = "correct-horse-9"

pytest_plugins = ["tests.factories"]

#: Set by .ci/run: also run the tests marked `slow` (long variants of the default ones).
RUN_SLOW = bool(os.environ.get("QCFLOW_RUN_SLOW"))


def pytest_collection_modifyitems(config, items):
    """Tests marked `slow` are skipped unless QCFLOW_RUN_SLOW is set (the one switch for them)."""
    if RUN_SLOW:
        return
    skip = pytest.mark.skip(reason="slow: set QCFLOW_RUN_SLOW=1 (make test-slow)")
    for item in items:
        if item.get_closest_marker("slow"):
            item.add_marker(skip)


def make_app(database_url: str, instance_path: str, **overrides):
    config = {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "DATABASE_URL": database_url,
        "SCHEDULER_IDLE_RETRY_SECONDS": 1,
        **overrides,
    }
    os.environ["QCFLOW_INSTANCE_PATH"] = instance_path
    try:
        app = create_app(config)
        app.test_client_class = FreshContextClient
        CREATED_APPS.append(app)
        return app
    finally:
        del os.environ["QCFLOW_INSTANCE_PATH"]


CREATED_APPS: list = []


@pytest.fixture(autouse=True)
def _close_connections():
    """Close every pooled connection of the apps a test created (no leaked DB connections)."""
    yield
    from qcflow.extensions import db

    while CREATED_APPS:
        app = CREATED_APPS.pop()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def migrate(app) -> None:
    from flask_migrate import upgrade

    from qcflow.extensions import db

    with app.app_context():
        upgrade(directory=MIGRATIONS)
        db.engine.dispose()  # closing the last connection checkpoints SQLite's WAL into the file


def reset_postgres(url: str) -> None:
    """Drop every table so the session starts from migrations on an empty schema."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
        conn.execute(sa.text("DROP FUNCTION IF EXISTS audit_entry_refuse_change() CASCADE"))
    engine.dispose()


@pytest.fixture(scope="session")
def database_template(tmp_path_factory):
    """A migrated database: a SQLite file to copy, or the migrated PostgreSQL test DB."""
    base = tmp_path_factory.mktemp("template")
    if PG_URL:
        reset_postgres(PG_URL)
        migrate(make_app(PG_URL, str(base)))
        return PG_URL
    path = base / "template.sqlite3"
    migrate(make_app(f"sqlite:///{path}", str(base)))
    return str(path)


#: Tables whose rows come from migrations (reference data), kept between tests.
SEEDED_TABLES = {"event_category"}


def empty_postgres(url: str) -> None:
    from qcflow.core.db import Base, import_all_models

    import_all_models()
    tables = [t.name for t in Base.metadata.sorted_tables if t.name not in SEEDED_TABLES]
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        # The audit table refuses TRUNCATE; replica mode skips triggers for this reset only.
        conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
        conn.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        # Tests create protocol versions, so the default protocols are put back from the migration.
        followup_migration().seed_protocols(conn)
    engine.dispose()


def followup_migration():
    """The follow-up migration module (its seed rows are the default protocols)."""
    import glob
    import importlib.util

    path = glob.glob(os.path.join(MIGRATIONS, "versions", "*_follow_up_protocols_plans_tasks_attempts.py"))[0]
    spec = importlib.util.spec_from_file_location("followup_migration", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def database_url(database_template, tmp_path):
    """An empty migrated database for this test."""
    if PG_URL:
        empty_postgres(PG_URL)
        return PG_URL
    target = tmp_path / "qcflow.sqlite3"
    shutil.copyfile(database_template, target)
    return f"sqlite:///{target}"


class FreshContextClient(FlaskClient):
    """Each request gets its own app context (and DB session), as in production.

    Without this, a request made while a test holds an app context reuses it,
    sharing `g` and the DB session between requests.
    """

    def open(self, *args, **kwargs):
        with self.application.app_context():
            return super().open(*args, **kwargs)


@pytest.fixture
def app(database_url, tmp_path):
    return make_app(database_url, str(tmp_path))


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def now():
    return datetime(2026, 3, 2, 1, 30, tzinfo=timezone.utc)


@pytest.fixture
def is_postgres(app):
    return PG_URL is not None


def die_with_parent():
    """preexec_fn for test subprocesses: a server or scheduler left behind by an interrupted
    test run would keep ports and the leader lock; the kernel ends it with its parent."""
    import ctypes
    import signal

    ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_from(client, path="/login") -> str:
    html = client.get(path).get_data(as_text=True)
    match = CSRF_RE.search(html)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def login(client, username, password=PASSWORD):
    token = csrf_from(client)
    return client.post("/login", data={"csrf_token": token, "username": username, "password": password})
