"""Benchmarks against their raw-SQL lower bound (reliability-performance §3.4–3.5).

    python -m bench.run --db sqlite|postgres --scale S|M|L --scenario all|P1,P4,… [--json out.json]

P1  one day's generation with ≈0.3 % of the plans due (steady state)          target ≤ 20× raw, ≤ 1 s
P2  O(due): the same due set among N and 10 N plans                            target t(10 N) / t(N) ≤ 2
P3  catch-up after 30 days down (≈8 % of the plans due)                        target ≤ 20× raw, ≤ 10 s
P4  nurse's daily queue page over HTTP (gunicorn -w 2), years of tasks         p95 ≤ 50 ms, p99 ≤ 150 ms, ≥ 300 rps
P5  adverse-event submission over HTTP, sustained                              PG ≥ 100/s, p95 ≤ 200 ms; SQLite (4 workers) ≥ 50/s, no lock errors
P6  quality-office inbox, deep keyset page over HTTP; a department head's page  p95 ≤ 100 ms
P7  indicators (qcflow.indicators.queries.compute), one hospital, 5 years       ≤ 10× raw, p95 ≤ 300 ms
P8  the same at province volume of reports                                      ≤ 10× raw, p95 ≤ 2 s
P9  PDF: 1-page follow-up sheet; P10 ≈ 10 pages; P11 monthly bulletin           ≤ 3× / ≤ 2× pure render, ≤ 1 s / ≤ 5 s; ≤ 60 s, RSS ≤ 1 GiB
P12 cold start: interpreter + import + create_app + first API request            ≤ 3 s
P13 the HIS's booking decision call among ≥ 100k operations (in-process, HTTP)   p95 ≤ 20 ms
P14 trigger evaluator: 10,000 new HIS facts against 1M, then 10M stored (scale M)  ≤ 20× raw, t(10M) / t(1M) ≤ 2
P15 centre: one indicator across 500 hospitals × 10 years × 120 codes (7.2 M values), in-process and HTTP  p95 ≤ 200 ms
P16 centre: a month's 500 signed submissions received (in-process and over HTTP)            ≤ 60 s

P1–P3: "raw" is one INSERT … SELECT … ON CONFLICT DO NOTHING of the due plans' next occurrence, run on the
same data in the same run; "app" is qcflow.followup.services.generate_due, the real generator
(batches, cursor advance, the lot). Both run inside a transaction that is rolled back, median of 5 after a warm-up;
then the real job (followup.jobs.generate_tasks: per-batch commits, GEN_WORKERS generators side by side on
PostgreSQL) runs once and the generated set is compared with
the expected set (a pure function of the plans); that committed run, end to end, is what the
absolute bounds are checked against. P4–P13 (bench/scenarios.py) share one seeded hospital database.
Databases are rebuilt from the migrations on every run: SQLite under bench/results/, PostgreSQL in
QCFLOW_BENCH_DATABASE_URL (default postgresql+psycopg://postgres@127.0.0.1/qcflow_bench, dropped and created).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
from dataclasses import asdict
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from bench.harness import pct
from bench.scenarios import HTTP_NOTE, Row, run_hospital, sig3

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "bench", "results")
#: Plans per scale; P2 compares (small, large) with the same due set.
SCALES = {"S": 10_000, "M": 1_000_000, "L": 10_000_000}
P2_SIZES = {"S": (10_000, 100_000), "M": (100_000, 1_000_000), "L": (1_000_000, 10_000_000)}
#: The day generated: 06:00 on 2 March 2026, Shanghai.
DAY = datetime(2026, 3, 1, 22, 0, tzinfo=timezone.utc)
REPEATS = 5


def make_app(url: str):
    from qcflow import create_app

    instance = tempfile.mkdtemp(prefix="qcflow-bench-")
    os.environ["QCFLOW_INSTANCE_PATH"] = instance
    return create_app({"SECRET_KEY": "bench", "DATABASE_URL": url, "TESTING": True})


def fresh_database(db: str, scale: str, url: str | None) -> str:
    """An empty database of the requested kind, migrated to the head revision."""
    if db == "sqlite":
        os.makedirs(RESULTS, exist_ok=True)
        path = url[len("sqlite:///"):] if url else os.path.join(RESULTS, f"bench-{scale}.sqlite3")
        for suffix in ("", "-wal", "-shm", ".scheduler.lock"):
            if os.path.exists(path + suffix):
                os.remove(path + suffix)
        url = f"sqlite:///{path}"
    else:
        url = url or os.environ.get("QCFLOW_BENCH_DATABASE_URL",
                                    "postgresql+psycopg://postgres@127.0.0.1/qcflow_bench")
        parsed = sa.engine.make_url(url)
        admin = sa.create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{parsed.database}"'))
        admin.dispose()
    from flask_migrate import upgrade

    app = make_app(url)
    with app.app_context():
        upgrade(directory=os.path.join(ROOT, "migrations"))
    return url


def median_ms(session, fn, repeats=REPEATS, times=None) -> tuple[float, int]:
    """Median wall time of `fn` over `repeats` runs after one warm-up run; each run is rolled back
    (the rollback and the clean-up after it are not timed). The runs' times go to `times` if given."""
    times_, rows = [], 0
    for attempt in range(repeats + 1):
        started = time.perf_counter()
        try:
            rows = fn()
            elapsed = (time.perf_counter() - started) * 1000
        finally:
            session.rollback()
            settle(session)
        if attempt:
            times_.append(elapsed)
    if times is not None:
        times.extend(times_)
    return statistics.median(times_), rows


