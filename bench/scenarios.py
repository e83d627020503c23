"""Read-path, intake, indicator, PDF, start-up and booking-decision scenarios (P4–P13) on one seeded hospital database.

Each scenario measures the real qcflow path (HTTP through gunicorn, the Flask app in-process, or the
service function) and its raw lower bound (the same work as bare SQL on the DB-API cursor, or a bare
WeasyPrint render) on the same data in the same run, and checks the answer: a fast wrong answer fails.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

import sqlalchemy as sa

from bench.harness import ROOT, Gunicorn, Raw, compiled, load, pct, request, sustained, timed

#: Data per scale. Tasks = queue_plans × per_plan; events: hospital (P7) then province (P8, P6); P13 asks among
#: at least `operations` operations (one per encounter).
SIZES = {
    "S": {"departments": 20, "queue_plans": 4_000, "per_plan": 25, "encounters": 20_000,
          "events_hospital": 5_000, "events_province": 25_000, "samples": 200, "seconds": 3, "operations": 100_000},
    "M": {"departments": 200, "queue_plans": 160_000, "per_plan": 25, "encounters": 500_000,
          "events_hospital": 250_000, "events_province": 2_500_000, "samples": 400, "seconds": 10,
          "operations": 100_000},
    "L": {"departments": 200, "queue_plans": 400_000, "per_plan": 25, "encounters": 2_000_000,
          "events_hospital": 500_000, "events_province": 5_000_000, "samples": 400, "seconds": 10,
          "operations": 100_000},
}
HTTP_NOTE = "* HTTP rows gate on absolute bounds; their ratio (to the raw query) is shown for information"


@dataclass
class Row:
    scenario: str
    db: str
    scale: str
    rows: int
    raw_ms: float | None
    app_ms: float | None
    ratio: float | None
    target: str
    result: str
    extra: dict = field(default_factory=dict)
    app_p95: float | None = None
    app_p99: float | None = None
    #: False when the ratio is informational (HTTP rows), shown with a *.
    ratio_gated: bool = True


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def r2(value):
    return None if value is None else round(value, 2)


def sig3(ratio: float) -> float:
    """A ratio to three significant figures: 0.00185 stays 0.00185, which round(…, 2) showed as 0.0."""
    return float(f"{ratio:.3g}")


class Hospital:
    """The seeded database, its users and tokens, and an app bound to it."""

    def __init__(self, db: str, scale: str, url: str, make_app):
        self.db, self.scale, self.url = db, scale, url
        self.size = SIZES[scale]
        self.app = make_app(url)
        self.instance = os.environ["QCFLOW_INSTANCE_PATH"]
        self.now = datetime.now(timezone.utc).replace(microsecond=0)
        self.tokens, self.users, self.seed_s = {}, {}, {}

    def seed(self, wanted: set[str]) -> None:
        from bench import hospital
        from bench.seed import departments, seed_plans
        from qcflow.auth import services as auth
        from qcflow.auth.models import Department
        from qcflow.core.actors import Actor
        from qcflow.extensions import db

        size, now = self.size, self.now
        with self.app.app_context():
            session = db.session
            started = time.perf_counter()
            self.depts = departments(session, datetime(2026, 1, 1, tzinfo=timezone.utc), size["departments"])
            actor = Actor.system("bench")
            home = session.get(Department, self.depts[0])
            for name, roles in (("nurse", ["nurse"]), ("head", ["dept_head"]), ("quality", ["quality"]),
                                ("reporter", ["clinician"])):
                user = auth.create_user(f"bench_{name}", "bench-Horse-battery-9", roles, home, actor=actor, now=now)
                self.users[name] = user.id
                _row, self.tokens[name] = auth.create_token(user, "bench", days=30, actor=actor, now=now)
            session.commit()
            if wanted & {"P4", "P9", "P10", "P11", "P12", "P13"} or wanted & {"P7", "P8"}:
                seed_plans(session, size["queue_plans"], due_from=now + timedelta(days=400),
                           due_to=now + timedelta(days=800), tag="q", department_count=size["departments"],
                           anchors=min(size["queue_plans"], 2000))
                session.commit()
                self.seed_s["plans"] = time.perf_counter() - started
                t = time.perf_counter()
                self.tasks = hospital.seed_tasks(session, per_plan=size["per_plan"], now=now)
                session.commit()
                self.seed_s["tasks"] = time.perf_counter() - t
            if wanted & {"P7", "P8", "P13"}:
                t = time.perf_counter()
                encounters = max(size["encounters"], size["operations"]) if "P13" in wanted else size["encounters"]
                self.clinical = hospital.seed_clinical(session, encounters, depts=self.depts,
                                                       start=self.period_start_at(), days=self.period_days())
                session.commit()
                self.seed_s["clinical"] = time.perf_counter() - t
            if wanted & {"P5", "P6", "P7", "P8"}:
                t = time.perf_counter()
                self.events = hospital.seed_events(session, size["events_hospital"], depts=self.depts,
                                                   start=self.period_start_at(), days=self.period_days(),
                                                   reporter_id=self.users["reporter"])
                hospital.seed_audit(session, size["events_hospital"], now)
                session.commit()
                self.seed_s["events"] = time.perf_counter() - t
            t = time.perf_counter()
            hospital.analyse(session)
            session.commit()
            self.seed_s["analyse"] = time.perf_counter() - t
            session.remove()

    def add_province_events(self) -> None:
        from bench import hospital
        from qcflow.extensions import db

        with self.app.app_context():
            t = time.perf_counter()
            extra = self.size["events_province"] - self.size["events_hospital"]
            self.events = hospital.seed_events(db.session, extra, depts=self.depts, start=self.period_start_at(),
                                               days=self.period_days(), tag="p", reporter_id=self.users["reporter"])
            hospital.seed_audit(db.session, extra, self.now)
            hospital.analyse(db.session)
            db.session.commit()
            self.seed_s["province_events"] = time.perf_counter() - t
            db.session.remove()

    def period(self) -> tuple[date, date]:
        """Five whole years of months ending with last month (hospital time)."""
        from qcflow.core.time import local

        first = local(self.now).date().replace(day=1)
        end = first - timedelta(days=1)
        return first.replace(year=first.year - 5), end

    def period_start_at(self) -> datetime:
        start, _end = self.period()
        return datetime(start.year, start.month, start.day, tzinfo=timezone.utc)

    def period_days(self) -> int:
        start, end = self.period()
        return (end - start).days

    def bearer(self, who: str) -> dict:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def raw(self) -> Raw:
        from qcflow.extensions import db

        with self.app.app_context():
            return Raw(db.engine)


# P4 ---------------------------------------------------------------------------------------------

QUEUE_SQL = (
    "SELECT t.id, t.due_at, t.closes_at, p.name, p.mrn, p.phone FROM followup_task t "
    "JOIN patient p ON p.id = t.patient_id "
    "WHERE t.department_id = :dept AND t.state IN ('pending', 'in_progress') AND t.opens_at < :end_of_day "
    "AND (t.snoozed_until IS NULL OR t.snoozed_until <= :now) "
    "ORDER BY CASE WHEN t.is_urgent THEN 0 ELSE 1 END, CASE WHEN t.closes_at <= :now THEN 0 ELSE 1 END, "
    "CASE WHEN t.closes_at <= :now THEN t.closes_at ELSE t.due_at END, t.id LIMIT 50 OFFSET :skip")


def queue_params(h: Hospital, skip: int = 0) -> dict:
    from qcflow.core.time import hospital_tz, local
    from qcflow.core.periods import local_midnight

    with h.app.app_context():
        now = datetime.now(timezone.utc)
        end = local_midnight(local(now).date() + timedelta(days=1), hospital_tz())
    return {"dept": h.depts[0], "end_of_day": end, "now": now, "skip": skip}


def p4_queue(h: Hospital) -> list[Row]:
    """The nurse's daily queue: raw page query, the app in-process, and over HTTP (2 workers)."""
    n = h.size["samples"]
    raw = h.raw()
    params = queue_params(h)
    raw_ms = timed(lambda: raw.query(QUEUE_SQL, params), n, warmup=20)
    path = "/api/v1/followup/queue"
    client = h.app.test_client()
    headers = h.bearer("nurse")
    app_ms = timed(lambda: client.get(path, headers=headers), n, warmup=20)
    page = client.get(path, headers=headers).get_json()
    expected = [r[0] for r in raw.query(QUEUE_SQL, queue_params(h))]
    second = client.get(f"{path}?cursor={page['next_cursor']}", headers=headers).get_json() if page["next_cursor"] else None
    expected2 = [r[0] for r in raw.query(QUEUE_SQL, queue_params(h, 50))]
    correct = [t["id"] for t in page["items"]] == expected and (
        second is None or [t["id"] for t in second["items"]] == expected2)
    open_tasks = raw.query("SELECT count(*) FROM followup_task WHERE state IN ('pending', 'in_progress')")[0][0]
    raw.close()
    raw_p50, app_p50 = statistics.median(raw_ms), statistics.median(app_ms)
    rows = [Row("P4 queue_page_app", h.db, h.scale, len(expected), r2(raw_p50), r2(app_p50), sig3(app_p50 / raw_p50),
                "info (in-process)", verdict(correct),
                {"tasks": h.tasks, "open_tasks": open_tasks, "samples": n, "correct": correct,
                 "check": "page 1 and 2 ids == raw query (keyset == offset)"},
                r2(pct(app_ms, 95)), r2(pct(app_ms, 99)), ratio_gated=False)]
    with Gunicorn(h.url, h.instance, workers=2) as server:
        lat, statuses, _ = load(server.port, lambda i: ("GET", path, headers, None), concurrency=2, count=n)
        status, body, _ms = request(server.port, "GET", path, headers)
        http_ids = [t["id"] for t in json.loads(body)["items"]] if status == 200 else None
        run = sustained(server, lambda i: ("GET", path, headers, None), concurrency=8, seconds=h.size["seconds"])
    rps, tput, tstatuses, server_cpu_ms = run["rate"], run["latencies"], run["statuses"], run["cpu_ms"]
    expected = [r[0] for r in raw_query(h, QUEUE_SQL, queue_params(h))]
    ok_status = all(s == 200 for s in statuses + tstatuses)
    correct = http_ids == expected and ok_status
    p50, p95, p99 = statistics.median(lat), pct(lat, 95), pct(lat, 99)
    ok = correct and p95 <= 50 and p99 <= 150 and rps >= 300
    rows.append(Row("P4 queue_page_http", h.db, h.scale, len(expected), r2(raw_p50), r2(p50), sig3(p50 / raw_p50),
                    "p95<=50ms,p99<=150ms,>=300rps", verdict(ok),
                    {"tasks": h.tasks, "open_tasks": open_tasks, "rps": round(rps, 1), "rps_windows": run["rates"],
                     "rps_p95": r2(pct(tput, 95)),
                     "server_cpu_ms_per_request": r2(server_cpu_ms), "workers": 2, "latency_clients": 2,
                     "throughput_clients": 8, "correct": correct,
                     "non_200": sum(s != 200 for s in statuses + tstatuses), "check": "HTTP page ids == raw query"},
                    r2(p95), r2(p99), ratio_gated=False))
    return rows


