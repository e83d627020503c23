"""Test fixtures: every test starts from an empty, migrated database.

SQLite (default): migrations run once into a template file, copied for each test.
PostgreSQL (QCFLOW_TEST_DATABASE_URL): migrations run once, tables are emptied per test.
"""
from __future__ import annotations

import os
import re
import shutil
from datetime import datetime, timezone
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from hypothesis import HealthCheck, settings

from qcflow import create_app

PG_URL = os.environ.get("QCFLOW_TEST_DATABASE_URL")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIGRATIONS = os.path.join(ROOT, "migrations")
PASSWORD = "correct-horse-9"
#: The audit chain's key in every app of the tests, and (through the environment) in the CLI,
#: gunicorn and scheduler processes they start, so all of them seal and verify alike.
AUDIT_KEY = "test-audit-key-of-at-least-32-characters"
os.environ["QCFLOW_AUDIT_KEY"] = AUDIT_KEY

pytest_plugins = ["tests.factories"]

# CI runs the SQLite and PostgreSQL suites side by side on two cores: a property test's examples may be slow to
# generate there, which says nothing about the code under test (each test still sets its own example counts).
settings.register_profile("qcflow", suppress_health_check=[HealthCheck.too_slow], deadline=None)
settings.load_profile("qcflow")

#: The hospital's time zone (the application's TIMEZONE); tests write local wall times in it.
SHANGHAI = ZoneInfo("Asia/Shanghai")


def sh(*args) -> datetime:
    """A Shanghai wall-clock time as an aware datetime."""
    return datetime(*args, tzinfo=SHANGHAI)

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
        "AUDIT_KEY": AUDIT_KEY,
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


def module_app(database_template, base, **overrides):
    """An app over a fresh migrated database of its own (a copy of the template, or the emptied
    PostgreSQL one) that lives for a whole test module, not one test."""
    if PG_URL:
        empty_postgres(PG_URL)
        url = PG_URL
    else:
        shutil.copyfile(database_template, base / "qcflow.sqlite3")
        url = f"sqlite:///{base / 'qcflow.sqlite3'}"
    app = make_app(url, str(base), **overrides)
    CREATED_APPS.remove(app)
    return app


@dataclass
class DemoSnapshot:
    """The demo data of `make run`, loaded once per run (at its start), for tests to copy rather than load again
    (12 s each): the instance folder it was loaded in (the demo's attachments are files there; on SQLite the
    database too), on PostgreSQL its rows, and what the loader returned."""

    folder: Path
    data: object
    rows: PostgresRows | None = None


@pytest.fixture(scope="session")
def demo_snapshot(database_template, tmp_path_factory) -> DemoSnapshot:
    folder = tmp_path_factory.mktemp("demo")
    app = module_app(database_template, folder)
    data = load_demo_into(app)
    return DemoSnapshot(folder, data, postgres_rows(PG_URL) if PG_URL else None)


def load_demo_into(app):
    """The demo data loaded as `make run` does (today), committed; what the loader returned."""
    from qcflow.core.time import now
    from qcflow.demo import load_demo
    from qcflow.extensions import db

    with app.app_context():
        data = load_demo(now=now())
        db.session.commit()
        db.session.remove()
        db.engine.dispose()  # closing the last connection checkpoints SQLite's WAL into the file
    return data


