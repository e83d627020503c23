"""Survival of the five key cancers: one row per diagnosis from SQL, Kaplan–Meier by lifelines, checked by hand."""
from datetime import date

import pytest

from tests.indicators.conftest import Builder
from tests.indicators.survival_data import AS_OF, call, day, diagnosis, five_lung_cancers


@pytest.fixture
def b(hospital):
    return Builder(hospital)


@pytest.fixture
def five(b):
    five_lung_cancers(b)


def rows(as_of=AS_OF, **kw):
    from qcflow.extensions import db
    from qcflow.indicators.survival import diagnosis_rows

    return [(r.duration, r.event) for r in db.session.execute(diagnosis_rows(as_of, **kw))]


def test_one_row_per_diagnosis_with_duration_and_event(five):
    assert rows() == [(200, 1), (500, 0), (800, 1), (1500, 0), (2000, 0)]


def test_kaplan_meier_numbers_match_the_hand_count(five):
    from qcflow.indicators.survival import curves

    lung = next(c for c in curves(AS_OF, k=5) if c.cancer_type == "lung")
    assert (lung.n, lung.events, lung.suppressed) == (5, 2, False)
    one, three, five_years = (lung.at(y) for y in (1, 3, 5))
    assert (one.days, three.days, five_years.days) == (365, 1096, 1826)
    assert one.survival == pytest.approx(0.8) and one.at_risk == 4
    assert three.survival == pytest.approx(0.8 * 2 / 3) and three.at_risk == 2
    assert five_years.survival == pytest.approx(0.8 * 2 / 3) and five_years.at_risk == 1
    for estimate in (one, three, five_years):
        assert 0 <= estimate.lower < estimate.survival < estimate.upper <= 1
    assert lung.times[:4] == [0.0, 200.0, 500.0, 800.0]
    assert lung.survival[:4] == pytest.approx([1.0, 0.8, 0.8, 0.8 * 2 / 3])


def test_survival_value_for_the_catalogue(five):
    from qcflow.indicators.survival import survival_value

    assert survival_value("cancer_5y_survival_lung", date(2025, 1, 1), AS_OF) == pytest.approx(100 * 0.8 * 2 / 3)
    assert survival_value("cancer_5y_survival", date(2025, 1, 1), AS_OF) == pytest.approx(100 * 0.8 * 2 / 3)
    assert survival_value("cancer_5y_survival_breast", date(2025, 1, 1), AS_OF) is None   # no diagnoses
    assert survival_value("no_such_code", date(2025, 1, 1), AS_OF) is None


def test_nobody_followed_five_years_gives_no_five_year_value(five):
    from qcflow.indicators.survival import curves, survival_value

    as_of = day(1700)                          # E's call at 2000 is not known yet: E is censored on day 0
    assert rows(as_of) == [(200, 1), (500, 0), (800, 1), (1500, 0), (0, 0)]
    lung = next(c for c in curves(as_of, k=5) if c.cancer_type == "lung")
    # E leaves at 0: 4 at risk at 200 → 3/4; 2 at risk at 800 (C, D) → 3/4 × 1/2.
    assert lung.at(5).survival is None and lung.at(3).survival == pytest.approx(0.375)
    assert survival_value("cancer_5y_survival_lung", as_of, as_of) is None


def test_censoring_rules(b):
    """What counts as known alive, and a death after the day asked for."""
    later = b.patient(died_on=day(900))
    diagnosis(b, later)
    call(b, later, day(400), vital_status="alive")
    family_says_dead = b.patient()
    diagnosis(b, family_says_dead)
    call(b, family_says_dead, day(300), respondent="family", vital_status=None)  # no word on vital status
    unreachable = b.patient()
    diagnosis(b, unreachable)
    call(b, unreachable, day(600), state="unreachable")
    never_seen = b.patient()
    diagnosis(b, never_seen)
    b.db.session.commit()
    # Known on day 700: the death on day 900 is not known yet, so the patient is censored at the call (400);
    # a family reached without a vital status and an unreachable call are no evidence (censored at 0).
    assert rows(day(700)) == [(400, 0), (0, 0), (0, 0), (0, 0)]
    assert rows(day(1000))[0] == (900, 1)


