"""Scheduled entry points of the events domain."""
from datetime import datetime

from qcflow.events import services


def escalate_deadlines(now: datetime) -> str:
    """Escalate breached triage, investigation and external-report deadlines (once per level)."""
    return f"escalations sent {services.escalate_breaches(now)}"


def announce_anonymous_reports(now: datetime) -> str:
    """Notify the quality office of anonymous reports whose submission hour has ended."""
    return f"anonymous reports announced {services.announce_anonymous_reports(now)}"


def purge_idempotency_keys(now: datetime) -> str:
    """Forget intake Idempotency-Keys older than IDEMPOTENCY_KEY_HOURS."""
    return f"idempotency keys purged {services.purge_idempotency_keys(now)}"
