"""Crash-safety of the trigger evaluator (issue 20, "Done when"): the job killed mid-run — by its crash hook right
after a committed batch, or by kill -9 from outside at any moment — and restarted until the queue is empty leaves
exactly the firings the facts must produce (known by construction), each recorded and audited once, and the audit
chain still verifies."""
from __future__ import annotations

import random
import signal
import time

import pytest
import sqlalchemy as sa

from bench.extraction import P14_NOW, actual_firings, queue_new, seed_stored
from tests.conftest import scheduler_tick

NOW = P14_NOW


def evaluator(database_url, instance, **env):
    """`scheduler tick` for the trigger evaluator only, in its own process (as cron would run it)."""
    return scheduler_tick(database_url, instance, NOW, "extraction.evaluate_triggers", **env)


def seeded(app, stored: int, new: int) -> set:
    """`stored` HIS facts of a hospital and `new` facts queued on as many of its patients; the firings they must
    produce (trigger code, patient, window)."""
    from qcflow.extensions import db

    with app.app_context():
        first = seed_stored(db.session, stored, tag="1")
        queued = queue_new(db.session, new, patients=first.patients, now=NOW)
        db.session.commit()
        db.session.remove()
    assert queued.facts == new
    return queued.expected


def queue_left(app) -> int:
    from qcflow.extensions import db

    with app.app_context():
        left = db.session.scalar(sa.text("SELECT count(*) FROM extraction_queue"))
        db.session.remove()
    return left


def recorded(app) -> tuple[set, int, int]:
    """The firings (as the expected set), how many rows they are, and how many audit entries record a firing."""
    from qcflow.extensions import db

    with app.app_context():
        firings, rows = actual_firings(db.session)
        audited = db.session.scalar(sa.text(
            "SELECT count(*) FROM audit_entry WHERE action = 'followup_prompt.fire'"))
        db.session.remove()
    return firings, rows, audited


def crash_and_restart(app, database_url, tmp_path, *, stored, new, batch, rounds):
    from qcflow.core import audit
    from qcflow.extensions import db

    expected = seeded(app, stored, new)
    assert len(expected) > new // 10  # a fifth of the new facts fire: the test has something to lose
    rng = random.Random(new)
    crashes = 0
    for round_no in range(rounds):
        if round_no % 2 == 0:
            # The hook: the process dies with os._exit right after its n-th committed batch.
            proc = evaluator(database_url, tmp_path, QCFLOW_EXTRACTION_BATCH=batch,
                             QCFLOW_CRASH_AFTER_BATCHES=rng.randint(1, 3))
            proc.wait(timeout=120)
            crashes += proc.returncode == 137
        else:
            # kill -9 from outside at a random moment once a batch has been committed: mid-batch, as likely as not.
            before = queue_left(app)
            proc = evaluator(database_url, tmp_path, QCFLOW_EXTRACTION_BATCH=batch)
            while proc.poll() is None and queue_left(app) == before:
                time.sleep(0.02)
            time.sleep(rng.uniform(0, 0.15))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                crashes += 1
            proc.wait(timeout=60)
        proc.stdout.close()
        firings, rows, audited = recorded(app)
        assert firings <= expected, "a firing the facts do not make"
        assert rows == len(firings) == audited, "a firing recorded or audited twice, or not audited"
        if queue_left(app) == 0:
            break
    final = evaluator(database_url, tmp_path, QCFLOW_EXTRACTION_BATCH=batch)
    output, _ = final.communicate(timeout=300)
    assert final.returncode == 0, output
    assert crashes >= 2
    firings, rows, audited = recorded(app)
    assert expected - firings == set(), f"{len(expected - firings)} firings missing"
    assert firings - expected == set(), f"{len(firings - expected)} unexpected firings"
    assert rows == audited == len(expected)
    assert queue_left(app) == 0
    with app.app_context():
        verified = audit.verify()
        db.session.remove()
    assert verified.ok, verified.reason


def test_the_evaluator_killed_mid_run_and_restarted_fires_each_window_once(app, database_url, tmp_path):
    crash_and_restart(app, database_url, tmp_path, stored=21_000, new=2_000, batch=100, rounds=6)


@pytest.mark.slow
def test_the_evaluator_killed_mid_run_at_scale(app, database_url, tmp_path):
    crash_and_restart(app, database_url, tmp_path, stored=1_000_000, new=10_000, batch=200, rounds=20)


@pytest.mark.parametrize("batch", [7, 5000])
def test_the_firings_do_not_depend_on_how_the_queue_is_cut_into_batches(app, batch, monkeypatch):
    """Many small batches, or one batch whose facts are read in several slices: the same firings, each once."""
    from qcflow.extensions import db
    from qcflow.extraction import rules, services

    monkeypatch.setattr(rules, "IN_SLICE", 3)
    expected = seeded(app, 2_100, 200)
    with app.app_context():
        result = services.evaluate_queued(NOW, batch_size=batch)
        db.session.commit()
        db.session.remove()
    firings, rows, audited = recorded(app)
    assert result.facts == 200 and result.firings == len(expected)
    assert firings == expected and rows == audited == len(expected)
    assert queue_left(app) == 0