def demo_app(snapshot: DemoSnapshot, base, **overrides):
    """An app over a copy of the run's demo snapshot (its instance folder, and its database or its rows), living
    as long as the caller keeps it (the caller disposes it), and what the demo's loader returned."""
    shutil.copytree(snapshot.folder, base, dirs_exist_ok=True)
    if snapshot.rows is not None:
        snapshot.rows.put_back(PG_URL)
    app = make_app(PG_URL or f"sqlite:///{base / 'qcflow.sqlite3'}", str(base), **overrides)
    CREATED_APPS.remove(app)
    return app, snapshot.data


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
    """Empty every table but the seeded ones, restart their ids, and put back what the migrations seed."""
    emptying = postgres_emptying()
    with emptying.engine(url).begin() as conn:
        emptying.delete_rows(conn)
        conn.execute(sa.text(emptying.restart_ids(conn)))
        # Tests create protocol versions, so the default protocols are put back from the migration.
        followup_migration().seed_protocols(conn)
        # as the later migration left them (without the developers' note)
        conn.execute(sa.text(migration_module("*_followup_reasons_stored_as_codes.py").CLEAR_DEVELOPER_NOTE))
        conn.execute(sa.text(migration_module("*_followup_invitations.py").ALLOW_SELF_REPORT))
        # and the default triggers (tests tune them and switch them off), as the migration seeds them.
        seed_default_triggers(conn)


class PostgresEmptying:
    """Emptying the test database, its queries written once per run.

    Only the tables holding rows are emptied, by DELETE: one query finds them, and TRUNCATE of every table
    (new files for each) took 0.3 s, which every test paid."""

    def __init__(self, tables: list[str]):
        self.tables = tables
        self.holding_rows = " UNION ALL ".join(f"(SELECT '{t}' FROM {t} LIMIT 1)" for t in tables)
        self.engines: dict = {}
        self._sequences: list[str] | None = None

    def engine(self, url: str):
        """One engine (and its one pooled connection) for the run, not a new connection per test."""
        if url not in self.engines:
            self.engines[url] = sa.create_engine(url, pool_size=1)
        return self.engines[url]

    def delete_rows(self, conn) -> None:
        """Delete the rows of every table holding some."""
        # The append-only tables refuse DELETE; replica mode skips triggers (and foreign keys) for this reset only.
        conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
        for table in conn.execute(sa.text(self.holding_rows)).scalars().all():
            conn.execute(sa.text(f"DELETE FROM {table}"))

    def sequences(self, conn) -> list[str]:
        """The id sequences of the emptied tables (not those of the seeded tables)."""
        if self._sequences is None:
            self._sequences = conn.execute(sa.text(
                "SELECT DISTINCT s.oid::regclass::text FROM pg_class s JOIN pg_depend d ON d.objid = s.oid "
                "AND d.deptype IN ('a', 'i') JOIN pg_class t ON t.oid = d.refobjid "
                "WHERE s.relkind = 'S' AND t.relname = ANY(:tables)"), {"tables": self.tables}).scalars().all()
        return self._sequences

    def restart_ids(self, conn) -> str:
        """One statement restarting the ids, as TRUNCATE's RESTART IDENTITY did."""
        return "SELECT " + ", ".join(f"setval('{name}', 1, false)" for name in self.sequences(conn))


@lru_cache(maxsize=1)
def postgres_emptying() -> PostgresEmptying:
    from qcflow.core.db import Base, import_all_models

    import_all_models()
    return PostgresEmptying([t.name for t in Base.metadata.sorted_tables if t.name not in SEEDED_TABLES])


@dataclass
class PostgresRows:
    """The rows of the test database's emptied tables (COPY, binary) and where their ids stood."""

    rows: dict[str, bytes]
    put_back_ids: str

    def put_back(self, url: str) -> None:
        """Make the test database hold these rows again, and only these (the seeded tables aside)."""
        emptying = postgres_emptying()
        with emptying.engine(url).begin() as conn:
            emptying.delete_rows(conn)
            with conn.connection.driver_connection.cursor() as cursor:
                for table, rows in self.rows.items():
                    with cursor.copy(f"COPY {table} FROM STDIN (FORMAT BINARY)") as copy:
                        copy.write(rows)
            conn.execute(sa.text(self.put_back_ids))


