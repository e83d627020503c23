"""Automatic enrolment from clinical facts (the hooks and their wiring), manual enrolment, death."""
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from tests.conftest import sh


@pytest.fixture
def his(ctx, ward):
    """Push HIS rows through the real intake service (as the HIS interface would), with explicit times."""
    from qcflow.clinical.services import import_rows
    from qcflow.core.actors import Actor
    from qcflow.extensions import db

    actor = Actor.for_user(ward["admin"])

    def push(kind, rows, now):
        results = import_rows(kind, rows, actor=actor, now=now)
        assert all(not r.errors for r in results), [r.errors for r in results]
        db.session.commit()
        return results

    at = sh(2026, 2, 1, 8, 0)
    push("procedures", [{"code": "52.7001", "name": "胰十二指肠切除术", "grade": 4},
                        {"code": "47.0101", "name": "阑尾切除术", "grade": 2, "is_day_surgery_allowed": True},
                        {"code": "00.9901", "name": "机器人辅助手术", "grade": 3, "is_restricted_technology": True}], at)
    push("staff", [{"his_id": "S1", "name": "李刀", "department_code": "GS"}], at)
    push("patients", [{"his_id": "P1", "mrn": "BA001", "name": "王小明", "sex": "M", "phone": "13812345678"}], at)
    push.actor = actor
    return push


def plans(**filters):
    from qcflow.extensions import db
    from qcflow.followup.models import Plan

    return list(db.session.scalars(sa.select(Plan).filter_by(**filters).order_by(Plan.id)))


def test_a_day_surgery_discharge_enrols_once_anchored_at_discharge(his):
    discharged = "2026-03-01T16:20:00+08:00"
    row = {"his_id": "E1", "patient_his_id": "P1", "department_code": "GS", "is_day_surgery": True,
           "admitted_at": "2026-03-01T08:00:00+08:00"}
    his("encounters", [row], sh(2026, 3, 1, 8, 5))
    assert plans() == []
    his("encounters", [{**row, "discharged_at": discharged}], sh(2026, 3, 1, 16, 30))
    his("encounters", [{**row, "discharged_at": discharged}], sh(2026, 3, 1, 16, 40))
    (plan,) = plans()
    assert (plan.pathway, plan.source_key, plan.anchor_at) == ("day_surgery", f"encounter:{plan.source_id}",
                                                               sh(2026, 3, 1, 16, 20))


def test_a_corrected_discharge_time_moves_the_untouched_calls(his, tasks_of):
    row = {"his_id": "E1", "patient_his_id": "P1", "department_code": "GS", "is_day_surgery": True,
           "admitted_at": "2026-03-01T08:00:00+08:00", "discharged_at": "2026-03-01T16:20:00+08:00"}
    his("encounters", [row], sh(2026, 3, 1, 16, 30))
    his("encounters", [{**row, "discharged_at": "2026-03-01T18:00:00+08:00"}], sh(2026, 3, 1, 18, 10))
    (plan,) = plans()
    assert tasks_of(plan)[0].due_at == sh(2026, 3, 2, 18, 0)


@pytest.mark.parametrize("extra", [{"is_day_surgery": False}, {"disposition": "death"}])
def test_no_day_surgery_plan_for_an_ordinary_stay_or_a_death(his, extra):
    row = {"his_id": "E1", "patient_his_id": "P1", "department_code": "GS", "is_day_surgery": True,
           "admitted_at": "2026-03-01T08:00:00+08:00", "discharged_at": "2026-03-01T16:20:00+08:00", **extra}
    his("encounters", [row], sh(2026, 3, 1, 16, 30))
    assert plans() == []


