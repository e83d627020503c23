"""Fixtures for the security tests: two departments, each owning one object of every type.

Department A is general surgery (GS), where the role users work; department B is cardiology
(CARD), whose objects they must not reach. Objects are made through the real services with the
real clock, so that requests made afterwards see them as the application would.
"""
from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from datetime import timedelta

import pytest

from tests.conftest import ROOT, die_with_parent
from tests.factories import discussion_of

#: The role users of department A (the quality office and the administrator sit in QC).
ROLE_USERS = {"doctor": "clinician", "nurse": "nurse", "dept_head": "dept_head", "quality": "quality",
              "admin": "admin"}
ROLES = (*ROLE_USERS, "anonymous")


def _department_objects(dept, people, procedure, now, create):
    """One object of every type owned by `dept`, made by `people` (that department's staff)."""
    from qcflow.core.actors import Actor
    from PIL import Image

    from qcflow.events import services as events
    from qcflow.files import services as files
    from qcflow.extensions import db
    from qcflow.followup import services as followup
    from qcflow.followup.models import Task
    from qcflow.mdt import services as mdt
    from qcflow.notify.services import notify

    code = dept.code
    quality = Actor.for_user(people["quality"])
    staff = create["staff"](his_id=f"S-{code}", name=f"{code}外科医生", department=dept, specialty="general_surgery",
                            user=people["doctor"])
    patient = create["patient"](his_id=f"P-{code}", mrn=f"MRN-{code}", name=f"患者{code}", sex="M",
                                phone="13812345678", id_number="110101196005011234", created_at=now)
    encounter = create["encounter"](patient, dept, now - timedelta(days=2), now - timedelta(hours=3),
                                    his_id=f"E-{code}", is_day_surgery=True, created_at=now)
    operation = create["operation"](dept, staff, now + timedelta(days=7), patient=patient, encounter=encounter,
                                    procedure=procedure, his_id=f"O-{code}", created_at=now)
    discussion = discussion_of(mdt.on_operation_planned(operation, now=now))
    participant = discussion.participants[0]

    event, _code = events.file_report(
        {"category_code": "medication", "subcategory_code": "wrong_dose", "reporter_grade": "III",
         "care_stage": "medication", "occurred_at": now - timedelta(hours=5), "discovered_at": now - timedelta(hours=4),
         "location": "5病区", "department_id": dept.id, "description": "配药时发现剂量多了一倍。", "ncc_merp": "B"},
        mode="confidential", actor=Actor.for_user(people["doctor"]), now=now)
    events.transition_event(event, "triage", {"confirmed_grade": "III", "handling_department_id": dept.id,
                                              "external_severity": "none"}, actor=quality, now=now)
    events.transition_event(event, "start_investigation", {}, actor=quality, now=now)
    action = events.add_action(event, {"title": "双人核对培训", "improvement_type": "training",
                                       "owner_department_id": dept.id, "due_on": (now + timedelta(days=30)).date()},
                               actor=quality, now=now)
    message = events.add_message(event, "to_reporter", "请补充批号。", actor=quality, now=now)
    photo = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 0, 0)).save(photo, "JPEG")
    attachment = files.attach("adverse_event", event.id, files.Upload(photo.getvalue(), "床旁.jpg"),
                              stage=event.state, actor=quality, now=now)
    discussion_file = files.attach("mdt_discussion", discussion.id, files.Upload(photo.getvalue(), "影像.jpg"),
                                   stage=discussion.state, actor=quality, now=now)

    plan = followup.enrol(patient, "day_surgery", source_type="encounter", source_id=encounter.id,
                          anchor_at=encounter.discharged_at, department_id=dept.id, actor=quality, now=now)
    task = db.session.scalars(db.select(Task).where(Task.plan_id == plan.id).order_by(Task.occurrence)).first()
    followup.claim_task(task, actor=Actor.for_user(people["nurse"]), now=now)
    attempt = followup.log_attempt(task, {"channel": "phone", "result": "no_answer"},
                                   actor=Actor.for_user(people["nurse"]), now=now)
    note = notify([people["doctor"].id], "mdt.signed", now=now)[0]
    db.session.flush()
    return {"department": dept, "patient": patient, "encounter": encounter, "operation": operation,
            "discussion": discussion, "participant": participant, "event": event, "action": action,
            "message": message, "plan": plan, "task": task, "attempt": attempt, "notification": note,
            "staff": staff, "attachment": attachment, "discussion_file": discussion_file}


