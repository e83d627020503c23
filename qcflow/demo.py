"""Demo departments and users for a first look (`make run` loads them once)."""
from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from qcflow.auth import services
from qcflow.auth.models import Department
from qcflow.core.actors import Actor
from qcflow.extensions import db

DEMO_DEPARTMENTS = [
    # code, name, English name, kind
    ("QC", "质控办", "Quality Control Office", "functional"),
    ("MED", "医务科", "Medical Affairs", "functional"),
    ("NUR", "护理部", "Nursing Department", "functional"),
    ("PHA", "药剂科", "Pharmacy", "functional"),
    ("EQP", "设备科", "Medical Equipment", "functional"),
    ("INF", "院感科", "Infection Control", "functional"),
    ("GS", "普通外科", "General Surgery", "clinical"),
    ("ORTH", "骨科", "Orthopaedics", "clinical"),
    ("CARD", "心内科", "Cardiology", "clinical"),
    ("ONC", "肿瘤科", "Oncology", "clinical"),
    ("ANES", "麻醉科", "Anaesthesiology", "clinical"),
    ("DSC", "日间手术中心", "Day Surgery Centre", "clinical"),
    ("FUC", "随访中心", "Follow-up Centre", "nursing"),
]

DEMO_USERS = [
    # user name, password, roles, department, display name
    ("doctor", "demo-doctor-2025", ["clinician"], "GS", "张医生"),
    ("nurse", "demo-nurse-2025", ["nurse"], "GS", "李护士"),
    ("head", "demo-head-2025", ["dept_head", "clinician"], "GS", "王主任"),
    ("quality", "demo-quality-2025", ["quality"], "QC", "赵质控"),
    ("admin", "demo-admin-2025", ["admin"], "QC", "系统管理员"),
]


def load_demo_data(*, now: datetime) -> str | None:
    """Create the demo departments, users and reports unless they exist.

    Returns the demo anonymous report's receipt code when it creates the data, else None.
    """
    if db.session.scalar(sa.select(Department.id).where(Department.code == "QC")) is not None:
        return None
    actor = Actor.system("demo-data")
    departments = {
        code: services.create_department(code, name, kind, actor=actor, now=now, name_en=name_en)
        for code, name, name_en, kind in DEMO_DEPARTMENTS
    }
    users = {
        username: services.create_user(username, password, roles, departments[dept], actor=actor, now=now,
                                       display_name=display_name)
        for username, password, roles, dept, display_name in DEMO_USERS
    }
    code = load_demo_events(departments, users, now)
    load_demo_followup(users, now)
    load_demo_census(now)
    return code


def load_demo_events(departments, users, now: datetime) -> str:
    """Three reports in the quality office's inbox: anonymous, named and confidential."""
    from qcflow.events.services import file_report

    def report(category, subcategory, grade, stage, hours_ago, place, text, **extra):
        return {"category_code": category, "subcategory_code": subcategory, "reporter_grade": grade,
                "care_stage": stage, "occurred_at": now - timedelta(hours=hours_ago),
                "discovered_at": now - timedelta(hours=hours_ago - 1), "location": place,
                "department_id": departments["GS"].id, "description": text, **extra}

    _event, code = file_report(
        report("fall", "fall_inpatient", "IV", "nursing", 20, "5病区走廊", "夜间患者如厕时险些滑倒，地面有水渍，被护工及时扶住。"),
        mode="anonymous", actor=Actor.anonymous(), now=now)
    file_report(
        report("medication", "wrong_dose", "III", "medication", 30, "5病区治疗室",
               "配药时发现胰岛素剂量多抽了 4 单位，双人核对时发现，未给患者使用。", ncc_merp="B"),
        mode="named", actor=Actor.for_user(users["doctor"]), now=now)
    file_report(
        report("surgery", "unplanned_reoperation", "II", "surgery_anaesthesia", 48, "手术室 3 号间",
               "腹腔镜胆囊切除术后第 1 天出现活动性出血，返回手术室止血。", is_unplanned_reoperation=True),
        mode="confidential", actor=Actor.for_user(users["head"]), now=now)
    return code


