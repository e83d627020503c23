"""Fixtures for the MDT tests: a hospital with clinical staff by specialty, patients and operations."""
from datetime import datetime, timedelta, timezone
from itertools import count
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import csrf_from, login

SHANGHAI = ZoneInfo("Asia/Shanghai")
_seq = count(1)


@pytest.fixture
def create_procedure(ctx):
    from qcflow.clinical.models import Procedure
    from qcflow.extensions import db

    def create(code=None, name="胰十二指肠切除术", grade=4, **kwargs):
        procedure = Procedure(code=code or f"P{next(_seq)}", name=name, grade=grade, **kwargs)
        db.session.add(procedure)
        db.session.flush()
        return procedure

    return create


@pytest.fixture
def create_staff(ctx):
    from qcflow.clinical.models import Staff
    from qcflow.extensions import db

    def create(name=None, department=None, specialty=None, user=None, **kwargs):
        n = next(_seq)
        staff = Staff(his_id=f"S{n}", name=name or (user.display_name if user else f"医生{n}"),
                      department_id=department.id if department else None, specialty=specialty,
                      user_id=user.id if user else None, **kwargs)
        db.session.add(staff)
        db.session.flush()
        return staff

    return create


@pytest.fixture
def create_patient(ctx):
    from qcflow.clinical.models import Patient
    from qcflow.extensions import db

    def create(name="王小明", mrn=None, **kwargs):
        n = next(_seq)
        at = datetime(2026, 1, 1, tzinfo=timezone.utc)
        patient = Patient(his_id=f"P{n}", mrn=mrn or f"BA{n:05d}", name=name, sex="M", created_at=at,
                          updated_at=at, **kwargs)
        db.session.add(patient)
        db.session.flush()
        return patient

    return create


@pytest.fixture
def create_encounter(ctx):
    from qcflow.clinical.models import Encounter
    from qcflow.extensions import db

    def create(patient, department, admitted_at, discharged_at=None, **kwargs):
        encounter = Encounter(his_id=f"E{next(_seq)}", patient_id=patient.id, department_id=department.id,
                              admitted_at=admitted_at, discharged_at=discharged_at, created_at=admitted_at,
                              updated_at=admitted_at, **kwargs)
        db.session.add(encounter)
        db.session.flush()
        return encounter

    return create


@pytest.fixture
def create_operation(ctx, create_procedure, create_patient, create_encounter):
    """An operation as the HIS records it; `performed_at` makes it a performed one (test data)."""
    from qcflow.clinical.models import Operation
    from qcflow.extensions import db

    def create(department, surgeon, planned_at, *, patient=None, encounter=None, procedure=None,
               performed_at=None, state=None, **kwargs):
        procedure = procedure or create_procedure()
        patient = patient or (encounter.patient if encounter else create_patient())
        encounter = encounter or create_encounter(patient, department, planned_at - timedelta(days=2))
        operation = Operation(
            his_id=f"O{next(_seq)}", encounter_id=encounter.id, patient_id=patient.id, department_id=department.id,
            procedure_code=procedure.code, grade=procedure.grade,
            is_restricted_technology=procedure.is_restricted_technology,
            surgeon_staff_id=surgeon.id, planned_at=planned_at, performed_at=performed_at,
            state=state or ("performed" if performed_at else "planned"), created_at=planned_at, updated_at=planned_at,
            **kwargs)
        db.session.add(operation)
        db.session.flush()
        return operation

    return create