def raw_insert(session, now: datetime) -> int:
    """The lower bound: one set-based insert of every due plan's next occurrence, nothing else."""
    from qcflow.followup.services import TASK_COPY, lookahead
    from qcflow.followup.services.generator import _insert
    from qcflow.followup.models import Plan, Task

    plan = Plan.__table__
    horizon = now + lookahead()
    source = sa.select(
        plan.c.id, plan.c.next_occurrence, plan.c.protocol_id, plan.c.patient_id, plan.c.department_id,
        plan.c.pathway, sa.literal("pending", sa.String), plan.c.next_due_at, plan.c.next_due_on,
        plan.c.next_opens_at, plan.c.next_closes_at, plan.c.next_is_urgent, plan.c.next_is_timed,
        sa.literal(0, sa.Integer), sa.literal(now, plan.c.enrolled_at.type), sa.literal(1, sa.Integer),
    ).where(plan.c.state == "active", plan.c.next_due_at <= horizon)
    stmt = _insert(session.get_bind().dialect.name)(Task.__table__).from_select(list(TASK_COPY), source)
    stmt = stmt.on_conflict_do_nothing(index_elements=["plan_id", "occurrence"])
    return session.execute(stmt, execution_options={"preserve_rowcount": True}).rowcount


def settle(session) -> None:
    """PostgreSQL: vacuum away the rolled-back rows (autovacuum's job in production) so that
    repetitions do not measure index bloat from the previous ones (not timed)."""
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        return
    with bind.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM followup_plan, followup_task"))


def measure(session, now: datetime, app_times=None) -> tuple[float, int, float, int]:
    """(raw ms, raw rows, app ms, app rows): each median of REPEATS, each rolled back."""
    from qcflow.followup import services

    raw_ms, raw_rows = median_ms(session, lambda: raw_insert(session, now))

    def app():
        result = services.generate_due(now)
        session.flush()
        return result.tasks

    app_ms, app_rows = median_ms(session, app, times=app_times)
    return raw_ms, raw_rows, app_ms, app_rows


def commit_and_check(session, now: datetime) -> tuple[float, bool, int]:
    """The job's real path (`followup.jobs.generate_tasks`: commit per batch, GEN_WORKERS generators on
    PostgreSQL), then generated set == expected set."""
    from bench.seed import actual_tasks, expected_tasks
    from qcflow.followup import jobs

    started = time.perf_counter()
    jobs.generate_tasks(now)
    session.commit()
    elapsed = (time.perf_counter() - started) * 1000
    expected, actual = expected_tasks(session, now), actual_tasks(session)
    return elapsed, expected == actual, len(actual)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def scenario_generate(name, db, scale, url, n, due_window_days, absolute_ms, label) -> list[Row]:
    from bench.seed import seed_plans
    from qcflow.extensions import db as qdb
    from qcflow.followup.services import lookahead

    app = make_app(url)
    with app.app_context():
        session = qdb.session
        horizon = DAY + lookahead()
        # First calls spread over a year starting `due_window_days` before the horizon: that slice is due now.
        seeded = seed_plans(session, n, due_from=horizon - timedelta(days=due_window_days),
                            due_to=horizon - timedelta(days=due_window_days) + timedelta(days=365),
                            anchors=min(n, 20_000))
        session.commit()
        times = []
        raw_ms, raw_rows, app_ms, app_rows = measure(session, DAY, times)
        commit_ms, correct, generated = commit_and_check(session, DAY)
        session.remove()
    ratio = app_ms / raw_ms if raw_ms else float("inf")
    # The absolute bound is judged on the job's real path (one commit per batch), end to end.
    ok = ratio <= 20 and commit_ms <= absolute_ms and correct
    return [Row(f"{name} {label}", db, scale, app_rows, round(raw_ms, 2), round(app_ms, 2), sig3(ratio),
                f"<=20x,<={absolute_ms / 1000:g}s", verdict(ok),
                {"plans": n, "raw_rows": raw_rows, "seed_s": round(seeded.seconds, 2),
                 "app_committed_ms": round(commit_ms, 2), "correct": correct, "generated": generated,
                 "check": f"generated set == expected set ({generated:,} tasks)"},
                round(pct(times, 95), 2), round(pct(times, 99), 2))]