def test_a_performed_grade_4_operation_enrols_four_level_surgery(his, ward, tasks_of):
    from qcflow.clinical.models import Operation
    from qcflow.clinical.services import transition_operation
    from qcflow.core.actors import Actor
    from qcflow.extensions import db

    his("encounters", [{"his_id": "E1", "patient_his_id": "P1", "department_code": "GS",
                        "admitted_at": "2026-03-01T08:00:00+08:00"}], sh(2026, 3, 1, 8, 5))
    his("operations", [{"his_id": "O1", "encounter_his_id": "E1", "procedure_code": "52.7001",
                        "surgeon_his_id": "S1", "planned_at": "2026-03-02T08:00:00+08:00"},
                       {"his_id": "O2", "encounter_his_id": "E1", "procedure_code": "47.0101",
                        "surgeon_his_id": "S1", "planned_at": "2026-03-02T08:00:00+08:00"}], sh(2026, 3, 1, 9, 0))
    quality = Actor("user:q", ward["quality"].id, ward["qc"].id, frozenset({"quality"}))
    for his_id in ("O1", "O2"):
        op = db.session.scalar(sa.select(Operation).where(Operation.his_id == his_id))
        transition_operation(op, "book", {"emergency_override": True, "override_reason": "急诊"}, actor=quality,
                             now=sh(2026, 3, 2, 7, 0))
        transition_operation(op, "perform", {"performed_at": sh(2026, 3, 2, 9, 0)}, actor=quality,
                             now=sh(2026, 3, 2, 12, 0))
    db.session.commit()
    (plan,) = plans()
    assert (plan.pathway, plan.anchor_at, plan.department_id) == ("four_level_surgery", sh(2026, 3, 2, 9, 0),
                                                                 ward["surgery"].id)
    assert [t.due_on for t in tasks_of(plan)] == [date(2026, 4, 1)]


def test_hooks_are_idempotent_and_audited(his, ctx):
    from qcflow.clinical.models import CancerDiagnosis
    from qcflow.core.audit import AuditEntry
    from qcflow.extensions import db
    from qcflow.followup import services

    his("diagnoses", [{"his_id": "D1", "patient_his_id": "P1", "cancer_type": "breast", "icd10": "C50.9",
                       "diagnosed_on": "2026-01-31", "department_code": "GS"}], sh(2026, 2, 2, 8, 0))
    diagnosis = db.session.scalar(sa.select(CancerDiagnosis))
    for _ in range(2):
        services.on_cancer_diagnosis(diagnosis, now=sh(2026, 2, 3, 8, 0))
        db.session.commit()
    (plan,) = plans()
    assert (plan.pathway, plan.anchor_at) == ("cancer_breast", sh(2026, 1, 31, 0, 0))
    enrolments = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry).where(
        AuditEntry.action == "followup_plan.enrol"))
    assert enrolments == 1


def test_other_cancers_are_not_enrolled_automatically(his):
    his("diagnoses", [{"his_id": "D1", "patient_his_id": "P1", "cancer_type": "other", "icd10": "C61",
                       "diagnosed_on": "2026-01-31"}], sh(2026, 2, 2, 8, 0))
    assert plans() == []


def test_one_plan_per_patient_pathway_and_source_is_a_database_rule(enrol, ctx):
    from sqlalchemy.exc import IntegrityError

    from qcflow.extensions import db
    from qcflow.followup.models import Plan

    plan = enrol("cancer_lung")
    copy = Plan(**{c.key: getattr(plan, c.key) for c in Plan.__table__.columns if c.key not in ("id", "version")})
    db.session.add(copy)
    with pytest.raises(IntegrityError):
        db.session.flush()
    db.session.rollback()


def test_a_death_from_the_his_stops_every_plan_and_cancels_the_calls_still_open_at_the_death(his, tasks_of):
    his("diagnoses", [{"his_id": "D1", "patient_his_id": "P1", "cancer_type": "lung", "icd10": "C34.1",
                       "diagnosed_on": "2025-12-01", "department_code": "GS"}], sh(2025, 12, 2, 8, 0))
    his("encounters", [{"his_id": "E1", "patient_his_id": "P1", "department_code": "GS", "is_day_surgery": True,
                        "admitted_at": "2026-03-01T08:00:00+08:00", "discharged_at": "2026-03-01T16:00:00+08:00"}],
        sh(2026, 3, 1, 16, 10))
    his("patients", [{"his_id": "P1", "mrn": "BA001", "name": "王小明", "sex": "M", "phone": "13812345678",
                      "died_on": "2026-03-02"}], sh(2026, 3, 3, 8, 0))
    stopped = plans()
    assert len(stopped) == 2 and {p.state for p in stopped} == {"stopped"}
    assert {p.ended_on for p in stopped} == {date(2026, 3, 2)}
    # Known by the day only, the death happened at the day's last instant: the day-surgery call closed at
    # 16:00 that day, unanswered, and keeps its outcome (missed); every later window is cancelled.
    died_at = sh(2026, 3, 3, 0, 0)
    tasks = [t for p in stopped for t in tasks_of(p)]
    assert [t.state for t in tasks if t.closes_at <= died_at] == ["pending"]
    later = [t.state for t in tasks if t.closes_at > died_at]
    assert later and set(later) == {"cancelled"}


