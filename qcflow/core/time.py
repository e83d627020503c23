"""The one place that reads the clock and knows the hospital time zone."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from flask import current_app, has_app_context
from flask_babel import gettext as _

from qcflow.core.errors import Unprocessable

DEFAULT_TIMEZONE = "Asia/Shanghai"
#: How far ahead of the server's clock a time given by a person or the HIS may lie: their clocks
#: differ by a few minutes.
CLOCK_SLACK = timedelta(minutes=5)


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


def coarse(at: datetime) -> datetime:
    """Round down to the hour: times stored about an anonymous reporter (their report, replies, files) must not
    single them out."""
    return at.replace(minute=0, second=0, microsecond=0)


def parse_instant(text: str) -> datetime:
    """Parse ISO 8601; a value without offset is read as hospital local time."""
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=hospital_tz())
    return value.astimezone(timezone.utc)


def when_it_happened(field: str, given: datetime | None, *, now: datetime, not_before: datetime | None,
                     too_early: str, unlimited: bool) -> datetime:
    """The time a fact recorded at `now` happened: `given` within its bounds, else `now`.

    A fact recorded late (a paper report typed in, a discussion signed on paper, yesterday's call)
    may be given the time it happened: not in the future (beyond CLOCK_SLACK), not before
    `not_before` (the record it belongs to; `too_early` says so), and not more than
    BACKDATE_MAX_DAYS back unless `unlimited` (the quality office). Each refusal is a 422 on `field`.
    """
    if given is None:
        return now
    days = current_app.config["BACKDATE_MAX_DAYS"]
    if given > now + CLOCK_SLACK:
        error = _("This time is in the future.")
    elif not_before is not None and given < not_before:
        error = too_early
    elif not unlimited and given < now - timedelta(days=days):
        error = _("This time is more than %(days)d days ago: only the quality office may record it.", days=days)
    else:
        return min(given, now)
    raise Unprocessable(errors={field: [error]})
