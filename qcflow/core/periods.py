"""Calendar periods and months in the hospital's time zone: the one place for their arithmetic,
for reading a month written as YYYY-MM and for the limits of a period a page or API accepts.
"""
from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import MINYEAR, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l

from qcflow.core.errors import Unprocessable
from qcflow.core.time import hospital_tz

MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The instant (UTC) at which `day` begins in `tz`."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(timezone.utc)


def month_start(day: date) -> date:
    return day.replace(day=1)


def month_end(day: date) -> date:
    """The last day of `day`'s month."""
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def add_months(day: date, months: int) -> date:
    """`day` plus whole months, the day of the month clamped to the target month's length (the first
    of a month stays the first)."""
    year, month = divmod(day.month - 1 + months, 12)
    year += day.year
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def parse_month(text: str | None) -> date | None:
    """YYYY-MM → the month's first day; None for anything else, year 0000 included (each caller words
    its refusal)."""
    match = MONTH.fullmatch(text) if isinstance(text, str) else None
    if match is None or int(match.group(1)) < MINYEAR:
        return None
    return date(int(match.group(1)), int(match.group(2)), 1)


@dataclass(frozen=True)
class Period:
    """Calendar days `start`..`end` (inclusive) in the hospital time zone, judged at `now` where
    windows and deadlines depend on it (the indicators; the event analysis needs no `now`)."""

    start: date
    end: date
    now: datetime | None = None

    @property
    def start_at(self) -> datetime:
        return local_midnight(self.start, hospital_tz())

    @property
    def end_at(self) -> datetime:
        """The instant after the last day (exclusive bound)."""
        return local_midnight(self.end + timedelta(days=1), hospital_tz())

    @property
    def closed_by(self) -> datetime:
        """Windows and deadlines count once they have passed: the period's end, or now if earlier."""
        return min(self.end_at, self.now)

    def months(self) -> list[date]:
        """The first day of each month the period touches."""
        return [month for month, _first, _last, _whole in self.segments()]

    def segments(self) -> list[tuple[date, date, date, bool]]:
        """(month, first day, last day, whole?) for each month the period touches.

        A month is whole when the period covers it from its first day to its last, or, for the
        current month, to today (the HIS may push a month-to-date census).
        """
        result, month = [], month_start(self.start)
        today = self.now.astimezone(hospital_tz()).date() if self.now is not None else None
        while month <= self.end:
            last_day = month_end(month)
            first, last = max(month, self.start), min(last_day, self.end)
            whole = first == month and last >= (min(last_day, today) if today is not None else last_day)
            result.append((month, first, last, whole))
            month = last_day + timedelta(days=1)
        return result


def month_period(month: date, now: datetime | None = None) -> Period:
    """The whole month of `month`."""
    first = month_start(month)
    return Period(first, month_end(first), now)


@dataclass(frozen=True)
class PeriodLimits:
    """What a page or API accepts as a period: its longest span and whether days to come may be in it."""

    #: The longest span, in days from the first day to the last.
    longest_days: int
    #: The refusal of a longer period (on `from`).
    too_long: str
    #: The refusal of a period ending after today (on `to`); None: days to come are accepted.
    future: str | None = None
    #: The refusal's summary; None: the generic one.
    message: str | None = None


#: Indicators: days that have begun, at most 10 years (a period of centuries builds one SQL
#: expression per month, beyond what SQLite accepts).
INDICATOR_PERIODS = PeriodLimits(3653, _l("A period spans at most 10 years."),
                                 future=_l("This date is in the future: indicators are computed for days that "
                                           "have begun."),
                                 message=_l("Choose a period that has started and ends after it begins."))
#: Event analysis and exports: at most three years; a day to come is accepted (it holds no report).
REPORT_PERIODS = PeriodLimits(366 * 3, _l("Choose a period of at most three years."))


def check_period(start: date | None, end: date | None, today: date, limits: PeriodLimits) -> Period:
    """The asked period, by default this month so far; a reversed one, or one outside `limits`, is refused
    (422, with the reason on `from` or `to`)."""
    end = end or today
    start = start or month_start(end)
    errors = {}
    if start > end:
        errors["from"] = [str(_l("The start date is after the end date."))]
    if limits.future is not None and end > today:
        errors["to"] = [str(limits.future)]
    if (end - start).days > limits.longest_days:
        errors["from"] = [str(limits.too_long)]
    if errors:
        raise Unprocessable(str(limits.message) if limits.message is not None else None, errors=errors)
    return Period(start, end)