def raw_query(h: Hospital, sql: str, params: dict | None = None) -> list[tuple]:
    raw = h.raw()
    try:
        return raw.query(sql, params)
    finally:
        raw.close()


# P5 ---------------------------------------------------------------------------------------------

def report_body(h: Hospital, i: int) -> dict:
    return {"mode": "named", "category_code": "fall", "subcategory_code": "fall_inpatient", "reporter_grade": "III",
            "care_stage": "nursing", "occurred_at": "2026-03-01T09:30:00+08:00",
            "discovered_at": "2026-03-01T10:00:00+08:00", "location": "5病区", "department_id": h.depts[i % len(h.depts)],
            "description": f"基准测试 {i}：患者如厕时跌倒，无损伤。"}


RAW_EVENT = ("INSERT INTO adverse_event (reference, state, mode, reporter_user_id, wants_feedback, category_code, "
             "subcategory_code, reporter_grade, care_stage, occurred_at, discovered_at, location, department_id, "
             "description, immediate_actions, is_unplanned_reoperation, created_at, submitted_at, triage_due_at, version) "
             "VALUES (:ref, 'submitted', 'named', :user, true, 'fall', 'fall_inpatient', 'III', 'nursing', :at, :at, "
             "'5病区', :dept, :text, '', false, :at, :at, :at, 1)")
RAW_AUDIT = ("INSERT INTO audit_entry (seq, at, actor, action, object_type, object_id, detail, prev_hash, hash) "
             "VALUES (:seq, :at, 'bench', 'bench.raw_create', 'adverse_event', :ref, '{}', 'bench', 'bench')")


