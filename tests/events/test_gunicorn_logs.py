"""A2 with the shipped server configuration: gunicorn's logs hold no client address or agent."""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

from tests.conftest import ROOT, die_with_parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_anonymous_submission_through_gunicorn_logs_no_client_data(hospital, database_url, tmp_path, report_body):
    port = free_port()
    log_path = tmp_path / "gunicorn.log"
    env = {**os.environ, "QCFLOW_DATABASE_URL": database_url, "QCFLOW_INSTANCE_PATH": str(tmp_path),
           "QCFLOW_BIND": f"127.0.0.1:{port}", "QCFLOW_WORKERS": "1"}
    with open(log_path, "w") as log:
        server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "scripts/gunicorn.conf.py", "wsgi:app"],
                                  cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  preexec_fn=die_with_parent)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
                    break
                except OSError:
                    assert time.monotonic() < deadline, log_path.read_text()
                    time.sleep(0.2)
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/api/v1/events", method="POST",
                data=json.dumps(report_body()).encode(),
                headers={"Content-Type": "application/json", "User-Agent": "SentinelAgent/7",
                         "X-Forwarded-For": "203.0.113.99", "Referer": "http://ward-pc-17.local/"})
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.status == 201
                assert response.headers.get("Set-Cookie") is None
        finally:
            server.terminate()
            server.wait(timeout=20)
    logged = log_path.read_text()
    assert "POST /api/v1/events" in logged  # the access log is on…
    for secret in ("SentinelAgent", "203.0.113.99", "127.0.0.1 -", "ward-pc-17"):
        assert secret not in logged  # …and holds nothing about the client
