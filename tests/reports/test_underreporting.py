"""Under-reporting detector: Poisson control limits, flags, silent departments, hidden small counts."""
from datetime import date

import pytest

from tests.conftest import sh as local

FEB = {"from": "2026-02-01", "to": "2026-02-28"}


# Interpolated Poisson quantiles (Spiegelhalter 2005), worked out by hand from the Poisson CDF:
# Poisson(10): P(X≤3) = 0.0103361, P(X≤4) = 0.0292527 → 2.5 % limit = 4 − (0.0292527 − 0.025)
# / (0.0292527 − 0.0103361) = 3.77519; likewise 97.5 % → 16.15995, 0.1 % → 1.22053, 99.9 % → 20.66200.
@pytest.mark.parametrize("p, expected", [(0.025, 3.77519), (0.975, 16.15995), (0.001, 1.22053), (0.999, 20.66200)])
def test_poisson_limit_matches_the_hand_computed_quantile(p, expected):
    from qcflow.reports.underreporting import poisson_limit

    assert poisson_limit(10, p) == pytest.approx(expected, abs=1e-4)


def test_control_limits_per_100_discharges():
    from qcflow.reports.underreporting import control_limits

    # 2.5 reports per 100 discharges, 400 discharges: expected 10 reports.
    limits = control_limits(0.025, 400)
    assert limits["95"] == pytest.approx((0.943797, 4.039988), abs=1e-5)
    assert limits["99.8"] == pytest.approx((0.305132, 5.165500), abs=1e-5)


def test_lower_limit_is_zero_when_little_is_expected():
    from qcflow.reports.underreporting import control_limits, poisson_limit

    assert poisson_limit(2.5, 0.025) == 0.0  # P(X=0) = 0.082 > 0.025
    assert control_limits(0.025, 100)["95"][0] == 0.0
    assert control_limits(0.0, 100) == {"95": (0.0, 0.0), "99.8": (0.0, 0.0)}


@pytest.fixture
def funnel_data(hospital, create_department, create_report, create_census):
    """4,000 discharges and 100 reports (2.5 per 100): GS low, CARD very low (2 reports), ORTH high."""
    from qcflow.extensions import db

    ent = create_department(code="ENT", name="耳鼻喉科")
    feb = date(2026, 2, 1)
    create_census(hospital["surgery"], feb, 2000)
    create_census(hospital["cardio"], feb, 1000)
    create_census(hospital["ortho"], feb, 1000)
    for department, n, harm in ((hospital["surgery"], 30, 3), (hospital["cardio"], 2, 0), (hospital["ortho"], 68, 10)):
        for i in range(n):
            create_report(department=department, submitted=local(2026, 2, 20, 10, 0),
                          grade="II" if i < harm else "IV")
    db.session.commit()
    return {"ent": ent}


def points(body):
    return {p["department"]["code"]: p for p in body["underreporting"]["points"]}


def test_funnel_flags_departments_below_the_limits(clients, funnel_data):
    body = clients("quality").get("/api/v1/reports/analysis", query_string=FEB).json
    ur = body["underreporting"]
    assert ur["hospital_rate"] == 2.5 and ur["reports"] == 100 and ur["discharges"] == 4000
    p = points(body)
    # GS: expected 50, limits 36.12 (95 %) and 29.12 (99.8 %): 30 is below the first only.
    assert p["GS"]["reports"] == 30 and p["GS"]["rate"] == 1.5 and p["GS"]["flag"] == "low_95"
    assert p["GS"]["limits"]["95"][0] == pytest.approx(100 * 36.122 / 2000, abs=1e-3)
    # CARD: 2 reports are hidden, but every count under 5 is below 10.5 (99.8 % limit of 25).
    assert p["CARD"]["reports"] is None and p["CARD"]["reports_display"] == "<5"
    assert p["CARD"]["rate"] is None and p["CARD"]["rate_display"] == "≤0.40"
    assert p["CARD"]["flag"] == "low_99.8"
    assert p["ORTH"]["flag"] == "high_95" and p["ORTH"]["harm_share"] == pytest.approx(14.7)
    assert sorted(ur["flagged"]) == ["CARD", "GS"]
    assert [d["code"] for d in ur["silent"]] == ["ENT"]


def test_hospital_rate_is_the_indicator_value(ctx, funnel_data, hospital):
    from qcflow.indicators.queries import compute
    from qcflow.reports.analysis import Period
    from qcflow.reports.underreporting import funnel

    now = local(2026, 3, 5, 9, 0)
    value = compute(date(2026, 2, 1), date(2026, 2, 28), codes=["ae_per_100_discharges"], now=now)[0]
    result = funnel(Period(date(2026, 2, 1), date(2026, 2, 28)), k=5, now=now)
    assert (value.numerator, value.denominator) == (result["reports"], result["discharges"])
    assert value.value == pytest.approx(result["hospital_rate"])


def test_flag_is_withheld_when_a_hidden_count_could_fall_either_side(ctx, hospital, create_report, create_census):
    from qcflow.extensions import db
    from qcflow.reports.analysis import Period
    from qcflow.reports.underreporting import funnel

    create_census(hospital["surgery"], date(2026, 2, 1), 400)
    create_census(hospital["cardio"], date(2026, 2, 1), 400)
    for _ in range(18):
        create_report(department=hospital["surgery"], submitted=local(2026, 2, 20, 10, 0))
    for _ in range(2):
        create_report(department=hospital["cardio"], submitted=local(2026, 2, 20, 10, 0))
    db.session.commit()
    result = funnel(Period(date(2026, 2, 1), date(2026, 2, 28)), k=5, now=local(2026, 3, 5, 9, 0))
    cardio = next(p for p in result["points"] if p["department"]["code"] == "CARD")
    # Expected 10: the 95 % limit (3.78) lies between 0 and 4, so the flag would tell 0–3 from 4.
    assert cardio["flag"] == "too_few" and cardio["reports"] is None


def test_department_head_sees_only_own_point(clients, funnel_data):
    body = clients("head").get("/api/v1/reports/analysis", query_string=FEB).json
    assert list(points(body)) == ["GS"]
    assert body["underreporting"]["hospital_rate"] == 2.5
    assert body["underreporting"]["silent"] == []


def test_silent_weeks_is_configurable(app, funnel_data, hospital, create_report):
    from qcflow.extensions import db
    from qcflow.reports.analysis import Period
    from qcflow.reports.underreporting import silent_departments

    create_report(department=funnel_data["ent"], submitted=local(2026, 1, 20, 10, 0))
    db.session.commit()
    period = Period(date(2026, 2, 1), date(2026, 2, 28))
    assert [d.code for d in silent_departments(period)] == ["ENT"]
    app.config["REPORT_SILENT_WEEKS"] = 6
    assert silent_departments(period) == []


def test_funnel_svg_is_drawn(clients, funnel_data):
    html = clients("quality").get("/reports/analysis?from=2026-02-01&to=2026-02-28").get_data(as_text=True)
    assert "耳鼻喉科" in html and "1.50" in html and "≤0.40" in html
