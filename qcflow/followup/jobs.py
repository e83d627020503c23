"""Scheduled entry points of the follow-up domain."""
from __future__ import annotations

import os
from datetime import datetime

from flask import current_app

from qcflow.extensions import db
from qcflow.followup import services


def generate_tasks(now: datetime) -> str:
    """Materialise every follow-up task that has come due, committing once per batch.

    `GEN_BATCH` (QCFLOW_GEN_BATCH) sets the batch size. `CRASH_AFTER_BATCHES`
    (QCFLOW_CRASH_AFTER_BATCHES) is a test hook for the crash test (R1): the process dies
    without cleanup right after committing that many batches.
    """
    crash_after = current_app.config.get("CRASH_AFTER_BATCHES")

    def commit(progress):
        db.session.commit()
        if crash_after and progress.batches >= int(crash_after):
            os._exit(137)

    return str(services.generate_due(now, after_batch=commit))


def warn_urgent_deadlines(now: datetime) -> str:
    """Day-surgery 24 h calls near or past their deadline: tell the department, then the quality office."""
    warned, missed = services.warn_urgent_deadlines(now)
    return f"{warned} deadline warnings, {missed} missed deadlines reported"
