"""The centre's comparison of one indicator across hospitals at province volume (P15).

Seeds a centre: 500 hospitals × 10 years × 120 indicator codes monthly = 7.2 M current `region_value` rows (plus
the values of older versions of one hospital-month in 50, not current), written with COPY through psycopg on
PostgreSQL; the quick size (SQLite, or --quick) is 50 hospitals × 2 years × 20 codes with executemany. The codes
are the catalogue's 70 plus 50 synthetic rate codes (`bench_rate_NN`, not in the catalogue: rows the partial
index must step over, never compared).

Then times, in the same run: the raw lower bound (one hand-written GROUP BY over the same rows on the bare
DB-API cursor), the comparison in-process (qcflow.region.comparisons.compare: the same GROUP BY, the hospitals,
targets, ranks and funnel limits) and its API over HTTP (gunicorn, two workers, a centre user's bearer token).
Target: p95 ≤ 200 ms on PostgreSQL. The plan of the comparison's query is checked to use the partial index
ix_region_value_current (EXPLAIN, PostgreSQL).
"""
from __future__ import annotations

import csv
import gc
import io
import os
import sys
import tempfile
import time
from datetime import date, datetime, timezone

import sqlalchemy as sa

SIZES = {"full": (500, 10, 120), "quick": (50, 2, 20)}
FIRST_YEAR = 2016
NOW = datetime(2026, 8, 5, 2, 0, tzinfo=timezone.utc)
#: The compared half-year and indicator (a rate, higher is better).
START, END = date(2026, 1, 1), date(2026, 6, 1)
CODE = "stemi_reperfusion_rate"
TARGET_P95_MS = 200.0
RUNS = 40


def make_app(url: str):
    from qcflow import create_app

    os.environ["QCFLOW_INSTANCE_PATH"] = tempfile.mkdtemp(prefix="qcflow-bench-centre-")
    return create_app({"SECRET_KEY": "bench", "DATABASE_URL": url, "TESTING": True, "INSTALLATION_ROLE": "centre"})


def codes(count: int) -> list[tuple[str, str]]:
    """(code, unit): the compared code first, then the catalogue's, then synthetic rates."""
    from qcflow.indicators import catalogue

    found = [(CODE, "percent")] + [(e.code, e.unit) for e in catalogue.entries(include_local=False)
                                   if e.code != CODE]
    found += [(f"bench_rate_{i:02d}", "percent") for i in range(max(0, count - len(found)))]
    return found[:count]


def months(years: int) -> list[date]:
    last = END.year
    return [date(y, m, 1) for y in range(last - years + 1, last + 1) for m in range(1, 13)]


def _value(h: int, m: int, c: int, unit: str):
    if unit in ("percent", "permille", "per100"):
        denominator = 20 + (h * 7 + m * 3 + c * 11) % 180
        numerator = denominator * (40 + (h * 13 + c * 5 + m) % 55) // 100
        factor = {"percent": 100, "permille": 1000, "per100": 100}[unit]
        return numerator, denominator, numerator * factor / denominator
    if unit == "status":
        return None, None, float((h + m) % 7 != 0)
    return None, None, float(5 + (h * 3 + m + c) % 40)


