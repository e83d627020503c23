"""Case deadlines: the one place that computes them (DESIGN §4).

Durations are configured per grade / severity as "2h", "15d" (calendar days) or "3wd"
(working days on the Chinese calendar, 调休 included).
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta

from flask import current_app

from qcflow.core.time import hospital_tz
from qcflow.core.workdays import add_working_days

_DURATION = re.compile(r"^(\d+)(h|d|wd)$")


def add_duration(start: datetime, spec: str) -> datetime:
    match = _DURATION.match(spec)
    if not match:
        raise ValueError(f"bad deadline {spec!r}: use e.g. 2h, 15d or 3wd")
    amount, unit = int(match.group(1)), match.group(2)
    if unit == "h":
        return start + timedelta(hours=amount)
    if unit == "d":
        return start + timedelta(days=amount)
    return add_working_days(start, amount, hospital_tz())


def triage_due(grade: str | None, submitted_at: datetime) -> datetime:
    """Deadline to triage a report, by the reporter's grade (unknown grade: the strictest)."""
    table = current_app.config["EVENT_TRIAGE_DEADLINES"]
    return add_duration(submitted_at, table.get(grade or "I", table["I"]))


def investigation_due(grade: str, triaged_at: datetime) -> datetime | None:
    """Deadline to finish the investigation (RCA and actions planned); None where not required."""
    spec = current_app.config["EVENT_INVESTIGATION_DEADLINES"].get(grade)
    return add_duration(triaged_at, spec) if spec else None


def external_report_due(severity: str, discovered_at: datetime) -> datetime | None:
    """Deadline to report to the health authority, counted from discovery; None for internal events."""
    spec = current_app.config["EVENT_EXTERNAL_REPORT_DEADLINES"].get(severity)
    return add_duration(discovered_at, spec) if spec else None