@pytest.fixture
def hospital(ctx, create_department, create_user, create_staff):
    """Departments, one user per role and clinical staff by specialty (linked to users), committed."""
    from qcflow.extensions import db

    depts = {
        "qc": create_department(code="QC", name="质控办", kind="functional"),
        "med": create_department(code="MED", name="医务科", kind="functional"),
        "surgery": create_department(code="GS", name="普通外科"),
        "anaes": create_department(code="ANES", name="麻醉科"),
        "onco": create_department(code="ONC", name="肿瘤科"),
        "radio": create_department(code="RAD", name="放射科"),
        "cardio": create_department(code="CARD", name="心内科"),
    }
    users = {
        "clinician": create_user(username="doctor", roles=("clinician",), department=depts["surgery"],
                                 display_name="李刀"),
        "colleague": create_user(username="doctor2", roles=("clinician",), department=depts["surgery"],
                                 display_name="周肝"),
        "nurse": create_user(username="nurse", roles=("nurse",), department=depts["surgery"]),
        "head": create_user(username="head", roles=("dept_head",), department=depts["surgery"], display_name="陈主任"),
        "other_head": create_user(username="cardhead", roles=("dept_head",), department=depts["cardio"]),
        "med_head": create_user(username="medhead", roles=("dept_head",), department=depts["med"]),
        "quality": create_user(username="quality", roles=("quality",), department=depts["qc"], display_name="质控员"),
        "admin": create_user(username="admin", roles=("admin",), department=depts["qc"]),
        "anaesthetist": create_user(username="anaes", roles=("clinician",), department=depts["anaes"],
                                    display_name="赵麻"),
        "oncologist": create_user(username="onco", roles=("clinician",), department=depts["onco"],
                                  display_name="孙瘤"),
        "radiologist": create_user(username="radio", roles=("clinician",), department=depts["radio"],
                                   display_name="钱影"),
    }
    staff = {
        "surgeon": create_staff(department=depts["surgery"], specialty="general_surgery", user=users["clinician"]),
        "hepatobiliary": create_staff(department=depts["surgery"], specialty="hepatobiliary_surgery",
                                      user=users["colleague"]),
        "anaesthetist": create_staff(department=depts["anaes"], specialty="anaesthesia", user=users["anaesthetist"]),
        "oncologist": create_staff(department=depts["onco"], specialty="oncology", user=users["oncologist"]),
        "radiologist": create_staff(department=depts["radio"], specialty="radiology", user=users["radiologist"]),
    }
    db.session.commit()
    return {**depts, **users, "staff": staff}


@pytest.fixture
def actor_of(hospital):
    from qcflow.core.actors import Actor

    return lambda role: Actor.for_user(hospital[role])


@pytest.fixture
def mdt_now():
    """Monday 2 March 2026, 09:30 in Shanghai."""
    return datetime(2026, 3, 2, 9, 30, tzinfo=SHANGHAI)


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

    discussion = services.on_operation_planned(grade_four, now=mdt_now)
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
def clients(app, hospital):
    """Logged-in test clients by role name; each knows its CSRF header."""
    made = {}

    def get(role):
        if role not in made:
            client = app.test_client()
            login(client, hospital[role].username)
            client.csrf = {"X-CSRFToken": csrf_from(client, "/account")}
            made[role] = client
        return made[role]

    return get


@pytest.fixture
def operated_death(hospital, create_operation, mdt_now):
    """A perioperative death review: operated three days ago, died yesterday (due in six days)."""
    from qcflow.extensions import db
    from qcflow.mdt import services

    operation = create_operation(hospital["surgery"], hospital["staff"]["surgeon"], mdt_now - timedelta(days=3),
                                 performed_at=mdt_now - timedelta(days=3))
    discussion = services.on_death(operation.encounter.patient, died_at=mdt_now - timedelta(days=1), now=mdt_now)
    db.session.commit()
    return discussion


@pytest.fixture
def bearer(runner, hospital):
    """API headers by role name, each with its own bearer token made through the CLI."""
    made = {}

    def get(role):
        if role not in made:
            result = runner.invoke(args=["qcflow", "tokens", "create", "--username", hospital[role].username])
            assert result.exit_code == 0, result.output
            made[role] = {"Authorization": "Bearer " + result.output.strip().splitlines()[-1]}
        return made[role]

    return get