def load_demo_followup(users, now: datetime) -> None:
    """Follow-up calls due today for the demo nurse (general surgery): a day-surgery 24 h call, the
    yearly call after a four-level operation and a lung-cancer call, from HIS facts pushed through
    the real intake (which enrols the patients automatically)."""
    from qcflow.clinical.models import Operation
    from qcflow.clinical.services import import_rows, transition_operation
    from qcflow.core.time import local
    from qcflow.followup import services as followup
    from qcflow.followup.models import Task
    from qcflow.followup.schedule import add_months

    if any(followup.current_protocol(code) is None for code in ("day_surgery", "four_level_surgery", "cancer_lung")):
        return  # a database without the default protocols (they come with the migrations)
    his = Actor.system("demo-data")
    today = local(now).date()
    tz = local(now).tzinfo

    def at(day, hour, minute=0):
        return datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)

    year_ago, quarter_ago = add_months(today, -12), add_months(today, -3)
    discharged = now - timedelta(hours=2)
    batches = [
        ("procedures", [{"code": "52.7001", "name": "胰十二指肠切除术", "grade": 4},
                        {"code": "53.0201", "name": "腹股沟疝修补术", "grade": 2, "is_day_surgery_allowed": True}]),
        ("staff", [{"his_id": "DEMO-S1", "name": "刘外科", "department_code": "GS", "specialty": "general_surgery"}]),
        ("patients", [
            {"his_id": "DEMO-P1", "mrn": "BA260001", "name": "陈建华", "sex": "M", "birth_on": "1968-04-12",
             "phone": "13812340001"},
            {"his_id": "DEMO-P2", "mrn": "BA250002", "name": "林秀英", "sex": "F", "birth_on": "1959-09-30",
             "phone": "13912340002"},
            {"his_id": "DEMO-P3", "mrn": "BA250003", "name": "黄国强", "sex": "M", "birth_on": "1955-01-21",
             "phone": "13712340003"},
        ]),
        ("encounters", [
            {"his_id": "DEMO-E1", "patient_his_id": "DEMO-P1", "department_code": "GS", "is_day_surgery": True,
             "admitted_at": (discharged - timedelta(hours=7)).isoformat(), "discharged_at": discharged.isoformat(),
             "disposition": "home"},
            {"his_id": "DEMO-E2", "patient_his_id": "DEMO-P2", "department_code": "GS",
             "admitted_at": at(year_ago - timedelta(days=3), 9).isoformat(),
             "discharged_at": at(year_ago + timedelta(days=12), 10).isoformat(), "disposition": "home"},
        ]),
        ("operations", [{"his_id": "DEMO-O1", "encounter_his_id": "DEMO-E2", "procedure_code": "52.7001",
                         "surgeon_his_id": "DEMO-S1", "planned_at": at(year_ago, 8, 30).isoformat()}]),
        ("diagnoses", [{"his_id": "DEMO-D1", "patient_his_id": "DEMO-P3", "cancer_type": "lung", "icd10": "C34.1",
                        "diagnosed_on": quarter_ago.isoformat(), "stage": "IIA", "department_code": "GS"}]),
    ]
    for kind, rows in batches:
        import_rows(kind, rows, actor=his, now=now, strict=True)
    # The four-level operation was performed a year ago (booked under an emergency override, as the
    # demo has no signed MDT record); its 30-day call was completed by the nurse.
    operation = db.session.scalar(sa.select(Operation).where(Operation.his_id == "DEMO-O1"))
    surgeon_side = Actor.for_user(users["head"])
    transition_operation(operation, "book", {"emergency_override": True, "override_reason": "演示数据：急诊手术"},
                         actor=surgeon_side, now=at(year_ago, 7))
    transition_operation(operation, "perform", {"performed_at": at(year_ago, 9)}, actor=surgeon_side,
                         now=at(year_ago, 14))
    nurse = Actor.for_user(users["nurse"])
    first = db.session.scalar(sa.select(Task).join(Task.plan).where(Task.patient_id == operation.patient_id,
                                                                    Task.occurrence == 1))
    called = first.due_at + timedelta(hours=10)
    followup.claim_task(first, actor=nurse, now=called)
    followup.complete_task(first, {"respondent": "patient", "channel": "phone", "complication": False,
                                   "unplanned_readmission": False, "reoperation": False, "vital_status": "alive",
                                   "health_education_given": True, "revisit_booked": True, "satisfaction": 5},
                           actor=nurse, now=called)
    followup.generate_due(now)


def load_demo_census(now: datetime) -> None:
    """Monthly discharge counts of the clinical departments for the last 12 months (this month so
    far included), so the indicators page has realistic denominators."""
    from qcflow.clinical.services import import_rows
    from qcflow.core.time import local

    month = local(now).date().replace(day=1)
    rows = []
    for back in range(12):
        index = month.year * 12 + month.month - 1 - back
        label = f"{index // 12:04d}-{index % 12 + 1:02d}"
        share = local(now).day / 30 if back == 0 else 1  # this month: so far
        for code, per_month in (("GS", 180), ("ORTH", 150), ("CARD", 210), ("ONC", 120), ("DSC", 90)):
            rows.append({"department_code": code, "month": label,
                         "discharges": max(1, round((per_month + 7 * (back % 3)) * min(share, 1)))})
    import_rows("census", rows, actor=Actor.system("demo-data"), now=now, strict=True)
