"""A death the family reports at a follow-up call is the patient's, as one the HIS reports: it sets the
date of death (the day they died, not the day of the call), stops every plan and requests the
perioperative death review when it falls within the window."""
import json
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from tests.conftest import SHANGHAI, sh
from tests.followup.test_tasks import post


@pytest.fixture
def operated(ctx, ward, enrol, create_patient, create_encounter, create_operation, create_staff, frozen):
    """A patient with a grade-4 operation performed `days_before` the call, a day-surgery plan whose 24 h
    call is open and a lung-cancer plan; returns (patient, the open call's id)."""
    from qcflow.extensions import db
    from qcflow.followup import services
    from qcflow.followup.models import Task

    def make(days_before: int):
        patient = create_patient(his_id="P-DEATH", mrn="BA9001", name="吴大")
        performed = frozen - timedelta(days=days_before)
        stay = create_encounter(patient, ward["surgery"], performed - timedelta(days=1),
                                discharged_at=performed + timedelta(days=5))
        create_operation(ward["surgery"], create_staff(department=ward["surgery"]), performed - timedelta(hours=2),
                         encounter=stay, performed_at=performed)
        day = enrol("day_surgery", patient=patient, anchor_at=frozen - timedelta(hours=3), now=frozen)
        enrol("cancer_lung", patient=patient, anchor_at=sh(2025, 12, 1, 0, 0), now=sh(2025, 12, 1, 0, 0))
        services.generate_due(frozen)
        db.session.commit()
        return patient, db.session.scalar(sa.select(Task.id).where(Task.plan_id == day.id, Task.occurrence == 1))

    return make


def report_death(client, tokens, task_id, died_on):
    path = f"/api/v1/followup/tasks/{task_id}"
    post(client, path + "/claim", tokens("nurse"))
    return post(client, path + "/complete", tokens("nurse"), respondent="family", vital_status="dead",
                date_of_death=died_on, complication=False, recurrence_metastasis=False)


def death_reviews(patient_id):
    from qcflow.extensions import db
    from qcflow.mdt.models import Discussion

    return list(db.session.scalars(sa.select(Discussion).where(Discussion.patient_id == patient_id,
                                                               Discussion.kind == "perioperative_death")))


def test_a_death_reported_at_a_call_is_the_patients_and_requests_the_review_once(
        client, tokens, operated, ward, frozen):
    from qcflow.clinical.services import import_rows
    from qcflow.core.actors import Actor
    from qcflow.core.audit import AuditEntry
    from qcflow.extensions import db
    from qcflow.followup.models import Plan, Task

    patient, task_id = operated(days_before=10)
    done = report_death(client, tokens, task_id, "2026-03-02")
    assert done.status_code == 200, done.json
    db.session.expire_all()
    assert patient.died_on == date(2026, 3, 2)
    plans = db.session.scalars(sa.select(Plan).where(Plan.patient_id == patient.id)).all()
    assert len(plans) == 2 and {(p.state, p.ended_on) for p in plans} == {("stopped", date(2026, 3, 2))}
    still_open = db.session.scalars(sa.select(Task).where(Task.patient_id == patient.id,
                                                          Task.state.in_(["pending", "in_progress"]))).all()
    assert still_open == []
    (review,) = death_reviews(patient.id)
    assert review.department_id == ward["surgery"].id
    recorded = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "patient.death_recorded"))
    assert json.loads(recorded.detail)["after"] == {"died_on": "2026-03-02", "source": "followup"}

    # The HIS sends the same death a day later: nothing new is set off.
    results = import_rows("patients", [{"his_id": "P-DEATH", "mrn": "BA9001", "name": "吴大", "sex": "F",
                                        "phone": "13812345678", "died_on": "2026-03-02"}],
                          actor=Actor.for_user(ward["admin"]), now=frozen + timedelta(days=1))
    assert not any(r.errors for r in results)
    db.session.commit()
    assert len(death_reviews(patient.id)) == 1


def test_a_reported_death_outside_the_perioperative_window_requests_no_review(client, tokens, operated):
    from qcflow.extensions import db

    patient, task_id = operated(days_before=45)
    assert report_death(client, tokens, task_id, "2026-03-02").status_code == 200
    db.session.expire_all()
    assert patient.died_on == date(2026, 3, 2)
    assert death_reviews(patient.id) == []


