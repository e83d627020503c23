"""Possible adverse events for review (提醒上报, 自动提取): a call's findings or a trigger's firing open a
prompt for the quality office and the department's heads, who file it as a confidential report (a firing
whose harm was reported already is linked to that report instead), or dismiss it with a reason."""
from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from flask_babel import gettext as _

from qcflow import reactions
from qcflow.auth.models import Role
from qcflow.clinical.models import Patient
from qcflow.core import audit
from qcflow.core.actors import Actor
from qcflow.core.errors import Unprocessable
from qcflow.core.i18n import label_list
from qcflow.core.periods import local_midnight
from qcflow.core.time import hospital_tz
from qcflow.extensions import db
from qcflow.extraction.models import Trigger
from qcflow.followup.models import EventPrompt, Task
from qcflow.followup.workflow import PROMPT_WORKFLOW
from qcflow.notify.services import notify, users_with_role


SYSTEM = "system:followup"
EXTRACTION = "system:extraction"


def findings(task: Task) -> list[str]:
    """What in an outcome may be an adverse event (DESIGN §4, bridge from follow-up)."""
    found = [item for item in ("complication", "unplanned_readmission", "reoperation") if getattr(task, item)]
    if task.vital_status == "dead":
        found.append("death")
    return found


def open_prompt(task: Task, *, now: datetime, found: list[str] | None = None) -> EventPrompt:
    """A "possible event" prompt for the quality office (once per task), with a notification. `found`: the
    findings when they are not (yet) the call's outcome (a patient's alarming answers online)."""
    found = findings(task) if found is None else found
    existing = db.session.scalar(sa.select(EventPrompt).where(EventPrompt.task_id == task.id))
    if existing is not None:
        return existing
    prompt = EventPrompt(task_id=task.id, patient_id=task.patient_id, department_id=task.department_id,
                         findings=",".join(found), created_at=now)
    db.session.add(prompt)
    db.session.flush()
    audit.record(SYSTEM, "followup_prompt.open", "followup_event_prompt", prompt.id, now,
                 after={"task_id": task.id, "findings": prompt.findings})
    notify(users_with_role(Role.QUALITY), "followup.event_prompt", {"findings": found}, now=now,
           link="/followup/prompts")
    return prompt


def _same_harm(rule: str, patient_id: int, window_key: str, facts: list[dict]) -> tuple:
    """What makes two firings the same harm: the rule, the patient, the window and the records that fired."""
    return rule, patient_id, window_key, tuple((f["kind"], f["id"]) for f in facts)


def open_firings(firings: list[dict], *, now: datetime) -> list[EventPrompt]:
    """Triggers' firings as possible events, once per (trigger, patient, window): one read of what fired before
    for the batch's patients and one insert for the new ones, each audited. A window that fired before (a
    re-sent fact, the pair seen from its other end, a dismissed firing) fires no more, and neither does the same
    harm found by another trigger of the same rule (a return within 48 h is also within 31 days: the reviewers
    see it once, from the trigger evaluated first). `firings`: dicts of rule, trigger_id, trigger_version,
    patient_id, window_key, department_id, reviewer_department_id, occurred_at, facts."""
    if not firings:
        return []
    known = db.session.execute(
        sa.select(EventPrompt.trigger_id, EventPrompt.patient_id, EventPrompt.window_key, EventPrompt.facts,
                  Trigger.rule).join(Trigger, Trigger.id == EventPrompt.trigger_id)
        .where(Trigger.rule.in_({f["rule"] for f in firings}),
               EventPrompt.patient_id.in_({f["patient_id"] for f in firings}))).all()
    fired = {(row.trigger_id, row.patient_id, row.window_key) for row in known}
    harms = {_same_harm(row.rule, row.patient_id, row.window_key, row.facts) for row in known}
    prompts = []
    for firing in firings:
        firing = dict(firing)
        harm = _same_harm(firing.pop("rule"), firing["patient_id"], firing["window_key"], firing["facts"])
        key = (firing["trigger_id"], firing["patient_id"], firing["window_key"])
        if key not in fired and harm not in harms:
            fired.add(key)
            harms.add(harm)
            prompts.append(EventPrompt(**firing, findings="", created_at=now))
    db.session.add_all(prompts)
    db.session.flush()
    for prompt in prompts:
        audit.record(EXTRACTION, "followup_prompt.fire", "followup_event_prompt", prompt.id, now,
                     after={"trigger_id": prompt.trigger_id, "trigger_version": prompt.trigger_version,
                            "window_key": prompt.window_key})
    return prompts


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


#: A report already filed is the confirmed firing's report when it concerns the same patient and happened from
#: a day before the firing's first fact to three days after its signal.
MATCH_BEFORE, MATCH_AFTER = timedelta(days=1), timedelta(days=3)


def _firing_category(prompt: EventPrompt, trigger) -> tuple[str, str | None, str]:
    """The category, subcategory and stage of care of the harm a firing points to (FIRING_CATEGORY; a
    transfusion reaction is a transfusion event)."""
    if trigger.rule == "drug_given" and {f.get("drug") for f in prompt.facts or ()} == {"blood_product"}:
        return "transfusion", "transfusion_reaction", "transfusion"
    return FIRING_CATEGORY[trigger.rule]


