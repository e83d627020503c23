"""Gunicorn settings for qcflow: `gunicorn -c scripts/gunicorn.conf.py wsgi:app`.

Environment overrides: QCFLOW_BIND (default 127.0.0.1:5000), QCFLOW_WORKERS (default 2),
QCFLOW_THREADS (threads per worker, default 2).
The scheduler is never started inside these workers; it runs as its own process
(`flask --app wsgi qcflow scheduler run`).
"""

import os
import re

from gunicorn.glogging import Logger

bind = os.environ.get("QCFLOW_BIND", "127.0.0.1:5000")
workers = int(os.environ.get("QCFLOW_WORKERS", "2"))

# Threaded workers keep client connections open between requests (HTTP keep-alive). The sync
# worker closes the connection after every answer, so each API call paid for a new TCP connection
# and a trip through the accept loop: about 0.7 ms of worker CPU per call, half of what a /healthz
# call costs in all (measured with bench/ at 2 workers). The app keeps no per-request state outside
# Flask's context and the database session, both per thread. Two threads per worker: one request
# can run while the other waits on the database; more only contend for the GIL on a 2-CPU server.
worker_class = "gthread"
threads = int(os.environ.get("QCFLOW_THREADS", "2"))

# SQLite: the workers read the database through a memory map (qcflow/config.py: SQLITE_MMAP); the
# scheduler and the command line do not. Ignored on PostgreSQL.
os.environ.setdefault("QCFLOW_SQLITE_MMAP", "true")

# Access log to stdout (systemd/journald or the terminal collects it).
accesslog = "-"

# The anonymous adverse-event report (/report, /report/patient, /receipt, /api/v1/events,
# /api/v1/receipts) must not be traceable to a person or a workstation, so the
# access log records no client address (%(h)s), no X-Forwarded-For, no
# User-Agent (%(a)s), no Referer (%(f)s) and no user (%(u)s). It logs the path
# without the query string (%(U)s rather than %(r)s), because a query string can
# carry a receipt code. Fields: time, method, path, protocol, status, bytes,
# duration in milliseconds.
access_log_format = '%(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms'


class AnonymousErrorLogger(Logger):
    """Gunicorn's logger, minus the client in its error log and the patient's link token in its access log.

    For a malformed request gunicorn writes "Invalid request from ip=<address>: <error>", and the
    error quotes what the client sent (a request line with a receipt code, a header with its user
    agent). Anonymous reporting must leave no address or agent anywhere, so the line keeps only the
    kind of error: "Invalid request: Invalid HTTP request line".
    """

    INVALID_REQUEST = "Invalid request from ip="

    def warning(self, msg, *args, **kwargs):
        if isinstance(msg, str) and msg.startswith(self.INVALID_REQUEST):
            error = msg[len(self.INVALID_REQUEST):].partition(": ")[2]  # IPv6 addresses hold ":", never ": "
            msg, args = "Invalid request: %s", (re.split(r"[:'\"(]", error, maxsplit=1)[0].strip() or "refused",)
        super().warning(msg, *args, **kwargs)

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        # The patient's follow-up link (/f/<token>) is a secret: its path is logged without the token.
        if (atoms.get("U") or "").startswith("/f/"):
            atoms["U"] = "/f/…"
        return atoms


logger_class = AnonymousErrorLogger

# forwarded_allow_ips is left at gunicorn's default (127.0.0.1 and ::1, or the
# FORWARDED_ALLOW_IPS environment variable): only a reverse proxy on the same
# host is trusted for X-Forwarded-Proto, so https is detected behind nginx and
# nobody else can claim it. qcflow's TRUSTED_PROXIES has the same default; the
# shipped nginx sends no X-Forwarded-For, so behind it no client address is
# known, and the receipt look-up limits count code prefixes only.

# Gunicorn 25+ opens a control socket in $XDG_RUNTIME_DIR or ~/.gunicorn by
# default; qcflow does not use it, and the service user may have no writable
# home, so it is switched off.
control_socket_disable = True


def post_worker_init(worker):
    """Once the worker has loaded the app, move what it loaded (modules, catalogue, translations) out of the
    garbage collector's way: a full collection otherwise walks them all, and a page that builds many objects (the
    centre's comparison of 500 hospitals) paid 100–150 ms for it at every few requests (bench/, P15)."""
    import gc

    gc.freeze()
