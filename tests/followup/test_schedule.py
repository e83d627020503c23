"""Occurrences of protocols: offsets from the anchor, Shanghai midnights, month ends, 29 February."""
from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings, strategies as st

from qcflow.core.periods import add_months
from qcflow.followup.schedule import Phase, expand, occurrence, occurrences, phase_errors
from tests.conftest import SHANGHAI as TZ, followup_migration, sh

UTC = timezone.utc


def default_phases(code):
    """The seeded protocol's phases, straight from the migration."""
    for seed in followup_migration().SEED_PROTOCOLS:
        if seed[0] == code:
            return [Phase(*row) for row in seed[6]]
    raise KeyError(code)


@pytest.mark.parametrize("day, months, expected", [
    (date(2026, 1, 31), 1, date(2026, 2, 28)),
    (date(2024, 1, 31), 1, date(2024, 2, 29)),
    (date(2026, 1, 31), 2, date(2026, 3, 31)),
    (date(2026, 8, 31), 1, date(2026, 9, 30)),
    (date(2026, 11, 15), 3, date(2027, 2, 15)),
    (date(2024, 2, 29), 12, date(2025, 2, 28)),
    (date(2024, 2, 29), 48, date(2028, 2, 29)),
])
def test_months_keep_the_day_and_clamp_to_the_month_end(day, months, expected):
    assert add_months(day, months) == expected


def test_day_surgery_call_is_due_24_hours_after_discharge_then_a_30_day_check():
    slots = expand(default_phases("day_surgery"))
    discharge = sh(2026, 3, 1, 16, 20)
    first, check = occurrences(slots, discharge, TZ)
    assert (first.due_at, first.opens_at, first.closes_at) == (discharge + timedelta(hours=24), discharge,
                                                               discharge + timedelta(hours=24))
    assert first.is_urgent and first.is_timed
    assert check.due_on == date(2026, 3, 31) and not check.is_timed
    assert check.opens_at == sh(2026, 3, 28, 0, 0) and check.closes_at == sh(2026, 4, 4, 0, 0)


def test_four_level_surgery_has_a_30_day_call_then_five_yearly_calls():
    slots = expand(default_phases("four_level_surgery"))
    days = [o.due_on for o in occurrences(slots, sh(2026, 3, 2, 10, 0), TZ)]
    assert days == [date(2026, 4, 1)] + [date(2026 + k, 3, 2) for k in range(1, 6)]


def test_cancer_protocol_runs_quarterly_half_yearly_then_yearly_to_year_ten():
    slots = expand(default_phases("cancer_lung"))
    months = [s.offset for s in slots]
    assert months == [3, 6, 9, 12, 15, 18, 21, 24, 30, 36, 42, 48, 54, 60, 72, 84, 96, 108, 120]
    last = occurrence(slots, sh(2026, 1, 31, 0, 0), len(slots), TZ)
    assert last.due_on == date(2036, 1, 31)
    assert occurrence(slots, sh(2026, 1, 31, 0, 0), len(slots) + 1, TZ) is None


def test_a_calendar_anchor_uses_the_shanghai_date_not_the_utc_date():
    slots = expand([Phase("day", 30, early_hours=0, late_hours=0)])
    # 00:10 on 1 March in Shanghai is still 28 February in UTC.
    just_after_midnight = datetime(2026, 2, 28, 16, 10, tzinfo=UTC)
    occ = occurrence(slots, just_after_midnight, 1, TZ)
    assert occ.due_on == date(2026, 3, 31)
    assert occ.opens_at == sh(2026, 3, 31, 0, 0) and occ.closes_at == sh(2026, 4, 1, 0, 0)


def test_a_yearly_call_anchored_on_29_february_falls_on_28_february_in_common_years():
    slots = expand([Phase("month", 12, 12, 60, 0, 0)])
    days = [o.due_on for o in occurrences(slots, sh(2024, 2, 29, 9, 0), TZ)]
    assert days == [date(2025, 2, 28), date(2026, 2, 28), date(2027, 2, 28), date(2028, 2, 29), date(2029, 2, 28)]


