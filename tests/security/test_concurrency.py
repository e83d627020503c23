"""R3, R6, R8, R12 against the real server: `gunicorn -w 4` with scripts/gunicorn.conf.py.

- R3: four web workers start no scheduler (no job runs, no leader lock, no scheduler log line);
- R6: two simultaneous edits of one record: exactly one 200 and one 409, one audit entry;
- R12: two simultaneous submissions with one Idempotency-Key: one report, both answers name it;
- R8: 4 workers + the scheduler process + ~50 submissions/s: no "database is locked" (no 5xx) reaches a
  client; 10 s by default, 60 s under the `slow` marker.
(R1, R2 and R4 are in tests/followup/test_reliability.py and tests/followup/test_generator.py.)
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from tests.conftest import ROOT, die_with_parent
from tests.security.conftest import gunicorn


def call(base, method, path, body=None, headers=None, timeout=30):
    """(status, JSON body) of one request; HTTP errors are answers, not exceptions."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, method=method, data=data,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            return error.code, json.loads(raw)
        except ValueError:
            return error.code, raw.decode(errors="replace")


def at_once(functions):
    """Run the callables at the same instant (a barrier), return their results in order."""
    barrier = threading.Barrier(len(functions))
    results = [None] * len(functions)

    def run(i, function):
        barrier.wait()
        try:
            results[i] = function()
        except Exception as error:  # reported in the assertion, not lost in a thread
            results[i] = error

    threads = [threading.Thread(target=run, args=(i, f)) for i, f in enumerate(functions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def report(department_id, description="剂量错误。"):
    return {"category_code": "medication", "subcategory_code": "wrong_dose", "reporter_grade": "III",
            "care_stage": "medication", "occurred_at": "2026-03-01T09:30:00+08:00",
            "discovered_at": "2026-03-01T10:00:00+08:00", "location": "5病区",
            "department_id": department_id, "description": description}


@pytest.fixture
def server(world, database_url, tmp_path, token_for):
    tokens = {role: token_for(role) for role in ("quality", "dept_head", "nurse")}
    from qcflow.extensions import db

    db.session.commit()
    with gunicorn(database_url, tmp_path, tmp_path / "gunicorn.log", workers=4) as running:
        running.tokens = tokens
        running.log_path = tmp_path / "gunicorn.log"
        yield running


def count(model, *where):
    from qcflow.extensions import db

    db.session.expire_all()
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def check_r3_no_scheduler(server, tmp_path, database_url):
    from qcflow.scheduling.models import JobRun

    for _ in range(20):
        assert call(server.base_url, "GET", "/healthz")[0] == 200
    time.sleep(2)
    log = server.log_path.read_text()
    assert log.count("Booting worker") == 4, log
    assert "scheduler" not in log.lower()
    assert count(JobRun) == 0
    assert not os.path.exists(os.path.join(tmp_path, "scheduler.lock"))
    assert not os.path.exists(database_url.removeprefix("sqlite:///") + ".scheduler.lock")


def check_r6_simultaneous_edits(server, world):
    from qcflow.core.audit import AuditEntry
    from qcflow.mdt.models import Discussion

    discussion = world["A"]["discussion"]
    version = discussion.version
    path = f"/api/v1/mdt/discussions/{discussion.id}"
    edits = ["术前讨论：方案一", "术前讨论：方案二"]
    answers = at_once([lambda text=text: call(server.base_url, "PATCH", path, {"version": version, "question": text},
                                             server.tokens["dept_head"]) for text in edits])
    assert sorted(status for status, _ in answers) == [200, 409], answers
    from qcflow.extensions import db

    db.session.expire_all()
    row = db.session.get(Discussion, discussion.id)
    winner = next(text for text, (status, _) in zip(edits, answers) if status == 200)
    assert row.question == winner and row.version == version + 1
    assert count(AuditEntry, AuditEntry.object_type == "mdt_discussion", AuditEntry.object_id == str(discussion.id),
                 AuditEntry.action == "mdt_discussion.update") == 1


def check_r6_simultaneous_transitions(server, world):
    event = world["A"]["event"]
    path = f"/api/v1/events/{event.id}/transitions"
    body = {"action": "plan_actions", "version": event.version, "rca_cause_domains": ["process"], "rca_factors": "x"}
    answers = at_once([lambda: call(server.base_url, "POST", path, body, server.tokens["quality"])] * 2)
    assert sorted(status for status, _ in answers) == [200, 409], answers


def check_r12_idempotency_key(server, world):
    from qcflow.events.models import AdverseEvent

    before = count(AdverseEvent)
    key = str(uuid.uuid4())
    body = report(world["A"]["department"].id)
    answers = at_once([lambda: call(server.base_url, "POST", "/api/v1/events", body, {"Idempotency-Key": key})] * 4)
    assert count(AdverseEvent) == before + 1, answers
    created = [body for status, body in answers if status == 201]
    assert len(created) == 1, answers
    # The anonymous retries learn that the report was received, not which one it is.
    assert sorted(status for status, _ in answers) == [201, 409, 409, 409], answers
    assert all("event_id" not in body for status, body in answers if status == 409), answers
    # A logged-in reporter's simultaneous retries: one report, every answer names it.
    named = {**body, "mode": "named"}
    answers = at_once([lambda: call(server.base_url, "POST", "/api/v1/events", named,
                                    {"Idempotency-Key": key, **server.tokens["nurse"]})] * 4)
    assert count(AdverseEvent) == before + 2, answers
    created = [body for status, body in answers if status == 201]
    assert len(created) == 1, answers
    assert {body.get("id") or body.get("event_id") for _status, body in answers} == {created[0]["id"]}, answers


def test_four_gunicorn_workers_r3_r6_r12(server, world, tmp_path, database_url):
    """One server start for the quick checks (booting four workers costs more than the checks)."""
    check_r3_no_scheduler(server, tmp_path, database_url)
    check_r6_simultaneous_edits(server, world)
    check_r6_simultaneous_transitions(server, world)
    check_r12_idempotency_key(server, world)


def load(server, world, seconds, rate):
    """Submit ~`rate` reports per second for `seconds` while the scheduler runs; return every status."""
    env = {**os.environ, "QCFLOW_DATABASE_URL": server.database_url, "QCFLOW_INSTANCE_PATH": str(server.instance),
           "QCFLOW_SECRET_KEY": "gunicorn-test"}
    scheduler_log = open(server.instance / "scheduler.log", "w")
    scheduler = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "qcflow", "scheduler", "run"],
                                 cwd=ROOT, env=env, stdout=scheduler_log, stderr=subprocess.STDOUT,
                                 preexec_fn=die_with_parent)
    statuses: list = []
    department_id = world["A"]["department"].id
    try:
        time.sleep(1)
        started = time.monotonic()

        def one(n):
            wait = started + n / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            status, body = call(server.base_url, "POST", "/api/v1/events", report(department_id, f"并发提交 {n}"))
            return status, body if status != 201 else None

        with ThreadPoolExecutor(max_workers=16) as pool:
            statuses = list(pool.map(one, range(int(seconds * rate))))
        elapsed = time.monotonic() - started
    finally:
        scheduler.terminate()
        scheduler.wait(timeout=30)
        scheduler_log.close()
    return statuses, elapsed


def check_load(server, world, seconds):
    from qcflow.events.models import AdverseEvent

    before = count(AdverseEvent)
    statuses, elapsed = load(server, world, seconds, rate=50)
    failures = [(status, body) for status, body in statuses if status != 201]
    assert failures == [], failures[:5]
    assert count(AdverseEvent) == before + len(statuses)
    # Throughput is not asserted: on a shared 2-CPU machine the load generator competes with the server.
    print(f"R8: {len(statuses)} submissions in {elapsed:.1f} s ({len(statuses) / elapsed:.0f}/s), none failed")
    server_log = server.log_path.read_text() + (server.instance / "scheduler.log").read_text()
    assert "database is locked" not in server_log
    assert "leader" in (server.instance / "scheduler.log").read_text()


@pytest.fixture
def loaded_server(server, database_url, tmp_path):
    server.database_url, server.instance = database_url, tmp_path
    return server


def test_r8_writes_under_load_with_the_scheduler_never_fail(loaded_server, world):
    check_load(loaded_server, world, seconds=10)


@pytest.mark.slow
def test_r8_writes_under_load_for_a_minute(loaded_server, world):
    check_load(loaded_server, world, seconds=60)

