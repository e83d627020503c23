"""Fixtures for the events tests: a hospital with departments, users and valid report data."""
from datetime import datetime, timedelta, timezone

import pytest

from tests.conftest import login


@pytest.fixture
def hospital(ctx, create_department, create_user):
    """Departments and one user per role, committed."""
    from qcflow.extensions import db

    qc = create_department(code="QC", name="质控办", kind="functional")
    pharmacy = create_department(code="PHA", name="药剂科", kind="functional")
    surgery = create_department(code="GS", name="普通外科")
    cardio = create_department(code="CARD", name="心内科")
    users = {
        "clinician": create_user(username="doctor", roles=("clinician",), department=surgery, display_name="张建国"),
        "nurse": create_user(username="nurse", roles=("nurse",), department=surgery),
        "head": create_user(username="head", roles=("dept_head",), department=surgery),
        "other_head": create_user(username="cardhead", roles=("dept_head",), department=cardio),
        "quality": create_user(username="quality", roles=("quality",), department=qc),
        "admin": create_user(username="admin", roles=("admin",), department=qc),
    }
    db.session.commit()
    return {"qc": qc, "pharmacy": pharmacy, "surgery": surgery, "cardio": cardio, **users}


@pytest.fixture
def report_body(hospital):
    def make(**overrides):
        body = {
            "category_code": "medication", "subcategory_code": "wrong_dose", "reporter_grade": "III",
            "care_stage": "medication", "occurred_at": "2026-03-01T09:30:00+08:00",
            "discovered_at": "2026-03-01T10:00:00+08:00", "location": "5病区护士站",
            "department_id": hospital["surgery"].id, "description": "配药时发现剂量多了一倍，未给患者使用。",
            "ncc_merp": "B",
        }
        body.update(overrides)
        return body

    return make


@pytest.fixture
def clients(app, hospital):
    """Logged-in test clients by role name, plus an anonymous one."""
    made = {"anonymous": app.test_client()}

    def get(role):
        if role not in made:
            made[role] = app.test_client()
            login(made[role], hospital[role].username)
        return made[role]

    return get


@pytest.fixture
def quality_token(runner, hospital):
    result = runner.invoke(args=["qcflow", "tokens", "create", "--username", "quality"])
    return {"Authorization": "Bearer " + result.output.strip().splitlines()[-1]}


@pytest.fixture
def event_now():
    return datetime(2026, 3, 2, 1, 30, tzinfo=timezone.utc)


def transition(client, event_id, action, version, headers=None, **fields):
    return client.post(f"/api/v1/events/{event_id}/transitions", json={"action": action, "version": version, **fields},
                       headers=headers or {})


@pytest.fixture
def act():
    return transition


def later(at, **kw):
    return at + timedelta(**kw)
