"""Scheduled entry points of the files domain."""
from datetime import datetime

from qcflow.files import services


def sweep_orphans(now: datetime) -> str:
    """Delete stored bytes older than a day that no attachment refers to (a request that never committed)."""
    return f"orphaned files deleted {services.sweep_orphans(now)}"
