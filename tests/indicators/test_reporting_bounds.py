"""Reported values the rules refuse whatever the channel: numbers too large to be a month's count, decimals
where whole numbers belong, a department that does not report the indicator, a switched-off indicator."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from qcflow.core.periods import add_months, month_start
from qcflow.core.time import today
from tests.indicators.reporting_fixtures import reported  # noqa: F401

INTAKE = "/api/v1/intake/indicator_values"


@pytest.fixture
def hospital_layout(hospital_layout):
    departments, people = hospital_layout
    return departments, {**people, "his": ("his", "interface", "qc")}


def _month():
    return f"{add_months(month_start(today()), -1):%Y-%m}"


def _post(headers, rows):
    from flask import current_app

    return current_app.test_client().post(INTAKE, json={"items": rows}, headers=headers)


def _api(headers, path, body):
    from flask import current_app

    return current_app.test_client().post(path, json=body, headers=headers)


def _count():
    from qcflow.extensions import db
    from qcflow.indicators.models import IndicatorReport

    return db.session.scalar(sa.select(sa.func.count()).select_from(IndicatorReport))


def _errors(response):
    assert response.status_code in (200, 422), response.get_json()  # 422: no row landed
    return [r.get("errors") for r in response.get_json()["results"]]


def test_amounts_beyond_a_billion_are_refused_so_sums_never_overflow(reported, tokens):
    big = 9_223_372_036_854_775_807
    errors = _errors(_post(tokens("his"), [
        {"code": "pain_assessment_rate", "month": _month(), "department_code": "GS", "numerator": big,
         "denominator": big},
        {"code": "local_gs_wait", "month": _month(), "department_code": "GS", "value": 1.7e308},
        {"code": "pain_assessment_rate", "month": _month(), "department_code": "GS", "numerator": 10 ** 9 + 1,
         "denominator": 10 ** 9 + 1},
    ]))
    assert "numerator" in errors[0] and "denominator" in errors[0] and "value" in errors[1]
    assert "1,000,000,000" in errors[2]["numerator"][0]
    assert _count() == 0


def test_decimals_in_whole_numbers_are_the_fields_error_not_cut_off(reported, tokens):
    errors = _errors(_post(tokens("his"), [
        {"code": "pain_assessment_rate", "month": _month(), "department_code": "GS", "numerator": 1.9,
         "denominator": 2.9}]))
    assert errors[0] and _count() == 0
    response = _api(tokens("head"), "/api/v1/indicators/reports", {
        "code": "pain_assessment_rate", "month": _month(), "numerator": "1.5", "denominator": 2})
    assert response.status_code == 422 and "numerator" in str(response.get_json()) and _count() == 0
    # A whole number written as 2.0 is still a whole number.
    ok = _api(tokens("head"), "/api/v1/indicators/reports", {
        "code": "pain_assessment_rate", "month": _month(), "numerator": 1, "denominator": 2.0})
    assert ok.status_code in (200, 201), ok.get_json()
    forms = _api(tokens("quality"), "/api/v1/indicators/forms", {"kind": "annual", "year": 2025.5,
                                                                      "draft": True})
    assert forms.status_code == 422


def test_the_quality_office_and_the_his_enter_only_for_the_department_that_reports_it(reported, tokens):
    """pain_assessment_rate is reported by general surgery: cardiology's value would count in the hospital's
    value but in nobody's completeness."""
    errors = _errors(_post(tokens("his"), [
        {"code": "pain_assessment_rate", "month": _month(), "department_code": "CARD", "numerator": 3,
         "denominator": 4}]))
    assert "department" in errors[0]
    response = _api(tokens("quality"), "/api/v1/indicators/reports", {
        "code": "pain_assessment_rate", "month": _month(), "department": "CARD", "numerator": 3, "denominator": 4})
    assert response.status_code == 422 and "department" in response.get_json()["errors"]
    assert _count() == 0


def test_a_switched_off_own_indicator_takes_no_values(reported, tokens):
    from qcflow.extensions import db
    from qcflow.indicators.models import LocalIndicator

    db.session.scalar(sa.select(LocalIndicator).where(LocalIndicator.code == "local_gs_operations")).is_active = False
    db.session.commit()
    errors = _errors(_post(tokens("his"), [
        {"code": "local_gs_operations", "month": _month(), "department_code": "GS", "value": 3}]))
    assert "code" in errors[0]
    response = _api(tokens("head"), "/api/v1/indicators/reports", {
        "code": "local_gs_operations", "month": _month(), "value": 3})
    assert response.status_code == 422 and "code" in response.get_json()["errors"]
    assert _count() == 0
