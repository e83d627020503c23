"""Administration from the command line: clear errors, exit code 2 on bad input."""
import sqlite3

import pytest
import sqlalchemy as sa

from tests.conftest import PG_URL, login


def run(runner, *args):
    return runner.invoke(args=["qcflow", *args])


def test_departments_and_users_create(app, runner):
    from qcflow.auth.models import User
    from qcflow.extensions import db

    assert run(runner, "departments", "create", "--code", "GS", "--name", "普通外科", "--kind", "clinical").exit_code == 0
    result = run(runner, "users", "create", "--username", "Li", "--password", "long-enough-1",
                 "--role", "nurse", "--role", "clinician", "--department", "GS")
    assert result.exit_code == 0, result.output
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.username == "li"))
        assert user.role_names == {"nurse", "clinician"} and user.department.code == "GS"
    assert login(app.test_client(), "li", "long-enough-1").status_code == 302


def test_unknown_role_exits_2_with_the_valid_roles(app, runner):
    run(runner, "departments", "create", "--code", "GS", "--name", "普通外科", "--kind", "clinical")
    result = run(runner, "users", "create", "--username", "x", "--password", "long-enough-1",
                 "--role", "surgeon", "--department", "GS")
    assert result.exit_code == 2
    assert "surgeon" in result.output and "clinician, nurse, dept_head, quality, admin" in result.output


def test_unknown_department_exits_2(runner):
    result = run(runner, "users", "create", "--username", "x", "--password", "long-enough-1",
                 "--role", "nurse", "--department", "NOPE")
    assert result.exit_code == 2 and "NOPE" in result.output


def test_short_password_exits_2(runner):
    run(runner, "departments", "create", "--code", "GS", "--name", "普通外科", "--kind", "clinical")
    result = run(runner, "users", "create", "--username", "x", "--password", "short",
                 "--role", "nurse", "--department", "GS")
    assert result.exit_code == 2 and "8" in result.output


def test_duplicate_user_and_department_exit_2(runner):
    run(runner, "departments", "create", "--code", "GS", "--name", "普通外科", "--kind", "clinical")
    assert run(runner, "departments", "create", "--code", "GS", "--name", "外科", "--kind", "clinical").exit_code == 2
    args = ("users", "create", "--username", "x", "--password", "long-enough-1", "--role", "nurse", "--department", "GS")
    assert run(runner, *args).exit_code == 0
    assert run(runner, *args).exit_code == 2


def test_unknown_user_for_token_and_disable_exits_2(runner):
    assert run(runner, "tokens", "create", "--username", "ghost").exit_code == 2
    assert run(runner, "users", "disable", "--username", "ghost").exit_code == 2


def test_demo_data_loads_once_and_every_demo_user_can_log_in(app, runner):
    from qcflow.auth.models import Department, User
    from qcflow.demo import DEMO_USERS
    from qcflow.extensions import db

    first = run(runner, "demo-data")
    second = run(runner, "demo-data")
    assert first.exit_code == second.exit_code == 0
    assert "already present" in second.output
    code = first.output.split("(try it on /receipt): ")[1].split()[0]
    lookup = app.test_client().post("/api/v1/receipts/lookup", json={"receipt_code": code})
    assert lookup.status_code == 200 and lookup.json["state"] == "submitted"
    quality = app.test_client()
    login(quality, "quality", "demo-quality-2025")
    events = quality.get("/api/v1/events").json["items"]  # a year of reports (tests/test_demo_journeys.py)
    assert {"anonymous", "named", "confidential"} <= {e["mode"] for e in events}
    with app.app_context():
        names = set(db.session.scalars(sa.select(Department.name)))
        assert {"质控办", "医务科", "护理部", "药剂科"} <= names
        assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == len(DEMO_USERS)
    roles_seen = set()
    for username, password, roles, _dept, _name in DEMO_USERS:
        assert f"{username:<10} {password}" in second.output  # the printed logins
        assert login(app.test_client(), username, password).status_code == 302
        roles_seen |= set(roles)
    assert roles_seen == {"clinician", "nurse", "dept_head", "quality", "admin"}


@pytest.mark.skipif(PG_URL is not None, reason="SQLite online backup")
def test_backup_writes_a_consistent_copy(app, runner, tmp_path):
    run(runner, "departments", "create", "--code", "GS", "--name", "普通外科", "--kind", "clinical")
    dest = tmp_path / "backup.sqlite3"
    result = run(runner, "backup", str(dest))
    assert result.exit_code == 0, result.output
    copy = sqlite3.connect(dest)
    assert copy.execute("SELECT name FROM department").fetchall() == [("普通外科",)]
    assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    copy.close()


@pytest.mark.skipif(PG_URL is None, reason="PostgreSQL hint")
def test_backup_on_postgres_points_to_pg_dump(runner, tmp_path):
    result = run(runner, "backup", str(tmp_path / "x"))
    assert result.exit_code == 2 and "pg_dump" in result.output