def p5_submit(h: Hospital) -> list[Row]:
    """Reports filed over HTTP for a sustained period; every one must be stored with its audit row."""
    workers = 4 if h.db == "sqlite" else 2
    clients = 4 if h.db == "sqlite" else 8
    raw = h.raw()
    before = raw.query("SELECT count(*) FROM adverse_event")[0][0]
    audit_before = raw.query("SELECT count(*) FROM audit_entry WHERE action = 'event.create'")[0][0]
    seq = [raw.query("SELECT max(seq) FROM audit_entry")[0][0] + 10_000_000]
    at = datetime.now(timezone.utc)

    def one():
        seq[0] += 1
        ref = f"RAW-{seq[0]}"
        raw.execute_many([(RAW_EVENT, {"ref": ref, "user": h.users["reporter"], "at": at, "dept": h.depts[0],
                                       "text": "基准测试"}),
                          (RAW_AUDIT, {"seq": seq[0], "at": at, "ref": ref})])

    raw_ms = timed(one, h.size["samples"], warmup=10)
    raw_rows = h.size["samples"] + 10
    headers = h.bearer("reporter")
    with Gunicorn(h.url, h.instance, workers=workers) as server:
        run = sustained(server, lambda i: ("POST", "/api/v1/events", headers, report_body(h, i)),
                        concurrency=clients, seconds=h.size["seconds"])
        log = server.log_text()
    lat, statuses, server_cpu_ms, rate = run["latencies"], run["statuses"], run["cpu_ms"], run["rate"]
    created = sum(s == 201 for s in statuses)
    after = raw.query("SELECT count(*) FROM adverse_event")[0][0]
    audit_after = raw.query("SELECT count(*) FROM audit_entry WHERE action = 'event.create'")[0][0]
    raw.close()
    locked = log.count("database is locked")
    correct = (after - before - raw_rows == created and audit_after - audit_before == created
               and created == len(statuses) and locked == 0)
    p50, p95, p99 = statistics.median(lat), pct(lat, 95), pct(lat, 99)
    target = ">=50/s,0 lock errors" if h.db == "sqlite" else ">=100/s,p95<=200ms"
    ok = correct and (rate >= 50 if h.db == "sqlite" else rate >= 100 and p95 <= 200)
    raw_p50 = statistics.median(raw_ms)
    return [Row("P5 submit_http", h.db, h.scale, created, r2(raw_p50), r2(p50), sig3(p50 / raw_p50), target,
                verdict(ok),
                {"per_second": round(rate, 1), "per_second_windows": run["rates"], "seconds": round(run["seconds"], 1),
                 "workers": workers, "clients": clients,
                 "server_cpu_ms_per_request": r2(server_cpu_ms),
                 "errors": len(statuses) - created, "lock_errors_logged": locked, "existing_reports": before,
                 "correct": correct, "check": "stored reports and audit rows == 201 responses"},
                r2(p95), r2(p99), ratio_gated=False)]


# P6 ---------------------------------------------------------------------------------------------

# Newest first by (submitted_at, id); the cursor is the previous page's last case (events.queries.list_events).
INBOX_SQL = ("SELECT id, reference, state, category_code, reporter_grade, department_id, submitted_at "
             "FROM adverse_event WHERE state <> 'draft' AND (submitted_at, id) < "
             "(SELECT submitted_at, id FROM adverse_event WHERE id = :cursor) ORDER BY submitted_at DESC, id DESC LIMIT 50")
HEAD_SQL = ("SELECT id, reference, state, category_code, reporter_grade, department_id, submitted_at "
            "FROM adverse_event WHERE (department_id = :dept OR handling_department_id = :dept) AND state <> 'draft' "
            "ORDER BY submitted_at DESC, id DESC LIMIT 50")


def p6_inbox(h: Hospital) -> list[Row]:
    """The quality office's inbox at a deep keyset page (HTTP), and a department head's first page (in-process)."""
    n = h.size["samples"]
    raw = h.raw()
    top = raw.query("SELECT max(id) FROM adverse_event")[0][0] + 1
    deep = top // 3
    raw_ms = timed(lambda: raw.query(INBOX_SQL, {"cursor": deep}), n, warmup=20)
    head_raw_ms = timed(lambda: raw.query(HEAD_SQL, {"dept": h.depts[0]}), n, warmup=20)
    expected = [r[0] for r in raw.query(INBOX_SQL, {"cursor": deep})]
    expected_head = [r[0] for r in raw.query(HEAD_SQL, {"dept": h.depts[0]})]
    raw.close()
    client = h.app.test_client()
    head = h.bearer("head")
    head_ms = timed(lambda: client.get("/api/v1/events", headers=head), n, warmup=20)
    head_ids = [e["id"] for e in client.get("/api/v1/events", headers=head).get_json()["items"]]
    path = f"/api/v1/events?cursor={deep}"
    quality = h.bearer("quality")
    with Gunicorn(h.url, h.instance, workers=2) as server:
        lat, statuses, _ = load(server.port, lambda i: ("GET", path, quality, None), concurrency=2, count=n)
        status, body, _ms = request(server.port, "GET", path, quality)
    ids = [e["id"] for e in json.loads(body)["items"]] if status == 200 else None
    correct = ids == expected and all(s == 200 for s in statuses)
    raw_p50, p50, p95, p99 = statistics.median(raw_ms), statistics.median(lat), pct(lat, 95), pct(lat, 99)
    head_raw, head_p50 = statistics.median(head_raw_ms), statistics.median(head_ms)
    head_ok = head_ids == expected_head
    return [
        Row("P6 inbox_deep_http", h.db, h.scale, len(expected), r2(raw_p50), r2(p50), sig3(p50 / raw_p50),
            "p95<=100ms", verdict(correct and p95 <= 100),
            {"cases": h.events, "cursor": deep, "correct": correct, "check": "HTTP page ids == raw keyset query"},
            r2(p95), r2(p99), ratio_gated=False),
        Row("P6 inbox_head_app", h.db, h.scale, len(expected_head), r2(head_raw), r2(head_p50),
            sig3(head_p50 / head_raw), "p95<=100ms (in-process)", verdict(head_ok and pct(head_ms, 95) <= 100),
            {"cases": h.events, "correct": head_ok, "check": "department head's page ids == raw scoped query"},
            r2(pct(head_ms, 95)), r2(pct(head_ms, 99)), ratio_gated=False),
    ]


# P7 / P8 ----------------------------------------------------------------------------------------

def indicators_available() -> str | None:
    """None when qcflow.indicators.queries.compute can be used, else why not."""
    try:
        from qcflow.indicators import queries
    except Exception as error:  # the module is being written in parallel: any import error means "not yet"
        return f"qcflow.indicators.queries does not import ({type(error).__name__}: {error})"
    if not hasattr(queries, "compute"):
        return "qcflow.indicators.queries has no compute()"
    return None