@pytest.fixture
def hospital_layout():
    """Departments A (GS) and B (CARD) with their staff; the quality office, medical affairs, anaesthesia."""
    departments = {
        "qc": {"code": "QC", "name": "质控办", "kind": "functional"},
        "med": {"code": "MED", "name": "医务科", "kind": "functional"},
        "anaes": {"code": "ANES", "name": "麻醉科"},
        "A": {"code": "GS", "name": "普通外科"},
        "B": {"code": "CARD", "name": "心内科"},
    }
    people = {
        "doctor": ("doctor", "clinician", "A", "张建国"),
        "nurse": ("nurse", "nurse", "A", "李护士"),
        "dept_head": ("head", "dept_head", "A", "陈主任"),
        "quality": ("quality", "quality", "qc", "质控员"),
        "admin": ("admin", "admin", "qc"),
        "b_doctor": ("carddoctor", "clinician", "B", "王心"),
        "b_nurse": ("cardnurse", "nurse", "B", "赵护士"),
        "b_dept_head": ("cardhead", "dept_head", "B"),
        "anaesthetist": ("anaes", "clinician", "anaes", "赵麻"),
    }
    return departments, people


@pytest.fixture
def world(hospital, create_staff, create_procedure, create_patient, create_encounter, create_operation):
    """Departments A (GS) and B (CARD) with their staff and one object of every type each, committed."""
    from qcflow.core.time import now as clock_now
    from qcflow.extensions import db

    now = clock_now()
    users = {role: hospital[role] for role in ROLE_USERS}
    b_people = {role: hospital[f"b_{role}"] for role in ("doctor", "nurse", "dept_head")}
    b_people["quality"] = users["quality"]
    create_staff(his_id="S-ANES", name="赵麻", department=hospital["anaes"], specialty="anaesthesia",
                 user=hospital["anaesthetist"])
    procedure = create_procedure(code="52.7001")
    create = {"staff": create_staff, "patient": create_patient, "encounter": create_encounter,
              "operation": create_operation}
    world = {
        "now": now, "users": users, "b_users": b_people,
        "A": _department_objects(hospital["A"], users, procedure, now, create),
        "B": _department_objects(hospital["B"], b_people, procedure, now, create),
    }
    db.session.commit()
    return world


@pytest.fixture
def role_client(clients):
    """A test client logged in as the role's user of department A (`anonymous`: not logged in)."""
    return clients


@pytest.fixture
def token_for(tokens):
    """Bearer-token headers of a role's user (created through the CLI, as an operator would)."""
    return tokens


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def gunicorn(database_url, instance, log_path, workers=4, **env):
    """The shipped server configuration (scripts/gunicorn.conf.py) on a random port; yields the base URL."""
    port = free_port()
    environment = {**os.environ, "QCFLOW_DATABASE_URL": database_url, "QCFLOW_INSTANCE_PATH": str(instance),
                   "QCFLOW_BIND": f"127.0.0.1:{port}", "QCFLOW_WORKERS": str(workers), "QCFLOW_SECRET_KEY": "gunicorn-test",
                   **{k: str(v) for k, v in env.items()}}
    with open(log_path, "w") as log:
        server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "scripts/gunicorn.conf.py", "wsgi:app"],
                                  cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT,
                                  preexec_fn=die_with_parent)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 40
            while True:
                try:
                    urllib.request.urlopen(base + "/healthz", timeout=1).read()
                    break
                except OSError:
                    assert server.poll() is None and time.monotonic() < deadline, open(log_path).read()
                    time.sleep(0.2)
            server.base_url = base
            yield server
        finally:
            server.terminate()
            server.wait(timeout=30)
