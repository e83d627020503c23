"""Working days on the Chinese statutory calendar, 调休 make-up working days included.

The holiday data comes from the `chinesecalendar` package, which covers the years for which the
State Council has published the holiday schedule (see `covered_years`). For any other year the
calendar falls back to Monday to Friday and logs a WARNING once per year and process: deadlines
stay computable, but they ignore that year's holidays until the package is upgraded (the next
year's schedule is usually published in November).
"""
from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import chinese_calendar

log = logging.getLogger(__name__)

_ONE_DAY = timedelta(days=1)
_warned_years: set[int] = set()


def covered_years() -> range:
    """The years for which the statutory holiday schedule is known."""
    years = [day.year for day in chinese_calendar.holidays]
    return range(min(years), max(years) + 1)


def is_working_day(day: date) -> bool:
    """Whether `day` is a working day: Monday to Friday except holidays, plus 调休 weekend days."""
    try:
        return chinese_calendar.is_workday(day)
    except NotImplementedError:
        if day.year not in _warned_years:
            _warned_years.add(day.year)
            known = covered_years()
            log.warning(
                "no Chinese holiday schedule for %d (known: %d-%d); counting Monday to Friday "
                "as working days, upgrade chinesecalendar",
                day.year,
                known.start,
                known.stop - 1,
            )
        return day.weekday() < 5


def _next_working_day(day: date) -> date:
    day += _ONE_DAY
    while not is_working_day(day):
        day += _ONE_DAY
    return day


def add_working_days(start: datetime, days: int, tz: ZoneInfo) -> datetime:
    """The instant `days` working days after `start`, counted in the hospital time zone `tz`.

    A working day counts as 24 hours; time on non-working days does not count, and the deadline
    is the first instant at which `days` whole working days have passed:

    - `start` on a working day: the same local clock time on the `days`-th following working
      day (Friday 17:00 + 3 = Wednesday 17:00 in an ordinary week).
    - `start` on a non-working day, or at 00:00: the clock starts at 00:00 of the first working
      day on or after it, and the deadline is the end of the `days`-th working day counting that
      one (Saturday 10:00 + 3 = end of Wednesday). The end of a day is returned as 00:00 of the
      next calendar day, whatever that day is; a display may show it as 24:00 of the last day.

    So a report filed over a weekend or holiday gets the same time as one filed at the start of
    the next working day, never less than `days` full working days. Returns an aware UTC datetime;
    `days` = 0 returns `start`.
    """
    if start.tzinfo is None or start.utcoffset() is None:
        raise ValueError("start must be timezone-aware")
    if days < 0:
        raise ValueError("days must not be negative")
    if days == 0:
        return start.astimezone(timezone.utc)

    local = start.astimezone(tz)
    day, clock = local.date(), local.time()
    if clock == time(0) or not is_working_day(day):
        last = day if is_working_day(day) else _next_working_day(day)
        for _ in range(days - 1):
            last = _next_working_day(last)
        end = datetime.combine(last + _ONE_DAY, time(0), tzinfo=tz)
    else:
        last = day
        for _ in range(days):
            last = _next_working_day(last)
        end = datetime.combine(last, clock, tzinfo=tz)
    return end.astimezone(timezone.utc)
