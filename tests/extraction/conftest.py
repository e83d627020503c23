"""Fixtures for automatic extraction: a hospital with surgery, an ICU and the quality office, and a way to
record HIS facts as the intake would (row, then queued) and run the evaluator."""
from __future__ import annotations

from datetime import timedelta
from itertools import count

import pytest
import sqlalchemy as sa

from tests.conftest import sh

_seq = count(1)


@pytest.fixture
def hospital_layout():
    departments = {
        "surgery": {"code": "GS", "name": "普通外科", "name_en": "General surgery"},
        "ortho": {"code": "ORTH", "name": "骨科", "name_en": "Orthopaedics"},
        "icu": {"code": "ICU", "name": "重症医学科", "name_en": "Intensive care"},
        "qc": {"code": "QC", "name": "质控办", "kind": "functional"},
    }
    people = {
        "head": ("head", "dept_head", "surgery", "王主任"),
        "ortho_head": ("orthohead", "dept_head", "ortho"),
        "doctor": ("doctor", "clinician", "surgery"),
        "nurse": ("nurse", "nurse", "surgery"),
        "quality": ("quality", "quality", "qc", "质控员"),
        "admin": ("admin", "admin", "qc"),
    }
    return departments, people


T0 = sh(2026, 3, 2, 9, 0)


class Facts:
    """HIS facts of one hospital, recorded and queued as the intake does."""

    def __init__(self, hospital, create_patient, create_staff, create_procedure):
        from qcflow.extensions import db

        self.db, self.hospital = db, hospital
        self.create_patient = create_patient
        self.surgeon = create_staff(department=hospital["surgery"], specialty="general_surgery")
        self.procedure = create_procedure(code="47.0901", name="腹腔镜阑尾切除术", grade=2)

    def _queue(self, kind, obj):
        from qcflow.extraction import services

        services.queue_fact(kind, obj.id, obj.patient_id, now=T0)
        self.db.session.flush()
        return obj

    def patient(self, **kwargs):
        return self.create_patient(**kwargs)

    def stay(self, patient, admitted_at=T0 - timedelta(days=1), discharged_at=None, department="surgery", **kwargs):
        from qcflow.clinical.models import Encounter

        enc = Encounter(his_id=f"E{next(_seq)}", patient_id=patient.id,
                        department_id=self.hospital[department].id, admitted_at=admitted_at,
                        discharged_at=discharged_at, created_at=T0, updated_at=T0, **kwargs)
        self.db.session.add(enc)
        self.db.session.flush()
        return self._queue("encounter", enc)

    def operation(self, stay, performed_at, **kwargs):
        from qcflow.clinical.models import Operation

        op = Operation(his_id=f"O{next(_seq)}", encounter_id=stay.id, patient_id=stay.patient_id,
                       department_id=stay.department_id, procedure_code=self.procedure.code, grade=2,
                       surgeon_staff_id=self.surgeon.id, planned_at=performed_at, performed_at=performed_at,
                       state="performed", created_at=T0, updated_at=T0, **kwargs)
        self.db.session.add(op)
        self.db.session.flush()
        return self._queue("operation", op)

    def transfer(self, stay, at, to="icu", to_icu=True):
        from qcflow.clinical.models import Transfer

        t = Transfer(his_id=f"T{next(_seq)}", encounter_id=stay.id, patient_id=stay.patient_id,
                     from_department_id=stay.department_id, to_department_id=self.hospital[to].id, to_icu=to_icu,
                     transferred_at=at, created_at=T0, updated_at=T0)
        self.db.session.add(t)
        self.db.session.flush()
        return self._queue("transfer", t)

    def drug(self, stay, drug, at, reaction=False, dose=None):
        from qcflow.clinical.models import MedicationAdministration

        m = MedicationAdministration(his_id=f"M{next(_seq)}", encounter_id=stay.id, patient_id=stay.patient_id,
                                     drug=drug, dose=dose, given_at=at, reaction=reaction, created_at=T0,
                                     updated_at=T0)
        self.db.session.add(m)
        self.db.session.flush()
        return self._queue("administration", m)

    def lab(self, stay, test_code, value, unit="mmol/L", at=T0):
        from qcflow.clinical.models import CriticalLabResult

        r = CriticalLabResult(his_id=f"L{next(_seq)}", encounter_id=stay.id, patient_id=stay.patient_id,
                              test_code=test_code, value=value, unit=unit, resulted_at=at, created_at=T0,
                              updated_at=T0)
        self.db.session.add(r)
        self.db.session.flush()
        return self._queue("lab", r)

    def death(self, patient, died_on):
        from qcflow.extraction import services

        patient.died_on = died_on
        self.db.session.flush()
        services.queue_fact("death", patient.id, patient.id, now=T0)
        self.db.session.flush()

    def requeue(self, kind, obj):
        return self._queue(kind, obj)

    def evaluate(self, now=T0, **kwargs):
        from qcflow.extraction import services

        result = services.evaluate_queued(now, **kwargs)
        self.db.session.commit()
        return result

    def firings(self, code=None):
        from qcflow.extraction.models import Trigger
        from qcflow.followup.models import EventPrompt

        stmt = sa.select(EventPrompt).where(EventPrompt.trigger_id.is_not(None)).order_by(EventPrompt.id)
        if code:
            stmt = stmt.join(Trigger, Trigger.id == EventPrompt.trigger_id).where(Trigger.code == code)
        return list(self.db.session.scalars(stmt))


@pytest.fixture
def facts(ctx, hospital, create_patient, create_staff, create_procedure):
    return Facts(hospital, create_patient, create_staff, create_procedure)
