"""Reliability of the generator (R1, R2): kill -9 mid-run and concurrent generators leave exactly the
expected set of tasks, computed by a pure function of the plans."""
import random
import signal
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from bench.seed import actual_tasks, expected_tasks, seed_plans
from tests.conftest import scheduler_tick, sh

THROUGH = sh(2026, 3, 2, 6, 0)


def generator(database_url, instance, **env):
    """`scheduler tick` for the generator job only, in its own process (as cron would run it)."""
    return scheduler_tick(database_url, instance, THROUGH, "followup.generate_tasks", **env)


def seeded(app, n):
    """n plans that have been waiting for 60 days of generation (a large catch-up); returns the expected set."""
    from qcflow.extensions import db

    with app.app_context():
        seed_plans(db.session, n, anchors_from=THROUGH - timedelta(days=800), anchors_to=THROUGH - timedelta(days=60))
        db.session.commit()
        expected = expected_tasks(db.session, THROUGH)
        db.session.remove()
    return expected


def actual(app):
    from qcflow.extensions import db
    from qcflow.followup.models import Task

    with app.app_context():
        tasks = actual_tasks(db.session)
        doubled = db.session.execute(sa.select(Task.plan_id, Task.occurrence).group_by(Task.plan_id, Task.occurrence)
                                     .having(sa.func.count() > 1)).all()
        db.session.remove()
    assert doubled == []
    return tasks


def task_count(app) -> int:
    from qcflow.extensions import db
    from qcflow.followup.models import Task

    with app.app_context():
        count = db.session.scalar(sa.select(sa.func.count()).select_from(Task))
        db.session.remove()
    return count


def crash_and_restart(app, database_url, tmp_path, plans, rounds):
    expected = seeded(app, plans)
    assert len(expected) > 2 * plans
    rng = random.Random(plans)
    crashes = 0
    for round_no in range(rounds):
        if round_no % 2 == 0:
            # The hook: die with os._exit right after the n-th committed batch.
            proc = generator(database_url, tmp_path, QCFLOW_GEN_BATCH=500,
                             QCFLOW_CRASH_AFTER_BATCHES=rng.randint(1, 4))
            proc.wait(timeout=120)
            crashes += proc.returncode == 137
        else:
            # kill -9 from outside at a random moment once the run has committed something (a fixed
            # delay would miss the run altogether on a fast machine).
            before = task_count(app)
            proc = generator(database_url, tmp_path, QCFLOW_GEN_BATCH=500)
            while proc.poll() is None and task_count(app) == before:
                time.sleep(0.02)
            time.sleep(rng.uniform(0, 0.1))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                crashes += 1
            proc.wait(timeout=60)
        proc.stdout.close()
        got = actual(app)
        assert got <= expected, "a task outside the expected set"
        if got == expected:
            break
    final = generator(database_url, tmp_path, QCFLOW_GEN_BATCH=500)
    output, _ = final.communicate(timeout=300)
    assert final.returncode == 0, output
    assert crashes >= 2
    got = actual(app)
    assert expected - got == set(), f"{len(expected - got)} tasks missing"
    assert got - expected == set(), f"{len(got - expected)} unexpected tasks"


def test_r1_kill_9_during_a_large_catch_up_then_restart(app, database_url, tmp_path):
    crash_and_restart(app, database_url, tmp_path, plans=8000, rounds=6)


@pytest.mark.slow
def test_r1_kill_9_at_scale(app, database_url, tmp_path):
    crash_and_restart(app, database_url, tmp_path, plans=200_000, rounds=20)


@pytest.mark.parametrize("processes", [2, 4])
def test_r2_generators_started_at_once_produce_the_expected_set(app, database_url, tmp_path, processes):
    expected = seeded(app, 4000)
    procs = [generator(database_url, tmp_path, QCFLOW_GEN_BATCH=200) for _ in range(processes)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * processes, outputs
    generated = sum(int(out.split("generated ")[1].split(" ")[0]) for out in outputs)
    assert generated == len(expected)  # every task was inserted by exactly one process
    assert actual(app) == expected


def test_r2_the_daily_job_splits_a_catch_up_between_its_generators(app, database_url, monkeypatch, is_postgres):
    """On PostgreSQL the job runs GEN_WORKERS generators side by side (threads, own sessions); they
    split the work and leave exactly the expected set. SQLite (one writer) runs one."""
    import threading

    from qcflow.extensions import db
    from qcflow.followup import jobs, services

    expected = seeded(app, 3000)
    app.config.update(GEN_WORKERS=3, GEN_BATCH=100)
    by_thread, real = {}, services.generate_due

    def spy(now, **kwargs):
        result = real(now, **kwargs)
        by_thread[threading.current_thread().name] = result.tasks
        return result

    monkeypatch.setattr(services, "generate_due", spy)
    with app.app_context():
        summary = jobs.generate_tasks(THROUGH)
        db.session.commit()
    assert summary.startswith(f"generated {len(expected)} tasks")
    assert actual(app) == expected
    busy = [name for name, tasks in by_thread.items() if tasks]
    if is_postgres:
        assert len(by_thread) == 3 and len(busy) >= 2, by_thread
    else:
        assert list(by_thread) == [threading.current_thread().name]
