"""Fixtures for the indicator tests: a hand-built reference month (March 2026) of explicit rows.

Every row is written directly with its final state and times, so the expected value of each
indicator can be counted by hand from this file (see EXPECTED in test_reference_month.py).
"""
from __future__ import annotations

from datetime import date, timedelta
from itertools import count

import pytest
import sqlalchemy as sa

from tests.conftest import PG_URL, SHANGHAI, migration_module, sh

_seq = count(1)


#: The reference month and when it is judged (every window and deadline of March has closed).
MARCH = (date(2026, 3, 1), date(2026, 3, 31))
JUDGED_AT = sh(2026, 4, 10, 9, 0)


@pytest.fixture(autouse=True)
def _seeded_targets(database_url):
    """PostgreSQL tests empty every table between tests: put the migration's default targets back."""
    if not PG_URL:
        return
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        if not conn.execute(sa.text("SELECT count(*) FROM indicator_target")).scalar():
            migration_module("*_indicator_targets_and_snapshots.py").seed_targets(conn)
    engine.dispose()


@pytest.fixture
def hospital_layout():
    """General surgery, cardiology and the quality office; users by role."""
    departments = {
        "surgery": {"code": "GS", "name": "普通外科"},
        "cardio": {"code": "CARD", "name": "心内科"},
        "qc": {"code": "QC", "name": "质控办", "kind": "functional"},
    }
    people = {
        "nurse": ("nurse", "nurse", "surgery"),
        "head": ("head", "dept_head", "surgery"),
        "card_head": ("cardhead", "dept_head", "cardio"),
        "quality": ("quality", "quality", "qc"),
        "admin": ("admin", "admin", "qc"),
        "doctor": ("doctor", "clinician", "surgery"),
    }
    return departments, people


class Builder:
    """Explicit rows for the reference month; each method flushes one row and returns it."""

    def __init__(self, hospital, reference_data=True):
        from qcflow.clinical.models import Procedure, Staff
        from qcflow.extensions import db

        self.db = db
        self.h = hospital
        self.created = sh(2026, 1, 1)
        if not reference_data:
            return
        for code, grade, restricted in (("G4", 4, False), ("G3R", 3, True), ("G2", 2, False)):
            db.session.add(Procedure(code=code, name=f"手术{code}", grade=grade, is_restricted_technology=restricted))
        self.surgeon = Staff(his_id="S1", name="刘外科", department_id=hospital["surgery"].id)
        db.session.add(self.surgeon)
        db.session.flush()

    def _add(self, row):
        self.db.session.add(row)
        self.db.session.flush()
        return row

    def patient(self, **kwargs):
        from qcflow.clinical.models import Patient

        n = next(_seq)
        return self._add(Patient(his_id=f"P{n}", mrn=f"MRN{n:05d}", name=f"患者{n}", sex="F", created_at=self.created,
                                 updated_at=self.created, **kwargs))

    def encounter(self, department, discharged_at, *, is_day_surgery=False, disposition="home", patient=None):
        from qcflow.clinical.models import Encounter

        patient = patient or self.patient()
        return self._add(Encounter(his_id=f"E{next(_seq)}", patient_id=patient.id, department_id=department.id,
                                   admitted_at=discharged_at - timedelta(days=2), discharged_at=discharged_at,
                                   is_day_surgery=is_day_surgery, disposition=disposition,
                                   created_at=self.created, updated_at=self.created))

    def census(self, department, month_on, discharges):
        from qcflow.clinical.models import DischargeCensus

        return self._add(DischargeCensus(department_id=department.id, month_on=month_on, discharges=discharges,
                                         updated_at=self.created))

    def event(self, department, state, submitted_at, *, closed_at=None, grade="III", found_by="reporter"):
        from qcflow.events.models import AdverseEvent

        n = next(_seq)
        return self._add(AdverseEvent(
            reference=f"AE-2026-{n:06d}", state=state, mode="named" if found_by == "reporter" else "confidential",
            found_by=found_by, category_code="medication",
            reporter_grade=grade, confirmed_grade=grade if state not in ("draft", "submitted") else None,
            department_id=department.id, description="参考月事件", created_at=submitted_at or self.created,
            submitted_at=submitted_at, closed_at=closed_at))

    def operation(self, department, procedure_code, performed_at, *, state="performed", day_surgery=False,
                  unplanned=False, emergency=False):
        from qcflow.clinical.models import Operation, Procedure

        procedure = self.db.session.get(Procedure, procedure_code)
        at = performed_at or sh(2026, 3, 20, 8)
        encounter = self.encounter(department, at + timedelta(days=1), is_day_surgery=day_surgery)
        return self._add(Operation(
            his_id=f"O{next(_seq)}", encounter_id=encounter.id, patient_id=encounter.patient_id,
            department_id=department.id, procedure_code=procedure_code, grade=procedure.grade,
            is_restricted_technology=procedure.is_restricted_technology, surgeon_staff_id=self.surgeon.id,
            state=state, planned_at=at - timedelta(hours=2),
            performed_at=performed_at if state == "performed" else None,
            is_unplanned_reoperation=unplanned, is_emergency_override=emergency,
            override_reason="急诊" if emergency else None, created_at=self.created, updated_at=self.created))

    def discussion(self, kind, state, *, operation=None, patient=None, encounter=None, signed_at=None, due_at=None):
        from qcflow.mdt.models import Discussion

        return self._add(Discussion(
            kind=kind, state=state, department_id=self.h["qc"].id, operation_id=operation.id if operation else None,
            patient_id=patient.id if patient else (operation.patient_id if operation else None),
            encounter_id=encounter.id if encounter else None, question="参考月讨论", due_at=due_at,
            signed_at=signed_at, created_at=self.created, updated_at=self.created))

    def plan(self, pathway, department, *, patient=None, source_type="manual", source_id=None, anchor_at=None):
        from qcflow.followup.models import Plan
        from qcflow.followup.services import current_protocol

        patient = patient or self.patient()
        protocol = current_protocol(pathway)
        return self._add(Plan(
            patient_id=patient.id, department_id=department.id, protocol_id=protocol.id, pathway=pathway,
            source_type=source_type, source_id=source_id, source_key=f"{source_type}:{source_id or next(_seq)}",
            anchor_at=anchor_at or sh(2025, 3, 1), state="active", next_due_at=None, enrolled_at=self.created,
            enrolled_by="system:test"))

    def task(self, pathway, department, opens_at, closes_at, state, *, closed_at=None, is_effective=None, plan=None,
             occurrence=1):
        from qcflow.followup.models import Task

        plan = plan or self.plan(pathway, department)
        return self._add(Task(
            plan_id=plan.id, occurrence=occurrence, protocol_id=plan.protocol_id, patient_id=plan.patient_id,
            department_id=department.id, pathway=pathway, state=state, due_at=opens_at + (closes_at - opens_at) / 2,
            due_on=(opens_at + (closes_at - opens_at) / 2).date(), opens_at=opens_at, closes_at=closes_at,
            created_at=opens_at - timedelta(days=30), closed_at=closed_at, is_effective=is_effective,
            respondent="patient" if state == "completed" else None))


