"""The catalogue's read side: which target a value is compared with, and how approved reports add up."""
from __future__ import annotations

from datetime import date

import pytest

from tests.conftest import sh

NOW = sh(2026, 6, 15, 9, 0)


@pytest.fixture
def plan_targets(monkeypatch):
    """The plans' targets as the data file would hold them: Yubei asks ≥ 85 % from 2024 and ≥ 90 % from 2025."""
    from qcflow.indicators import catalogue

    rows = {("yubei", "pain_assessment_rate"): (("tertiary", 2024, "ge", 85.0, "Yubei [002:1]"),
                                                ("tertiary", 2025, "ge", 90.0, "Yubei [002:2]")),
            ("henan", "pain_assessment_rate"): (("tertiary", 2024, "ge", 70.0, "Henan [003:1]"),)}
    monkeypatch.setattr(catalogue, "_plan_targets", lambda: rows)
    return rows


def _target(code, year, department_id=None):
    from qcflow.indicators import catalogue

    return catalogue.targets(year, "tertiary", department_id=department_id).get(code)


def test_the_chosen_plans_target_applies_from_its_year(app, hospital, plan_targets):
    app.config["INDICATOR_PLAN"] = "yubei"
    assert _target("pain_assessment_rate", 2023) is None
    assert (_target("pain_assessment_rate", 2024).value, _target("pain_assessment_rate", 2024).set) == (85.0, "yubei")
    assert _target("pain_assessment_rate", 2026).value == 90.0
    app.config["INDICATOR_PLAN"] = "henan"
    assert _target("pain_assessment_rate", 2026).value == 70.0


def test_own_targets_win_in_their_year_and_a_later_plan_row_wins_over_an_older_own_one(
        app, hospital, plan_targets, actor_of):
    from qcflow.indicators import services

    app.config["INDICATOR_PLAN"] = "yubei"
    services.set_target("pain_assessment_rate", "tertiary", 2024, "ge", 95.0, actor=actor_of("quality"), now=NOW,
                        expected_version=None)
    assert (_target("pain_assessment_rate", 2024).value, _target("pain_assessment_rate", 2024).set) == (95.0, "hospital")
    # The plan's 2025 row is newer than the hospital's 2024 one.
    assert _target("pain_assessment_rate", 2025).set == "yubei"
    surgery = hospital["surgery"].id
    services.set_target("pain_assessment_rate", "tertiary", 2025, "ge", 98.0, actor=actor_of("head"), now=NOW,
                        expected_version=None, department_id=surgery)
    assert (_target("pain_assessment_rate", 2025, surgery).value,
            _target("pain_assessment_rate", 2025, surgery).set) == (98.0, "department")
    # Another department and the hospital keep the plan's.
    assert _target("pain_assessment_rate", 2025, hospital["cardio"].id).set == "yubei"
    assert _target("pain_assessment_rate", 2025).set == "yubei"


def _local(code, unit, department):
    from qcflow.extensions import db
    from qcflow.indicators.models import LocalIndicator

    db.session.add(LocalIndicator(code=code, name=code, unit=unit, direction="higher", definition="d",
                                  department_id=department.id, created_at=NOW, updated_at=NOW, updated_by="t"))


def _report(code, month, department, state="approved", numerator=None, denominator=None, value=None):
    from qcflow.extensions import db
    from qcflow.indicators.models import IndicatorReport

    db.session.add(IndicatorReport(code=code, month_on=month, department_id=department.id, numerator=numerator,
                                   denominator=denominator, value=value, state=state, channel="page",
                                   submitted_at=NOW, submitted_by="t"))


def test_approved_reports_add_up_by_unit_and_pending_ones_are_counted_apart(app, hospital):
    from qcflow.extensions import db
    from qcflow.indicators import queries

    surgery, cardio = hospital["surgery"], hospital["cardio"]
    for code, unit in (("local_rate", "percent"), ("local_count", "count"), ("local_wait", "minutes"),
                       ("local_done", "status")):
        _local(code, unit, surgery)
    db.session.flush()
    april, may = date(2026, 4, 1), date(2026, 5, 1)
    _report("local_rate", april, surgery, numerator=9, denominator=10, value=90.0)
    _report("local_rate", may, cardio, numerator=1, denominator=10, value=10.0)
    _report("local_rate", may, surgery, state="submitted", numerator=0, denominator=10, value=0.0)
    _report("local_count", april, surgery, value=2)
    _report("local_count", may, surgery, value=3)
    _report("local_wait", april, surgery, value=10)
    _report("local_wait", may, surgery, value=20)
    _report("local_done", april, surgery, value=1)
    _report("local_done", may, surgery, value=0)
    db.session.flush()

    values = {v.code: v for v in queries.reported_values(april, date(2026, 5, 31))}
    # Rates from the summed parts, not the mean of the monthly rates (90 % and 10 % → 10 / 20).
    assert (values["local_rate"].numerator, values["local_rate"].denominator, values["local_rate"].value) == (10, 20, 50.0)
    assert values["local_rate"].pending == 1
    assert values["local_count"].value == 5
    assert values["local_wait"].value == 15
    assert values["local_done"].value == 0  # not done in May: not done over the period
    assert {v.method for v in values.values()} == {"reported"}

    april_only = {v.code: v for v in queries.reported_values(april, date(2026, 4, 30))}
    assert april_only["local_done"].value == 1 and april_only["local_rate"].pending == 0
    cardio_only = {v.code: v for v in queries.reported_values(april, date(2026, 5, 31), department_id=cardio.id)}
    assert cardio_only["local_rate"].value == 10.0 and cardio_only["local_count"].value is None


@pytest.mark.parametrize("changes, field", [
    ({"value": -50}, "value"),                                  # a share is never negative
    ({"value": 120}, "value"),                                  # … nor more than its whole
    ({"value": 1e308}, "value"),
    ({"code": "cancer_5y_survival", "value": 101}, "value"),
    ({"code": "periop_mortality_rate", "value": 1001}, "value"),  # ‰
    ({"code": "annual_work_plan_status", "value": 0.5}, "value"),  # done (1) or not
    ({"source": "a\u0000b"}, "source"),
])
def test_a_target_out_of_its_units_range_is_the_fields_error(tokens, hospital, changes, field):
    from flask import current_app

    body = {"code": "pain_assessment_rate", "level": "tertiary", "year": 2026, "comparison": "ge", "value": 90,
            **changes}
    response = current_app.test_client().put("/api/v1/indicators/targets", json=body, headers=tokens("admin"))
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["errors"]
    ok = current_app.test_client().put("/api/v1/indicators/targets", json={**body, "value": 90, "source": "院内"}
                                       if field != "value" or "code" not in changes else {**body, "value": 1},
                                       headers=tokens("admin"))
    assert ok.status_code == 200, ok.get_json()
