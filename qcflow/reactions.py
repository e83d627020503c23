"""How the domains react to each other's facts, in one table.

A domain that records a fact others act on calls `publish(fact, ...)`; a domain that needs an answer
or a record only another domain can give calls `ask(question, ...)`. Neither imports the other:
`create_app` installs this table once (`install`), and a process that did not install it fails on
the first fact instead of silently skipping the work. This module imports the domains only when the
table is built, so any domain can import it at the top without a cycle.

Read `table()` to know what happens when, for example, an operation is performed, a death is
recorded or a follow-up call finds a possible adverse event. Each handler returns the `Effect`s it had
(or None), and `publish` returns them all, so the intake can tell the HIS what each fact set off.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from flask import Flask, current_app

from qcflow.core.time import local

EXTENSION = "qcflow.reactions"


@dataclass(frozen=True)
class Effect:
    """What a handler did about a fact, as codes and ids an integrator can look up."""

    #: discussion_requested, discussion_already_requested, discussion_rescheduled, discussion_disputed,
    #: discussion_withdrawn, plan_enrolled, plan_already_enrolled, plan_reanchored, plan_stopped, and
    #: plan_not_enrolled_deceased,
    #: plan_not_enrolled_no_protocol, plan_not_enrolled_no_department (nothing was created: `id` is None)
    code: str
    #: The table of the record: mdt_discussion or followup_plan.
    record: str
    id: int | None
    #: The record's kind: a discussion kind (preop_level4, …) or a follow-up pathway (day_surgery, …).
    detail: str


@dataclass(frozen=True)
class Reactions:
    #: fact → the handlers that react to it, called in this order with the fact's arguments.
    facts: dict[str, tuple[Callable[..., Any], ...]]
    #: question → the one handler that answers it.
    answers: dict[str, Callable[..., Any]]


def table() -> Reactions:
    """The reactions between domains (read once, when the app is created)."""
    from qcflow.events import queries as events_queries, services as events
    from qcflow.extraction import services as extraction
    from qcflow.followup import services as followup
    from qcflow.mdt import services as mdt

    def stop_follow_up(patient, *, died_at: datetime, encounter, now: datetime) -> list[Effect]:
        """Follow-up stops the patient's plans as of the day of death in the hospital's calendar; calls whose
        window closed before the death keep their outcome."""
        return followup.on_death(patient, died_on=local(died_at).date(), died_at=died_at, now=now)

    return Reactions(
        facts={
            # clinical: an operation needing an MDT (grade 4, restricted technology) is planned or re-planned
            "operation.planned": (mdt.on_operation_planned,),
            # clinical: the operation workflow's "perform" step (on the page, or reported by the HIS)
            "operation.performed": (followup.on_operation_performed, mdt.on_operation_settled,
                                    extraction.on_operation_performed),
            # clinical: an operation is cancelled (by a user or the HIS)
            "operation.cancelled": (mdt.on_operation_settled,),
            # clinical: an operation is flagged as an unplanned reoperation
            "operation.unplanned_reoperation": (mdt.on_unplanned_reoperation,),
            # clinical: a death (an encounter discharged as a death, or a patient's date of death)
            "death.recorded": (mdt.on_death, stop_follow_up, extraction.on_death),
            # clinical: an intake row was created or changed (the automatic extraction queues the facts its
            # triggers read: operations, encounters, transfers, medicines given, critical results)
            "fact.recorded": (extraction.on_intake_row,),
            # clinical: a day-surgery encounter is discharged (or its discharge time corrected)
            "encounter.day_surgery_discharged": (followup.on_encounter_discharged,),
            # clinical: a cancer diagnosis is recorded
            "diagnosis.recorded": (followup.on_cancer_diagnosis,),
        },
        answers={
            # clinical, at the booking gate: the signed pre-operative discussion within the validity window
            "operation.signed_preop_discussion": mdt.signed_preop_discussion,
            # events, before closing a grade I/II or unplanned-reoperation case
            "event.has_signed_case_review": mdt.has_signed_case_review,
            # follow-up, when the quality office files a call's findings as a confidential report
            "event.file_report": events.file_report,
            # follow-up, when a reviewer confirms a trigger's firing: the reports filed already about that harm
            "event.reports_about": events_queries.reports_about,
        },
    )


def install(app: Flask) -> None:
    app.extensions[EXTENSION] = table()


def _installed() -> Reactions:
    reactions = current_app.extensions.get(EXTENSION)
    if reactions is None:
        raise RuntimeError("The reactions between domains are not installed: build the app with create_app().")
    return reactions


def publish(fact: str, *args, **kwargs) -> list[Effect]:
    """Let every domain that reacts to `fact` do its work, in the table's order; what they did."""
    return [effect for handler in _installed().facts[fact] for effect in handler(*args, **kwargs) or ()]


def ask(question: str, *args, **kwargs):
    """The answer of the domain that owns `question`."""
    return _installed().answers[question](*args, **kwargs)