def test_a_death_at_discharge_stops_plans_with_the_local_discharge_date(his):
    his("diagnoses", [{"his_id": "D1", "patient_his_id": "P1", "cancer_type": "liver", "icd10": "C22.0",
                       "diagnosed_on": "2025-12-01", "department_code": "GS"}], sh(2025, 12, 2, 8, 0))
    his("encounters", [{"his_id": "E1", "patient_his_id": "P1", "department_code": "GS",
                        "admitted_at": "2026-03-01T08:00:00+08:00", "discharged_at": "2026-03-02T00:30:00+08:00",
                        "disposition": "death"}], sh(2026, 3, 2, 1, 0))
    (plan,) = plans()
    assert plan.state == "stopped" and plan.ended_on == date(2026, 3, 2)


def test_a_dead_patient_is_not_enrolled(his):
    his("patients", [{"his_id": "P1", "mrn": "BA001", "name": "王小明", "sex": "M", "died_on": "2026-01-02"}],
        sh(2026, 1, 3, 8, 0))
    his("diagnoses", [{"his_id": "D1", "patient_his_id": "P1", "cancer_type": "lung", "icd10": "C34.1",
                       "diagnosed_on": "2025-12-01", "department_code": "GS"}], sh(2026, 1, 4, 8, 0))
    assert plans() == []


def test_manual_enrolment_over_the_api(client, tokens, ward, create_patient, create_encounter, ctx):
    from qcflow.extensions import db

    patient = create_patient(mrn="BA777")
    create_encounter(patient, ward["surgery"])
    db.session.commit()
    body = {"patient_id": patient.id, "pathway": "four_level_surgery", "department_id": ward["surgery"].id,
            "anchor_at": "2026-02-20T10:00:00+08:00"}
    made = client.post("/api/v1/followup/plans", json=body, headers=tokens("nurse"))
    assert made.status_code == 201, made.json
    again = client.post("/api/v1/followup/plans", json=body, headers=tokens("nurse"))
    assert again.json["id"] == made.json["id"]
    other_dept = client.post("/api/v1/followup/plans", json={**body, "department_id": ward["cardio"].id},
                             headers=tokens("nurse"))
    assert other_dept.status_code == 404
    unknown = client.post("/api/v1/followup/plans", json={**body, "pathway": "astrology"}, headers=tokens("nurse"))
    assert unknown.status_code == 422 and "pathway" in unknown.json["errors"]
    assert client.get(f"/api/v1/followup/plans/{made.json['id']}", headers=tokens("card_nurse")).status_code == 404


def test_manual_enrolment_page(client, clients, ward, create_patient, create_encounter, ctx):
    from tests.conftest import csrf_from
    from qcflow.extensions import db

    create_encounter(create_patient(mrn="BA888"), ward["surgery"])
    db.session.commit()
    nurse = clients("nurse")
    assert nurse.get("/followup/enrol").status_code == 200
    form = {"csrf_token": csrf_from(nurse, "/followup/enrol"), "mrn": "BA888", "pathway": "cancer_colorectal",
            "department_id": str(ward["surgery"].id), "anchor_at": "2026-02-01T00:00", "source_type": "manual"}
    done = nurse.post("/followup/enrol", data=form)
    assert done.status_code == 200 and "cancer_colorectal" in done.get_data(as_text=True)
    (plan,) = plans()
    assert plan.anchor_at == sh(2026, 2, 1, 0, 0)
    missing = nurse.post("/followup/enrol", data={**form, "mrn": "NOPE"})
    assert missing.status_code == 422
    assert nurse.post("/followup/enrol", data={k: v for k, v in form.items() if k != "csrf_token"}).status_code == 400