def _raw_indicator_sql(h: Hospital, start: date, end: date, now: datetime) -> list[tuple[str, str, dict]]:
    """The figures the dashboard shows, for the whole period, as hand-written GROUP BY aggregates over
    the source rows: one scan per table (events, discharges, calls, operations, death reviews) instead
    of one statement per indicator part. Written from docs/indicators.md, not from the app's SQL, so it
    is also the independent answer the rollup-served values must equal."""
    from flask import current_app

    from qcflow.core.time import hospital_tz
    from qcflow.core.periods import Period
    from qcflow.indicators.definitions import NOT_REPORTS

    period = Period(start, end, now)
    s, e = period.start_at, period.end_at
    days = current_app.config["EVENT_CLOSURE_DAYS"]
    pg = h.db == "postgres"
    not_reports = ", ".join(f"'{x}'" for x in NOT_REPORTS)
    grade = "coalesce(confirmed_grade, reporter_grade, 'I')"
    params = {"s": s, "e": e, "now": now, "start_on": start.isoformat(), "end_on": end.isoformat(),
              "s_min": s - timedelta(days=max(days.values()))}
    due = []
    for i, (g, n) in enumerate(sorted(days.items())):
        params[f"s{i}"], params[f"e{i}"] = s - timedelta(days=n), min(e, now) - timedelta(days=n)
        due.append(f"({grade} = '{g}' AND submitted_at >= :s{i} AND submitted_at < :e{i})")
    due_sql = "(" + " OR ".join(due) + ")"
    allowed = "CASE " + " ".join(f"WHEN {grade} = '{g}' THEN {n}" for g, n in days.items()) + \
        f" ELSE {min(days.values())} END"
    elapsed = ("EXTRACT(EPOCH FROM (closed_at - submitted_at)) / 86400.0" if pg
               else "(julianday(closed_at) - julianday(submitted_at))")
    events = (f"SELECT sum(CASE WHEN submitted_at >= :s AND submitted_at < :e THEN 1 ELSE 0 END), "
              f"sum(CASE WHEN {due_sql} THEN 1 ELSE 0 END), "
              f"sum(CASE WHEN {due_sql} AND state = 'closed' AND closed_at IS NOT NULL AND {elapsed} <= {allowed} "
              f"THEN 1 ELSE 0 END) FROM adverse_event WHERE state NOT IN ({not_reports}) "
              f"AND submitted_at >= :s_min AND submitted_at < :e")
    tz = hospital_tz()
    if pg:
        local_month = f"CAST(date_trunc('month', e.discharged_at AT TIME ZONE '{tz.key}') AS date)"
    else:  # SQLite keeps UTC text: shift by the zone's offset (fixed in the hospital's zone, no DST)
        offset = int(datetime.combine(start, datetime.min.time(), tz).utcoffset().total_seconds() // 60)
        local_month = f"date(e.discharged_at, '{offset:+d} minutes', 'start of month')"
    on_time = "t.state = 'completed' AND t.is_effective AND t.closed_at >= t.opens_at AND t.closed_at < t.closes_at"
    day_case = "e.is_day_surgery AND (e.disposition IS NULL OR e.disposition <> 'death')"
    discharges = (
        f"SELECT sum(CASE WHEN NOT EXISTS (SELECT 1 FROM discharge_census c WHERE c.department_id = e.department_id "
        f"AND c.month_on = {local_month}) THEN 1 ELSE 0 END), sum(CASE WHEN {day_case} THEN 1 ELSE 0 END), "
        f"sum(CASE WHEN {day_case} AND e.id IN (SELECT pl.source_id FROM followup_task t "
        f"JOIN followup_plan pl ON pl.id = t.plan_id WHERE pl.source_type = 'encounter' "
        f"AND pl.pathway = 'day_surgery' AND t.occurrence = 1 AND {on_time}) THEN 1 ELSE 0 END), "
        f"(SELECT coalesce(sum(c.discharges), 0) FROM discharge_census c JOIN department d ON d.id = c.department_id "
        f"WHERE c.month_on >= :start_on AND c.month_on <= :end_on) "
        f"FROM encounter e JOIN patient p ON p.id = e.patient_id WHERE e.discharged_at >= :s AND e.discharged_at < :e "
        f"AND e.discharged_at <= :day_cut")
    params["day_cut"] = now - timedelta(hours=24)
    calls = (f"SELECT t.pathway, count(*), sum(CASE WHEN {on_time} THEN 1 ELSE 0 END) FROM followup_task t "
             f"JOIN patient p ON p.id = t.patient_id WHERE t.state <> 'cancelled' AND t.closes_at >= :s "
             f"AND t.closes_at < :e AND t.closes_at <= :now GROUP BY t.pathway")
    level4, elective = "(o.grade = 4 OR o.is_restricted_technology)", \
        "(NOT o.is_unplanned_reoperation AND NOT o.is_emergency_override)"
    def returned_within(hours: int) -> str:
        gap = (f"o2.performed_at >= o.performed_at - interval '{hours} hours'" if pg else
               f"(julianday(o.performed_at) - julianday(o2.performed_at)) * 24 <= {hours} + 1e-6")
        return (f"sum(CASE WHEN o.is_unplanned_reoperation AND EXISTS (SELECT 1 FROM operation o2 WHERE "
                f"o2.patient_id = o.patient_id AND o2.id <> o.id AND o2.state = 'performed' "
                f"AND o2.performed_at < o.performed_at AND {gap}) THEN 1 ELSE 0 END)")

    operations = (
        f"SELECT count(*), sum(CASE WHEN o.is_unplanned_reoperation THEN 1 ELSE 0 END), "
        f"sum(CASE WHEN {level4} THEN 1 ELSE 0 END), sum(CASE WHEN {level4} AND EXISTS (SELECT 1 FROM mdt_discussion d "
        f"WHERE d.operation_id = o.id AND d.kind = 'preop_level4' AND d.state = 'signed' "
        f"AND d.signed_at <= o.performed_at) THEN 1 ELSE 0 END), sum(CASE WHEN {elective} THEN 1 ELSE 0 END), "
        f"sum(CASE WHEN {elective} AND EXISTS (SELECT 1 FROM encounter e WHERE e.id = o.encounter_id "
        f"AND e.is_day_surgery) THEN 1 ELSE 0 END), {returned_within(48)}, {returned_within(31 * 24)} "
        f"FROM operation o JOIN procedure pr ON pr.code = o.procedure_code JOIN patient p ON p.id = o.patient_id "
        f"WHERE o.state = 'performed' AND o.performed_at >= :s AND o.performed_at < :e")
    # Deaths by the day of death; within 7 days of an in-hospital death's discharge, else by 24:00 of the
    # seventh day after the day of death (local midnight of died_on + 8 days).
    if pg:
        seven_known = "d.signed_at <= de.discharged_at + interval '7 days'"
        seven_day = f"d.signed_at < (CAST(p.died_on AS timestamp) + interval '8 days') AT TIME ZONE '{tz.key}'"
    else:
        seven_known = "(julianday(d.signed_at) - julianday(de.discharged_at)) <= 7 + 1e-9"
        seven_day = f"d.signed_at < datetime(p.died_on, '+8 days', '{-offset:+d} minutes')"
    counted = (
        "FROM mdt_discussion d JOIN patient p ON p.id = d.patient_id LEFT JOIN encounter de ON de.id = d.encounter_id "
        "AND de.disposition = 'death' "
        "WHERE d.kind = 'perioperative_death' AND p.died_on >= :start_on AND p.died_on <= :end_on "
        "AND NOT (d.state = 'cancelled' AND EXISTS (SELECT 1 FROM mdt_discussion o WHERE o.patient_id = d.patient_id "
        "AND o.kind = d.kind AND o.id <> d.id AND o.state <> 'cancelled'))")
    deaths = (
        "SELECT count(*), sum(CASE WHEN d.state = 'signed' THEN 1 ELSE 0 END), "
        f"sum(CASE WHEN d.state = 'signed' AND CASE WHEN de.discharged_at IS NOT NULL THEN {seven_known} "
        f"ELSE {seven_day} END THEN 1 ELSE 0 END) " + counted)
    # Five working days: the rows, judged with the Chinese calendar in _raw_figures.
    signed_deaths = "SELECT p.died_on, d.signed_at " + counted + " AND d.state = 'signed'"
    # Perioperative mortality: patients who died in the period within PERIOPERATIVE_DEATH_DAYS local days of a
    # performed operation, or during its stay; over the period's discharges of stays with a performed operation.
    if pg:
        local_day = lambda column: f"CAST({column} AT TIME ZONE '{tz.key}' AS date)"  # noqa: E731
        days_since = f"(p.died_on - {local_day('o.performed_at')})"
    else:
        local_day = lambda column: f"date({column}, '{offset:+d} minutes')"  # noqa: E731
        days_since = f"CAST(julianday(p.died_on) - julianday({local_day('o.performed_at')}) AS INTEGER)"
    window = current_app.config["PERIOPERATIVE_DEATH_DAYS"]
    mortality = (
        "SELECT (SELECT count(*) FROM patient p WHERE p.died_on >= :start_on AND p.died_on <= :end_on AND EXISTS ("
        "SELECT 1 FROM operation o JOIN encounter st ON st.id = o.encounter_id WHERE o.patient_id = p.id "
        f"AND o.state = 'performed' AND o.performed_at IS NOT NULL AND {days_since} >= 0 AND ({days_since} <= {window} "
        f"OR ({local_day('st.admitted_at')} <= p.died_on AND (st.discharged_at IS NULL "
        f"OR {local_day('st.discharged_at')} >= p.died_on))))), "
        "(SELECT count(*) FROM encounter e WHERE e.discharged_at >= :s AND e.discharged_at < :e AND EXISTS ("
        "SELECT 1 FROM operation o WHERE o.encounter_id = e.id AND o.state = 'performed'))")
    # MDT clinics open on the period's last day with a weekly slot and two or more specialties (a count).
    clinics = ("SELECT count(*) FROM mdt_clinic c WHERE c.active_from <= :end_on AND (c.active_to IS NULL OR "
               "c.active_to >= :end_on) AND EXISTS (SELECT 1 FROM mdt_clinic_slot sl WHERE sl.clinic_id = c.id) "
               "AND json_array_length(c.specialties) >= 2")
    return [("events", events, params), ("discharges", discharges, params), ("calls", calls, params),
            ("operations", operations, params), ("deaths", deaths, params),
            ("signed_deaths", signed_deaths, params), ("mortality", mortality, params), ("clinics", clinics, params)]


def _signed_within_5_working_days(died_on, signed_at) -> bool:
    """Signed by 24:00 of the fifth working day after the day of death (chinesecalendar, 调休 included)."""
    import chinese_calendar

    from qcflow.core.time import hospital_tz

    died_on = died_on if isinstance(died_on, date) else date.fromisoformat(died_on)
    if isinstance(signed_at, str):
        signed_at = datetime.fromisoformat(signed_at)
    if signed_at.tzinfo is None:
        signed_at = signed_at.replace(tzinfo=timezone.utc)
    day, left = died_on, 5
    while left:
        day += timedelta(days=1)
        try:
            left -= chinese_calendar.is_workday(day)
        except NotImplementedError:  # a year the calendar does not know yet: Monday to Friday
            left -= day.weekday() < 5
    return signed_at <= datetime.combine(day + timedelta(days=1), datetime.min.time(), hospital_tz())


def _raw_figures(results: dict) -> dict:
    """{(code, part): count} from the raw aggregates."""
    from qcflow.indicators.definitions import KEY_CANCERS

    n = lambda v: int(v or 0)  # noqa: E731
    reported, due, on_time = results["events"][0]
    encounters, day_cases, day_called, census = results["discharges"][0]
    calls = {pathway: (n(d), n(ok)) for pathway, d, ok in results["calls"]}
    performed, unplanned, level4, level4_mdt, elective, day_surgery, within_48h, within_31d = \
        results["operations"][0]
    deaths, discussed, discussed_7d = results["deaths"][0]
    discussed_5wd = sum(_signed_within_5_working_days(died_on, signed_at)
                        for died_on, signed_at in results["signed_deaths"])
    periop_deaths, surgical_discharges = results["mortality"][0]
    (clinics,) = results["clinics"][0]
    pairs = {
        "ae_per_100_discharges": (reported, n(encounters) + n(census)),
        "followup_rate_level4": calls.get("four_level_surgery", (0, 0))[::-1],
        "followup_rate_cancer": (sum(calls.get(f"cancer_{t}", (0, 0))[1] for t in KEY_CANCERS),
                                 sum(calls.get(f"cancer_{t}", (0, 0))[0] for t in KEY_CANCERS)),
        **{f"followup_rate_cancer_{t}": calls.get(f"cancer_{t}", (0, 0))[::-1] for t in KEY_CANCERS},
        "day_surgery_24h_followup_rate": (day_called, day_cases),
        "preop_mdt_rate_level4": (level4_mdt, level4),
        "periop_death_discussion_rate": (discussed, deaths),
        "periop_death_discussion_7d_rate": (discussed_7d, deaths),
        "periop_death_discussion_5wd_rate": (discussed_5wd, deaths),
        "unplanned_reoperation_rate": (unplanned, performed),
        "unplanned_reoperation_48h_rate": (within_48h, performed),
        "unplanned_reoperation_31d_rate": (within_31d, performed),
        "day_surgery_share": (day_surgery, elective),
        "ae_closure_on_time_rate": (on_time, due),
        "periop_mortality_rate": (periop_deaths, surgical_discharges),
        "mdt_clinic_count": (clinics, 0),
    }
    return {(code, part): n(value) for code, (num, den) in pairs.items()
            for part, value in (("numerator", num), ("denominator", den))}


def p7_p8_indicators(h: Hospital, label: str) -> list[Row]:
    """The dashboard as served: compute() for five whole years, hospital-wide, after the nightly rollup
    refresh (run as the scheduler runs it). Raw: the same figures as one GROUP BY aggregate per source
    table on the bare cursor. Checks: every served numerator and denominator == the raw aggregate, the
    reporting numerator == a raw GROUP BY month × category, and every month came from the rollup."""
    from qcflow.extensions import db
    from qcflow.indicators import queries
    from qcflow.core.periods import Period
    from qcflow.indicators.definitions import NOT_REPORTS
    from qcflow.scheduling.jobs import find_job
    from qcflow.scheduling.runner import run_job

    start, end = h.period()
    now = datetime.now(timezone.utc)
    n = 2 if h.size.get("quick") else 20 if h.scale == "S" else 10
    period = Period(start, end, now)
    with h.app.test_request_context():
        t = time.perf_counter()
        job = run_job(find_job("indicators.refresh_rollups"), now)
        refresh_s = time.perf_counter() - t
        job_status, job_result = job.status, job.result
        statements = _raw_indicator_sql(h, start, end, now)
        rolled = len(queries.rolled_up_months(period))
        db.session.rollback()
        raw = h.raw()

        def raw_all():
            return {name: raw.query(sql, params) for name, sql, params in statements}

        results = []
        raw_ms = timed(lambda: results.append(raw_all()), n, warmup=1)
        expected = _raw_figures(results[-1])
        computed = []
        app_ms = timed(lambda: (computed.append(queries.compute(start, end, now=now)), db.session.rollback()), n,
                       warmup=1)
        values = computed[-1]
        live_ok = None
        if h.scale == "S":  # the definitions counted live agree with the hand-written aggregate too
            live = queries.compute(start, end, now=now, live=True)
            live_ok = {(v.code, p): getattr(v, p) for v in live for p in ("numerator", "denominator")} == expected
            db.session.rollback()
    got = {(v.code, p): getattr(v, p) for v in values for p in ("numerator", "denominator")}
    not_reports = ", ".join(f"'{s}'" for s in NOT_REPORTS)
    month = "to_char(submitted_at, 'YYYY-MM')" if h.db == "postgres" else "substr(submitted_at, 1, 7)"
    group_sql = (f"SELECT {month}, category_code, count(*) FROM adverse_event WHERE submitted_at >= :s "
                 f"AND submitted_at < :e AND state NOT IN ({not_reports}) GROUP BY 1, 2")
    params = {"s": period.start_at, "e": period.end_at}
    group_ms = timed(lambda: raw.query(group_sql, params), n, warmup=1)
    grouped = raw.query(group_sql, params)
    raw.close()
    reports = sum(r[2] for r in grouped)
    months = len(period.months())
    correct = (got == expected and got.get(("ae_per_100_discharges", "numerator")) == reports
               and job_status == "ok" and rolled == months and live_ok is not False)
    raw_p50, app_p50 = statistics.median(raw_ms), statistics.median(app_ms)
    if label == "P7":
        name, target, bound = "P7 indicators_hospital", "<=10x,p95<=300ms", 300
    else:
        name, target, bound = "P8 indicators_province", "<=10x,p95<=2s (rollups: 300ms)", 300
    p95 = pct(app_ms, 95)
    ok = correct and app_p50 / raw_p50 <= 10 and p95 <= bound
    return [Row(name, h.db, h.scale, reports, r2(raw_p50), r2(app_p50), sig3(app_p50 / raw_p50), target,
                verdict(ok),
                {"reports": h.events, "indicators": len(values), "raw_statements": len(statements), "samples": n,
                 "rollup_refresh_s": round(refresh_s, 1), "refresh_job": job_result, "rolled_up_months": rolled,
                 "months": months, "group_by_month_category_ms": r2(statistics.median(group_ms)),
                 "correct": correct, "live_equals_raw": live_ok,
                 "check": "rollup-served compute() == raw GROUP BY aggregates for every part; reporting numerator "
                          "== raw GROUP BY month x category; every month served from the rollup",
                 "mismatch": {f"{k[0]}.{k[1]}": [got.get(k), expected.get(k)] for k in expected
                              if got.get(k) != expected.get(k)}},
                r2(p95), r2(pct(app_ms, 99)))]


# P9–P11 -----------------------------------------------------------------------------------------

def pdf_patients(h: Hospital) -> tuple[int, int]:
    """A patient whose follow-up sheet is one page (one plan, six calls) and one with twelve plans
    (300 calls, ≈ 10 pages), made from seeded plans by moving them (set-based)."""
    raw = h.raw()
    plans = [r[0] for r in raw.query("SELECT id FROM followup_plan WHERE source_key LIKE 'benchq:%' "
                                     "AND department_id = :d ORDER BY id LIMIT 13", {"d": h.depts[1]})]
    small = raw.query("SELECT patient_id FROM followup_plan WHERE id = :p", {"p": plans[0]})[0][0]
    big = raw.query("SELECT patient_id FROM followup_plan WHERE id = :p", {"p": plans[1]})[0][0]
    statements = [("DELETE FROM followup_task WHERE plan_id = :p AND occurrence <= 19", {"p": plans[0]})]
    for plan in plans[2:]:
        statements += [("UPDATE followup_plan SET patient_id = :big WHERE id = :p", {"big": big, "p": plan}),
                       ("UPDATE followup_task SET patient_id = :big WHERE plan_id = :p", {"big": big, "p": plan})]
    raw.execute_many(statements)
    raw.close()
    return small, big


def run_pdf(h: Hospital, path: str, repeats: int) -> dict:
    run = subprocess.run([sys.executable, "-m", "bench.pdfjob", h.url, h.instance, path, h.tokens["quality"],
                          str(repeats)], cwd=ROOT, capture_output=True, text=True, timeout=1800)
    lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
    if run.returncode or not lines:
        return {"error": (run.stderr or run.stdout)[-2000:]}
    return json.loads(lines[-1])


def pdf_row(h: Hospital, name: str, result: dict, target: str, bound_ms: float, ratio_bound: float | None,
            rss_bound: float | None = None, pages: tuple[int, int] | None = None) -> Row:
    if "error" in result:
        return Row(name, h.db, h.scale, 0, None, None, None, target, "FAIL", {"error": result["error"]})
    app_p50, raw_p50 = statistics.median(result["app_ms"]), statistics.median(result["raw_ms"])
    ratio = app_p50 / raw_p50
    ok = app_p50 <= bound_ms and (ratio_bound is None or ratio <= ratio_bound) and (
        rss_bound is None or result["rss_mib"] <= rss_bound)
    correct = pages is None or pages[0] <= result["pages"] <= pages[1]
    return Row(name, h.db, h.scale, result["pages"], r2(raw_p50), r2(app_p50), sig3(ratio), target,
               verdict(ok and correct),
               {"pages": result["pages"], "bytes": result["bytes"], "peak_rss_mib": result["rss_mib"],
                "samples": len(result["app_ms"]), "correct": correct,
                "check": f"page count within {pages}" if pages else "rendered"},
               r2(max(result["app_ms"])), r2(max(result["app_ms"])), ratio_gated=ratio_bound is not None)


def p9_p11_pdfs(h: Hospital, wanted: set[str]) -> list[Row]:
    rows = []
    repeats = 1 if h.size.get("quick") else 3
    small, big = pdf_patients(h)
    if "P9" in wanted:
        result = run_pdf(h, f"/followup/patients/{small}/sheet.pdf", repeats)
        rows.append(pdf_row(h, "P9 pdf_sheet_1page", result, "<=3x,<=1s", 1000, 3, pages=(1, 1)))
    if "P10" in wanted:
        result = run_pdf(h, f"/followup/patients/{big}/sheet.pdf", repeats)
        rows.append(pdf_row(h, "P10 pdf_sheet_10pages", result, "<=2x,<=5s", 5000, 2, pages=(6, 20)))
    if "P11" in wanted:
        try:
            from qcflow.reports import bulletin  # noqa: F401
        except ImportError as error:
            rows.append(Row("P11 pdf_bulletin", h.db, h.scale, 0, None, None, None, "<=60s,RSS<=1GiB", "SKIP",
                            {"reason": f"qcflow.reports.bulletin is not there yet ({error})"}))
        else:
            start, end = h.period()
            result = run_pdf(h, f"/api/v1/reports/monthly.pdf?month={end:%Y-%m}", repeats)
            rows.append(pdf_row(h, "P11 pdf_bulletin", result, "<=60s,RSS<=1GiB", 60_000, None, rss_bound=1024))
    return rows


# P13 --------------------------------------------------------------------------------------------

#: The booking decision's work as bare SQL: the operation by HIS id with its procedure and surgeon, its signed
#: pre-operative discussions before the date, the surgeon's authorisation periods for the procedure; then the
#: audit entry and the chain head's write, committed.
BOOKING_SQL = (
    "SELECT o.id, o.state, o.grade, o.is_restricted_technology, o.planned_at, s.id, s.his_id, p.code "
    "FROM operation o JOIN procedure p ON p.code = o.procedure_code JOIN staff s ON s.id = o.surgeon_staff_id "
    "WHERE o.his_id = :his_id",
    "SELECT signed_at FROM mdt_discussion WHERE kind = 'preop_level4' AND operation_id = :op AND state = 'signed' "
    "AND signed_at <= :at ORDER BY signed_at DESC",
    "SELECT valid_from, valid_until FROM surgeon_authorisation WHERE staff_id = :staff AND procedure_code = :code",
)
RAW_BOOKING_AUDIT = ("INSERT INTO audit_entry (seq, at, actor, action, object_type, object_id, detail, prev_hash, hash) "
                     "VALUES (:seq, :at, 'bench', 'bench.raw_booking_check', 'operation', :op, '{}', 'bench', 'bench')")


def seed_booking_cases(h: Hospital) -> list[dict]:
    """Turn a spread of grade-3/4 operations back to planned; authorise every other surgeon for every procedure
    and sign the pre-operative discussion of two in three grade-4 ones, two days before: every answer occurs."""
    from qcflow.clinical.models import Operation, Procedure, Staff, SurgeonAuthorisation
    from qcflow.extensions import db
    from qcflow.mdt.models import Discussion

    n = h.size["samples"]
    with h.app.app_context():
        session = db.session
        step = max(1, session.scalar(sa.select(sa.func.count()).select_from(Operation)) // (3 * n))
        operations = session.scalars(sa.select(Operation).where(Operation.grade >= 3, Operation.id % step == 0)
                                     .order_by(Operation.id).limit(n)).all()
        cases = [{"his_id": o.his_id, "planned_at": o.planned_at.isoformat(), "surgeon": o.surgeon.his_id}
                 for o in operations]
        session.execute(sa.update(Operation).where(Operation.id.in_([o.id for o in operations]))
                        .values(state="planned", performed_at=None))
        codes = session.scalars(sa.select(Procedure.code).where(Procedure.grade >= 3)).all()
        staff = session.scalars(sa.select(Staff.id).where(Staff.his_id.like("BENCHS%"), Staff.id % 2 == 0)).all()
        session.execute(sa.insert(SurgeonAuthorisation), [
            {"staff_id": s, "procedure_code": c, "valid_from": date(2015, 1, 1)} for s in staff for c in codes])
        signed = [
            {"kind": "preop_level4", "state": "signed", "department_id": o.department_id, "patient_id": o.patient_id,
             "operation_id": o.id, "question": "", "conclusion": "同意手术", "decision": "proceed",
             "is_disputed": False, "signed_at": o.planned_at - timedelta(days=2), "created_at": h.now,
             "updated_at": h.now, "version": 1}
            for o in operations if o.grade == 4 and o.id % 3 != 0]
        if signed:
            session.execute(sa.insert(Discussion), signed)
        session.commit()
        session.remove()
    return cases


def raw_booking_codes(raw: Raw, his_id: str, window_days: int) -> list[str]:
    """The gate's answer from the bare reads (grade 4: a discussion signed within the window, calendar days in
    hospital time; grade 3+: an authorisation valid on the day)."""
    from qcflow.core.time import local

    op, state, grade, restricted, planned_at, staff, _surgeon, code = raw.query(BOOKING_SQL[0], {"his_id": his_id})[0]
    planned_at = planned_at if isinstance(planned_at, datetime) else datetime.fromisoformat(planned_at).replace(
        tzinfo=timezone.utc)
    day = local(planned_at).date()
    signed = [s if isinstance(s, datetime) else datetime.fromisoformat(s).replace(tzinfo=timezone.utc)
              for (s,) in raw.query(BOOKING_SQL[1], {"op": op, "at": planned_at})]
    periods = raw.query(BOOKING_SQL[2], {"staff": staff, "code": code})
    codes = []
    if (grade == 4 or restricted) and not any((day - local(s).date()).days <= window_days for s in signed):
        codes.append("mdt_too_old" if signed else "mdt_missing")
    as_date = lambda v: v if isinstance(v, date) or v is None else date.fromisoformat(v)  # noqa: E731
    if not any(as_date(f) <= day and (u is None or as_date(u) >= day) for f, u in periods):
        codes.append("not_authorised" if not periods else "authorisation_not_valid")
    return codes


def p13_booking_check(h: Hospital) -> list[Row]:
    """The HIS's booking decision call (POST /api/v1/operations/booking-check) among ≥100k operations, in-process
    and over HTTP; every answer's reasons must equal the gate computed from the raw reads."""
    cases = seed_booking_cases(h)
    n, window = len(cases), h.app.config["MDT_VALIDITY_DAYS"]
    raw = h.raw()
    operations = raw.query("SELECT count(*) FROM operation")[0][0]
    expected = {c["his_id"]: raw_booking_codes(raw, c["his_id"], window) for c in cases}
    seq = [raw.query("SELECT max(seq) FROM audit_entry")[0][0] + 20_000_000]

    def raw_one(i):
        case = cases[i % n]
        op = raw.query(BOOKING_SQL[0], {"his_id": case["his_id"]})[0]
        raw.query(BOOKING_SQL[1], {"op": op[0], "at": op[4]})
        raw.query(BOOKING_SQL[2], {"staff": op[5], "code": op[7]})
        seq[0] += 1
        raw.execute_many([(RAW_BOOKING_AUDIT, {"seq": seq[0], "at": h.now, "op": str(op[0])}),
                          ("UPDATE audit_head SET seq = seq WHERE id = 1", {})])

    counter = iter(range(10**9))
    raw_ms = timed(lambda: raw_one(next(counter)), n, warmup=10)
    raw.close()
    body = lambda i: {"operation_his_id": cases[i % n]["his_id"], "planned_at": cases[i % n]["planned_at"],  # noqa: E731
                      "surgeon_his_id": cases[i % n]["surgeon"]}
    headers = h.bearer("quality")
    client = h.app.test_client()
    answers = {}

    def app_one(i):
        answer = client.post("/api/v1/operations/booking-check", json=body(i), headers=headers).get_json()
        answers[answer["operation_his_id"]] = [r["code"] for r in answer["reasons"]]

    counter = iter(range(10**9))
    app_ms = timed(lambda: app_one(next(counter)), n, warmup=10)
    app_ok = answers == expected
    with Gunicorn(h.url, h.instance, workers=2) as server:
        lat, statuses, _ = load(server.port, lambda i: ("POST", "/api/v1/operations/booking-check", headers, body(i)),
                                concurrency=2, count=n)
    http_ok = app_ok and all(s == 200 for s in statuses)
    raw_p50, app_p50, p50 = statistics.median(raw_ms), statistics.median(app_ms), statistics.median(lat)
    mix = {"allowed": sum(not c for c in expected.values()),
           **{code: sum(code in c for c in expected.values()) for code in ("mdt_missing", "not_authorised")}}
    extra = {"operations": operations, "answers": mix, "raw": "3 reads + audit insert + head write, committed"}
    return [
        Row("P13 booking_check_app", h.db, h.scale, n, r2(raw_p50), r2(app_p50), sig3(app_p50 / raw_p50),
            "p95<=20ms (in-process)", verdict(app_ok and pct(app_ms, 95) <= 20),
            {**extra, "correct": app_ok, "check": "reason codes == the gate from the raw reads"},
            r2(pct(app_ms, 95)), r2(pct(app_ms, 99)), ratio_gated=False),
        Row("P13 booking_check_http", h.db, h.scale, n, r2(raw_p50), r2(p50), sig3(p50 / raw_p50), "p95<=20ms",
            verdict(http_ok and pct(lat, 95) <= 20),
            {**extra, "correct": http_ok, "check": "200 to every request; in-process answers == raw gate"},
            r2(pct(lat, 95)), r2(pct(lat, 99)), ratio_gated=False),
    ]


# P12 --------------------------------------------------------------------------------------------

COLD_APP = """
import os, sys, time
started = time.perf_counter()
from qcflow import create_app
app = create_app({"SECRET_KEY": "bench", "DATABASE_URL": sys.argv[1]})
response = app.test_client().get("/api/v1/followup/queue", headers={"Authorization": "Bearer " + sys.argv[2]})
assert response.status_code == 200, response.status_code
print((time.perf_counter() - started) * 1000)
"""
COLD_RAW = """
import sys, time
started = time.perf_counter()
import flask, sqlalchemy
app = flask.Flask("raw")
engine = sqlalchemy.create_engine(sys.argv[1])
@app.get("/")
def index():
    with engine.connect() as conn:
        return {"n": conn.execute(sqlalchemy.text("SELECT count(*) FROM department")).scalar()}
assert app.test_client().get("/").status_code == 200
print((time.perf_counter() - started) * 1000)
"""


def p12_cold_start(h: Hospital) -> list[Row]:
    """Interpreter start + import + create_app + first authenticated API request, in a fresh process."""
    env = {**os.environ, "QCFLOW_INSTANCE_PATH": h.instance}

    def once(script, *args):
        started = time.perf_counter()
        run = subprocess.run([sys.executable, "-c", script, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=120)
        if run.returncode:
            raise RuntimeError(run.stderr[-2000:])
        return (time.perf_counter() - started) * 1000

    runs, skip = (1, 0) if h.size.get("quick") else (4, 1)
    app_ms = [once(COLD_APP, h.url, h.tokens["nurse"]) for _ in range(runs)][skip:]
    raw_ms = [once(COLD_RAW, h.url) for _ in range(runs)][skip:]
    app_p50, raw_p50 = statistics.median(app_ms), statistics.median(raw_ms)
    return [Row("P12 cold_start", h.db, h.scale, 1, r2(raw_p50), r2(app_p50), sig3(app_p50 / raw_p50), "<=3s",
                verdict(app_p50 <= 3000),
                {"samples": len(app_ms), "raw": "bare Flask + SQLAlchemy app, one query", "correct": True,
                 "check": "first request 200"},
                r2(max(app_ms)), r2(max(app_ms)), ratio_gated=False)]


def run_hospital(db: str, scale: str, url: str, wanted: set[str], make_app, log=print, rows=None) -> list[Row]:
    """The hospital scenarios on one seeded database; measured rows are also appended to `rows` as they
    come (so a failure later keeps them)."""
    h = Hospital(db, scale, url, make_app)
    started = time.perf_counter()
    h.seed(wanted)
    log(f"# seeded in {time.perf_counter() - started:.1f} s: "
        + ", ".join(f"{k} {v:.1f} s" for k, v in h.seed_s.items()))
    done = rows if rows is not None else []
    rows: list[Row] = []

    def step(name, fn, *args):
        t = time.perf_counter()
        measured = fn(*args)
        rows.extend(measured)
        done.extend(measured)
        log(f"# {name} took {time.perf_counter() - t:.1f} s: " + "; ".join(
            f"{r.scenario} raw {r.raw_ms} ms, app p50 {r.app_ms} ms, p95 {r.app_p95} ms, {r.result}" for r in measured))

    if "P4" in wanted:
        step("P4", p4_queue, h)
    if "P5" in wanted:
        step("P5", p5_submit, h)
    if wanted & {"P9", "P10", "P11"}:
        step("P9-P11", p9_p11_pdfs, h, wanted)
    if "P12" in wanted:
        step("P12", p12_cold_start, h)
    if "P13" in wanted:
        step("P13", p13_booking_check, h)
    if wanted & {"P7", "P8", "P6"}:
        missing = indicators_available() if wanted & {"P7", "P8"} else None
        if missing and wanted & {"P7", "P8"}:
            for name in sorted(wanted & {"P7", "P8"}):
                rows.append(Row(f"{name} indicators", db, scale, 0, None, None, None, "-", "SKIP", {"reason": missing}))
        elif "P7" in wanted:
            step("P7", p7_p8_indicators, h, "P7")
        if wanted & {"P8", "P6"}:
            t = time.perf_counter()
            h.add_province_events()
            log(f"# province events seeded in {time.perf_counter() - t:.1f} s ({h.events:,} reports)")
            if "P8" in wanted and not missing:
                step("P8", p7_p8_indicators, h, "P8")
            if "P6" in wanted:
                step("P6", p6_inbox, h)
    for row in rows:
        row.extra.setdefault("seed_s", {k: round(v, 1) for k, v in h.seed_s.items()})
    return rows
