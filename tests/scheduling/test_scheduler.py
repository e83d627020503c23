"""The scheduler: jobs as data, tick, the job-run log, the leader lock, its own process."""
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from qcflow.scheduling import jobs as jobs_module
from qcflow.scheduling.jobs import JobSpec
from qcflow.scheduling.lock import LeaderLock
from tests.conftest import ROOT, die_with_parent


def job_runs(app):
    from qcflow.extensions import db
    from qcflow.scheduling.models import JobRun

    with app.app_context():
        return [(r.job_id, r.status, r.result) for r in db.session.scalars(sa.select(JobRun).order_by(JobRun.id))]


def test_housekeeping_tick_purges_ended_sessions_and_logs_the_run(app, runner, create_user, now):
    from qcflow.auth.models import LoginFailure, UserSession
    from qcflow.extensions import db

    user = create_user()
    hour = timedelta(hours=1)
    db.session.add_all([
        UserSession(key_hash="a" * 64, user_id=user.id, created_at=now - 13 * hour, last_seen_at=now - hour, expires_at=now - hour),
        UserSession(key_hash="b" * 64, user_id=user.id, created_at=now, last_seen_at=now, expires_at=now + 12 * hour),
        LoginFailure(username="x", failed_at=now - 25 * hour),  # older than every throttling window (a day)
        LoginFailure(username="x", failed_at=now - 2 * hour),
    ])
    db.session.commit()
    result = runner.invoke(args=["qcflow", "scheduler", "tick", "--now", now.isoformat(), "--job", "housekeeping.purge_sessions"])
    assert result.exit_code == 0, result.output
    assert "housekeeping.purge_sessions: ok removed 2" in result.output
    db.session.expire_all()
    assert db.session.scalars(sa.select(UserSession.key_hash)).all() == ["b" * 64]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LoginFailure)) == 1
    assert job_runs(app) == [("housekeeping.purge_sessions", "ok", "removed 2")]


def test_tick_twice_is_harmless(app, runner, now):
    for _ in range(2):
        assert runner.invoke(args=["qcflow", "scheduler", "tick", "--now", now.isoformat()]).exit_code == 0
    assert [status for _, status, _ in job_runs(app)] == ["ok"] * (2 * len(jobs_module.jobs_of("hospital")))


def test_tick_rejects_unknown_job_and_bad_time(runner):
    unknown = runner.invoke(args=["qcflow", "scheduler", "tick", "--job", "nope"])
    assert unknown.exit_code == 2 and "housekeeping.purge_sessions" in unknown.output
    bad = runner.invoke(args=["qcflow", "scheduler", "tick", "--now", "yesterday"])
    assert bad.exit_code == 2 and "ISO 8601" in bad.output


def explode(now):
    from qcflow.auth.models import Department
    from qcflow.extensions import db

    db.session.add(Department(code="HALF", name="写了一半", kind="clinical", created_at=now))
    db.session.flush()
    raise RuntimeError("boom")


def test_a_failing_job_is_logged_rolled_back_and_does_not_stop_the_others(app, runner, monkeypatch, now):
    from qcflow.auth.models import Department
    from qcflow.extensions import db

    failing = JobSpec("test.explode", f"{__name__}:explode", "interval", {"minutes": 1})
    monkeypatch.setattr(jobs_module, "JOBS", [failing, *jobs_module.JOBS])

    result = runner.invoke(args=["qcflow", "scheduler", "tick", "--now", now.isoformat()])
    assert result.exit_code == 1
    runs = job_runs(app)
    assert runs[0][:2] == ("test.explode", "error") and "boom" in runs[0][2]
    assert runs[1][:2] == ("housekeeping.purge_sessions", "ok")
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Department)) == 0


def test_leader_lock_admits_one_scheduler_at_a_time(app):
    first, second = LeaderLock.for_app(app), LeaderLock.for_app(app)
    assert first.acquire()
    assert not second.acquire()
    first.release()
    assert second.acquire()
    second.release()


