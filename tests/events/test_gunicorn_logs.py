"""A2 with the shipped server configuration: gunicorn's logs hold no client address or agent."""
import json
import os
import re
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
import urllib.error
import urllib.parse
import urllib.request

from tests.conftest import ROOT, die_with_parent

#: The server listens on 127.0.0.2, so the clients' address (127.0.0.1) appears in no start-up line.
HOST = "127.0.0.2"
#: A patient's follow-up link's token: a secret its path must not leave in the access log.
LINK_TOKEN = "Sentinel0Token0" + "x" * 28
SECRETS = ("SentinelAgent", "203.0.113.99", "127.0.0.1", "ward-pc-17", LINK_TOKEN)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def send_raw(port: int, data: bytes) -> bytes:
    """A request as bytes, malformed if need be; the server's answer."""
    with socket.create_connection((HOST, port), timeout=10) as sock:
        sock.sendall(data)
        return sock.recv(4096)


def test_anonymous_traffic_through_gunicorn_logs_no_client_data(hospital, database_url, tmp_path, report_body):
    port = free_port()
    access_path, error_path = tmp_path / "access.log", tmp_path / "error.log"
    base = f"http://{HOST}:{port}"
    env = {**os.environ, "QCFLOW_DATABASE_URL": database_url, "QCFLOW_INSTANCE_PATH": str(tmp_path),
           "QCFLOW_BIND": f"{HOST}:{port}", "QCFLOW_WORKERS": "1"}
    client = {"User-Agent": "SentinelAgent/7", "X-Forwarded-For": "203.0.113.99", "Referer": "http://ward-pc-17.local/"}
    with open(access_path, "w") as access, open(error_path, "w") as errors:
        server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "scripts/gunicorn.conf.py", "wsgi:app"],
                                  cwd=ROOT, env=env, stdout=access, stderr=errors, preexec_fn=die_with_parent)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    urllib.request.urlopen(f"{base}/healthz", timeout=1).read()
                    break
                except OSError:
                    assert time.monotonic() < deadline, error_path.read_text()
                    time.sleep(0.2)
            request = urllib.request.Request(f"{base}/api/v1/events", method="POST", data=json.dumps(report_body()).encode(),
                                             headers={"Content-Type": "application/json", **client})
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.status == 201
                assert response.headers.get("Set-Cookie") is None
            with urllib.request.urlopen(urllib.request.Request(f"{base}/report", headers=client), timeout=10) as page:
                token = re.search(r'name="csrf_token" value="([^"]+)"', page.read().decode()).group(1)
            form = {**report_body(occurred_at="2026-03-01T09:30", discovered_at="2026-03-01T10:00"),
                    "csrf_token": token, "mode": "anonymous"}
            posted = urllib.request.Request(f"{base}/report", method="POST", headers=client,
                                            data=urllib.parse.urlencode(form).encode())
            with urllib.request.urlopen(posted, timeout=10) as response:
                assert response.status == 200 and 'id="receipt-code"' in response.read().decode()
            # The patients' and families' form of the ward posters, the same way.
            with urllib.request.urlopen(urllib.request.Request(f"{base}/report/patient?d=GS", headers=client),
                                        timeout=10) as page:
                html = page.read().decode()
            keys = dict(re.findall(r'name="(csrf_token|form_key)" value="([^"]+)"', html))
            form = {**keys, "public_role": "family", "department_id": "GS",
                    "occurred_on": (datetime.now(timezone.utc) - timedelta(days=2)).date().isoformat(),
                    "description": "夜里呼叫铃坏了，叫了很久没人来。", "contact_phone": "13800138000",
                    "wants_feedback": "1"}
            posted = urllib.request.Request(f"{base}/report/patient", method="POST", headers=client,
                                            data=urllib.parse.urlencode(form).encode())
            with urllib.request.urlopen(posted, timeout=10) as response:
                assert response.status == 200 and 'id="receipt-code"' in response.read().decode()
                assert response.headers.get("Set-Cookie") is None
            try:
                urllib.request.urlopen(urllib.request.Request(f"{base}/f/{LINK_TOKEN}", headers=client), timeout=10)
            except urllib.error.HTTPError as refused:  # a link that leads nowhere
                assert refused.code == 404
            # Malformed requests: gunicorn refuses them itself, and logs them in its error log.
            assert send_raw(port, b"GET /receipt?code=ABCD HTTP/9.9\r\nUser-Agent: SentinelAgent/7\r\n\r\n").startswith(b"HTTP/1.1 400")
            assert send_raw(port, b"POST /report HTTP/1.1\r\nHost: x\r\nUser-Agent: SentinelAgent/7\r\n"
                                  b"ward-pc-17 SentinelAgent\r\n\r\n").startswith(b"HTTP/1.1 400")
        finally:
            server.terminate()
            server.wait(timeout=20)
    access_log, error_log = access_path.read_text(), error_path.read_text()
    assert "POST /api/v1/events" in access_log and "POST /report" in access_log  # the access log is on…
    assert "GET /report/patient " in access_log and "d=GS" not in access_log  # …without query strings…
    assert "GET /f/…" in access_log  # …the patient's link logged without its token…
    assert error_log.count("Invalid request") == 2  # …the error log saw the malformed requests…
    for secret in (*SECRETS, "13800138000"):
        assert secret not in access_log and secret not in error_log, secret  # …and neither names the client
