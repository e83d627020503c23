"""Scheduled work of the centre: the monthly reminder of the hospitals that have not sent last month."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa
from flask import current_app

from qcflow.auth.models import Role
from qcflow.core import audit, periods
from qcflow.core.actors import Actor
from qcflow.core.time import today
from qcflow.extensions import db
from qcflow.notify.services import notify, users_with_role
from qcflow.region import comparisons
from qcflow.region.models import RegionHospital, RegionReminder

REMINDER_KIND = "region.missing_month"


def remind_missing(now: datetime) -> str:
    """From REGION_DUE_DAY of a month on, tell the centre's staff which hospitals have not sent last month (the
    notification names them by name and code; its webhook, when WEBHOOK_URL is set, carries the month, the names
    and the codes); once per month, only at a
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
    names = "、".join(f"{h.name}（{h.code}）" for h in missing)
    notify(recipients, REMINDER_KIND,
           {"month": text, "missing": len(codes), "hospitals": names, "codes": ",".join(codes)},
           now=now, link=f"/centre/completeness?year={month.year}")
    return f"{text}: {len(codes)} hospitals missing, {len(recipients)} told"


@dataclass
class SentReminder:
    month_on: date
    sent_at: datetime
    #: The hospitals that had not sent the month, as the audit entry of the reminder records them (code order).
    hospitals: list[RegionHospital]
    recipients: int


def reminders(year: int) -> list[SentReminder]:
    """The reminders sent for the months of `year`, newest first, with the hospitals each named (from its audit
    entry: the reminder row keeps only their number)."""
    rows = list(db.session.scalars(sa.select(RegionReminder).where(
        RegionReminder.month_on >= date(year, 1, 1), RegionReminder.month_on <= date(year, 12, 1))
        .order_by(RegionReminder.month_on.desc())))
    if not rows:
        return []
    details = dict(db.session.execute(sa.select(audit.AuditEntry.object_id, audit.AuditEntry.detail).where(
        audit.AuditEntry.object_type == "region_reminder", audit.AuditEntry.action == "region_reminder.send",
        audit.AuditEntry.object_id.in_([str(row.id) for row in rows]))).all())
    after = {key: json.loads(detail).get("after", {}) for key, detail in details.items()}
    codes = {code for found in after.values() for code in found.get("missing", [])}
    by_code = {h.code: h for h in db.session.scalars(sa.select(RegionHospital).where(RegionHospital.code.in_(codes)))}
    return [SentReminder(row.month_on, row.sent_at,
                         [by_code[c] for c in after.get(str(row.id), {}).get("missing", []) if c in by_code],
                         len(after.get(str(row.id), {}).get("recipients", []))) for row in rows]
