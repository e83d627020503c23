"""Working days on the Chinese calendar: holidays, 调休 make-up days, deadlines."""
import logging
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from qcflow.core import workdays
from qcflow.core.workdays import add_working_days, covered_years, is_working_day
from tests.conftest import SHANGHAI


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        ("2025-09-26", True),  # Friday
        ("2025-09-27", False),  # Saturday
        ("2025-09-28", True),  # Sunday, 调休 for National Day
        ("2025-10-01", False),  # National Day
        ("2025-10-06", False),  # Monday inside the holiday
        ("2025-10-08", False),  # last holiday day
        ("2025-10-09", True),
        ("2025-10-11", True),  # Saturday, 调休
        ("2025-10-12", False),  # Sunday
        ("2025-01-26", True),  # Sunday, 调休 for Spring Festival 2025
        ("2025-01-28", False),  # 除夕
        ("2025-02-04", False),
        ("2025-02-08", True),  # Saturday, 调休
        ("2026-02-14", True),  # Saturday, 调休 for Spring Festival 2026
        ("2026-02-16", False),  # 除夕
        ("2026-02-23", False),  # Monday, last holiday day
        ("2026-02-24", True),
        ("2026-02-28", True),  # Saturday, 调休
    ],
)
def test_statutory_calendar(day, expected):
    assert is_working_day(date.fromisoformat(day)) is expected


@pytest.mark.parametrize(
    ("start", "days", "deadline"),
    [
        # An ordinary week (November 2025).
        ("2025-11-14 17:00", 3, "2025-11-19 17:00"),  # Friday -> Wednesday
        ("2025-11-17 09:30", 1, "2025-11-18 09:30"),
        ("2025-11-15 10:00", 3, "2025-11-20 00:00"),  # Saturday -> end of Wednesday
        ("2025-11-16 23:59", 3, "2025-11-20 00:00"),  # Sunday night: same as Saturday
        ("2025-11-17 00:00", 3, "2025-11-20 00:00"),  # Monday 00:00: same as the weekend
        ("2025-11-17 00:01", 3, "2025-11-20 00:01"),
        # National Day 2025: Oct 1-8 off, Sun Sep 28 and Sat Oct 11 worked.
        ("2025-09-26 17:00", 3, "2025-09-30 17:00"),  # Fri -> Sun 28, Mon 29, Tue 30
        ("2025-09-27 10:00", 3, "2025-10-01 00:00"),  # Sat -> end of Tue 30
        ("2025-09-30 10:00", 3, "2025-10-11 10:00"),  # -> Thu 9, Fri 10, Sat 11
        ("2025-10-03 10:00", 3, "2025-10-12 00:00"),  # holiday -> end of Sat 11
        ("2025-10-08 23:00", 1, "2025-10-10 00:00"),  # last holiday evening -> end of Thu 9
        ("2025-10-10 08:00", 2, "2025-10-13 08:00"),  # -> Sat 11, Mon 13
        # Spring Festival 2026: Feb 15-23 off, Sat Feb 14 and Sat Feb 28 worked.
        ("2026-02-13 09:00", 3, "2026-02-25 09:00"),  # Fri -> Sat 14, Tue 24, Wed 25
        ("2026-02-14 18:00", 1, "2026-02-24 18:00"),  # 调休 Saturday counts as a start day
        ("2026-02-15 11:00", 1, "2026-02-25 00:00"),  # holiday -> end of Tue 24
        ("2026-02-26 15:00", 2, "2026-02-28 15:00"),  # Thu -> Fri 27, Sat 28
        # Spring Festival 2025: Jan 28-Feb 4 off, Sun Jan 26 and Sat Feb 8 worked.
        ("2025-01-24 16:00", 2, "2025-01-27 16:00"),  # Fri -> Sun 26, Mon 27
        ("2025-01-27 16:00", 2, "2025-02-06 16:00"),  # Mon -> Wed Feb 5, Thu Feb 6
    ],
)
def test_add_working_days(start, days, deadline):
    assert add_working_days(local(start), days, SHANGHAI) == local(deadline)


def test_deadline_is_utc():
    deadline = add_working_days(local("2025-11-14 17:00"), 3, SHANGHAI)

    assert deadline.tzinfo is timezone.utc
    assert deadline == utc("2025-11-19 09:00")


def test_start_is_read_in_hospital_time():
    # 2025-09-30 15:30Z is Tuesday 23:30 in Shanghai, a working day.
    assert add_working_days(utc("2025-09-30 15:30"), 1, SHANGHAI) == utc("2025-10-09 15:30")
    # An hour later it is already October 1 in Shanghai: the clock waits for October 9.
    assert add_working_days(utc("2025-09-30 16:30"), 1, SHANGHAI) == utc("2025-10-09 16:00")


def test_the_same_instant_gives_the_same_deadline_in_any_offset():
    start = local("2026-02-13 09:00")

    assert add_working_days(start.astimezone(ZoneInfo("Europe/Berlin")), 3, SHANGHAI) == (
        add_working_days(start, 3, SHANGHAI)
    )


def test_zero_days_is_the_start():
    assert add_working_days(local("2025-10-03 10:00"), 0, SHANGHAI) == utc("2025-10-03 02:00")


def test_rejects_naive_start_and_negative_days():
    with pytest.raises(ValueError, match="aware"):
        add_working_days(datetime(2025, 11, 14, 17), 3, SHANGHAI)
    with pytest.raises(ValueError, match="negative"):
        add_working_days(local("2025-11-14 17:00"), -1, SHANGHAI)


def test_covered_years():
    years = covered_years()

    assert 2025 in years and 2026 in years
    assert 2031 not in years


def test_uncovered_year_counts_monday_to_friday(monkeypatch, caplog):
    monkeypatch.setattr(workdays, "_warned_years", set())
    caplog.set_level(logging.WARNING, logger="qcflow.core.workdays")

    assert is_working_day(date(2031, 1, 1))  # a Wednesday; New Year is unknown here
    assert not is_working_day(date(2031, 1, 4))  # Saturday
    assert add_working_days(local("2031-01-03 17:00"), 3, SHANGHAI) == local("2031-01-08 17:00")
    assert add_working_days(local("2031-01-04 10:00"), 3, SHANGHAI) == local("2031-01-09 00:00")

    warnings = [r for r in caplog.records if r.name == "qcflow.core.workdays"]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    assert "2031" in warnings[0].getMessage()


def test_each_uncovered_year_is_logged_once(monkeypatch, caplog):
    monkeypatch.setattr(workdays, "_warned_years", set())
    caplog.set_level(logging.WARNING, logger="qcflow.core.workdays")

    for day in (date(2031, 1, 1), date(2031, 6, 1), date(2032, 1, 1), date(2032, 6, 1)):
        is_working_day(day)

    logged = [r.getMessage() for r in caplog.records if r.name == "qcflow.core.workdays"]
    assert [("2031" in m, "2032" in m) for m in logged] == [(True, False), (False, True)]