def seed(session, hospitals: int, years: int, code_count: int, *, copy: bool) -> dict:
    """Hospitals, one submission per hospital and month (an older, replaced version for one in 50) and the
    values of every code; returns counts and seconds."""
    from qcflow.region.models import RegionHospital

    started = time.perf_counter()
    at = NOW
    session.add_all([RegionHospital(code=f"H{i:04d}", name=f"医院{i:04d}", level="tertiary" if i % 3 else "secondary",
                                    ownership="public" if i % 4 else "private", region=f"地区{i % 18:02d}",
                                    public_key="A" * 43 + "=", created_at=at, updated_at=at, updated_by="bench")
                     for i in range(hospitals)])
    session.flush()
    ids = list(session.scalars(sa.select(RegionHospital.id).order_by(RegionHospital.id)))
    all_months, all_codes = months(years), codes(code_count)
    submissions = []
    for h, hid in enumerate(ids):
        for m, month in enumerate(all_months):
            period = f"{month:%Y-%m}"
            if (h + m) % 50 == 0:
                submissions.append((hid, period, 1, month, False))
                submissions.append((hid, period, 2, month, True))
            else:
                submissions.append((hid, period, 1, month, True))
    conn = session.connection()
    conn.execute(sa.text(
        "INSERT INTO region_submission (hospital_id, kind, period, revision, starts_on, ends_on, document, digest, "
        "signature, signed_at, received_at, is_current) VALUES (:h, 'month', :p, :r, :m, :m, '{}', :d, 'x', :at, "
        ":at, :c)"), [{"h": h, "p": p, "r": r, "m": m, "d": "0" * 64, "at": at, "c": c}
                      for h, p, r, m, c in submissions])
    sub_ids = {(h, p, r): i for i, h, p, r in conn.execute(sa.text(
        "SELECT id, hospital_id, period, revision FROM region_submission"))}
    index_of = {hid: h for h, hid in enumerate(ids)}
    month_index = {f"{m:%Y-%m}": i for i, m in enumerate(all_months)}
    total = 0

    def rows():
        for hid, period, revision, month, current in submissions:
            sid = sub_ids[(hid, period, revision)]
            h, m = index_of[hid], month_index[period]
            for c, (code, unit) in enumerate(all_codes):
                numerator, denominator, value = _value(h + revision, m, c, unit)
                yield sid, hid, code, month, numerator, denominator, value, current

    if copy:
        raw = conn.connection.driver_connection
        with raw.cursor() as cursor:
            with cursor.copy("COPY region_value (submission_id, hospital_id, code, month_on, numerator, "
                             "denominator, value, is_current) FROM STDIN") as pipe:
                buffer = io.StringIO()
                for n, row in enumerate(rows(), start=1):
                    buffer.write("\t".join("\\N" if v is None else ("t" if v is True else "f" if v is False
                                                                     else str(v)) for v in row) + "\n")
                    if n % 200_000 == 0:
                        pipe.write(buffer.getvalue())
                        buffer = io.StringIO()
                    total = n
                pipe.write(buffer.getvalue())
    else:
        batch = []
        statement = sa.text("INSERT INTO region_value (submission_id, hospital_id, code, month_on, numerator, "
                            "denominator, value, is_current) VALUES (:s, :h, :c, :m, :n, :d, :v, :cur)")
        for row in rows():
            batch.append(dict(zip(("s", "h", "c", "m", "n", "d", "v", "cur"), row)))
            if len(batch) == 50_000:
                conn.execute(statement, batch)
                total += len(batch)
                batch = []
        conn.execute(statement, batch)
        total += len(batch)
    session.commit()
    conn = session.connection()
    conn.execute(sa.text("ANALYZE"))
    session.commit()
    current = session.scalar(sa.text("SELECT count(*) FROM region_value WHERE is_current"))
    return {"hospitals": hospitals, "years": years, "codes": code_count, "rows": total, "current_rows": current,
            "seconds": round(time.perf_counter() - started, 1)}


RAW = ("SELECT hospital_id, sum(CASE WHEN denominator IS NOT NULL THEN numerator END), sum(denominator), "
       "sum(value), min(value), count(value), count(*) FROM region_value "
       "WHERE is_current AND code = :code AND month_on >= :start AND month_on <= :end GROUP BY hospital_id")


def uses_partial_index(session) -> tuple[bool, str]:
    """Whether PostgreSQL's plan of the comparison's own statement reads ix_region_value_current."""
    from qcflow.region import comparisons
    from qcflow.region.models import RegionValue

    stmt = (sa.select(RegionValue.hospital_id, *comparisons._sum_columns())
            .where(RegionValue.code == CODE, comparisons._current(START, END)).group_by(RegionValue.hospital_id))
    compiled = stmt.compile(dialect=session.get_bind().dialect, compile_kwargs={"literal_binds": True})
    plan = "\n".join(r[0] for r in session.execute(sa.text(f"EXPLAIN {compiled}")))
    return "ix_region_value_current" in plan, plan


