"""The custom paths that remain (a pre-built queue page, SQLite timestamps written in one step) against
the libraries' own, alternately, in one run.

    python -m bench.library_paths --db sqlite --scale S --rounds 3 [--scenario P4,P6,P3] [--json out.json]
    python -m bench.library_paths --cpu --db postgres --scale S --scenario P4,P6 [--variants custom,library]

Variants (each applied before an app or a gunicorn master imports the code, so the workers inherit it):
  custom      the code as it is
  no-dumped   the queue page is dumped by marshmallow (`BaseSchema.dump` no longer hands `Dumped` over)
  no-utc      `UTCDateTime` writes SQLite timestamps through `process_bind_param` and the dialect's DATETIME
              (SQLAlchemy's TypeDecorator path) instead of its one-step `bind_processor`
  library     both off

Each round measures every variant once, in turn, on the same seeded database; the figures are ratios to
the raw lower bound measured in the same round (bench/scenarios.py), and each scenario's answer is
checked as in bench.run. P3 is the rolled-back generator run (median of 5) against its raw insert.

`--cpu` measures the CPU time of the requests instead (in-process, `time.thread_time`): one app per
variant on the same database, batches of requests alternating between the variants, the minimum and the
median batch per variant. Other load on the machine inflates wall times by a varying amount; CPU time
per request much less, and alternating batches share whatever load there is. The figures behind the
decisions are in docs/decisions.md ("Library internals").
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from datetime import timedelta

VARIANTS = ("custom", "no-dumped", "no-utc", "library")


def apply(variant: str) -> None:
    """Switch the custom paths of `variant` off (in this process, and in processes forked from it)."""
    import sqlalchemy as sa
    from marshmallow import Schema

    from qcflow.core import db, schemas

    originals = _originals()
    schemas.BaseSchema.dump = originals["dump"]
    db.UTCDateTime.bind_processor = originals["bind_processor"]
    if variant in ("no-dumped", "library"):
        schemas.BaseSchema.dump = Schema.dump
    if variant in ("no-utc", "library"):
        db.UTCDateTime.bind_processor = sa.TypeDecorator.bind_processor


_saved: dict = {}


def _originals() -> dict:
    from qcflow.core import db, schemas

    if not _saved:
        _saved.update(dump=schemas.BaseSchema.__dict__["dump"], bind_processor=db.UTCDateTime.__dict__["bind_processor"])
    return _saved


def serve(variant: str) -> None:
    """`gunicorn -c scripts/gunicorn.conf.py wsgi:app` with `variant` applied in the master."""
    from gunicorn.app.wsgiapp import run

    apply(variant)
    sys.argv = ["gunicorn", "-c", "scripts/gunicorn.conf.py", "wsgi:app"]
    run()


def gunicorn_for(variant: str):
    from bench.harness import Gunicorn

    class VariantGunicorn(Gunicorn):
        command = ("-m", "bench.library_paths", "--serve", variant)

    return VariantGunicorn


def p3_round(url: str, variant: str, make_app) -> dict:
    """P3's rolled-back measurement (raw insert, then the generator; medians of 5) with `variant`."""
    from bench.run import DAY, measure
    from qcflow.extensions import db as qdb

    apply(variant)
    app = make_app(url)
    with app.app_context():
        raw_ms, raw_rows, app_ms, app_rows = measure(qdb.session, DAY)
        qdb.session.remove()
    return {"raw_ms": round(raw_ms, 2), "app_ms": round(app_ms, 2), "ratio": round(app_ms / raw_ms, 3),
            "correct": raw_rows == app_rows, "rows": app_rows}


def hospital_round(h, variant: str, wanted: set[str], make_app) -> dict:
    from bench import scenarios

    apply(variant)
    h.app = make_app(h.url)
    h.instance = os.environ["QCFLOW_INSTANCE_PATH"]
    scenarios.Gunicorn = gunicorn_for(variant)
    out = {}
    if "P4" in wanted:
        for row in scenarios.p4_queue(h):
            out[row.scenario] = summary(row)
    if "P6" in wanted:
        for row in scenarios.p6_inbox(h):
            out[row.scenario] = summary(row)
    return out


