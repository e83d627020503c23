"""The annual monitoring form and the quarterly report: the annex's rows in its order and wording, the period's
values, targets and met in the right cells, archived frozen with a deterministic JSON twin, revisions, the
rules on periods, permissions, and the January reminder."""
from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, timezone

import pytest
import sqlalchemy as sa

from tests.conftest import sh
from tests.indicators.xlsxread import cells, row_of, sheet_xml

#: After 2026 has ended and settled: the annual form for 2026 may be generated.
JANUARY = sh(2027, 1, 5, 10, 0)
#: The first quarter of 2026 has settled (the reference month is March 2026).
APRIL = sh(2026, 4, 10, 9, 0)
#: Columns of the annual form (0-based): no., dimension, wording, indicator, unit, value, numerator, denominator,
#: plan target, target used, met, status.
SEQ, DIMENSION, WORDING, NAME, UNIT, VALUE, NUMERATOR, DENOMINATOR, PLAN_TARGET, TARGET, MET, STATUS = range(12)


def plans_with_rows():
    from qcflow.indicators import catalogue

    return [plan for plan in catalogue.PLAN_KEYS if catalogue.annex(plan)]


def report(hospital, code, month, state, numerator=None, denominator=None, value=None, department="surgery"):
    """A reported monthly value, written as the reporting workflow leaves it."""
    from qcflow.extensions import db
    from qcflow.indicators.models import IndicatorReport

    row = IndicatorReport(code=code, month_on=month, department_id=hospital[department].id, numerator=numerator,
                          denominator=denominator, value=value if value is not None else (
                              numerator * 100 / denominator if denominator else None),
                          state=state, channel="page", submitted_at=sh(month.year, month.month, 28),
                          submitted_by="user:1")
    db.session.add(row)
    db.session.flush()
    return row


@pytest.fixture
def generate(hospital, actor_of):
    from qcflow.extensions import db
    from qcflow.indicators import forms

    def run(kind="annual", year=2026, quarter=None, *, now=JANUARY, plan="henan", draft=False, who="quality"):
        form = forms.generate_form(plan, kind, year, quarter, actor=actor_of(who), now=now, draft=draft)
        db.session.commit()
        return form

    return run


def test_annual_form_lists_every_annex_row_in_order_and_wording(app, hospital, generate):
    from qcflow.indicators import catalogue

    for plan in plans_with_rows():
        form = generate(plan=plan)
        annex = catalogue.annex(plan)
        found = cells(form.xlsx)
        header = row_of(found, SEQ, "序号")
        lines = sorted((row, value) for (row, col), value in found.items() if col == WORDING and row > header)
        assert [value for _row, value in lines] == [row.wording for row in annex]
        assert [found[(row, SEQ)] for row, _value in lines] == [row.seq for row in annex]
        assert [found[(row, DIMENSION)] for row, _value in lines] == [row.dimension for row in annex]
        twin = json.loads(form.snapshot)
        assert [(r["seq"], r["wording"], r["wording_en"], [c["code"] for c in r["codes"]]) for r in twin["rows"]] == [
            (row.seq, row.wording, row.wording_en, list(row.codes)) for row in annex]