def postgres_rows(url: str) -> PostgresRows:
    """What the test database holds now, to put back later (PostgresRows.put_back)."""
    emptying = postgres_emptying()
    rows = {}
    with emptying.engine(url).begin() as conn:
        with conn.connection.driver_connection.cursor() as cursor:
            for table in conn.execute(sa.text(emptying.holding_rows)).scalars().all():
                with cursor.copy(f"COPY {table} TO STDOUT (FORMAT BINARY)") as copy:
                    rows[table] = b"".join(bytes(block) for block in copy)
        sequences = emptying.sequences(conn)
        stands = conn.execute(sa.text(" UNION ALL ".join(
            f"SELECT '{name}', last_value, is_called FROM {name}" for name in sequences))).all()
    return PostgresRows(rows, "SELECT " + ", ".join(
        f"setval('{name}', {value}, {'true' if called else 'false'})" for name, value, called in stands))


def seed_default_triggers(conn) -> None:
    now = datetime.now(timezone.utc)
    table = sa.table("extraction_trigger", sa.column("params", sa.JSON), sa.column("created_at", sa.DateTime(True)),
                     sa.column("updated_at", sa.DateTime(True)), *(sa.column(c) for c in (
                         "code", "name", "name_en", "rule", "window_hours", "is_active", "version")))
    defaults = migration_module("*_automatic_extraction.py").DEFAULT_TRIGGERS
    conn.execute(table.insert(), [
        {"code": code, "name": name, "name_en": name_en, "rule": rule, "params": params, "window_hours": window,
         "is_active": True, "created_at": now, "updated_at": now, "version": 1}
        for code, name, name_en, rule, params, window in defaults])


def followup_migration():
    """The follow-up migration module (its seed rows are the default protocols)."""
    return migration_module("*_follow_up_protocols_plans_tasks_attempts.py")


@lru_cache(maxsize=None)
def migration_module(pattern: str):
    """A migration's module by file-name pattern (loaded once per run: its seed rows are constants)."""
    import glob
    import importlib.util

    path = glob.glob(os.path.join(MIGRATIONS, "versions", pattern))[0]
    spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
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

    @cached_property
    def csrf(self) -> dict:
        """The CSRF header this browser's session sends with JSON posts (read once from its account page)."""
        return {"X-CSRFToken": csrf_from(self, "/account")}


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
def hospital(ctx, create_department, create_user, hospital_layout):
    """The departments and people of the test directory's `hospital_layout`, committed, in one dict by key.

    `hospital_layout` is (departments, people): departments by key as `create_department`'s
    arguments; people by key as (username, role, department key) or (…, display name).
    """
    from qcflow.extensions import db

    departments, people = hospital_layout
    made = {key: create_department(**fields) for key, fields in departments.items()}
    for key, (username, role, department, *display_name) in people.items():
        named = {"display_name": display_name[0]} if display_name else {}
        made[key] = create_user(username=username, roles=(role,), department=made[department], **named)
    db.session.commit()
    return made


@pytest.fixture
def clients(app, hospital):
    """Test clients by key of a person in `hospital`, each logged in once; `anonymous` (or None) is not."""
    made = {}

    def get(name):
        if name not in made:
            made[name] = app.test_client() if name in (None, "anonymous") else logged_in(app, hospital[name].username)
        return made[name]

    return get


@pytest.fixture
def tokens(runner, hospital):
    """Bearer-token headers by key of a person in `hospital`, each token made once through the CLI."""
    made = {}

    def get(name):
        if name not in made:
            result = runner.invoke(args=["qcflow", "tokens", "create", "--username", hospital[name].username])
            assert result.exit_code == 0, result.output
            made[name] = {"Authorization": "Bearer " + result.output.strip().splitlines()[-1]}
        return made[name]

    return get


@pytest.fixture
def actor_of(hospital):
    """The service actor of a person in `hospital`, by key."""
    from qcflow.core.actors import Actor

    return lambda name: Actor.for_user(hospital[name])


@pytest.fixture
def is_postgres(app):
    return PG_URL is not None


