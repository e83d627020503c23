"""The reference month (tests/indicators/conftest.py): every indicator's value counted by hand."""
from datetime import date

import pytest

from tests.indicators.conftest import JUDGED_AT, MARCH

#: code: (numerator, denominator, value, met) for the whole hospital, March 2026.
EXPECTED = {
    # GS: census 200 replaces its encounters; CARD: 4 discharges + 2 from the operations' admissions.
    # Reports: GS submitted, triaged, investigating, closed (not draft/duplicate/not_reportable/
    # withdrawn) + CARD 1 → 5 / 206 × 100; target > 2.5.
    "ae_per_100_discharges": (5, 206, 5 / 206 * 100, False),
    # Windows closed in March: GS on time, late, missing, not effective, unreachable (cancelled is
    # not due; the April window is not in March) + CARD on time → 2 / 6.
    "followup_rate_level4": (2, 6, 200 / 6, False),
    "followup_rate_cancer": (2, 3, 200 / 3, False),
    "followup_rate_cancer_lung": (1, 2, 50.0, False),
    "followup_rate_cancer_gastric": (0, 0, None, None),
    "followup_rate_cancer_liver": (0, 0, None, None),
    "followup_rate_cancer_breast": (1, 1, 100.0, True),
    "followup_rate_cancer_colorectal": (0, 0, None, None),
    # Day-surgery discharges (deaths excluded): within 24 h, after 26 h, never called, no plan,
    # on time but not effective, and the day-surgery operation's discharge (no plan) → 1 / 6.
    "day_surgery_24h_followup_rate": (1, 6, 100 / 6, False),
    # Grade-4/restricted operations performed in March: signed before, signed after, unsigned,
    # restricted technology under an emergency override → 1 / 4.
    "preop_mdt_rate_level4": (1, 4, 25.0, False),
    # Deaths in March: discussed in 7 days, discussed late, not discussed, cancelled then replaced
    # (counted once, discussed late), cancelled without replacement → 3 / 5 and 1 / 5.
    "periop_death_discussion_rate": (3, 5, 60.0, False),
    "periop_death_discussion_7d_rate": (1, 5, 20.0, False),
    # Five working days after the day of death: 3 March (Tue) → 10 March, signed on the 6th; the others late.
    "periop_death_discussion_5wd_rate": (1, 5, 20.0, None),
    # Performed operations in March: 7, one unplanned reoperation → 142.857 ‰ (target ≤ 1.8 ‰).
    "unplanned_reoperation_rate": (1, 7, 1000 / 7, False),
    # The unplanned reoperation's patient had no earlier operation (tests/indicators/test_counting_rules.py).
    # No target rows for the new indicators (the catalogue seeds them): `met` stays empty.
    "unplanned_reoperation_48h_rate": (0, 7, 0.0, None),
    "unplanned_reoperation_31d_rate": (0, 7, 0.0, None),
    # Elective (not unplanned, not emergency): 5, one in a day-surgery admission; no target (rising).
    "day_surgery_share": (1, 5, 20.0, None),
    # Closing deadlines (submission + 30 days) in March: on time, late, still open → 1 / 3.
    "ae_closure_on_time_rate": (1, 3, 100 / 3, False),
    # Admissions discharged in March with a performed operation: the seven operations' (3/11–3/19); the
    # death reviews' patients had no operation of their own, so no perioperative death; no target.
    "periop_mortality_rate": (0, 7, 0.0, None),
    # No MDT clinic in the reference month; a count has no denominator (the value is the numerator).
    "mdt_clinic_count": (0, 0, 0.0, None),
}

#: code: (numerator, denominator) for GS and for CARD.
BY_DEPARTMENT = {
    "ae_per_100_discharges": ((4, 200), (1, 6)),
    "followup_rate_level4": ((1, 5), (1, 1)),
    "followup_rate_cancer": ((1, 2), (1, 1)),
    "day_surgery_24h_followup_rate": ((1, 6), (0, 0)),
    "preop_mdt_rate_level4": ((1, 3), (0, 1)),
    "periop_death_discussion_rate": ((3, 5), (0, 0)),
    "unplanned_reoperation_rate": ((1, 5), (0, 2)),
    "unplanned_reoperation_48h_rate": ((0, 5), (0, 2)),
    "periop_death_discussion_5wd_rate": ((1, 5), (0, 0)),
    "day_surgery_share": ((1, 4), (0, 1)),
    "ae_closure_on_time_rate": ((1, 3), (0, 0)),
}


def test_every_indicator_has_an_expected_value(ctx):
    from qcflow.indicators.definitions import INDICATORS

    assert {i.code for i in INDICATORS} == set(EXPECTED)


def test_reference_month_values(reference_month):
    from qcflow.indicators.queries import compute

    values = {v.code: v for v in compute(*MARCH, now=JUDGED_AT)}
    for code, (numerator, denominator, value, met) in EXPECTED.items():
        got = values[code]
        assert (got.numerator, got.denominator) == (numerator, denominator), code
        assert got.value == (pytest.approx(value) if value is not None else None), code
        assert got.met is met, code


