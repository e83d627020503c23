"""The drill-down's pages: a cursor only when a record follows the page, across the part's sources."""
import pytest

from tests.indicators.conftest import JUDGED_AT, MARCH
from tests.indicators.test_reference_month import EXPECTED


@pytest.mark.parametrize("code", sorted(code for code, (_numerator, denominator, *_rest) in EXPECTED.items()
                                         if denominator >= 2))
def test_the_last_full_page_has_no_cursor_and_one_more_record_gets_a_page_of_its_own(reference_month, code):
    from qcflow.indicators.queries import cases

    def page(limit, cursor=None):
        return cases(code, "denominator", *MARCH, department_id=None, now=JUDGED_AT, cursor=cursor, limit=limit)[:2]

    every, after = page(100)
    assert after is None
    assert len(every) >= 2
    whole, after = page(len(every))
    assert whole == every and after is None
    first, after = page(len(every) - 1)
    rest, last = page(len(every) - 1, after)
    assert first + rest == every and rest == every[-1:] and last is None
