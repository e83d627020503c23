"""Scheduled entry points of the indicators domain."""
from __future__ import annotations

from datetime import datetime

from qcflow.core import periods
from qcflow.core.actors import Actor
from qcflow.core.time import today
from qcflow.indicators import forms, reporting, services


def freeze_snapshots(now: datetime) -> str:
    """Freeze the previous month's indicator values (nightly; once per month, scope and code)."""
    month = periods.add_months(periods.month_start(today(now)), -1)
    added = services.freeze_month(month, actor=Actor.system("indicators.freeze"), now=now)
    return f"{month:%Y-%m}: snapshot rows added {added}"


def refresh_rollups(now: datetime) -> str:
    """Count every settled month into the rollup again (nightly, before the snapshot freeze)."""
    months = services.refresh_rollups(actor=Actor.system("indicators.rollups"), now=now)
    return f"rollup months refreshed {months}"


def remind_reports(now: datetime) -> str:
    """Remind the reporting departments of last month's values they still owe before the deadline (once per
    department and month), and tell the quality office which are overdue after it (once per month)."""
    reminded, overdue = reporting.remind(now)
    return f"departments reminded {reminded}, overdue notices {overdue}"
def remind_annual_form(now: datetime) -> str:
    """Tell the quality office in January which of last year's values are still missing (once per reminder date)."""
    return forms.remind_annual_form(actor=Actor.system("indicators.form_reminder"), now=now)