def page(app, user_id: int) -> str:
    """The indicator's page as the centre's staff open it (its view, logged in; the request hooks are not timed)."""
    from flask_login import login_user

    from qcflow.auth.models import User
    from qcflow.extensions import db as qdb
    from qcflow.region import centre_views

    with app.test_request_context(f"/centre/indicators/{CODE}?from={START:%Y-%m}&to={END:%Y-%m}"):
        login_user(qdb.session.get(User, user_id))
        html, status = centre_views.indicator(CODE)
        assert status == 200 and "<svg" in html
        qdb.session.rollback()
        return html


def scenario_compare(db: str, url: str, quick: bool = False, *, log=print, reuse: bool = False) -> list:
    """P15: one indicator across hospitals for a half-year — raw GROUP BY, in-process, over HTTP."""
    app = make_app(url)  # first: the app imports every model before the modules below use them
    from bench.harness import Gunicorn, Raw, load, pct, timed
    from bench.scenarios import Row, r2, sig3, verdict
    from qcflow.auth import services as auth
    from qcflow.auth.models import Department, User
    from qcflow.core.actors import Actor
    from qcflow.extensions import db as qdb
    from qcflow.region import comparisons

    size = "quick" if quick or db == "sqlite" else "full"
    hospitals, years, code_count = SIZES[size]
    with app.app_context():
        session = qdb.session
        existing = session.scalar(sa.text("SELECT count(*) FROM region_value")) if reuse else 0
        if existing:  # --reuse: measure again on the rows a previous run seeded
            seeded = {"hospitals": hospitals, "years": years, "codes": code_count, "rows": existing,
                      "current_rows": session.scalar(sa.text("SELECT count(*) FROM region_value WHERE is_current")),
                      "seconds": 0.0}
        else:
            seeded = seed(session, hospitals, years, code_count, copy=db != "sqlite" and url.startswith("postgresql"))
        log(f"# P15 seeded {seeded['rows']:,} region_value rows ({seeded['current_rows']:,} current) "
            f"in {seeded['seconds']} s")
        actor = Actor.system("bench")
        user = session.scalar(sa.select(User).where(User.username == "bench_centre"))
        if user is None:
            department = Department(code="QCC", name="质控中心", kind="functional", created_at=NOW)
            session.add(department)
            session.flush()
            user = auth.create_user("bench_centre", "bench-Horse-battery-9", ["centre"], department, actor=actor,
                                    now=NOW)
        # The token is checked against the real clock by the server.
        _row, token = auth.create_token(user, "bench", days=30, actor=actor, now=datetime.now(timezone.utc))
        session.commit()
        index_ok, plan = uses_partial_index(session) if db != "sqlite" else (True, "(SQLite: not checked)")
        raw = Raw(qdb.engine)
        params = {"code": CODE, "start": START, "end": END}
        expected = raw.query(RAW, params)
        raw_times = timed(lambda: raw.query(RAW, params), RUNS, warmup=3)
        raw.close()
        result = comparisons.compare(CODE, START, END)
        # Every hospital of the raw GROUP BY, with the same numerator and denominator, and nobody else.
        served = {row.hospital.id: (row.sums.numerator, row.sums.denominator)
                  for level in result.levels for row in level.rows if row.sums.months}
        correct = served == {hospital_id: (numerator, denominator)
                             for hospital_id, numerator, denominator, *_rest in expected}
        app_times = timed(lambda: (comparisons.compare(CODE, START, END), session.rollback()), RUNS, warmup=3)
        page(app, user.id)
        gc.freeze()  # as each gunicorn worker does once the app is loaded (scripts/gunicorn.conf.py)
        page_times = timed(lambda: page(app, user.id), RUNS, warmup=3)
        session.remove()
    http_times, statuses = [], []
    old_role = os.environ.get("QCFLOW_INSTALLATION_ROLE")
    os.environ["QCFLOW_INSTALLATION_ROLE"] = "centre"
    try:
        with Gunicorn(url, tempfile.mkdtemp(prefix="qcflow-bench-centre-http-"), workers=2) as server:
            path = f"/api/v1/centre/indicators/{CODE}?from={START:%Y-%m}&to={END:%Y-%m}"
            headers = {"Authorization": f"Bearer {token}"}
            load(server.port, lambda i: ("GET", path, headers, None), concurrency=1, count=5)
            http_times, statuses, _wall = load(server.port, lambda i: ("GET", path, headers, None), concurrency=2,
                                               count=RUNS * 2)
    finally:
        if old_role is None:
            os.environ.pop("QCFLOW_INSTALLATION_ROLE", None)
        else:
            os.environ["QCFLOW_INSTALLATION_ROLE"] = old_role
    raw_p95, app_p95, page_p95 = pct(raw_times, 95), pct(app_times, 95), pct(page_times, 95)
    http_ok = bool(http_times) and all(s == 200 for s in statuses)
    http_p95 = pct(http_times, 95) if http_times else None
    gate = db != "sqlite"
    rows_n = seeded["current_rows"]
    extra = {**seeded, "partial_index": index_ok, "correct": correct,
             "check": "each hospital's sums == the raw GROUP BY's", "codes_note": "70 catalogue codes + "
             "synthetic bench_rate_NN rate codes", "plan": plan.splitlines()[:6]}
    return [
        Row("P15 compare_in_process", db, size, rows_n, r2(raw_p95), r2(app_p95), sig3(app_p95 / raw_p95),
            f"p95<={TARGET_P95_MS:g}ms", verdict((not gate or app_p95 <= TARGET_P95_MS) and index_ok and correct),
            extra, r2(app_p95), r2(pct(app_times, 99))),
        Row("P15 compare_page", db, size, rows_n, r2(raw_p95), r2(page_p95), sig3(page_p95 / raw_p95),
            f"p95<={TARGET_P95_MS:g}ms", verdict(not gate or page_p95 <= TARGET_P95_MS),
            {"path": f"/centre/indicators/{CODE} (the page: comparison, funnel and trend SVG, HTML), in-process"},
            r2(page_p95), r2(pct(page_times, 99)), ratio_gated=False),
        Row("P15 compare_http", db, size, rows_n, r2(raw_p95), r2(http_p95), sig3(http_p95 / raw_p95) if http_p95
            else None, f"p95<={TARGET_P95_MS:g}ms",
            verdict(http_ok and (not gate or (http_p95 or 1e9) <= TARGET_P95_MS)),
            {"statuses": sorted(set(statuses)), "correct": http_ok, "check": "every answer 200",
             "path": "/api/v1/centre/indicators/<code> (bearer token)"},
            r2(http_p95), r2(pct(http_times, 99)) if http_times else None, ratio_gated=False),
    ]


def main() -> None:  # python -m bench.region_compare --db sqlite|postgres [--quick]
    import argparse

    from bench.run import fresh_database

    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--url")
    parser.add_argument("--reuse", action="store_true", help="measure on the rows a previous run of --url seeded")
    args = parser.parse_args()
    url = args.url if args.reuse and args.url else fresh_database(args.db, "S" if args.quick else "M", args.url)
    writer = csv.writer(sys.stdout)
    for row in scenario_compare(args.db, url, args.quick, reuse=args.reuse):
        writer.writerow([row.scenario, row.db, row.scale, row.rows, row.raw_ms, row.app_ms, row.ratio, row.target,
                         row.result, row.app_p95, row.extra])


if __name__ == "__main__":
    main()
