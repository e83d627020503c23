"""Fixtures for follow-up tests: a hospital, patients, plans through the real enrolment, clients."""
from __future__ import annotations

from datetime import datetime, timedelta
from itertools import count

import pytest
import sqlalchemy as sa
import time_machine

from tests.conftest import sh

_seq = count(1)


@pytest.fixture
def fu_now():
    """09:30 on Monday 2 March 2026, hospital time."""
    return sh(2026, 3, 2, 9, 30)


@pytest.fixture
def frozen(fu_now):
    """The clock stopped at `fu_now`."""
    with time_machine.travel(fu_now, tick=False):
        yield fu_now


@pytest.fixture
def hospital_layout():
    """General surgery (two nurses), cardiology and the quality office."""
    departments = {
        "surgery": {"code": "GS", "name": "普通外科"},
        "cardio": {"code": "CARD", "name": "心内科"},
        "qc": {"code": "QC", "name": "质控办", "kind": "functional"},
    }
    people = {
        "nurse": ("nurse", "nurse", "surgery", "李护士"),
        "nurse2": ("nurse2", "nurse", "surgery", "周护士"),
        "head": ("head", "dept_head", "surgery"),
        "card_nurse": ("cardnurse", "nurse", "cardio"),
        "quality": ("quality", "quality", "qc"),
        "admin": ("admin", "admin", "qc"),
        "doctor": ("doctor", "clinician", "surgery"),
    }
    return departments, people


@pytest.fixture
def ward(hospital):
    """The follow-up tests' name for the hospital."""
    return hospital


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


@pytest.fixture
def call(ctx, enrol, create_patient, frozen):
    """A day-surgery patient discharged three hours ago: the 24 h call is open."""
    from qcflow.extensions import db
    from qcflow.followup.models import Task

    patient = create_patient(name="陈静", mrn="BA3001", phone="13912345678")
    plan = enrol("day_surgery", patient=patient, anchor_at=frozen - timedelta(hours=3), now=frozen)
    db.session.commit()
    return db.session.scalar(sa.select(Task.id).where(Task.plan_id == plan.id, Task.occurrence == 1))


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