CPU_REQUESTS = {
    "P4 queue page": lambda h, deep: ("/api/v1/followup/queue", "nurse"),
    "P6 inbox deep page": lambda h, deep: (f"/api/v1/events?cursor={deep}", "quality"),
    "P6 head's page": lambda h, deep: ("/api/v1/events", "head"),
}


def cpu_rounds(h, variants: list[str], wanted: set[str], make_app, batches: int, size: int) -> dict:
    """{request: {variant: [CPU ms per request of each batch]}}, batches alternating between variants."""
    import time

    apps = {}
    for v in variants:
        apply(v)
        apps[v] = make_app(h.url)
    raw = h.raw()
    deep = raw.query("SELECT max(id) FROM adverse_event")[0][0] * 2 // 3 if "P6" in wanted else None
    raw.close()
    names = [name for name in CPU_REQUESTS if name[:2] in wanted]
    results = {name: {v: [] for v in variants} for name in names}
    bodies = {}
    for name in names:
        for v in variants:
            apply(v)
            path, who = CPU_REQUESTS[name](h, deep)
            client, headers = apps[v].test_client(), h.bearer(who)
            for _ in range(20):  # warm: the variant's processors are memoised on its own engine
                response = client.get(path, headers=headers)
            assert response.status_code == 200, (name, v, response.status_code)
            bodies.setdefault(name, response.get_data())
            assert response.get_data() == bodies[name], (name, v, "a different answer")
    for _ in range(batches):
        for name in names:
            for v in variants:
                apply(v)
                path, who = CPU_REQUESTS[name](h, deep)
                client, headers = apps[v].test_client(), h.bearer(who)
                started = time.thread_time()
                for _ in range(size):
                    client.get(path, headers=headers)
                results[name][v].append((time.thread_time() - started) * 1000 / size)
    apply("custom")
    return results


def p3_cpu(url: str, variants: list[str], make_app, batches: int) -> dict:
    """P3's rolled-back generator run, CPU ms, alternating between variants."""
    import time

    from bench.run import DAY, settle
    from qcflow.extensions import db as qdb
    from qcflow.followup import services

    apps = {}
    for v in variants:
        apply(v)
        apps[v] = make_app(url)
    out = {v: [] for v in variants}
    for attempt in range(batches + 1):
        for v in variants:
            apply(v)
            with apps[v].app_context():
                started = time.thread_time()
                services.generate_due(DAY)
                qdb.session.flush()
                elapsed = (time.thread_time() - started) * 1000
                qdb.session.rollback()
                settle(qdb.session)
                qdb.session.remove()
            if attempt:
                out[v].append(elapsed)
    apply("custom")
    return {"P3 catch-up (rolled back)": out}


def print_cpu(results: dict, variants: list[str]) -> None:
    print(f"\n{'request':<26}{'variant':<10}{'min ms':>8}{'median ms':>11}{'vs custom (median)':>20}  batches")
    for name, by_variant in results.items():
        base = statistics.median(by_variant[variants[0]])
        for v in variants:
            xs = by_variant[v]
            print(f"{name:<26}{v:<10}{min(xs):>8.3f}{statistics.median(xs):>11.3f}"
                  f"{statistics.median(xs) / base:>19.2f}x  {[round(x, 2) for x in xs]}")


