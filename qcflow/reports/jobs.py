"""Scheduled entry points of the reports domain."""
from __future__ import annotations

from datetime import datetime

from qcflow.reports import bulletin


def monthly_bulletin(now: datetime) -> str:
    """Archive last month's bulletin under <instance>/reports (once; a re-run finds the file and stops)."""
    month = bulletin.previous_month(now)
    path = bulletin.archive(month, now)
    return f"{month:%Y-%m}: " + (f"written {path}" if path else "already archived")
