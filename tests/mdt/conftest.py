"""Fixtures for the MDT tests: a hospital with clinical staff by specialty, patients and operations."""
from datetime import timedelta
from functools import partial

import pytest

from tests.conftest import sh
from tests.factories import discussion_of


@pytest.fixture
def create_patient(create_patient):
    """MDT patients default to 王小明, male, with no phone on file (the name the minutes print)."""
    return partial(create_patient, name="王小明", sex="M", phone=None)


@pytest.fixture
def hospital_layout():
    """Seven departments; one user per role and the clinicians of an MDT by specialty."""
    departments = {
        "qc": {"code": "QC", "name": "质控办", "kind": "functional"},
        "med": {"code": "MED", "name": "医务科", "kind": "functional"},
        "surgery": {"code": "GS", "name": "普通外科"},
        "anaes": {"code": "ANES", "name": "麻醉科"},
        "onco": {"code": "ONC", "name": "肿瘤科"},
        "radio": {"code": "RAD", "name": "放射科"},
        "cardio": {"code": "CARD", "name": "心内科"},
    }
    people = {
        "clinician": ("doctor", "clinician", "surgery", "李刀"),
        "colleague": ("doctor2", "clinician", "surgery", "周肝"),
        "nurse": ("nurse", "nurse", "surgery"),
        "head": ("head", "dept_head", "surgery", "陈主任"),
        "other_head": ("cardhead", "dept_head", "cardio"),
        "med_head": ("medhead", "dept_head", "med"),
        "quality": ("quality", "quality", "qc", "质控员"),
        "admin": ("admin", "admin", "qc"),
        "anaesthetist": ("anaes", "clinician", "anaes", "赵麻"),
        "oncologist": ("onco", "clinician", "onco", "孙瘤"),
        "radiologist": ("radio", "clinician", "radio", "钱影"),
    }
    return departments, people


@pytest.fixture
def hospital(hospital, create_staff):
    """The hospital of the layout plus its clinical staff by specialty (linked to their users), committed."""
    from qcflow.extensions import db

    h = hospital
    hospital["staff"] = {
        "surgeon": create_staff(department=h["surgery"], specialty="general_surgery", user=h["clinician"]),
        "hepatobiliary": create_staff(department=h["surgery"], specialty="hepatobiliary_surgery",
                                      user=h["colleague"]),
        "anaesthetist": create_staff(department=h["anaes"], specialty="anaesthesia", user=h["anaesthetist"]),
        "oncologist": create_staff(department=h["onco"], specialty="oncology", user=h["oncologist"]),
        "radiologist": create_staff(department=h["radio"], specialty="radiology", user=h["radiologist"]),
    }
    db.session.commit()
    return hospital


@pytest.fixture
def mdt_now():
    """Monday 2 March 2026, 09:30 in Shanghai."""
    return sh(2026, 3, 2, 9, 30)


@pytest.fixture
def grade_four(hospital, create_operation, mdt_now):
    """A grade-4 operation in general surgery planned a week ahead, by the surgeon linked to `doctor`."""
    from qcflow.extensions import db

    operation = create_operation(hospital["surgery"], hospital["staff"]["surgeon"], mdt_now + timedelta(days=7))
    db.session.commit()
    return operation


@pytest.fixture
def held_preop(hospital, grade_four, actor_of, mdt_now):
    """The pre-operative discussion of `grade_four`, scheduled and held, with its proposed participants."""
    from qcflow.extensions import db
    from qcflow.mdt import services

    discussion = discussion_of(services.on_operation_planned(grade_four, now=mdt_now))
    head = actor_of("head")
    services.transition_discussion(discussion, "schedule", {"scheduled_at": mdt_now + timedelta(days=1)},
                                   actor=head, now=mdt_now)
    services.transition_discussion(discussion, "hold", {}, actor=head, now=mdt_now + timedelta(days=1, hours=1))
    db.session.commit()
    return discussion


def complete_record(discussion, actor, now, *, chair=None, attended=None):
    """Chair, conclusion, decision and attendance such that the record can be signed."""
    from qcflow.mdt import services

    attended = [p.id for p in discussion.participants] if attended is None else attended
    services.record_attendance(discussion, attended, actor=actor, now=now)
    data = {"conclusion": "同意按计划手术，术前纠正贫血。", "summary": "讨论了手术指征与麻醉风险。"}
    if chair is not None:
        data["chair_user_id"] = chair.id
    if discussion.kind == "preop_level4":
        data["decision"] = "proceed"
    services.update_discussion(discussion, data, actor=actor, now=now)


@pytest.fixture
def operated_death(hospital, create_operation, mdt_now):
    """A perioperative death review: operated three days ago, died yesterday (due in six days)."""
    from qcflow.extensions import db
    from qcflow.mdt import services

    operation = create_operation(hospital["surgery"], hospital["staff"]["surgeon"], mdt_now - timedelta(days=3),
                                 performed_at=mdt_now - timedelta(days=3))
    discussion = discussion_of(services.on_death(operation.encounter.patient, died_at=mdt_now - timedelta(days=1),
                                                 now=mdt_now))
    db.session.commit()
    return discussion


@pytest.fixture
def bearer(tokens):
    """The MDT tests' name for the bearer-token headers by role."""
    return tokens