def summary(row) -> dict:
    extra = row.extra
    return {"raw_ms": row.raw_ms, "p50": row.app_ms, "p95": row.app_p95, "p99": row.app_p99, "ratio": row.ratio,
            "rps": extra.get("rps"), "cpu_ms": extra.get("server_cpu_ms_per_request"),
            "correct": extra.get("correct"), "result": row.result, "load": round(os.getloadavg()[0], 1)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--scale", choices=["S", "M"], default="S")
    parser.add_argument("--scenario", default="P4,P6", help="a comma list of P3, P4, P6")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--cpu", action="store_true", help="CPU time per request, alternating batches")
    parser.add_argument("--batches", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--database-url")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve)
        return 0
    from bench.run import fresh_database, make_app
    from bench.scenarios import Hospital

    wanted = set(args.scenario.upper().split(","))
    variants = args.variants.split(",")
    _originals()
    results = {v: [] for v in variants}
    if args.cpu:
        return cpu_main(args, wanted, variants)
    if "P3" in wanted:
        url = p3_database(args)
        for r in range(args.rounds):
            for v in variants:
                results[v].append({"P3 catch_up_30d": p3_round(url, v, make_app)})
                print(f"# round {r + 1} {v}: {json.dumps(results[v][-1])}", flush=True)
    if wanted & {"P4", "P6"}:
        url = fresh_database(args.db, args.scale, args.database_url)
        h = Hospital(args.db, args.scale, url, make_app)
        h.seed(wanted)
        if "P6" in wanted:
            h.add_province_events()
        for r in range(args.rounds):
            for v in variants:
                measured = hospital_round(h, v, wanted, make_app)
                if "P3" in wanted:
                    results[v][r].update(measured)
                else:
                    results[v].append(measured)
                print(f"# round {r + 1} {v}: {json.dumps(measured)}", flush=True)
    apply("custom")
    print(f"\n{'scenario':<22}{'variant':<10}{'ratio (median of rounds)':>26}  {'p95 ms':>8}  {'rps':>7}  "
          f"{'cpu ms':>7}  rounds' ratios")
    names = sorted({name for rounds in results.values() for measured in rounds for name in measured})
    for name in names:
        for v in variants:
            got = [m[name] for m in results[v] if name in m]
            ratios = [g["ratio"] for g in got]
            p95 = [g.get("p95") for g in got if g.get("p95") is not None]
            rps = [g.get("rps") for g in got if g.get("rps") is not None]
            cpu = [g.get("cpu_ms") for g in got if g.get("cpu_ms") is not None]
            med = lambda xs: f"{statistics.median(xs):g}" if xs else "-"  # noqa: E731
            ok = all(g.get("correct") for g in got)
            print(f"{name:<22}{v:<10}{med(ratios):>26}  {med(p95):>8}  {med(rps):>7}  {med(cpu):>7}  "
                  f"{ratios}{'' if ok else '  INCORRECT'}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"args": vars(args), "loadavg_1m": os.getloadavg()[0], "results": results}, handle, indent=2)
    return 0


def p3_database(args) -> str:
    """A fresh database holding the scale's plans, due from 30 days before the horizon (P3's catch-up)."""
    from bench.run import DAY, SCALES, fresh_database, make_app
    from bench.seed import seed_plans
    from qcflow.extensions import db as qdb
    from qcflow.followup.services import lookahead

    url = fresh_database(args.db, args.scale, args.database_url)
    with make_app(url).app_context():
        horizon = DAY + lookahead()
        n = SCALES[args.scale]
        seed_plans(qdb.session, n, due_from=horizon - timedelta(days=30),
                   due_to=horizon - timedelta(days=30) + timedelta(days=365), anchors=min(n, 20_000))
        qdb.session.commit()
        qdb.session.remove()
    return url


def cpu_main(args, wanted: set[str], variants: list[str]) -> int:
    from bench.run import fresh_database, make_app
    from bench.scenarios import Hospital

    results = {}
    if "P3" in wanted:
        url = p3_database(args)
        results.update(p3_cpu(url, variants, make_app, args.batches))
    if wanted & {"P4", "P6"}:
        url = fresh_database(args.db, args.scale, args.database_url)
        h = Hospital(args.db, args.scale, url, make_app)
        h.seed(wanted)
        results.update(cpu_rounds(h, variants, wanted, make_app, args.batches, args.batch_size))
    print(f"# load average (1 min) at the end: {os.getloadavg()[0]:.1f}")
    print_cpu(results, variants)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"args": vars(args), "loadavg_1m": os.getloadavg()[0], "cpu_ms": results}, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
