"""Automatic extraction's write side: facts queued as they arrive, evaluated by the job in batches, triggers
tuned by the quality office.

A fact that arrives or changes (an intake row, an operation performed on the page, a death however learnt)
is queued (`queue_fact`); the evaluator (`evaluate_queued`) takes the oldest queued facts in batches, asks
each active trigger whose rule reads that kind of fact, records each firing once per (trigger, patient,
window) as a possible event for review, and removes the batch from the queue in the same transaction: a
crash loses nothing and repeats nothing.
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

import sqlalchemy as sa
from flask_babel import gettext as _

from qcflow.auth.models import Department, Role
from qcflow.core import audit
from qcflow.core.actors import Actor
from qcflow.core.errors import Conflict, Unprocessable, translate_errors
from qcflow.extensions import db
from qcflow.extraction import rules
from qcflow.extraction.models import FACT_KINDS, QueuedFact, Trigger
from qcflow.followup import services as followup
from qcflow.notify.services import notify, users_with_role

log = logging.getLogger(__name__)

SYSTEM = "system:extraction"

#: Facts evaluated per transaction.
BATCH = 500

#: The intake kinds whose rows the triggers read, and the fact kind each is queued as.
FACT_OF_INTAKE = {"operations": "operation", "encounters": "encounter", "transfers": "transfer",
                  "administrations": "administration", "lab_results": "lab"}


def queue_fact(kind: str, record_id: int, patient_id: int, *, now: datetime) -> None:
    """Queue a fact for the evaluator (it sets nothing off by itself: no effect for the intake row)."""
    db.session.add(QueuedFact(kind=kind, record_id=record_id, patient_id=patient_id, queued_at=now))


def on_intake_row(kind: str, obj, *, now: datetime) -> None:
    """An intake row was created or changed: queued if the triggers read its kind."""
    if kind in FACT_OF_INTAKE:
        queue_fact(FACT_OF_INTAKE[kind], obj.id, obj.patient_id, now=now)


def on_operation_performed(operation, *, now: datetime, **_) -> None:
    queue_fact("operation", operation.id, operation.patient_id, now=now)


def on_death(patient, *, died_at: datetime, encounter, now: datetime) -> None:
    queue_fact("death", patient.id, patient.id, now=now)


@dataclass
class Evaluated:
    batches: int = 0
    facts: int = 0
    firings: int = 0

    def __str__(self) -> str:
        return f"{self.facts} facts evaluated in {self.batches} batches, {self.firings} possible events"


def _next_batch(size: int) -> list[QueuedFact]:
    stmt = sa.select(QueuedFact).order_by(QueuedFact.id).limit(size)
    if db.engine.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return list(db.session.scalars(stmt))


def _applicable(trigger: Trigger) -> bool:
    """A trigger saved through the services always is; one written around them (by hand in the database) that
    the rule cannot apply is left out and logged, so it never stops the queue."""
    errors = rules.check(trigger.rule, trigger.params, trigger.window_hours)
    if errors:
        log.error("trigger %s left out of the evaluation: %s", trigger.code, sorted(errors))
    return not errors


def _fire(trigger: Trigger, queued: QueuedFact, window: timedelta | None, now: datetime) -> list:
    """The trigger's firings on one queued fact. A rule that fails on a fact (a bug, or data no check foresaw)
    is logged and audited and the fact passes for that trigger: one bad fact never stops the queue."""
    try:
        return rules.RULES[trigger.rule].fire(queued.kind, queued.record_id, trigger.params, window)
    except Exception:  # noqa: BLE001 (any failure of one rule on one fact)
        log.exception("trigger %s failed on %s %s", trigger.code, queued.kind, queued.record_id)
        audit.record(SYSTEM, "extraction.evaluation_failed", "extraction_trigger", trigger.id, now,
                     after={"kind": queued.kind, "record_id": queued.record_id})
        return []


def _active_by_kind() -> dict[str, list[Trigger]]:
    active = [t for t in db.session.scalars(sa.select(Trigger).where(Trigger.is_active.is_(True)).order_by(Trigger.id))
              if _applicable(t)]
    return {kind: [t for t in active if kind in rules.RULES[t.rule].reads] for kind in FACT_KINDS}


def evaluate_queued(now: datetime, *, batch_size: int = BATCH,
                    after_batch: Callable[[Evaluated], None] | None = None) -> Evaluated:
    """Evaluate the queued facts, oldest first, against the active triggers: each batch's firings and the
    batch's removal from the queue are one transaction (`after_batch` commits), so a crash repeats the
    batch, never skips it, and a firing repeated finds its window fired already."""
    progress = Evaluated()
    while batch := _next_batch(batch_size):
        by_kind = _active_by_kind()  # read per batch: a trigger switched off or tuned meanwhile counts at once
        candidates = []
        with rules.batch_facts([(q.kind, q.record_id, q.patient_id) for q in batch]):
            for queued in batch:
                for trigger in by_kind[queued.kind]:
                    window = timedelta(hours=trigger.window_hours) if trigger.window_hours else None
                    candidates += [{
                        "rule": trigger.rule, "trigger_id": trigger.id, "trigger_version": trigger.version,
                        "patient_id": firing.patient_id, "window_key": firing.window_key,
                        "department_id": firing.department_id, "reviewer_department_id": trigger.reviewer_department_id,
                        "occurred_at": firing.occurred_at, "facts": firing.facts,
                    } for firing in _fire(trigger, queued, window, now)]
        opened = followup.open_firings(candidates, now=now)
        found = Counter(department for prompt in opened
                        for department in {prompt.department_id, prompt.reviewer_department_id} - {None})
        fired = len(opened)
        db.session.execute(sa.delete(QueuedFact).where(QueuedFact.id.in_([q.id for q in batch])))
        _tell_reviewers(found, fired, now)
        progress.batches, progress.facts = progress.batches + 1, progress.facts + len(batch)
        progress.firings += fired
        db.session.flush()
        if after_batch is not None:
            after_batch(progress)
    return progress


def _tell_reviewers(found: Counter, fired: int, now: datetime) -> None:
    """One notification per reviewing department and batch (not one per firing): its heads, and the quality
    office."""
    for department_id, n in sorted(found.items()):
        notify(users_with_role(Role.DEPT_HEAD, department_id), "extraction.found", {"n": n}, now=now,
               link=f"/followup/prompts?source=trigger&department={department_id}")
    if found:
        notify(users_with_role(Role.QUALITY), "extraction.found", {"n": fired}, now=now,
               link="/followup/prompts?source=trigger")


# ----------------------------------------------------------------------------------- tuning the triggers

#: What the quality office may change on a trigger (its code and rule stay: a different rule is a new trigger).
TUNABLE = ("name", "name_en", "params", "window_hours", "reviewer_department_id", "is_active")


def _check(trigger_values: dict) -> None:
    errors = {k: [str(m) for m in v] for k, v in rules.check(
        trigger_values["rule"], trigger_values.get("params"), trigger_values.get("window_hours")).items()}
    department = trigger_values.get("reviewer_department_id")
    if department is not None and db.session.get(Department, department) is None:
        errors["reviewer_department_id"] = [_("Unknown department.")]
    if errors:
        raise Unprocessable(_("The trigger cannot be evaluated as written; nothing was saved."),
                            errors=translate_errors(errors))


def create_trigger(data: dict, *, actor: Actor, now: datetime) -> Trigger:
    """A new trigger of one of the rules (e.g. another critical result); checked before it is saved."""
    values = {"params": {}, "window_hours": None, "reviewer_department_id": None, "is_active": True, **data}
    _check(values)
    if db.session.scalar(sa.select(Trigger.id).where(Trigger.code == values["code"])) is not None:
        raise Conflict(_("A trigger with the code “%(code)s” exists already.", code=values["code"]))
    trigger = Trigger(**values, created_at=now, updated_at=now)
    db.session.add(trigger)
    db.session.flush()
    audit.record(actor.audit_name, "extraction_trigger.create", "extraction_trigger", trigger.id, now,
                 after={k: values[k] for k in ("code", "rule", *TUNABLE)})
    return trigger


def update_trigger(trigger: Trigger, data: dict, *, actor: Actor, now: datetime, expected_version: int) -> Trigger:
    """Tune a trigger or switch it off: a new version, audited with what changed. It applies to facts that
    arrive from now on; what fired before keeps the version that fired it."""
    if trigger.version != expected_version:
        raise Conflict(_("Someone changed this trigger since you opened it (version %(v)d); reload it.",
                         v=trigger.version))
    values = {k: data.get(k, getattr(trigger, k)) for k in TUNABLE}
    _check({**values, "rule": trigger.rule})
    changed = [k for k in TUNABLE if values[k] != getattr(trigger, k)]
    if not changed:
        return trigger
    before = {k: getattr(trigger, k) for k in changed}
    for k in changed:
        setattr(trigger, k, values[k])
    trigger.updated_at = now
    db.session.flush()
    audit.record(actor.audit_name, "extraction_trigger.update", "extraction_trigger", trigger.id, now,
                 changed=changed, before=before, after={k: values[k] for k in changed})
    return trigger
