"""Enrolment on a follow-up pathway: by hand, and automatically from clinical facts (operation
performed, day-surgery discharge, key-cancer diagnosis); a recorded death stops the plans."""
from __future__ import annotations

import logging
from datetime import date, datetime, timedelta, timezone

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _

from qcflow.auth.models import Department
from qcflow.auth.permissions import can, department_for
from qcflow.clinical.models import CancerDiagnosis, CancerType, Encounter, Operation, Patient
from qcflow.clinical.queries import has_clinical_record
from qcflow.clinical.workflow import OperationState
from qcflow.core import audit
from qcflow.core.actors import Actor
from qcflow.core.errors import Unprocessable
from qcflow.core.periods import local_midnight
from qcflow.core.time import hospital_tz
from qcflow.extensions import db
from qcflow.followup import schedule
from qcflow.followup.models import Plan
from qcflow.followup.services.generator import generate_due
from qcflow.followup.services.plans import end_plan, reanchor
from qcflow.followup.services.protocols import current_protocol, set_cursor, slots_of, system_actor
from qcflow.followup.workflow import PlanState
from qcflow.reactions import Effect

log = logging.getLogger(__name__)


#: The five key cancers (FU-09) have their own pathways: cancer_<type>.
KEY_CANCERS = tuple(t.value for t in CancerType if t != CancerType.OTHER)


def find_plan(patient_id: int, pathway: str, source_key: str) -> Plan | None:
    return db.session.scalar(sa.select(Plan).where(Plan.patient_id == patient_id, Plan.pathway == pathway,
                                                   Plan.source_key == source_key))


def enrol_by_hand(data: dict, *, actor: Actor, now: datetime) -> Plan:
    """Enrol a patient by hand (the page and the API).

    A nurse or clinician enrols only a patient with a clinical record (encounter, operation, diagnosis)
    in their own department: anyone else is answered as an unknown patient, so the phone number of
    another department's patient is never one enrolment away. The head of the department and the
    quality office may enrol any patient; an enrolment without such a record is audited as such.
    """
    department_for(actor, data["department_id"], field="department_id")
    patient = db.session.get(Patient, data["patient_id"])
    has_record = patient is not None and has_clinical_record(patient.id, data["department_id"])
    if patient is None or not (has_record or can(actor, "supervise_followup")):
        raise Unprocessable(errors={"patient_id": [_("Unknown patient.")]})
    source_id = data.get("source_id")
    if data["source_type"] != "manual" and source_id is None:
        raise Unprocessable(errors={"source_id": [_("Give the id of the source record.")]})
    key = None if data["source_type"] != "manual" else f"manual:{data['anchor_at'].isoformat()}"
    return enrol(patient, data["pathway"], source_type=data["source_type"], source_id=source_id,
                 anchor_at=data["anchor_at"], department_id=data["department_id"], actor=actor, now=now,
                 source_key=key, without_clinical_record=not has_record)


def enrol(patient: Patient, pathway: str, *, source_type: str, source_id: int | None, anchor_at: datetime,
          department_id: int, actor: Actor, now: datetime, source_key: str | None = None,
          without_clinical_record: bool = False) -> Plan:
    """Enrol a patient on a pathway from one source record; enrolling again returns the same plan.

    Tasks already due (e.g. the day-surgery 24 h call) are generated at once.
    """
    source_key = source_key or f"{source_type}:{source_id}"
    existing = find_plan(patient.id, pathway, source_key)
    if existing is not None:
        return existing
    if patient.died_on is not None:
        raise Unprocessable(errors={"patient": [_("The patient's death is recorded; no follow-up is planned.")]})
    protocol = current_protocol(pathway)
    if protocol is None:
        raise Unprocessable(errors={"pathway": [_("No follow-up protocol “%(code)s”.", code=pathway)]})
    plan = Plan(patient_id=patient.id, department_id=department_id, protocol_id=protocol.id, pathway=pathway,
                source_type=source_type, source_id=source_id, source_key=source_key,
                anchor_at=anchor_at.astimezone(timezone.utc), state=PlanState.ACTIVE.value, next_occurrence=1,
                enrolled_at=now, enrolled_by=actor.audit_name)
    set_cursor(plan, schedule.occurrence(slots_of(protocol), plan.anchor_at, 1, hospital_tz()))
    db.session.add(plan)
    db.session.flush()
    audit.record(actor.audit_name, "followup_plan.enrol", "followup_plan", plan.id, now,
                 after={"patient_id": patient.id, "pathway": pathway, "protocol_id": protocol.id,
                        "source": source_key, "anchor_at": plan.anchor_at.isoformat(),
                        **({"without_clinical_record": True} if without_clinical_record else {})})
    generate_due(now, plan_ids=[plan.id])
    return plan


def effect(code: str, plan: Plan) -> list[Effect]:
    """What a reaction did to a plan, for the fact's sender."""
    return [Effect(code, "followup_plan", plan.id, plan.pathway)]