def scenario_p2(db, scale, url) -> list[Row]:
    from bench.seed import seed_plans
    from qcflow.extensions import db as qdb
    from qcflow.followup.services import lookahead

    small, large = P2_SIZES[scale]
    due = max(300, small * 27 // 10_000)  # a day's due set (≈ 0.27 % of 1M; at least 300 so timings are not noise)
    app = make_app(url)
    timings = []
    with app.app_context():
        session = qdb.session
        horizon = DAY + lookahead()
        seed_plans(session, due, due_from=horizon - timedelta(days=1), due_to=horizon, tag="due", anchors=due)
        far = horizon + timedelta(days=400)
        seed_plans(session, small - due, due_from=far, due_to=far + timedelta(days=365), tag="s")
        session.commit()
        timings.append(measure(session, DAY))
        times = []
        seed_plans(session, large - small, due_from=far, due_to=far + timedelta(days=365), tag="l", seed=7)
        session.commit()
        timings.append(measure(session, DAY, times))
        commit_ms, correct, generated = commit_and_check(session, DAY)
        session.remove()
    (raw_s, _, app_s, rows_s), (raw_l, _, app_l, rows_l) = timings
    ratio = app_l / app_s if app_s else float("inf")
    ok = ratio <= 2 and rows_s == rows_l and correct
    return [Row("P2 o_due_scaling", db, scale, rows_l, round(raw_l, 2), round(app_l, 2), sig3(ratio),
                f"t({large:,})/t({small:,})<=2", verdict(ok),
                {"small_plans": small, "large_plans": large, "app_small_ms": round(app_s, 2),
                 "raw_small_ms": round(raw_s, 2), "rows_small": rows_s, "correct": correct, "generated": generated,
                 "app_committed_ms": round(commit_ms, 2), "check": f"generated set == expected set ({generated:,} tasks)"},
                round(pct(times, 95), 2), round(pct(times, 99), 2))]


def hardware(db: str, url: str) -> dict:
    """The machine line: CPUs, CPU model, RAM, Python and database versions."""
    model, mem = "", 0
    try:
        with open("/proc/cpuinfo") as handle:
            model = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), "")
        with open("/proc/meminfo") as handle:
            mem = int(next(line.split()[1] for line in handle if line.startswith("MemTotal"))) // 1024 ** 2
    except OSError:
        pass
    info = {"nproc": os.cpu_count(), "cpu": model, "ram_gib": mem, "python": platform.python_version(),
            "sqlite": __import__("sqlite3").sqlite_version, "loadavg_1m": round(os.getloadavg()[0], 1), "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    if db == "postgres":
        try:
            engine = sa.create_engine(url)
            with engine.connect() as conn:
                info["postgresql"] = conn.execute(sa.text("SHOW server_version")).scalar()
            engine.dispose()
        except sa.exc.SQLAlchemyError:
            pass
    return info


def fmt_ms(value) -> str:
    if value is None:
        return "-"
    if value >= 10_000:
        return f"{value / 1000:.1f} s"
    if value >= 1000:
        return f"{value / 1000:.2f} s"
    return f"{value:.2f} ms" if value < 10 else f"{value:.1f} ms"


def print_table(rows: list[Row], machine: dict | None = None) -> None:
    if machine:
        print("# machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()))
    header = (f"{'scenario':<24}{'db':<9}{'scale':<6}{'rows':>9}  {'raw_p50':>10}  {'app_p50':>10}  {'app_p95':>10}  "
              f"{'app_p99':>10}  {'ratio':>8}  {'target':<32}{'result'}")
    print(header)
    for r in rows:
        ratio = "-" if r.ratio is None else f"{r.ratio}x" + ("" if r.ratio_gated else "*")
        print(f"{r.scenario:<24}{r.db:<9}{r.scale:<6}{r.rows:>9,}  {fmt_ms(r.raw_ms):>10}  {fmt_ms(r.app_ms):>10}  "
              f"{fmt_ms(r.app_p95):>10}  {fmt_ms(r.app_p99):>10}  {ratio:>8}  {r.target:<32}{r.result}")
    if any(not r.ratio_gated for r in rows):
        print(HTTP_NOTE)
    for r in rows:
        if r.result == "SKIP":
            print(f"{r.scenario}: SKIPPED: {r.extra.get('reason')}")
            continue
        if "error" in r.extra:
            print(f"{r.scenario}: ERROR: {r.extra['error']}")
            continue
        check = "PASS" if r.extra.get("correct") else "FAIL"
        notes = []
        for key in ("app_committed_ms", "stored_facts", "firings", "rps", "per_second", "errors", "lock_errors_logged", "peak_rss_mib", "pages",
                    "tasks", "open_tasks", "cases", "reports", "mismatch"):
            if r.extra.get(key) not in (None, {}, ""):
                notes.append(f"{key} {r.extra[key]}")
        print(f"{r.scenario}: correctness ({r.extra.get('check', '')}) {check}" + ("; " + ", ".join(notes) if notes else ""))


ALL = ("P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8", "P9", "P10", "P11", "P12", "P13", "P14", "P15", "P16")
#: Scenarios with a database of their own (the others share one seeded hospital).
OWN_DATABASE = {"P1", "P2", "P3", "P14", "P15", "P16"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--scale", choices=list(SCALES), default="S")
    parser.add_argument("--scenario", default="all", help="all, or a comma list of P1 … P16")
    parser.add_argument("--plans", type=int, help="override the scale's plan count for P1/P3 (smoke runs)")
    parser.add_argument("--quick", action="store_true",
                        help="less data, fewer samples, shorter load phases (the test suite's smoke run; timings are rough)")
    parser.add_argument("--database-url", help="use this database (it is emptied and migrated)")
    parser.add_argument("--json", help="also write the results as JSON here")
    args = parser.parse_args(argv)
    wanted = set(ALL) if args.scenario.lower() == "all" else set(args.scenario.upper().split(","))
    unknown = wanted - set(ALL)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    n = args.plans or SCALES[args.scale]
    if args.quick:
        from bench import scenarios

        scenarios.SIZES[args.scale] = {**scenarios.SIZES[args.scale], "samples": 40, "seconds": 1, "quick": True,
                                       "queue_plans": 1_000, "per_plan": 10, "encounters": 4_000,
                                       "events_hospital": 1_000, "events_province": 5_000, "operations": 4_000}
    rows: list[Row] = []
    url = None
    if "P1" in wanted:
        url = fresh_database(args.db, args.scale, args.database_url)
        rows += scenario_generate("P1", args.db, args.scale, url, n, 1, 1000, "generate_day")
    if "P3" in wanted:
        url = fresh_database(args.db, args.scale, args.database_url)
        rows += scenario_generate("P3", args.db, args.scale, url, n, 30, 10_000, "catch_up_30d")
    if "P2" in wanted:
        url = fresh_database(args.db, args.scale, args.database_url)
        rows += scenario_p2(args.db, args.scale, url)
    for row in rows:
        print(f"# {row.scenario}: raw {fmt_ms(row.raw_ms)}, app {fmt_ms(row.app_ms)}, ratio {row.ratio}, "
              f"{row.result}, {json.dumps(row.extra, default=str)}", flush=True)
    if "P14" in wanted:
        from bench.extraction import scenario_p14

        url = fresh_database(args.db, args.scale, args.database_url)
        try:
            rows += scenario_p14(args.db, args.scale, url, make_app, quick=args.quick,
                                 log=lambda line: print(line, flush=True))
        except Exception:  # keep what was measured; the run fails
            traceback.print_exc()
            rows.append(Row("P14 evaluate", args.db, args.scale, 0, None, None, None, "-", "FAIL",
                            {"error": traceback.format_exc(limit=3)}))
    for name, module, function in (("P15", "bench.region_compare", "scenario_compare"),
                                   ("P16", "bench.region_ingest", "scenario_ingest")):
        if name not in wanted:
            continue
        url = fresh_database(args.db, args.scale, args.database_url)
        try:
            scenario = getattr(__import__(module, fromlist=[function]), function)
            rows += scenario(args.db, url, quick=args.quick, log=lambda line: print(line, flush=True))
        except Exception:  # keep what was measured; the run fails
            traceback.print_exc()
            rows.append(Row(f"{name} centre", args.db, args.scale, 0, None, None, None, "-", "FAIL",
                            {"error": traceback.format_exc(limit=3)}))
    if wanted - OWN_DATABASE:
        url = fresh_database(args.db, args.scale, args.database_url)
        try:
            run_hospital(args.db, args.scale, url, wanted - OWN_DATABASE, make_app, rows=rows)
        except Exception:  # keep and print what was measured; the run fails
            traceback.print_exc()
            rows.append(Row("P4-P13 hospital", args.db, args.scale, 0, None, None, None, "-", "FAIL",
                            {"error": traceback.format_exc(limit=3)}))
    machine = hardware(args.db, url) if url else None
    order = {name: i for i, name in enumerate(ALL)}
    rows.sort(key=lambda r: order.get(r.scenario.split()[0], 99))
    print_table(rows, machine)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as handle:
            json.dump({"hardware": machine, "args": vars(args), "results": [asdict(r) for r in rows]}, handle,
                      indent=2, default=str)
    return 0 if all(r.result in ("PASS", "SKIP") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
