"""The bridge from follow-up to adverse events: a call's findings open a prompt for the quality
office, which files it as a confidential report or dismisses it."""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from qcflow import reactions
from qcflow.auth.models import Role
from qcflow.clinical.models import Patient
from qcflow.core import audit
from qcflow.core.actors import Actor
from qcflow.core.i18n import label_list
from qcflow.core.periods import local_midnight
from qcflow.core.time import hospital_tz
from qcflow.extensions import db
from qcflow.followup.models import EventPrompt, Task
from qcflow.followup.workflow import PROMPT_WORKFLOW
from qcflow.notify.services import notify, users_with_role


SYSTEM = "system:followup"


def findings(task: Task) -> list[str]:
    """What in an outcome may be an adverse event (DESIGN §4, bridge from follow-up)."""
    found = [item for item in ("complication", "unplanned_readmission", "reoperation") if getattr(task, item)]
    if task.vital_status == "dead":
        found.append("death")
    return found


def open_prompt(task: Task, *, now: datetime) -> EventPrompt:
    """A "possible event" prompt for the quality office (once per task), with a notification."""
    existing = db.session.scalar(sa.select(EventPrompt).where(EventPrompt.task_id == task.id))
    if existing is not None:
        return existing
    prompt = EventPrompt(task_id=task.id, patient_id=task.patient_id, department_id=task.department_id,
                         findings=",".join(findings(task)), created_at=now)
    db.session.add(prompt)
    db.session.flush()
    audit.record(SYSTEM, "followup_prompt.open", "followup_event_prompt", prompt.id, now,
                 after={"task_id": task.id, "findings": prompt.findings})
    notify(users_with_role(Role.QUALITY), "followup.event_prompt", {"findings": findings(task)}, now=now,
           link="/followup/prompts")
    return prompt


def findings_text(found: list[str]) -> str:
    """Findings as labels in the reader's language, e.g. 并发症、再次手术."""
    return label_list("fu_item", found)


def report_data(prompt: EventPrompt) -> dict:
    """A confidential adverse-event report pre-filled from the follow-up record."""
    task = prompt.task
    plan = task.plan
    patient = db.session.get(Patient, task.patient_id)
    found = prompt.findings.split(",")
    surgical = plan.source_type == "operation" or plan.pathway in ("day_surgery", "four_level_surgery")
    discovered = task.closed_at
    occurred = discovered
    if task.died_on is not None:
        occurred = min(local_midnight(task.died_on, hospital_tz()), discovered)
    # The report stores what generated it as codes (the case page writes its place and opening sentence in
    # each reader's language) and, as its description, only what the nurse wrote.
    origin = {"kind": "followup_call", "call": task.occurrence, "pathway": plan.pathway,
              "due_on": task.due_on.isoformat(), "findings": found}
    description = " ".join(note for note in (task.complication_note, task.outcome_note) if note)
    return {
        "category_code": "surgery" if surgical else "treatment_procedure",
        "subcategory_code": "unplanned_reoperation" if surgical and "reoperation" in found else None,
        "reporter_grade": "I" if "death" in found else "II",
        "harm": "death" if "death" in found else None,
        "care_stage": "discharge_followup",
        "occurred_at": occurred,
        "discovered_at": discovered,
        "department_id": plan.department_id,
        "description": description,
        "origin": origin,
        "patient_mrn": patient.mrn if patient else None,
        "operation_id": plan.source_id if plan.source_type == "operation" else None,
        "is_unplanned_reoperation": "reoperation" in found,
        "wants_feedback": False,
    }


def file_prompt(prompt: EventPrompt, *, actor: Actor, now: datetime, expected_version: int | None = None):
    """Turn a prompt into a confidential adverse-event report filed by this quality-office user."""
    PROMPT_WORKFLOW.check(prompt, "file", actor=actor, expected_version=expected_version)
    data = {k: v for k, v in report_data(prompt).items() if v is not None}
    event, _code = reactions.ask("event.file_report", data, mode="confidential", actor=actor, now=now)
    prompt.event_id, prompt.handled_at, prompt.handled_by_id = event.id, now, actor.user_id
    PROMPT_WORKFLOW.apply(prompt, "file", actor=actor, now=now, audit_detail={"event_id": event.id})
    return event


def dismiss_prompt(prompt: EventPrompt, data: dict, *, actor: Actor, now: datetime,
                   expected_version: int | None = None) -> EventPrompt:
    """Close a prompt without a report (reason required)."""
    PROMPT_WORKFLOW.check(prompt, "dismiss", actor=actor, data=data, expected_version=expected_version)
    prompt.dismiss_reason, prompt.handled_at, prompt.handled_by_id = data["reason"].strip(), now, actor.user_id
    PROMPT_WORKFLOW.apply(prompt, "dismiss", actor=actor, now=now, data=data)
    return prompt