def die_with_parent():
    """preexec_fn for test subprocesses: a server or scheduler left behind by an interrupted
    test run would keep ports and the leader lock; the kernel ends it with its parent."""
    import ctypes
    import signal

    ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def scheduler_tick(database_url, instance, now, job: str, **env):
    """`flask qcflow scheduler tick` for one job, in its own process (as cron would run it); `env` sets
    QCFLOW_* settings (batch sizes, the crash hook)."""
    import subprocess
    import sys

    environment = {**os.environ, "QCFLOW_DATABASE_URL": database_url, "QCFLOW_INSTANCE_PATH": str(instance),
                   **{k: str(v) for k, v in env.items()}}
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "qcflow", "scheduler", "tick", "--now", now.isoformat(),
         "--job", job], cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=die_with_parent)


CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_from(client, path="/login") -> str:
    html = client.get(path).get_data(as_text=True)
    match = CSRF_RE.search(html)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def login(client, username, password=PASSWORD):
    """Log in through the pages: the password, then, where the login asks for it, the second factor."""
    token = csrf_from(client)
    response = client.post("/login", data={"csrf_token": token, "username": username, "password": password})
    if response.status_code == 302 and response.headers["Location"].startswith("/login/"):
        return pass_second_factor(client, username, response.headers["Location"])
    return response


def logged_in(app, username):
    """A new test client of `app` logged in as `username` (the login must succeed)."""
    client = app.test_client()
    response = login(client, username)
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return client


#: The second factor the factories give every user of MFA_REQUIRED_ROLES (tests/factories.py).
TOTP_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
SECRET_RE = re.compile(r'id="totp-secret"[^>]*>([A-Z2-7 ]+)<')
ENROLMENT_RE = re.compile(r'name="enrolment"[^>]*value="([^"]+)"')


def pass_second_factor(client, username, location):
    """Answer the second step at `location` as the user's authenticator app would.

    The secret comes from the database (a stored one) or from the set-up page (first login: the
    helper enrols with what the page shows, as a user scanning it would). The code is the one for
    the current step, or the next step when the user already logged in during this step: the server
    accepts ±1 step and refuses a step it has seen (no replay), so a real phone whose clock runs a
    little ahead would show that code. A third login within one step waits for the clock.
    """
    page = client.get(location)
    if page.status_code == 302:  # no secret yet: the second step sends the user to the set-up page
        location = page.headers["Location"]
        page = client.get(location)
    html = page.get_data(as_text=True)
    assert page.status_code == 200, html[:500]
    data = {"csrf_token": CSRF_RE.search(html).group(1)}
    secret, last_step = stored_second_factor(client.application, username)
    if secret is None:
        secret = SECRET_RE.search(html).group(1).replace(" ", "")
        data["enrolment"] = ENROLMENT_RE.search(html).group(1)
    data["code"] = current_code(secret, last_step)
    return client.post(location, data=data)


def stored_second_factor(app, username):
    """The user's stored TOTP secret and last accepted step (what their phone and the server know)."""
    from qcflow.auth.models import User
    from qcflow.extensions import db

    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.username == username.strip().lower()))
        return user.totp_secret, user.totp_last_step


def current_code(secret, last_step=None):
    """The code an authenticator shows now, never for a step at or before `last_step` (refused as a replay)."""
    from qcflow.auth import totp

    return totp.code_at(secret, fresh_step(last_step))


def fresh_step(last_step=None):
    """The current TOTP step, or the next one (accepted: ±1) if the current one was used; else wait for the clock."""
    import time

    from qcflow.auth import totp

    for _wait in range(3):
        step = totp.step_at(datetime.now(timezone.utc))
        for candidate in (step, step + 1):
            if last_step is None or candidate > last_step:
                return candidate
        time.sleep(totp.STEP_SECONDS - time.time() % totp.STEP_SECONDS + 0.05)
    raise AssertionError("no fresh TOTP step: the clock is frozen and this user already logged in twice at this instant")