def firing_report_data(prompt: EventPrompt, trigger, note: str) -> dict:
    """A confidential report pre-filled from a firing: what fired it as codes (`origin`), the reviewer's note
    as its description, found by a trigger (counted apart from reported events)."""
    patient = db.session.get(Patient, prompt.patient_id)
    category, subcategory, stage = _firing_category(prompt, trigger)
    operation = next((f["id"] for f in prompt.facts or () if f["kind"] == "operation"), None)
    death = trigger.rule == "death_after_operation"
    return {
        "category_code": category, "subcategory_code": subcategory, "care_stage": stage,
        "reporter_grade": "I" if death else "II", "harm": "death" if death else None,
        "occurred_at": prompt.occurred_at, "discovered_at": max(prompt.created_at, prompt.occurred_at),
        "department_id": prompt.department_id, "description": note,
        "origin": {"kind": "trigger", "trigger": trigger.code, "name": trigger.name, "name_en": trigger.name_en,
                   "facts": prompt.facts},
        "patient_mrn": patient.mrn if patient else None, "operation_id": operation,
        "is_unplanned_reoperation": trigger.rule == "return_to_theatre", "wants_feedback": False,
        "found_by": "trigger",
    }


#: The category, subcategory and stage of care a report filed from each rule's firing starts with (the quality
#: office corrects them at triage).
FIRING_CATEGORY = {
    "return_to_theatre": ("surgery", "unplanned_reoperation", "surgery_anaesthesia"),
    "readmission": ("treatment_procedure", None, "discharge_followup"),
    "icu_after_operation": ("surgery", None, "surgery_anaesthesia"),
    "drug_given": ("medication", None, "medication"),
    "critical_lab": ("treatment_procedure", None, "examination"),
    "death_after_operation": ("surgery", None, "surgery_anaesthesia"),
}


def reports_about(prompt: EventPrompt, actor: Actor) -> list:
    """The reports already filed about the patient around a firing (a day before its first fact to three days
    after its signal) that the reviewer may read: the ones it may be linked to."""
    patient = db.session.get(Patient, prompt.patient_id)
    first = min((datetime.fromisoformat(f["at"]) for f in prompt.facts if "T" in f["at"]), default=prompt.occurred_at)
    return reactions.ask("event.reports_about", patient.mrn, first - MATCH_BEFORE, prompt.occurred_at + MATCH_AFTER,
                         actor)


def _matching(prompt: EventPrompt, actor: Actor, event_id: int | None):
    """The report a confirmed firing is linked to: the one the reviewer chose among `reports_about`, or else the
    nearest of the firing's own category (None: a report is filed)."""
    reports = reports_about(prompt, actor)
    if event_id is not None:
        chosen = next((e for e in reports if e.id == event_id), None)
        if chosen is None:
            raise Unprocessable(errors={"event_id": [_(
                "Link only to a report about this patient from around the time of the firing that you may read.")]})
        return chosen
    category = _firing_category(prompt, prompt.trigger)[0]
    same = [e for e in reports if e.category_code == category]
    return min(same, key=lambda e: (abs((e.occurred_at - prompt.occurred_at).total_seconds()), e.id), default=None)


def file_prompt(prompt: EventPrompt, *, actor: Actor, now: datetime, expected_version: int | None = None,
                note: str = "", event_id: int | None = None):
    """Confirm a possible event: a confidential report filed by this reviewer, pre-filled from the call or the
    firing; a firing whose harm has a report already is linked to it instead (no second report; the reviewer's
    note is kept in the audit trail): the report the reviewer chose (`event_id`), or one of the firing's
    category."""
    PROMPT_WORKFLOW.check(prompt, "file", actor=actor, expected_version=expected_version)
    if prompt.trigger_id is not None:
        existing = _matching(prompt, actor, event_id)
        if existing is not None:
            prompt.event_id, prompt.handled_at, prompt.handled_by_id = existing.id, now, actor.user_id
            PROMPT_WORKFLOW.apply(prompt, "link", actor=actor, now=now,
                                  audit_detail={"event_id": existing.id, "note": note.strip() or None})
            return existing
        data = firing_report_data(prompt, prompt.trigger, note.strip())
    elif event_id is not None:
        raise Unprocessable(errors={"event_id": [_("A follow-up call's findings are filed as a report of their own.")]})
    else:
        data = report_data(prompt)
        if note.strip():
            data["description"] = " ".join(p for p in (data["description"], note.strip()) if p)
    data = {k: v for k, v in data.items() if v is not None}
    event, _code = reactions.ask("event.file_report", data, mode="confidential", actor=actor, now=now)
    prompt.event_id, prompt.handled_at, prompt.handled_by_id = event.id, now, actor.user_id
    PROMPT_WORKFLOW.apply(prompt, "file", actor=actor, now=now, audit_detail={"event_id": event.id})
    return event


def dismiss_prompt(prompt: EventPrompt, data: dict, *, actor: Actor, now: datetime,
                   expected_version: int | None = None) -> EventPrompt:
    """Close a prompt without a report: a reason from the list (DISMISS_CODES), in words for "other"."""
    data = {**data, "reason_code": data.get("reason_code") or "other"}
    PROMPT_WORKFLOW.check(prompt, "dismiss", actor=actor, data=data, expected_version=expected_version)
    prompt.dismiss_code, prompt.dismiss_reason = data["reason_code"], (data.get("reason") or "").strip() or None
    prompt.handled_at, prompt.handled_by_id = now, actor.user_id
    PROMPT_WORKFLOW.apply(prompt, "dismiss", actor=actor, now=now, data=data)
    return prompt
