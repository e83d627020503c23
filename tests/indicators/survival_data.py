"""Survival test data: five lung cancers whose Kaplan–Meier estimates are counted by hand."""
from datetime import date, timedelta

from tests.conftest import sh

DIAGNOSED = date(2019, 1, 1)
AS_OF = date(2026, 1, 1)


def diagnosis(b, patient, cancer_type="lung", on=DIAGNOSED, department=None):
    from qcflow.clinical.models import CancerDiagnosis

    department = department or b.h["surgery"]
    return b._add(CancerDiagnosis(his_id=f"DX{patient.id}-{cancer_type}-{on}", patient_id=patient.id,
                                  cancer_type=cancer_type, icd10="C34.9", diagnosed_on=on,
                                  department_id=department.id, created_at=b.created, updated_at=b.created))


def call(b, patient, day, *, respondent="patient", vital_status=None, state="completed", pathway="cancer_lung"):
    """A follow-up call of the patient closed on `day` (10:00 hospital time)."""
    plan = b.plan(pathway, b.h["surgery"], patient=patient)
    at = sh(day.year, day.month, day.day, 10)
    task = b.task(pathway, b.h["surgery"], at - timedelta(days=3), at + timedelta(days=3), state, closed_at=at,
                  is_effective=True, plan=plan)
    task.respondent = respondent if state == "completed" else None
    task.vital_status = vital_status
    b.db.session.flush()
    return task


def day(n):
    return DIAGNOSED + timedelta(days=n)


def five_lung_cancers(b):
    """Five lung cancers, by hand (days after diagnosis): A dies at 200; B's family says alive at 500; C dies at
    800; D is last discharged at 1500; E answers a call at 2000.

    Kaplan–Meier: at 200, 5 at risk, 1 death → 4/5 = 0.8; B censored at 500; at 800, 3 at risk (C, D, E),
    1 death → 0.8 × 2/3 = 0.5333; D and E censored. 1 year (365 d): 0.8, at risk 4; 3 years (1096 d): 0.5333,
    at risk 2 (D, E); 5 years (1826 d): 0.5333, at risk 1 (E).
    """
    a = b.patient(died_on=day(200))
    diagnosis(b, a)
    patient = b.patient()
    diagnosis(b, patient)
    call(b, patient, day(500), respondent="family", vital_status="alive")
    c = b.patient(died_on=day(800))
    diagnosis(b, c)
    call(b, c, day(300), vital_status="alive")                       # alive earlier: the death wins
    d = b.patient()
    diagnosis(b, d)
    b.encounter(b.h["surgery"], sh(*day(1500).timetuple()[:3], 9), patient=d)   # admitted 1498, discharged 1500
    e = b.patient()
    diagnosis(b, e)
    call(b, e, day(2000))
    b.db.session.commit()
