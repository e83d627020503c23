"""The one place that reads the clock and knows the hospital time zone."""
from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

from flask import current_app, has_app_context

DEFAULT_TIMEZONE = "Asia/Shanghai"


def hospital_tz() -> ZoneInfo:
    name = current_app.config["TIMEZONE"] if has_app_context() else DEFAULT_TIMEZONE
    return ZoneInfo(name)


def now() -> datetime:
    """Current instant, timezone-aware UTC. Entrypoints call this and pass it to services."""
    return datetime.now(timezone.utc)


def today(at: datetime | None = None) -> date:
    """The calendar day in the hospital's time zone at `at` (default: now)."""
    return local(at or now()).date()


def local(at: datetime) -> datetime:
    """`at` expressed in the hospital's time zone."""
    return at.astimezone(hospital_tz())


def parse_instant(text: str) -> datetime:
    """Parse ISO 8601; a value without offset is read as hospital local time."""
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=hospital_tz())
    return value.astimezone(timezone.utc)
