"""Run jobs: once (`scheduler tick`) or forever in the dedicated scheduler process."""
from __future__ import annotations

import importlib
import logging
import signal
import threading
from datetime import datetime

from flask import Flask

from qcflow.core import time as clock
from qcflow.extensions import db
from qcflow.scheduling.jobs import JOBS, JobSpec
from qcflow.scheduling.lock import LeaderLock
from qcflow.scheduling.models import JobRun

log = logging.getLogger("qcflow.scheduler")

JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 300}


def resolve(spec: JobSpec):
    module, _, name = spec.function.partition(":")
    return getattr(importlib.import_module(module), name)


def run_job(spec: JobSpec, now: datetime) -> JobRun:
    """Run one job for `now` inside the current app context; commit, or roll back and log."""
    started = clock.now()
    try:
        result = resolve(spec)(now=now)
        status = "ok"
        db.session.flush()
    except Exception as error:  # a failing job must not stop the scheduler
        db.session.rollback()
        log.exception("job %s failed", spec.id)
        result, status = f"{type(error).__name__}: {error}", "error"
    run = JobRun(job_id=spec.id, run_for_at=now, started_at=started, finished_at=clock.now(),
                 status=status, result=str(result or "")[:2000])
    db.session.add(run)
    db.session.commit()
    return run


def run_in_context(app: Flask, job_id: str) -> None:
    """APScheduler entry point: fresh app context, the real clock."""
    spec = next(s for s in JOBS if s.id == job_id)
    with app.app_context():
        try:
            run_job(spec, clock.now())
        finally:
            db.session.remove()


def build_scheduler(app: Flask):
    """A BlockingScheduler with every JOBS row (memory job store: the due work lives in our tables)."""
    from apscheduler.schedulers.blocking import BlockingScheduler

    scheduler = BlockingScheduler(timezone=app.config["TIMEZONE"], job_defaults=JOB_DEFAULTS)
    for spec in JOBS:
        start = {"next_run_time": clock.now()} if spec.run_at_start else {}
        scheduler.add_job(run_in_context, spec.trigger, args=(app, spec.id), id=spec.id, name=spec.id,
                          replace_existing=True, **spec.trigger_args, **start)
    return scheduler


def run_forever(app: Flask) -> None:
    """Become the leader (or wait idle until the leader goes away), then run the schedule.

    SIGTERM and Ctrl-C stop it cleanly in either phase.
    """
    lock = LeaderLock.for_app(app)
    stopping = threading.Event()
    scheduler = build_scheduler(app)

    def stop(signum, frame):
        stopping.set()
        if scheduler.running:
            scheduler.shutdown(wait=False)
        else:  # idle, or between winning the lock and starting: leave now (the lock is released below)
            raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    retry = app.config["SCHEDULER_IDLE_RETRY_SECONDS"]
    try:
        while not lock.acquire():
            log.info("another scheduler holds the leader lock; staying idle (retry in %ss)", retry)
            if stopping.wait(retry):
                return
        log.info("scheduler is the leader; %d jobs: %s", len(JOBS), ", ".join(s.id for s in JOBS))
        if not stopping.is_set():
            scheduler.start()
    finally:
        lock.release()
        log.info("scheduler stopped")
