"""Scheduled entry points of the MDT domain."""
from datetime import datetime

from qcflow.mdt import services


def remind_preop(now: datetime) -> str:
    """Remind surgeons of grade-4 operations due soon without a signed pre-operative MDT (once each)."""
    return f"reminders sent {services.remind_missing_preop(now)}"


def escalate_overdue(now: datetime) -> str:
    """Escalate discussions past their due time to department heads and the quality office (once each)."""
    return f"escalations sent {services.escalate_overdue(now)}"
