"""The centre's demo shows what it promises: one hospital has not sent last month, and the reminder names it."""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

NOW = datetime(2026, 12, 6, 14, 0, tzinfo=timezone.utc)


@pytest.fixture
def app(centre_app):
    return centre_app


def test_the_demo_shows_last_months_gap_on_completeness_and_in_the_reminder(ctx):
    from qcflow.region import comparisons
    from qcflow.region.demo import DEMO_HOSPITALS, load_centre_demo

    assert load_centre_demo(now=NOW)
    missing = comparisons.missing_hospitals(date(2026, 11, 1))
    assert [h.code for h in missing] == [DEMO_HOSPITALS[2].code]
    _months, rows = comparisons.completeness(2026, NOW.date())
    late = next(r for r in rows if r.hospital.code == DEMO_HOSPITALS[2].code)
    assert late.cells[date(2026, 11, 1)].status == comparisons.MISSING
    assert all(r.cells[date(2026, 1, 1)].status == comparisons.SENT for r in rows)  # no "before registration"
