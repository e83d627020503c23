"""A centre ingests a month (issue 22, Scale): 500 hospitals each send a signed month with every catalogue
indicator, through the real endpoint (POST /api/v1/centre/submissions), beside the raw lower bound.

In-process: the 500 envelopes posted one after the other through `app.test_client()` (signature check, envelope,
value checks, versions, bulk insert of the values, audit, the signed receipt; one transaction each). Over HTTP:
the same for another month against gunicorn (the shipped configuration, 2 workers) from 4 client threads. The raw
lower bound: the same submission and value rows of a third month inserted with one executemany per table in one
transaction on the bare DB-API connection. Target: 500 submissions in under 60 s on PostgreSQL.

    python -m bench.region_ingest --db postgres [--quick] [--database-url URL]
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timezone

HOSPITALS = 500
QUICK_HOSPITALS = 50
TARGET_SECONDS = 60.0
#: The months sent: in-process, over HTTP, and the raw lower bound's (all long ended).
MONTHS = (date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1))
PATH = "/api/v1/centre/submissions"


def centre_app(url: str, instance: str):
    from qcflow import create_app

    os.environ["QCFLOW_INSTANCE_PATH"] = instance
    return create_app({"SECRET_KEY": "bench", "DATABASE_URL": url, "TESTING": True, "INSTALLATION_ROLE": "centre",
                       "REGION_KEY_FILE": os.path.join(instance, "centre-ed25519.pem")})


def month_values(units: dict[str, str], seed: int) -> list[dict]:
    """A value for every indicator of the catalogue, valid for its unit."""
    from qcflow.indicators.reporting import RATE_UNITS

    values = []
    for n, (code, unit) in enumerate(sorted(units.items())):
        if unit in RATE_UNITS:
            denominator = 200 + (seed * 7 + n * 13) % 800
            numerator = (seed + n * 3) % (denominator // 4)
            values.append({"code": code, "unit": unit, "numerator": numerator, "denominator": denominator})
        elif unit == "status":
            values.append({"code": code, "unit": unit, "numerator": None, "denominator": None, "value": 1})
        else:
            values.append({"code": code, "unit": unit, "numerator": None, "denominator": None,
                           "value": float((seed + n) % 50)})
    return values


def register(n: int, now: datetime) -> list[tuple[str, object]]:
    """n hospitals with their keys, registered through the registry's service; [(code, private key)]."""
    from qcflow.core.actors import Actor
    from qcflow.extensions import db
    from qcflow.region import protocol, registry

    made = []
    for i in range(n):
        key = protocol.generate_key()
        code = f"BENCH{i:04d}"
        registry.add_hospital({"code": code, "name": f"基准医院{i}", "level": "tertiary" if i % 3 else "secondary",
                               "ownership": "public", "region": f"地区{i % 18}",
                               "public_key": protocol.public_key_text(key)}, actor=Actor.system("bench"), now=now)
        made.append((code, key))
    db.session.commit()
    return made


def signed(code: str, key, month: date, units: dict[str, str], seed: int, now: datetime) -> tuple[bytes, dict]:
    from qcflow.region import protocol

    document = protocol.month_document(month, "henan", month_values(units, seed))
    body = protocol.envelope(code, "month", f"{month:%Y-%m}", 1, document, now)
    return body, {"Content-Type": "application/json", protocol.HEADER_HOSPITAL: code,
                  protocol.HEADER_SIGNATURE: protocol.sign(key, body)}


def raw_insert(engine, hospital_ids: dict[str, int], bodies: list[bytes], month: date, now: datetime) -> float:
    """The lower bound: the submissions' and values' rows, one executemany per table, one transaction."""
    from bench.harness import Raw
    from qcflow.region import protocol

    raw = Raw(engine)
    sqlite = raw.dialect == "sqlite"
    day = month.isoformat() if sqlite else month
    at = raw.param(now)
    submissions, parsed = [], []
    for body in bodies:
        envelope = protocol.parse_envelope(body)
        parsed.append(envelope)
        submissions.append({"hospital_id": hospital_ids[envelope.hospital], "kind": "month",
                            "period": f"{month:%Y-%m}", "revision": 1, "starts_on": day, "ends_on": day,
                            "document": protocol.canonical(envelope.document).decode(), "digest": envelope.digest,
                            "signature": "ed25519=" + "A" * 88, "signed_at": at, "received_at": at,
                            "is_current": True})
    started = time.perf_counter()
    cursor = raw.connection.cursor()
    cursor.executemany(raw.sql(
        "INSERT INTO region_submission (hospital_id, kind, period, revision, starts_on, ends_on, document, digest, "
        "signature, signed_at, received_at, is_current) VALUES (:hospital_id, :kind, :period, :revision, "
        ":starts_on, :ends_on, :document, :digest, :signature, :signed_at, :received_at, :is_current)"), submissions)
    ids = dict(raw_ids(cursor, raw, f"{month:%Y-%m}"))
    values = [{"submission_id": ids[hospital_ids[e.hospital]], "hospital_id": hospital_ids[e.hospital],
               "code": v["code"], "month_on": day, "numerator": v.get("numerator"),
               "denominator": v.get("denominator"), "value": v.get("value"), "is_current": True}
              for e in parsed for v in e.document["values"]]
    cursor.executemany(raw.sql(
        "INSERT INTO region_value (submission_id, hospital_id, code, month_on, numerator, denominator, value, "
        "is_current) VALUES (:submission_id, :hospital_id, :code, :month_on, :numerator, :denominator, :value, "
        ":is_current)"), values)
    cursor.close()
    raw.connection.commit()
    elapsed = time.perf_counter() - started
    raw.close()
    return elapsed


