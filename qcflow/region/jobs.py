"""Scheduled entry points of regional mode (hospital side): queue what is due, send what is queued."""
from __future__ import annotations

from datetime import datetime

from qcflow.core.actors import Actor
from qcflow.region import outbox
from qcflow.region.installation import is_centre

QUEUER = Actor.system("region.queue")


def queue_submissions(now: datetime) -> str:
    """Queue the months whose deadline has passed (a new version when their values changed) and new forms."""
    if is_centre():
        return "centre installation: nothing to queue"
    if not outbox.can_queue():
        return "not configured: set REGION_CENTRE_URL and HOSPITAL_CODE; nothing queued"
    rows = outbox.queue_due(actor=QUEUER, now=now)
    return "queued " + (", ".join(f"{r.kind} {r.period} v{r.revision}" for r in rows) if rows else "nothing new")


def send_submissions(now: datetime) -> str:
    """Send the queued and waiting submissions whose time has come (each committed before it leaves)."""
    if is_centre():
        return "centre installation: nothing to send"
    problem = outbox.sending_problem()
    if problem:
        return problem + "; nothing sent"
    counts = outbox.send_due(now=now)
    return f"accepted {counts['accept']}, rejected {counts['reject']}, waiting {counts['wait']}"
