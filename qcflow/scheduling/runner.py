"""Run jobs: once (`scheduler tick`) or forever in the dedicated scheduler process."""
from __future__ import annotations

import importlib
import logging
import signal
import time as _time
from datetime import datetime

from flask import Flask

from qcflow.core import time as clock
from qcflow.extensions import db
from qcflow.scheduling.jobs import JOBS, JobSpec, jobs_of
from qcflow.scheduling.lock import LeaderLock
from qcflow.scheduling.models import JobRun

log = logging.getLogger("qcflow.scheduler")

POLL_SECONDS = 0.2
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
    """A BackgroundScheduler with every JOBS row of this installation (memory job store: the due work lives in our
    tables)."""
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.schedulers.background import BackgroundScheduler

    # SQLite writes one transaction at a time: jobs started together (at start-up every run_at_start job) would
    # only wait on its lock, and fail after its busy timeout. There they run one after another.
    sqlite = app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite")
    scheduler = BackgroundScheduler(timezone=app.config["TIMEZONE"], job_defaults=JOB_DEFAULTS,
                                    executors={"default": ThreadPoolExecutor(1 if sqlite else 10)})
    for spec in jobs_of(app.config["INSTALLATION_ROLE"]):
        start = {"next_run_time": clock.now()} if spec.run_at_start else {}
        scheduler.add_job(run_in_context, spec.trigger, args=(app, spec.id), id=spec.id, name=spec.id,
                          replace_existing=True, **spec.trigger_args, **start)
    return scheduler


class StopRequest:
    """Set by SIGTERM/SIGINT. The handler only flips a flag: it runs on the main thread between any two
    bytecodes, so taking a lock there (APScheduler's shutdown, Event.set) can deadlock against the
    main thread's own lock."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, signum, frame) -> None:
        self.requested = True

    def sleep(self, seconds: float) -> bool:
        """Sleep up to `seconds`, waking early on a stop request; True when stopping."""
        deadline = _time.monotonic() + seconds
        while not self.requested and _time.monotonic() < deadline:
            _time.sleep(min(POLL_SECONDS, max(deadline - _time.monotonic(), 0)))
        return self.requested


def run_forever(app: Flask) -> None:
    """Become the leader (or wait idle until the leader goes away), then run the schedule.

    SIGTERM and Ctrl-C stop it cleanly in either phase; a job already running finishes first.
    """
    lock = LeaderLock.for_app(app)
    stop = StopRequest()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    retry = app.config["SCHEDULER_IDLE_RETRY_SECONDS"]
    try:
        while not lock.acquire():
            log.info("another scheduler holds the leader lock; staying idle (retry in %ss)", retry)
            if stop.sleep(retry):
                return
        if stop.requested:
            return
        specs = jobs_of(app.config["INSTALLATION_ROLE"])
        log.info("scheduler is the leader; %d jobs: %s", len(specs), ", ".join(s.id for s in specs))
        scheduler = build_scheduler(app)
        scheduler.start()
        try:
            while not stop.sleep(3600):
                pass
        finally:
            scheduler.shutdown(wait=True)
    finally:
        lock.release()
        log.info("scheduler stopped")