def raw_ids(cursor, raw, period: str):
    cursor.execute(raw.sql("SELECT hospital_id, id FROM region_submission WHERE period = :period"),
                   {"period": period})
    return cursor.fetchall()


def scenario_ingest(db: str, url: str, quick: bool = False, *, log=print) -> list:
    """Register the hospitals, then time their month's submissions in-process, over HTTP and raw."""
    import sqlalchemy as sa

    from bench.harness import Gunicorn, load, pct
    from bench.scenarios import Row, r2, sig3, verdict
    from qcflow.extensions import db as qdb
    from qcflow.region import protocol, receiving
    from qcflow.region.models import RegionHospital, RegionValue

    n = QUICK_HOSPITALS if quick else HOSPITALS
    instance = tempfile.mkdtemp(prefix="qcflow-bench-centre-")
    app = centre_app(url, instance)
    now = datetime.now(timezone.utc)
    rows = []
    with app.app_context():
        protocol.write_private_key(app.config["REGION_KEY_FILE"], protocol.generate_key())
        units = receiving.units()
        started = time.perf_counter()
        hospitals = register(n, now)
        log(f"# ingest: {n} hospitals registered in {time.perf_counter() - started:.1f} s; {len(units)} indicators")
        hospital_ids = dict(qdb.session.execute(sa.select(RegionHospital.code, RegionHospital.id)).all())
        batches = {month: [signed(code, key, month, units, i, now) for i, (code, key) in enumerate(hospitals)]
                   for month in MONTHS}
        qdb.session.remove()

    client = app.test_client()
    times, statuses = [], []
    started = time.perf_counter()
    for body, headers in batches[MONTHS[0]]:
        one = time.perf_counter()
        statuses.append(client.post(PATH, data=body, headers=headers).status_code)
        times.append((time.perf_counter() - one) * 1000)
    app_seconds = time.perf_counter() - started
    with app.app_context():
        engine = qdb.engine
        raw_seconds = raw_insert(engine, hospital_ids, [body for body, _h in batches[MONTHS[2]]], MONTHS[2], now)
        stored = qdb.session.scalar(sa.select(sa.func.count()).select_from(RegionValue).where(
            RegionValue.month_on == MONTHS[0], RegionValue.is_current.is_(True)))
        qdb.session.remove()
        engine.dispose()
    correct = statuses == [201] * n and stored == n * len(units)
    log(f"# ingest in-process: {n} in {app_seconds:.2f} s (raw {raw_seconds:.3f} s), {stored} values, "
        f"statuses {sorted(set(statuses))}")
    rows.append(Row("P16 month_in_process", db, "500h" if not quick else "50h", n, r2(raw_seconds * 1000),
                    r2(app_seconds * 1000), sig3(app_seconds / raw_seconds), f"<{TARGET_SECONDS:.0f}s",
                    verdict(app_seconds < TARGET_SECONDS and correct),
                    {"values": stored, "indicators": len(units), "per_submission_p50_ms": r2(statistics.median(times)),
                     "correct": correct, "check": "every answer 201, values == hospitals × indicators"},
                    r2(pct(times, 95)), r2(pct(times, 99)), ratio_gated=False))

    os.environ["QCFLOW_INSTALLATION_ROLE"] = "centre"
    os.environ["QCFLOW_REGION_KEY_FILE"] = os.path.join(instance, "centre-ed25519.pem")
    try:
        http = batches[MONTHS[1]]
        with Gunicorn(url, instance, workers=2) as server:
            def make_request(i):
                body, headers = http[i]
                return "POST", PATH, headers, body
            latencies, http_statuses, wall = load(server.port, make_request, concurrency=4, count=n)
        ok = http_statuses == [201] * n
        log(f"# ingest over HTTP: {n} in {wall:.2f} s, statuses {sorted(set(http_statuses))}")
        rows.append(Row("P16 month_http", db, "500h" if not quick else "50h", n, r2(raw_seconds * 1000),
                        r2(wall * 1000), sig3(wall / raw_seconds), f"<{TARGET_SECONDS:.0f}s",
                        verdict(wall < TARGET_SECONDS and ok),
                        {"concurrency": 4, "workers": 2, "p50_ms": r2(statistics.median(latencies)), "correct": ok,
                         "check": "every answer 201"},
                        r2(pct(latencies, 95)), r2(pct(latencies, 99)), ratio_gated=False))
    finally:
        os.environ.pop("QCFLOW_INSTALLATION_ROLE", None)
        os.environ.pop("QCFLOW_REGION_KEY_FILE", None)
    return rows


def main(argv=None) -> int:
    import argparse

    from bench.run import fresh_database, print_table

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_HOSPITALS} hospitals instead of {HOSPITALS}")
    parser.add_argument("--database-url", help="use this database (it is emptied and migrated)")
    args = parser.parse_args(argv)
    url = fresh_database(args.db, "ingest", args.database_url)
    rows = scenario_ingest(args.db, url, args.quick, log=lambda line: print(line, flush=True))
    print_table(rows)
    for row in rows:
        print(json.dumps({"scenario": row.scenario, "seconds": row.app_ms and row.app_ms / 1000,
                          "raw_seconds": row.raw_ms and row.raw_ms / 1000, "result": row.result}))
    return 0 if all(r.result == "PASS" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