def test_only_key_cancers_diagnosed_by_the_day_and_the_department(b, hospital):
    p = b.patient()
    diagnosis(b, p, "other")
    diagnosis(b, b.patient(), "breast", on=date(2026, 2, 1))          # after the day asked for
    diagnosis(b, b.patient(), "gastric", department=hospital["cardio"])
    b.db.session.commit()
    assert len(rows()) == 1
    assert rows(department_id=hospital["surgery"].id) == []
    assert rows(cancer_type="gastric") == [(0, 0)]


def test_small_groups_are_fewer_than_k(five, app):
    from qcflow.indicators.survival import curves, survival_value

    app.config["REPORT_SMALL_CELL_K"] = 6
    lung = next(c for c in curves(AS_OF) if c.cancer_type == "lung")
    assert lung.suppressed and lung.times == [] and lung.estimates == []
    assert survival_value("cancer_5y_survival_lung", AS_OF, AS_OF) is None


def test_api_gives_curves_estimates_and_hides_small_groups(five, clients):
    body = clients("quality").get(f"/api/v1/indicators/survival?as_of={AS_OF}").get_json()
    groups = {g["code"]: g for g in body["groups"]}
    lung = groups["cancer_5y_survival_lung"]
    assert lung["n"] == 5 and lung["estimates"][2]["survival"] == pytest.approx(0.8 * 2 / 3)
    assert lung["curve"]["times"][:2] == [0.0, 200.0]
    assert groups["cancer_5y_survival_breast"] == {
        "code": "cancer_5y_survival_breast", "cancer_type": "breast", "name": "乳腺癌", "suppressed": True,
        "n": None, "events": None, "estimates": [], "curve": None}
    assert body["k"] == 5 and body["as_of"] == AS_OF.isoformat()


def test_api_refuses_the_future_and_other_departments(five, clients, hospital):
    assert clients("quality").get("/api/v1/indicators/survival?as_of=2999-01-01").status_code == 422
    assert clients("head").get(f"/api/v1/indicators/survival?department={hospital['cardio'].id}").status_code == 404
    own = clients("head").get("/api/v1/indicators/survival").get_json()
    assert own["department_id"] == hospital["surgery"].id
    assert clients("nurse").get("/api/v1/indicators/survival").status_code == 403


def test_page_shows_the_chart_and_the_table(five, clients):
    import re

    html = clients("quality").get(f"/indicators/survival?as_of={AS_OF}").get_data(as_text=True)
    assert 'id="km-chart"' in html and "data:image/svg+xml" in html
    row = re.search(r'<tr id="group-lung">(.*?)</tr>', html, re.S).group(1)
    assert "80.0%" in row and "53.3%" in row
    assert "少于 5 例" in re.search(r'<tr id="group-breast">(.*?)</tr>', html, re.S).group(1)
    text = re.sub(r"<[^>]+>", " ", re.sub(r"<(script|style|title)\b.*?</\1>", "", html, flags=re.S))
    assert not re.search(r"\b[a-z]+(_[a-z0-9]+)+\b", text)
    english = clients("quality").get(f"/indicators/survival?as_of={AS_OF}&lang=en").get_data(as_text=True)
    assert "Lung cancer" in english or "lung cancer" in english


def test_a_department_group_beside_fewer_than_k_others_is_suppressed_too(five, b, hospital, clients):
    """The hospital shows 6 lung cancers, surgery 5 of them: showing surgery's curve would give away the one
    cardiology patient by subtraction, so surgery's lung group is suppressed although it holds k."""
    from qcflow.indicators.survival import curves, survival_value

    diagnosis(b, b.patient(), "lung", department=hospital["cardio"])
    b.db.session.commit()
    surgery = hospital["surgery"].id
    hospital_lung = next(c for c in curves(AS_OF) if c.cancer_type == "lung")
    surgery_lung = next(c for c in curves(AS_OF, department_id=surgery) if c.cancer_type == "lung")
    assert hospital_lung.n == 6 and not hospital_lung.suppressed
    assert surgery_lung.n == 5 and surgery_lung.suppressed and surgery_lung.times == []
    assert survival_value("cancer_5y_survival_lung", AS_OF, AS_OF, surgery) is None
    body = clients("quality").get(f"/api/v1/indicators/survival?as_of={AS_OF}&department=GS").get_json()
    lung = next(g for g in body["groups"] if g["code"] == "cancer_5y_survival_lung")
    assert lung["suppressed"] and lung["n"] is None and lung["curve"] is None
