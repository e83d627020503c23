"""Fixtures for follow-up tests: a hospital, patients, plans through the real enrolment, clients."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from itertools import count

import pytest
import sqlalchemy as sa

from tests.conftest import login

_seq = count(1)
SHANGHAI = timezone(timedelta(hours=8))


def sh(*args) -> datetime:
    """A Shanghai wall-clock time as an aware datetime."""
    return datetime(*args, tzinfo=SHANGHAI)


@pytest.fixture
def fu_now():
    """09:30 on Monday 2 March 2026, hospital time."""
    return sh(2026, 3, 2, 9, 30)


@pytest.fixture
def ward(ctx, create_department, create_user):
    """Departments and users for the follow-up queue, committed."""
    from qcflow.extensions import db

    surgery = create_department(code="GS", name="普通外科")
    cardio = create_department(code="CARD", name="心内科")
    qc = create_department(code="QC", name="质控办", kind="functional")
    users = {
        "nurse": create_user(username="nurse", roles=("nurse",), department=surgery, display_name="李护士"),
        "nurse2": create_user(username="nurse2", roles=("nurse",), department=surgery, display_name="周护士"),
        "head": create_user(username="head", roles=("dept_head",), department=surgery),
        "card_nurse": create_user(username="cardnurse", roles=("nurse",), department=cardio),
        "quality": create_user(username="quality", roles=("quality",), department=qc),
        "admin": create_user(username="admin", roles=("admin",), department=qc),
        "doctor": create_user(username="doctor", roles=("clinician",), department=surgery),
    }
    db.session.commit()
    return {"surgery": surgery, "cardio": cardio, "qc": qc, **users}


@pytest.fixture
def create_patient(ctx):
    from qcflow.clinical.models import Patient
    from qcflow.extensions import db

    def create(**kwargs):
        n = next(_seq)
        at = datetime(2026, 1, 1, tzinfo=timezone.utc)
        kwargs.setdefault("name", f"患者{n}")
        kwargs.setdefault("phone", "13812345678")
        patient = Patient(his_id=f"FP{n}", mrn=kwargs.pop("mrn", f"MRN{n:05d}"), sex="F", created_at=at,
                          updated_at=at, **kwargs)
        db.session.add(patient)
        db.session.flush()
        return patient

    return create


@pytest.fixture
def create_encounter(ctx):
    """An inpatient stay of `patient` in `department` (a clinical record there); flushes."""
    from qcflow.clinical.models import Encounter
    from qcflow.extensions import db

    def create(patient, department):
        at = datetime(2026, 1, 2, tzinfo=timezone.utc)
        encounter = Encounter(his_id=f"FE{next(_seq)}", patient_id=patient.id, department_id=department.id,
                              admitted_at=at, created_at=at, updated_at=at)
        db.session.add(encounter)
        db.session.flush()
        return encounter

    return create


@pytest.fixture
def enrol(ctx, ward, create_patient):
    """Enrol a (new) patient on a pathway through the real service; flushes, commits nothing."""
    from qcflow.core.actors import Actor
    from qcflow.followup import services

    def make(pathway="day_surgery", anchor_at=None, now=None, patient=None, department=None, source_id=None):
        patient = patient or create_patient()
        anchor_at = anchor_at or sh(2026, 3, 1, 16, 0)
        return services.enrol(patient, pathway, source_type="manual", source_id=source_id,
                              source_key=f"manual:{next(_seq)}", anchor_at=anchor_at,
                              department_id=(department or ward["surgery"]).id,
                              actor=Actor.system("test"), now=now or anchor_at)

    return make


def expected_keys(plans, through: datetime) -> set:
    """What the generator must have produced for these plans by `through`: a pure function.

    Every occurrence of each plan (on its current protocol) due up to through + lookahead, for
    active plans, plus whatever a plan generated before it ended (checked separately).
    """
    from flask import current_app

    from qcflow.core.time import hospital_tz
    from qcflow.followup.schedule import expand, occurrences

    horizon = through + timedelta(days=current_app.config["FOLLOWUP_LOOKAHEAD_DAYS"])
    expected = set()
    for plan in plans:
        slots = expand(plan.protocol.schedule_phases())
        for occ in occurrences(slots, plan.anchor_at, hospital_tz()):
            if occ.due_at <= horizon:
                expected.add((plan.id, occ.number, occ.due_at))
    return expected


@pytest.fixture
def tasks_of(ctx):
    from qcflow.extensions import db
    from qcflow.followup.models import Task

    def get(plan):
        db.session.expire_all()
        return list(db.session.scalars(sa.select(Task).where(Task.plan_id == plan.id).order_by(Task.occurrence)))

    return get


@pytest.fixture
def actor_of(ward):
    from qcflow.core.actors import Actor

    return lambda name: Actor.for_user(ward[name])


@pytest.fixture
def clients(app, ward):
    """Logged-in test clients by user name in `ward`."""
    made = {}

    def get(name):
        if name not in made:
            made[name] = app.test_client()
            login(made[name], ward[name].username)
        return made[name]

    return get


@pytest.fixture
def tokens(runner, ward):
    """Bearer-token headers by user name in `ward`."""
    made = {}

    def get(name):
        if name not in made:
            result = runner.invoke(args=["qcflow", "tokens", "create", "--username", ward[name].username])
            made[name] = {"Authorization": "Bearer " + result.output.strip().splitlines()[-1]}
        return made[name]

    return get
