"""Measuring tools shared by the scenarios: percentiles, raw driver queries, a real gunicorn, an HTTP load.

The raw lower bound of a read path is its SQL run through the bare DB-API cursor (psycopg or sqlite3)
on a connection of the same engine: no ORM, no Flask, no JSON. The HTTP scenarios start
`gunicorn -c scripts/gunicorn.conf.py wsgi:app` with N workers on a random port (the shipped
configuration: threaded workers with keep-alive, access log included) and drive it from client
threads in this process.
"""
from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(round(q / 100 * len(ordered) + 0.5))))
    return ordered[rank - 1]


def timed(fn, n: int, warmup: int = 10) -> list[float]:
    """Wall times of n calls of fn (ms) after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


class Raw:
    """Hand-written SQL on the bare DB-API connection of an engine; `:name` parameters on both databases."""

    def __init__(self, engine):
        self.dialect = engine.dialect.name
        self.connection = engine.raw_connection()

    def param(self, value):
        if isinstance(value, datetime) and self.dialect == "sqlite":
            return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
        return value

    def sql(self, text: str) -> str:
        if self.dialect != "postgresql":
            return text
        return re.sub(r"(?<!:):(\w+)", r"%(\1)s", text.replace("%", "%%"))

    def query(self, text: str, params: dict | None = None) -> list[tuple]:
        cursor = self.connection.cursor()
        cursor.execute(self.sql(text), {k: self.param(v) for k, v in (params or {}).items()})
        rows = cursor.fetchall()
        cursor.close()
        self.connection.commit()
        return rows

    def execute_many(self, statements: list[tuple[str, dict]]) -> None:
        """Several statements in one transaction, committed."""
        cursor = self.connection.cursor()
        for text, params in statements:
            cursor.execute(self.sql(text), {k: self.param(v) for k, v in (params or {}).items()})
        cursor.close()
        self.connection.commit()

    def close(self):
        self.connection.close()


def compiled(stmt, dialect):
    """(sql, params) of a SQLAlchemy statement for the bare cursor of `dialect` (bind processors applied)."""
    comp = stmt.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    params = comp.construct_params()
    processors = comp._bind_processors
    values = {k: (processors[k](v) if k in processors else v) for k, v in params.items()}
    if comp.positional:
        return str(comp), tuple(values[k] for k in comp.positiontup)
    return str(comp), values


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gunicorn:
    """`gunicorn -c scripts/gunicorn.conf.py wsgi:app` with `workers` workers (the shipped worker class and
    threads) on a random port. Clients of `load` keep their connection open between requests. `command`: the
    interpreter's arguments that start it (bench.library_paths starts it with parts of the code switched off)."""

    command = ("-m", "gunicorn", "-c", "scripts/gunicorn.conf.py", "wsgi:app")

    def __init__(self, url: str, instance: str, workers: int = 2, log: str | None = None):
        self.url, self.instance, self.workers = url, instance, workers
        self.log_path = log or os.path.join(instance, f"gunicorn-{workers}.log")
        self.port = free_port()
        self.process = None

    def __enter__(self):
        env = {**os.environ, "QCFLOW_DATABASE_URL": self.url, "QCFLOW_INSTANCE_PATH": self.instance,
               "QCFLOW_SECRET_KEY": "bench-secret-key-not-for-production", "QCFLOW_BIND": f"127.0.0.1:{self.port}",
               "QCFLOW_WORKERS": str(self.workers)}
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, *self.command], cwd=ROOT, env=env,
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2).read()
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("gunicorn did not start:\n" + open(self.log_path).read()[-3000:])
                time.sleep(0.2)
        # Warm every worker (imports, first connection) before anything is timed.
        for _ in range(4 * self.workers):
            urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=5).read()
        return self

    def __exit__(self, *exc):
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the workers and the master: a cost per request that
        other load on the machine inflates less than wall time (0 where /proc is not available)."""
        total = 0.0
        try:
            children = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True).stdout
            for pid in [self.process.pid, *map(int, children.split())]:
                with open(f"/proc/{pid}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError):
            return 0.0
        return total

    def log_text(self) -> str:
        with open(self.log_path, errors="replace") as handle:
            return handle.read()


def request(port: int, method: str, path: str, headers: dict, body=None, connection=None):
    """One request; returns (status, body bytes, ms). A body given as bytes is sent byte for byte (a signed one
    must not be serialised again); any other is sent as JSON."""
    conn = connection or http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    data = body if isinstance(body, bytes) else json.dumps(body).encode() if body is not None else None
    hdrs = dict(headers)
    if data is not None:
        hdrs["Content-Type"] = "application/json"
    started = time.perf_counter()
    conn.request(method, path, body=data, headers=hdrs)
    response = conn.getresponse()
    payload = response.read()
    ms = (time.perf_counter() - started) * 1000
    if response.getheader("Connection", "").lower() == "close" or connection is None:
        conn.close()
    return response.status, payload, ms


#: Sustained-throughput windows per scenario; the median window is reported (§3.5 rule 3). The box's
#: throughput varies by ±25 % from one few-second window to the next.
WINDOWS = 3


def sustained(server: "Gunicorn", make_request, *, concurrency: int, seconds: float) -> dict:
    """WINDOWS closed-loop windows of `seconds` against a running server: the median window's rate and
    latencies, every window's rate, every status, and the worker CPU per request over all of them."""
    cpu_before = server.cpu_seconds()
    windows = [load(server.port, make_request, concurrency=concurrency, seconds=seconds) for _ in range(WINDOWS)]
    requests = sum(len(statuses) for _lat, statuses, _wall in windows)
    rates = [len(statuses) / wall for _lat, statuses, wall in windows]
    median = sorted(range(WINDOWS), key=rates.__getitem__)[WINDOWS // 2]
    return {"rate": rates[median], "rates": [round(r, 1) for r in rates], "latencies": windows[median][0],
            "statuses": [s for _lat, statuses, _wall in windows for s in statuses],
            "cpu_ms": (server.cpu_seconds() - cpu_before) * 1000 / max(1, requests),
            "seconds": sum(wall for _lat, _statuses, wall in windows)}


def load(port: int, make_request, *, concurrency: int, count: int | None = None, seconds: float | None = None):
    """Closed-loop load: `concurrency` client threads, each sending make_request(i) -> (method, path,
    headers, body) back to back, until `count` requests in all or `seconds` have passed.

    Returns (latencies ms, statuses, wall seconds).
    """
    lock = threading.Lock()
    issued = [0]
    latencies, statuses = [], []
    stop_at = time.perf_counter() + seconds if seconds else None

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                if count is not None and issued[0] >= count:
                    return
                if stop_at is not None and time.perf_counter() >= stop_at:
                    return
                i = issued[0]
                issued[0] += 1
            method, path, headers, body = make_request(i)
            try:
                status, _payload, ms = request(port, method, path, headers, body, conn)
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                status, ms = 599, 0.0
            with lock:
                latencies.append(ms)
                statuses.append(status)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, statuses, time.perf_counter() - started