def test_a_nurse_cannot_enrol_another_departments_patient(client, tokens, ward, create_patient, create_encounter,
                                                         ctx):
    """Enrolling would show the nurse the patient's full phone number once she holds a call."""
    from qcflow.core.audit import AuditEntry
    from qcflow.extensions import db

    cardiac = create_patient(mrn="CARD01")
    create_encounter(cardiac, ward["cardio"])
    stranger = create_patient(mrn="NONE01")
    db.session.commit()
    body = {"pathway": "four_level_surgery", "department_id": ward["surgery"].id,
            "anchor_at": "2026-02-20T10:00:00+08:00"}
    foreign = client.post("/api/v1/followup/plans", json={**body, "patient_id": cardiac.id}, headers=tokens("nurse"))
    unknown = client.post("/api/v1/followup/plans", json={**body, "patient_id": 999999}, headers=tokens("nurse"))
    assert foreign.status_code == unknown.status_code == 422
    assert foreign.json == unknown.json
    nowhere = client.post("/api/v1/followup/plans", json={**body, "patient_id": stranger.id}, headers=tokens("nurse"))
    assert nowhere.status_code == 422
    assert plans() == []
    # The department head approves by enrolling herself; the audit trail says there was no record.
    head = client.post("/api/v1/followup/plans", json={**body, "patient_id": cardiac.id}, headers=tokens("head"))
    assert head.status_code == 201, head.json
    entry = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "followup_plan.enrol"))
    assert "without_clinical_record" in entry.detail


def test_the_enrolment_page_treats_another_departments_patient_as_unknown(clients, ward, create_patient,
                                                                         create_encounter, ctx):
    from tests.conftest import csrf_from
    from qcflow.extensions import db

    create_encounter(create_patient(mrn="CARD02"), ward["cardio"])
    db.session.commit()
    nurse = clients("nurse")
    form = {"csrf_token": csrf_from(nurse, "/followup/enrol"), "pathway": "cancer_colorectal",
            "department_id": str(ward["surgery"].id), "anchor_at": "2026-02-01T00:00", "source_type": "manual"}
    foreign = nurse.post("/followup/enrol", data={**form, "mrn": "CARD02"})
    missing = nurse.post("/followup/enrol", data={**form, "mrn": "NOPE"})
    assert foreign.status_code == missing.status_code == 422
    assert plans() == []


def test_patient_search_finds_only_the_departments_patients(client, tokens, ward, create_patient, create_encounter,
                                                            ctx):
    from qcflow.extensions import db

    create_encounter(create_patient(mrn="CARD03", name="钱多多"), ward["cardio"])
    create_encounter(create_patient(mrn="GS0003", name="孙小小"), ward["surgery"])
    db.session.commit()
    for user in ("nurse", "doctor", "head"):
        assert client.get("/api/v1/patients?mrn=CARD03", headers=tokens(user)).json == []
        assert [p["name"] for p in client.get("/api/v1/patients?mrn=GS0003", headers=tokens(user)).json] == ["孙小小"]
    assert {p["mrn"] for p in client.get("/api/v1/patients", headers=tokens("nurse")).json} == {"GS0003"}
    assert [p["name"] for p in client.get("/api/v1/patients?mrn=CARD03", headers=tokens("quality")).json] == ["钱多多"]


def test_enrolment_needs_a_protocol(enrol, ctx):
    from qcflow.core.errors import Unprocessable

    with pytest.raises(Unprocessable):
        enrol("astrology")


def test_a_plan_follows_the_hospital_day_for_late_evening_anchors(enrol, tasks_of):
    plan = enrol("four_level_surgery", anchor_at=sh(2026, 1, 30, 23, 50), now=sh(2026, 1, 30, 23, 55))
    assert tasks_of(plan)[0].due_on == date(2026, 3, 1)
    assert plan.next_due_on == date(2027, 1, 30)
    assert tasks_of(plan)[0].opens_at == sh(2026, 3, 1, 0, 0) - timedelta(days=7)