def test_a_death_the_his_recorded_first_keeps_its_date_and_the_difference_is_audited(
        client, tokens, operated, ward, frozen):
    from qcflow.clinical.services import import_rows
    from qcflow.core.actors import Actor
    from qcflow.core.audit import AuditEntry
    from qcflow.extensions import db

    patient, task_id = operated(days_before=10)
    his = import_rows("patients", [{"his_id": "P-DEATH", "mrn": "BA9001", "name": "吴大", "sex": "F",
                                    "phone": "13812345678", "died_on": "2026-03-02"}],
                      actor=Actor.for_user(ward["admin"]), now=frozen)
    assert not any(r.errors for r in his)
    db.session.commit()
    assert len(death_reviews(patient.id)) == 1
    # The plans are stopped: a call can no longer be completed, so the family's date comes through the service.
    from qcflow.clinical.services import DEATH_FROM_FOLLOWUP, record_death

    assert record_death(patient, date(2026, 2, 28), source=DEATH_FROM_FOLLOWUP,
                        actor=Actor.for_user(ward["nurse"]), now=frozen) == []
    db.session.commit()
    db.session.expire_all()
    assert patient.died_on == date(2026, 3, 2)
    differs = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "patient.death_date_differs"))
    assert json.loads(differs.detail) == {"before": {"died_on": "2026-03-02"},
                                          "after": {"died_on": "2026-02-28", "source": "followup"}}
    assert len(death_reviews(patient.id)) == 1


@pytest.mark.parametrize("died_on", ["2026-03-01", "2026-03-03"])
def test_a_day_of_death_before_the_follow_up_began_or_in_the_future_is_422(client, tokens, operated, died_on):
    from qcflow.extensions import db

    patient, task_id = operated(days_before=10)
    response = report_death(client, tokens, task_id, died_on)
    assert response.status_code == 422 and "date_of_death" in response.json["errors"], response.json
    db.session.expire_all()
    assert patient.died_on is None and death_reviews(patient.id) == []


def test_a_death_in_hospital_the_his_discharges_is_the_patients_date_of_death(operated, ward, frozen):
    """The HIS discharging a stay as a death sets the patient's date of death (it only requested the review)."""
    from qcflow.clinical.services import import_rows
    from qcflow.core.actors import Actor
    from qcflow.core.audit import AuditEntry
    from qcflow.extensions import db

    patient, _task_id = operated(days_before=10)
    died_at = frozen - timedelta(days=2)
    rows = import_rows("encounters", [{"his_id": "E-DEATH", "patient_his_id": "P-DEATH", "department_code": "GS",
                                       "admitted_at": (died_at - timedelta(days=3)).isoformat(),
                                       "discharged_at": died_at.isoformat(), "disposition": "death"}],
                       actor=Actor.for_user(ward["admin"]), now=frozen)
    assert not rows[0].errors, rows[0].errors
    db.session.commit()
    db.session.expire_all()
    assert patient.died_on == died_at.astimezone(SHANGHAI).date()
    assert len(death_reviews(patient.id)) == 1
    effects = {(e.code, e.detail) for e in rows[0].effects}
    assert ("discussion_requested", "perioperative_death") in effects and ("plan_stopped", "day_surgery") in effects
    recorded = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "patient.death_recorded"))
    assert json.loads(recorded.detail)["after"]["source"] == "his"


def test_a_day_of_death_after_the_call_that_reported_it_is_422(client, tokens, ctx, ward, enrol, create_patient,
                                                               frozen):
    """A call logged late (yesterday's) cannot report a death that happened after it."""
    from qcflow.extensions import db
    from qcflow.followup import services
    from qcflow.followup.models import Task

    patient = create_patient(his_id="P-LATE", mrn="BA9002", name="钱二")
    plan = enrol("day_surgery", patient=patient, anchor_at=frozen - timedelta(hours=30), now=frozen)
    services.generate_due(frozen)
    db.session.commit()
    task_id = db.session.scalar(sa.select(Task.id).where(Task.plan_id == plan.id, Task.occurrence == 1))
    path = f"/api/v1/followup/tasks/{task_id}"
    post(client, path + "/claim", tokens("nurse"))
    yesterday = (frozen - timedelta(hours=20)).isoformat()  # 1 March, 13:30
    response = post(client, path + "/complete", tokens("nurse"), respondent="family", vital_status="dead",
                    date_of_death="2026-03-02", completed_at=yesterday, complication=False,
                    recurrence_metastasis=False)
    assert response.status_code == 422 and "2026-03-01" in response.json["errors"]["date_of_death"][0]
    db.session.expire_all()
    assert patient.died_on is None
    accepted = post(client, path + "/complete", tokens("nurse"), respondent="family", vital_status="dead",
                    date_of_death="2026-03-01", completed_at=yesterday, complication=False,
                    recurrence_metastasis=False)
    assert accepted.status_code == 200, accepted.json