@pytest.fixture
def reference_month(hospital):
    """March 2026: the rows behind EXPECTED, committed. Returns the builder and the notable rows."""
    b = Builder(hospital)
    gs, card = hospital["surgery"], hospital["cardio"]
    rows = {}

    # Discharges: GS has a census for March (200), which replaces its encounters; CARD has none.
    b.census(gs, date(2026, 3, 1), 200)
    b.census(gs, date(2026, 2, 1), 999)  # another month: never counted for March
    for at in (sh(2026, 3, 2, 10), sh(2026, 3, 15, 10), sh(2026, 3, 30, 10)):
        b.encounter(gs, at)  # replaced by the census
    for at in (sh(2026, 3, 1, 0, 0), sh(2026, 3, 10, 9), sh(2026, 3, 20, 9), sh(2026, 3, 31, 23, 30)):
        b.encounter(card, at)  # 4 CARD discharges in March
    for at in (sh(2026, 2, 28, 23, 59), sh(2026, 4, 1, 0, 10)):
        b.encounter(card, at)  # just outside March (hospital time)

    # Adverse events submitted in March: GS 4 reports (+ a draft, a duplicate, a not-reportable and a
    # withdrawn one, which are not reports), CARD 1; one GS report from February.
    for state in ("submitted", "triaged", "investigating", "closed", "duplicate", "not_reportable", "withdrawn"):
        b.event(gs, state, sh(2026, 3, 5, 10), closed_at=sh(2026, 3, 20, 10) if state == "closed" else None)
    b.event(gs, "draft", None)
    rows["card_event"] = b.event(card, "closed", sh(2026, 3, 31, 23, 0), closed_at=sh(2026, 4, 3, 10))
    # Closing deadlines (submission + 30 days) that fall in March: on time, late, still open; a
    # duplicate (not a report); one whose deadline fell in February.
    b.event(gs, "closed", sh(2026, 2, 5, 10), closed_at=sh(2026, 3, 1, 10))      # on time (24 days)
    b.event(gs, "closed", sh(2026, 2, 10, 10), closed_at=sh(2026, 3, 20, 10))    # late (38 days)
    b.event(gs, "investigating", sh(2026, 2, 15, 10))                            # not closed
    b.event(gs, "duplicate", sh(2026, 2, 12, 10))
    b.event(gs, "closed", sh(2026, 1, 20, 10), closed_at=sh(2026, 2, 1, 10))     # deadline 19 February

    # Four-level follow-up calls whose window closed in March.
    w = (sh(2026, 3, 1), sh(2026, 3, 15))
    b.task("four_level_surgery", gs, *w, "completed", closed_at=sh(2026, 3, 10), is_effective=True)   # effective
    b.task("four_level_surgery", gs, *w, "completed", closed_at=sh(2026, 3, 16), is_effective=True)   # late
    b.task("four_level_surgery", gs, *w, "pending")                                                   # missing
    b.task("four_level_surgery", gs, *w, "completed", closed_at=sh(2026, 3, 10), is_effective=False)  # not effective
    b.task("four_level_surgery", gs, *w, "cancelled", closed_at=sh(2026, 3, 5))                       # not due
    b.task("four_level_surgery", gs, *w, "unreachable", closed_at=sh(2026, 3, 14))                    # unreachable
    b.task("four_level_surgery", gs, sh(2026, 3, 20), sh(2026, 4, 3), "completed",                    # closes in April
           closed_at=sh(2026, 3, 25), is_effective=True)
    b.task("four_level_surgery", card, *w, "completed", closed_at=sh(2026, 3, 2), is_effective=True)  # CARD
    # Cancer calls: lung on time + late, breast on time.
    b.task("cancer_lung", gs, *w, "completed", closed_at=sh(2026, 3, 3), is_effective=True)
    b.task("cancer_lung", gs, *w, "completed", closed_at=sh(2026, 3, 18), is_effective=True)
    b.task("cancer_breast", card, *w, "completed", closed_at=sh(2026, 3, 9), is_effective=True)

    # Day-surgery discharges (GS) and their first call (window: discharge → +24 h).
    def day_case(discharged_at, call_state=None, called_at=None, effective=None, disposition="home"):
        encounter = b.encounter(gs, discharged_at, is_day_surgery=True, disposition=disposition)
        if call_state:
            plan = b.plan("day_surgery", gs, patient=None, source_type="encounter", source_id=encounter.id,
                          anchor_at=discharged_at)
            b.task("day_surgery", gs, discharged_at, discharged_at + timedelta(hours=24), call_state,
                   closed_at=called_at, is_effective=effective, plan=plan)
        return encounter

    day_case(sh(2026, 3, 5, 10), "completed", sh(2026, 3, 5, 20), True)     # within 24 h
    day_case(sh(2026, 3, 6, 10), "completed", sh(2026, 3, 7, 12), True)     # after 26 h
    day_case(sh(2026, 3, 7, 10), "pending")                                 # never called
    day_case(sh(2026, 3, 8, 10))                                            # no plan at all
    day_case(sh(2026, 3, 9, 10), disposition="death")                       # a death: not a day-surgery discharge
    day_case(sh(2026, 3, 10, 10), "completed", sh(2026, 3, 10, 18), False)  # on time, not effective

    # Operations performed in March.
    o1 = b.operation(gs, "G4", sh(2026, 3, 10, 9))
    b.discussion("preop_level4", "signed", operation=o1, signed_at=sh(2026, 3, 8, 15))     # signed before
    o2 = b.operation(gs, "G4", sh(2026, 3, 12, 9))
    b.discussion("preop_level4", "signed", operation=o2, signed_at=sh(2026, 3, 13, 15))    # signed after
    o3 = b.operation(gs, "G4", sh(2026, 3, 14, 9))
    b.discussion("preop_level4", "held", operation=o3)                                    # not signed
    b.operation(card, "G3R", sh(2026, 3, 15, 9), emergency=True)                          # restricted, no MDT
    b.operation(gs, "G2", sh(2026, 3, 16, 9), unplanned=True)                             # unplanned reoperation
    b.operation(gs, "G2", sh(2026, 3, 17, 9), day_surgery=True)                           # day surgery
    b.operation(card, "G2", sh(2026, 3, 18, 9))                                           # elective, inpatient
    february = b.operation(gs, "G4", sh(2026, 2, 27, 9))                                  # not in March
    b.operation(gs, "G2", None, state="planned")                                          # not performed

    # Perioperative deaths (reviews linked to the February operation, GS).
    def death_review(state, *, encounter_death=None, died_on=None, signed_at=None, due_at=None, patient=None):
        # The HIS's death discharge records the patient's day of death too (clinical.record_death).
        patient = patient or b.patient(died_on=died_on or encounter_death.astimezone(SHANGHAI).date())
        encounter = b.encounter(gs, encounter_death, disposition="death", patient=patient) if encounter_death else None
        b.discussion("perioperative_death", state, operation=february, patient=patient, encounter=encounter,
                     signed_at=signed_at, due_at=due_at)
        return patient

    death_review("signed", encounter_death=sh(2026, 3, 3, 4), signed_at=sh(2026, 3, 6, 10),
                 due_at=sh(2026, 3, 10, 4))                                   # discussed within 7 days
    death_review("signed", died_on=date(2026, 3, 20), signed_at=sh(2026, 3, 30, 10),
                 due_at=sh(2026, 3, 27))                                      # discussed, late
    death_review("requested", encounter_death=sh(2026, 3, 25, 4), due_at=sh(2026, 4, 1, 4))  # not discussed
    replaced = death_review("cancelled", died_on=date(2026, 3, 22), due_at=sh(2026, 3, 29))
    b.discussion("perioperative_death", "signed", operation=february, patient=replaced,
                 signed_at=sh(2026, 4, 1, 10), due_at=sh(2026, 3, 29))         # the replacement, late
    death_review("cancelled", died_on=date(2026, 3, 28), due_at=sh(2026, 4, 4))  # cancelled, not replaced
    death_review("signed", died_on=date(2026, 2, 25), signed_at=sh(2026, 2, 27), due_at=sh(2026, 3, 4))  # February

    b.db.session.commit()
    return rows
