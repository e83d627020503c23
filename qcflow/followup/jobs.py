"""Scheduled entry points of the follow-up domain."""
from __future__ import annotations

import os
import threading
from datetime import datetime

from flask import current_app

from qcflow.extensions import db
from qcflow.followup import services


def generate_tasks(now: datetime) -> str:
    """Materialise every follow-up task that has come due, committing once per batch.

    `GEN_BATCH` (QCFLOW_GEN_BATCH) sets the batch size. On PostgreSQL, `GEN_WORKERS`
    (QCFLOW_GEN_WORKERS) generators run side by side in threads, each with its own session:
    the batch query skips plans another one has locked, so they split a large catch-up and one
    computes while the database writes another's batch. SQLite has one writer, so one generator.
    `CRASH_AFTER_BATCHES` (QCFLOW_CRASH_AFTER_BATCHES) is a test hook for the crash test (R1):
    the process dies without cleanup right after committing that many batches.
    """
    config = current_app.config
    crash_after = config.get("CRASH_AFTER_BATCHES")

    def commit(progress):
        db.session.commit()
        if crash_after and progress.batches >= int(crash_after):
            os._exit(137)

    workers = int(config["GEN_WORKERS"]) if db.engine.dialect.name == "postgresql" else 1
    if workers <= 1:
        return str(services.generate_due(now, after_batch=commit))
    app, results, errors = current_app._get_current_object(), [], []

    def helper():
        try:
            with app.app_context():
                results.append(services.generate_due(now, after_batch=commit))
        except BaseException as error:  # re-raised in the job's own thread below
            errors.append(error)

    threads = [threading.Thread(target=helper, name=f"generator-{n}") for n in range(1, workers)]
    for thread in threads:
        thread.start()
    try:
        results.append(services.generate_due(now, after_batch=commit))
    finally:
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]
    return str(services.Generated(batches=sum(r.batches for r in results), tasks=sum(r.tasks for r in results),
                                  plans=sum(r.plans for r in results)))


def warn_urgent_deadlines(now: datetime) -> str:
    """Day-surgery 24 h calls near or past their deadline: tell the department, then the quality office."""
    warned, missed = services.warn_urgent_deadlines(now)
    return f"{warned} deadline warnings, {missed} missed deadlines reported"