def test_targets_come_from_the_year_and_level(reference_month, app):
    from qcflow.indicators.queries import compute

    values = {v.code: v for v in compute(*MARCH, now=JUDGED_AT)}
    assert (values["ae_per_100_discharges"].comparison, values["ae_per_100_discharges"].target) == ("gt", 2.5)
    assert values["unplanned_reoperation_rate"].target == 1.8
    assert values["day_surgery_share"].target is None
    # 2024 rows for 2024 periods.
    early = {v.code: v for v in compute(date(2024, 3, 1), date(2024, 3, 31), now=JUDGED_AT)}
    assert early["ae_per_100_discharges"].target == 2.0 and early["unplanned_reoperation_rate"].target == 1.9
    # A secondary hospital has no four-level follow-up target (tertiary only in the plans).
    app.config["HOSPITAL_LEVEL"] = "secondary"
    secondary = {v.code: v for v in compute(*MARCH, now=JUDGED_AT)}
    assert secondary["followup_rate_level4"].target is None and secondary["followup_rate_level4"].met is None
    assert secondary["ae_per_100_discharges"].target == 2.5


@pytest.mark.parametrize("code", sorted(BY_DEPARTMENT))
def test_department_values(reference_month, hospital, code):
    from qcflow.indicators.queries import compute

    for department, expected in zip(("surgery", "cardio"), BY_DEPARTMENT[code]):
        got = compute(*MARCH, department_id=hospital[department].id, codes=[code], now=JUDGED_AT)[0]
        assert (got.numerator, got.denominator) == expected, (code, department)


def test_the_bulletins_follow_up_table_counts_each_department_as_the_indicators_do(reference_month, hospital, app):
    from qcflow.reports.bulletin import FOLLOWUP_CODES, followup_by_department

    with app.test_request_context("/?lang=zh"):
        cells = {row["department"]: row["cells"] for row in followup_by_department(MARCH[0], JUDGED_AT, JUDGED_AT)}
    for code in FOLLOWUP_CODES:
        for department, (numerator, denominator) in zip(("surgery", "cardio"), BY_DEPARTMENT[code]):
            cell = cells[hospital[department].name][code]
            assert cell.endswith(f"({numerator}/{denominator})") if denominator else cell == "—", (code, department)


def test_census_replaces_encounters_only_for_whole_months(reference_month, hospital):
    from qcflow.indicators.queries import compute

    gs = hospital["surgery"].id
    whole = compute(*MARCH, department_id=gs, codes=["ae_per_100_discharges"], now=JUDGED_AT)[0]
    assert whole.denominator == 200
    # 15–31 March is part of the month: GS's encounters discharged then are counted instead.
    part = compute(date(2026, 3, 15), date(2026, 3, 31), department_id=gs, codes=["ae_per_100_discharges"],
                   now=JUDGED_AT)[0]
    # Mar 15 and 30 plain; the admissions of operations on 14, 16, 17 March and of the planned one
    # (20 March); the death on 25 March.
    assert part.denominator == 7


@pytest.mark.parametrize("code", sorted(EXPECTED))
def test_drill_down_adds_up_to_the_counts(reference_month, code):
    from qcflow.indicators.queries import cases

    numerator, denominator, _value, _met = EXPECTED[code]
    for part, expected in (("numerator", numerator), ("denominator", denominator)):
        seen, cursor, pages = [], None, 0
        while True:
            items, cursor, total = cases(code, part, *MARCH, department_id=None, now=JUDGED_AT, cursor=cursor, limit=2)
            assert total == expected
            seen += items
            pages += 1
            if cursor is None:
                break
        assert sum(item["weight"] for item in seen) == expected, (code, part)
        assert len({(item["kind"], item["id"]) for item in seen}) == len(seen)
        assert pages <= max(1, (len(seen) + 1) // 2)


def test_numerator_cases_are_among_the_denominators(reference_month):
    from qcflow.indicators.queries import cases

    for code in EXPECTED:
        if code == "ae_per_100_discharges":
            continue
        numerator = cases(code, "numerator", *MARCH, department_id=None, now=JUDGED_AT, limit=100)[0]
        denominator = cases(code, "denominator", *MARCH, department_id=None, now=JUDGED_AT, limit=100)[0]
        assert {i["id"] for i in numerator} <= {i["id"] for i in denominator}, code


def test_closure_days_are_configurable(reference_month, app):
    from qcflow.indicators.queries import compute

    # 40 days for grade III: the deadlines move 10 days later; the 38-day closure is now on time.
    app.config["EVENT_CLOSURE_DAYS"] = {"III": 40}
    value = compute(*MARCH, codes=["ae_closure_on_time_rate"], now=JUDGED_AT)[0]
    # Deadlines in March now come from submissions 20 Jan – 19 Feb: 20 Jan (closed in 12 days),
    # 5 Feb (24), 10 Feb (38), 15 Feb (open).
    assert (value.numerator, value.denominator) == (3, 4)


def test_open_windows_are_not_counted_yet(reference_month):
    from qcflow.indicators.queries import compute
    from tests.conftest import sh

    # Judged on 7 March at 09:00: only the day case of 5 March has had its 24 hours (6 March 10:00
    # has not, 7 March has not); the four-level windows close on the 15th, so none counts yet.
    early = {v.code: v for v in compute(date(2026, 3, 1), date(2026, 3, 7), now=sh(2026, 3, 7, 9),
                                        codes=["day_surgery_24h_followup_rate", "followup_rate_level4"])}
    day = early["day_surgery_24h_followup_rate"]
    assert (day.numerator, day.denominator) == (1, 1)
    assert early["followup_rate_level4"].denominator == 0