def _auto_enrol(patient: Patient, pathway: str, source_type: str, source_id: int, anchor_at: datetime,
                department_id: int | None, now: datetime) -> list[Effect] | None:
    """Automatic enrolment from a clinical fact: never fails the intake, says why it skipped (an effect
    `plan_not_enrolled_*` the sender sees, and the log)."""
    def skipped(why: str) -> list[Effect]:
        log.warning("%s %s not enrolled in %s: %s", source_type, source_id, pathway, why)
        return [Effect(f"plan_not_enrolled_{why}", "followup_plan", None, pathway)]

    if patient.died_on is not None:
        return skipped("deceased")
    existing = find_plan(patient.id, pathway, f"{source_type}:{source_id}")
    if existing is not None:
        return effect("plan_already_enrolled", existing)
    if current_protocol(pathway) is None:
        return skipped("no_protocol")
    department_id = department_id or _fallback_department(patient)
    if department_id is None:
        return skipped("no_department")
    return effect("plan_enrolled", enrol(patient, pathway, source_type=source_type, source_id=source_id,
                                         anchor_at=anchor_at, department_id=department_id,
                                         actor=system_actor("followup.enrol"), now=now))


def _fallback_department(patient: Patient) -> int | None:
    """The department of the patient's latest encounter, else the configured follow-up department."""
    latest = db.session.scalar(sa.select(Encounter.department_id).where(Encounter.patient_id == patient.id)
                               .order_by(Encounter.admitted_at.desc()).limit(1))
    if latest is not None:
        return latest
    code = current_app.config.get("FOLLOWUP_FALLBACK_DEPARTMENT")
    if code:
        return db.session.scalar(sa.select(Department.id).where(Department.code == code))
    return None


def on_operation_performed(operation: Operation, *, now: datetime) -> list[Effect] | None:
    """A performed grade-4 (or restricted-technology) operation → four_level_surgery, anchored at performed_at."""
    if operation.state != OperationState.PERFORMED or operation.performed_at is None or not operation.needs_mdt:
        return None
    patient = db.session.get(Patient, operation.patient_id)
    return _auto_enrol(patient, "four_level_surgery", "operation", operation.id, operation.performed_at,
                       operation.department_id, now)


def on_encounter_discharged(encounter: Encounter, *, now: datetime) -> list[Effect] | None:
    """A day-surgery discharge (not a death) → day_surgery, anchored at discharged_at.

    A corrected discharge time re-anchors the plan: its untouched tasks and cursor follow.
    """
    if not encounter.is_day_surgery or encounter.discharged_at is None or encounter.disposition == "death":
        return None
    patient = db.session.get(Patient, encounter.patient_id)
    plan = find_plan(patient.id, "day_surgery", f"encounter:{encounter.id}")
    if plan is not None:
        if plan.state == PlanState.ACTIVE and plan.anchor_at != encounter.discharged_at:
            reanchor(plan, encounter.discharged_at, actor=system_actor("followup.enrol"), now=now)
            return effect("plan_reanchored", plan)
        return effect("plan_already_enrolled", plan)
    return _auto_enrol(patient, "day_surgery", "encounter", encounter.id, encounter.discharged_at,
                       encounter.department_id, now)


def on_cancer_diagnosis(diagnosis: CancerDiagnosis, *, now: datetime) -> list[Effect] | None:
    """A diagnosis of one of the five key cancers → cancer_<type>, anchored at the diagnosis date."""
    if diagnosis.cancer_type not in KEY_CANCERS:
        return None
    patient = db.session.get(Patient, diagnosis.patient_id)
    anchor_at = local_midnight(diagnosis.diagnosed_on, hospital_tz())
    return _auto_enrol(patient, f"cancer_{diagnosis.cancer_type}", "diagnosis", diagnosis.id, anchor_at,
                       diagnosis.department_id, now)


def on_death(patient: Patient, *, died_on: date, now: datetime, died_at: datetime | None = None) -> list[Effect]:
    """Stop every active plan of the patient and cancel the calls the death made unnecessary; returns the
    plans stopped.

    Only calls whose window had not closed when the patient died (`died_at`; a death known by its day
    only happened at the day's last instant) are cancelled, however late the death is learnt. A call whose
    window closed before the death keeps its outcome: missed (still open), unreachable or completed.
    """
    actor = system_actor("followup.death")
    died_at = died_at or local_midnight(died_on + timedelta(days=1), hospital_tz()) - timedelta(microseconds=1)
    running = (PlanState.ACTIVE.value, PlanState.PAUSED.value)
    plans = list(db.session.scalars(sa.select(Plan).where(Plan.patient_id == patient.id, Plan.state.in_(running))
                                    .order_by(Plan.id)))
    for plan in plans:
        end_plan(plan, "stop", {}, actor=actor, now=now, ended_on=died_on, code="death", open_after=died_at)
    return [e for plan in plans for e in effect("plan_stopped", plan)]
