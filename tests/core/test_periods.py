"""Periods and months: the arithmetic, YYYY-MM, and the two limits pages and APIs apply to a period."""
from datetime import date, datetime, timezone

import pytest

from qcflow.core.errors import Unprocessable
from qcflow.core.periods import (INDICATOR_PERIODS, REPORT_PERIODS, Period, add_months, check_period, month_end,
                                 month_period, month_start, parse_month)

TODAY = date(2026, 3, 17)


@pytest.mark.parametrize("day, months, expected", [
    (date(2026, 1, 31), 1, date(2026, 2, 28)), (date(2024, 1, 31), 1, date(2024, 2, 29)),
    (date(2026, 1, 1), -1, date(2025, 12, 1)), (date(2026, 3, 1), -12, date(2025, 3, 1)),
    (date(2025, 12, 15), 1, date(2026, 1, 15)), (date(2026, 1, 1), -121, date(2015, 12, 1))])
def test_add_months_clamps_the_day_and_crosses_years(day, months, expected):
    assert add_months(day, months) == expected


def test_month_start_end_and_period():
    assert month_start(date(2026, 2, 17)) == date(2026, 2, 1)
    assert month_end(date(2024, 2, 3)) == date(2024, 2, 29) and month_end(date(2025, 12, 1)) == date(2025, 12, 31)
    assert month_period(date(2026, 2, 10)) == Period(date(2026, 2, 1), date(2026, 2, 28))


@pytest.mark.parametrize("text, expected", [("2026-02", date(2026, 2, 1)), ("1999-12", date(1999, 12, 1)),
                                            ("2026-2", None), ("2026-13", None), ("2026-00", None),
                                            ("0000-01", None), (" 2026-02", None), ("2026-02\n", None), ("", None),
                                            (None, None)])
def test_parse_month_reads_yyyy_mm_only(text, expected):
    assert parse_month(text) == expected


def test_segments_mark_whole_months_up_to_today():
    now = datetime(2026, 3, 17, 4, 0, tzinfo=timezone.utc)  # 12:00 in Shanghai
    period = Period(date(2026, 1, 15), date(2026, 3, 17), now)
    assert period.segments() == [(date(2026, 1, 1), date(2026, 1, 15), date(2026, 1, 31), False),
                                 (date(2026, 2, 1), date(2026, 2, 1), date(2026, 2, 28), True),
                                 (date(2026, 3, 1), date(2026, 3, 1), date(2026, 3, 17), True)]
    assert period.months() == [date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1)]


def test_a_period_defaults_to_this_month_so_far(app):
    with app.test_request_context("/?lang=en"):
        for limits in (INDICATOR_PERIODS, REPORT_PERIODS):
            assert check_period(None, None, TODAY, limits) == Period(date(2026, 3, 1), TODAY)
            assert check_period(None, date(2026, 1, 9), TODAY, limits) == Period(date(2026, 1, 1), date(2026, 1, 9))


def _refusal(app, start, end, limits):
    with app.test_request_context("/?lang=en"), pytest.raises(Unprocessable) as refused:
        check_period(start, end, TODAY, limits)
    return str(refused.value.message), refused.value.errors


def test_indicator_periods_have_begun_and_span_at_most_ten_years(app):
    message, errors = _refusal(app, date(2026, 3, 1), date(2026, 3, 18), INDICATOR_PERIODS)
    assert message == "Choose a period that has started and ends after it begins."
    assert errors == {"to": ["This date is in the future: indicators are computed for days that have begun."]}
    assert _refusal(app, date(2016, 3, 15), TODAY, INDICATOR_PERIODS)[1] == {
        "from": ["A period spans at most 10 years."]}
    assert check_period(date(2016, 3, 16), TODAY, TODAY, INDICATOR_PERIODS).start == date(2016, 3, 16)
    assert _refusal(app, date(2026, 3, 2), date(2026, 3, 1), INDICATOR_PERIODS)[1] == {
        "from": ["The start date is after the end date."]}


def test_report_periods_may_reach_days_to_come_and_span_at_most_three_years(app):
    assert check_period(date(2026, 3, 1), date(2026, 3, 31), TODAY, REPORT_PERIODS).end == date(2026, 3, 31)
    message, errors = _refusal(app, date(2023, 3, 14), TODAY, REPORT_PERIODS)
    assert message == "Some fields are missing or invalid."
    assert errors == {"from": ["Choose a period of at most three years."]}
    assert check_period(date(2023, 3, 15), TODAY, TODAY, REPORT_PERIODS).start == date(2023, 3, 15)
    assert _refusal(app, date(2026, 3, 2), date(2026, 3, 1), REPORT_PERIODS)[1] == {
        "from": ["The start date is after the end date."]}
