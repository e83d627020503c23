"""Automatic extraction's write side: facts queued as they arrive, evaluated by the job in batches, triggers
tuned by the quality office.

A fact that arrives or changes (an intake row, an operation performed on the page, a death however learnt)
is queued (`queue_fact`); the evaluator (`evaluate_queued`) takes the oldest queued facts in batches, asks
each active trigger whose rule reads that kind of fact, records each firing once per (trigger, patient,
window) as a possible event for review, and removes the batch from the queue in the same transaction: a
crash loses nothing and repeats nothing.
"""
from __future__ import annotations

from datetime import datetime

from qcflow.extensions import db
from qcflow.extraction.models import QueuedFact

#: The intake kinds whose rows the triggers read, and the fact kind each is queued as.
FACT_OF_INTAKE = {"operations": "operation", "encounters": "encounter", "transfers": "transfer",
                  "administrations": "administration", "lab_results": "lab"}


def queue_fact(kind: str, record_id: int, patient_id: int, *, now: datetime) -> None:
    """Queue a fact for the evaluator (it sets nothing off by itself: no effect for the intake row)."""
    db.session.add(QueuedFact(kind=kind, record_id=record_id, patient_id=patient_id, queued_at=now))


def on_intake_row(kind: str, obj, *, now: datetime) -> None:
    """An intake row of a kind the triggers read was created or changed."""
    queue_fact(FACT_OF_INTAKE[kind], obj.id, obj.patient_id, now=now)


def on_operation_performed(operation, *, now: datetime, **_) -> None:
    queue_fact("operation", operation.id, operation.patient_id, now=now)


def on_death(patient, *, died_at: datetime, encounter, now: datetime) -> None:
    queue_fact("death", patient.id, patient.id, now=now)