@pytest.mark.parametrize("phases, code", [
    ([], "no_phases"),
    ([Phase("month", 24, 3, 12, 0, 0)], "empty_phase"),
    ([Phase("month", 3, 0, 12, 0, 0)], "bad_repeat"),
    ([Phase("month", 3, 3, None, 0, 0)], "bad_repeat"),
    ([Phase("day", 30, None, None, 36, 0)], "whole_days"),
    ([Phase("month", 3, 3, 24, 14 * 24, 14 * 24), Phase("month", 24, 6, 60, 0, 0)], "overlap"),
    ([Phase("month", 12, 12, 60, 0, 0), Phase("day", 30, None, None, 0, 0)], "overlap"),
    ([Phase("month", 1, 1, 12, 14 * 24, 14 * 24)], "overlap"),
    ([Phase("day", 30, None, None, 40 * 24, 0)], "early_too_long"),
    ([Phase("minute", 30)], "bad_unit"),
    ([Phase("month", 1201)], "too_far"),
    ([Phase("day", 30, None, None, 0, 100 * 366 * 24)], "too_far"),
    ([Phase("hour", 1, 1, 10 ** 30, 0, 0)], "too_far"),
    ([Phase("day", 1, 10 ** 24, 2, 0, 0)], "too_far"),
])
def test_empty_overlapping_or_malformed_phases_are_refused(phases, code):
    assert phase_errors(phases, max_early_hours=35 * 24)[0][0] == code


@pytest.mark.parametrize("code", ["day_surgery", "four_level_surgery", "cancer_lung"])
def test_the_default_protocols_are_valid(code):
    assert phase_errors(default_phases(code), max_early_hours=35 * 24) == []


def test_a_huge_repeating_phase_is_refused_without_building_it():
    """A fuzzed protocol (every 1 hour until 10^30) once exhausted the worker's memory."""
    assert len(Phase("hour", 0, 1, 10 ** 30, 0, 0).offsets()) == 201


def test_daily_calls_without_tolerance_do_not_overlap():
    assert phase_errors([Phase("day", 1, 1, 7, 0, 0)], max_early_hours=0) == []


moments = st.datetimes(min_value=datetime(2023, 1, 1), max_value=datetime(2030, 12, 31),
                       timezones=st.just(UTC))
edges = st.builds(
    lambda day, minutes: datetime.combine(day, datetime.min.time(), tzinfo=TZ) + timedelta(minutes=minutes),
    st.sampled_from([date(2024, 2, 29), date(2024, 3, 1), date(2025, 2, 28), date(2025, 3, 1), date(2026, 1, 31),
                     date(2026, 2, 1), date(2026, 4, 30), date(2026, 12, 31), date(2027, 1, 1), date(2028, 2, 29)]),
    st.integers(min_value=-90, max_value=90))


@settings(max_examples=300, deadline=None)
@given(st.one_of(moments, edges))
def test_r5_day_surgery_first_call_is_exactly_24_hours_after_discharge(discharge):
    slots = expand(default_phases("day_surgery"))
    first = occurrence(slots, discharge, 1, TZ)
    assert first.due_at == discharge + timedelta(hours=24)
    assert first.opens_at == discharge and first.closes_at == first.due_at
    check = occurrence(slots, discharge, 2, TZ)
    assert check.due_on == discharge.astimezone(TZ).date() + timedelta(days=30)
    assert check.opens_at.astimezone(TZ).time() == datetime.min.time()


@settings(max_examples=200, deadline=None)
@given(st.one_of(moments, edges), st.sampled_from(["four_level_surgery", "cancer_breast"]))
def test_r5_calendar_occurrences_keep_the_anchor_day_or_the_month_end(anchor, code):
    slots = expand(default_phases(code))
    anchor_day = anchor.astimezone(TZ).date()
    previous = None
    for occ in occurrences(slots, anchor, TZ):
        if slots[occ.number - 1].unit == "month":
            assert occ.due_on.day == anchor_day.day or occ.due_on.day < anchor_day.day and (
                occ.due_on + timedelta(days=1)).day == 1
        assert occ.opens_at < occ.due_at < occ.closes_at
        if previous is not None:
            assert previous.closes_at <= occ.opens_at
        previous = occ
