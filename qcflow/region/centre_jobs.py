"""Scheduled work of the centre: the monthly reminder of the hospitals that have not sent last month."""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from flask import current_app

from qcflow.auth.models import Role
from qcflow.core import audit, periods
from qcflow.core.actors import Actor
from qcflow.core.time import today
from qcflow.extensions import db
from qcflow.notify.services import notify, users_with_role
from qcflow.region import comparisons
from qcflow.region.models import RegionReminder

REMINDER_KIND = "region.missing_month"


def remind_missing(now: datetime) -> str:
    """From REGION_DUE_DAY of a month on, tell the centre's staff which hospitals have not sent last month (the
    notification's webhook, when WEBHOOK_URL is set, carries the month and their codes); once per month, only at a
    centre."""
    if current_app.config["INSTALLATION_ROLE"] != "centre":
        return "not a centre"
    at = today(now)
    if at.day < current_app.config["REGION_DUE_DAY"]:
        return "not yet due"
    month = periods.add_months(periods.month_start(at), -1)
    text = comparisons.month_text(month)
    if db.session.scalar(sa.select(RegionReminder.id).where(RegionReminder.month_on == month)) is not None:
        return f"{text}: reminder already sent"
    missing = comparisons.missing_hospitals(month)
    codes = [h.code for h in missing]
    recipients = users_with_role(Role.CENTRE) if missing else []
    row = RegionReminder(month_on=month, sent_at=now, missing=len(missing))
    db.session.add(row)
    db.session.flush()
    audit.record(Actor.system("region.remind_missing").audit_name, "region_reminder.send", "region_reminder", row.id,
                 now, after={"month": text, "missing": codes, "recipients": sorted(recipients)})
    if not missing:
        return f"{text}: every hospital has sent"
    notify(recipients, REMINDER_KIND, {"month": text, "missing": len(codes), "hospitals": "、".join(codes)},
           now=now, link=f"/centre/completeness?year={month.year}")
    return f"{text}: {len(codes)} hospitals missing, {len(recipients)} told"
