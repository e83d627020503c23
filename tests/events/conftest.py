"""Fixtures for the events tests: a hospital with departments, users and valid report data."""
from datetime import timedelta

import pytest


@pytest.fixture
def hospital_layout():
    """The quality office, pharmacy, general surgery and cardiology; one user per role."""
    departments = {
        "qc": {"code": "QC", "name": "质控办", "kind": "functional"},
        "pharmacy": {"code": "PHA", "name": "药剂科", "kind": "functional"},
        "surgery": {"code": "GS", "name": "普通外科"},
        "cardio": {"code": "CARD", "name": "心内科"},
    }
    people = {
        "clinician": ("doctor", "clinician", "surgery", "张建国"),
        "nurse": ("nurse", "nurse", "surgery"),
        "head": ("head", "dept_head", "surgery"),
        "other_head": ("cardhead", "dept_head", "cardio"),
        "quality": ("quality", "quality", "qc"),
        "admin": ("admin", "admin", "qc"),
    }
    return departments, people


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
def quality_token(tokens):
    return tokens("quality")


@pytest.fixture
def event_now(now):
    return now


def transition(client, event_id, action, version, headers=None, **fields):
    return client.post(f"/api/v1/events/{event_id}/transitions", json={"action": action, "version": version, **fields},
                       headers=headers or {})


@pytest.fixture
def act():
    return transition


def later(at, **kw):
    return at + timedelta(**kw)
