"""Scheduled entry point of automatic extraction."""
from __future__ import annotations

import os
from datetime import datetime

from flask import current_app

from qcflow.extensions import db
from qcflow.extraction import services


def evaluate_triggers(now: datetime) -> str:
    """Evaluate the facts queued since the last run, committing once per batch of `EXTRACTION_BATCH`.
    `CRASH_AFTER_BATCHES` (QCFLOW_CRASH_AFTER_BATCHES) is the crash test's hook: the process dies right after
    that many commits."""
    config = current_app.config
    crash_after = config.get("CRASH_AFTER_BATCHES")

    def commit(progress):
        db.session.commit()
        if crash_after and progress.batches >= int(crash_after):
            os._exit(137)

    return str(services.evaluate_queued(now, batch_size=int(config["EXTRACTION_BATCH"]), after_batch=commit))