def test_the_web_app_never_starts_a_scheduler(database_url, tmp_path):
    code = (
        "import sys, threading, wsgi\n"
        "c = wsgi.app.test_client(); c.get('/login'); c.get('/healthz')\n"
        "print(sorted(m for m in sys.modules if m.startswith('apscheduler')), threading.active_count())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "QCFLOW_DATABASE_URL": database_url, "QCFLOW_INSTANCE_PATH": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[] 1"


def start_scheduler(database_url, instance, log_path):
    env = {**os.environ, "QCFLOW_DATABASE_URL": database_url, "QCFLOW_INSTANCE_PATH": str(instance),
           "QCFLOW_SCHEDULER_IDLE_RETRY_SECONDS": "1"}
    log = open(log_path, "w")
    proc = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "qcflow", "scheduler", "run"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
    return proc, log


def stop(proc):
    proc.terminate()
    try:
        # A job started at election may still be finishing; on a loaded machine that takes a while.
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise


def wait_for(path, text, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in path.read_text():
            return True
        time.sleep(0.2)
    return False


def test_scheduler_processes_elect_one_leader_and_the_other_takes_over(app, database_url, tmp_path):
    logs = [tmp_path / "first.log", tmp_path / "second.log"]
    first, log1 = start_scheduler(database_url, tmp_path, logs[0])
    try:
        assert wait_for(logs[0], "scheduler is the leader"), logs[0].read_text()
        second, log2 = start_scheduler(database_url, tmp_path, logs[1])
        try:
            assert wait_for(logs[1], "staying idle"), logs[1].read_text()
            first.terminate()
            first.wait(timeout=20)
            assert wait_for(logs[1], "scheduler is the leader"), logs[1].read_text()
        finally:
            try:
                stop(second)
            finally:
                log2.close()
    finally:
        if first.poll() is None:
            first.kill()
        log1.close()
    assert "scheduler stopped" in logs[1].read_text()
    # Each leader ran every job once at start: the run log shows both leaders' runs.
    expected = sorted([(spec.id, "ok") for spec in jobs_module.jobs_of("hospital")] * 2)
    deadline = time.monotonic() + 10
    while len(job_runs(app)) < len(expected) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert sorted(r[:2] for r in job_runs(app)) == expected


@pytest.mark.parametrize("after_election", [None, 0.0, 0.3, 1.0, 3.0])
def test_sigterm_at_any_moment_of_start_up_stops_the_scheduler(database_url, tmp_path, after_election):
    """`systemctl stop` during start-up (before the election, while the first jobs are being
    submitted, while they run) stops the process promptly and cleanly."""
    log_path = tmp_path / "scheduler.log"
    proc, log = start_scheduler(database_url, tmp_path, log_path)
    try:
        if after_election is not None:
            assert wait_for(log_path, "scheduler is the leader"), log_path.read_text()
            time.sleep(after_election)
        stop(proc)
    finally:
        log.close()
    # Before the handler is installed (still importing) SIGTERM's default action ends it: nothing had started.
    clean = {0, -signal.SIGTERM} if after_election is None else {0}
    assert proc.returncode in clean, log_path.read_text()


def test_on_sqlite_the_scheduler_runs_its_jobs_one_after_another(app):
    """SQLite takes one writer at a time: jobs started together would wait on its lock and fail after its busy
    timeout ("database is locked" at start-up, when every run-at-start job is due at once)."""
    import threading
    from datetime import datetime, timezone

    from qcflow.scheduling.runner import build_scheduler

    scheduler = build_scheduler(app)
    scheduler.remove_all_jobs()
    spans, done = [], threading.Semaphore(0)

    def job():
        started = time.monotonic()
        time.sleep(0.3)
        spans.append((started, time.monotonic()))
        done.release()

    for i in range(3):
        scheduler.add_job(job, "date", run_date=datetime.now(timezone.utc), id=f"j{i}")
    scheduler.start()
    try:
        for _ in range(3):
            assert done.acquire(timeout=10)
    finally:
        scheduler.shutdown(wait=True)
    spans.sort()
    overlapping = any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:]))
    assert overlapping is not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite")
