"""The centre's comparisons against numbers worked out by hand on a small fixture: three hospitals, two levels, a rate
and a time, a newer version of a month replacing an older one (only current values count)."""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from qcflow.region import protocol

RATE, TIME = "stemi_reperfusion_rate", "emergency_response_time_mean"
START, END = date(2026, 1, 1), date(2026, 6, 1)
AT = datetime(2026, 8, 5, 2, 0, tzinfo=timezone.utc)
#: When the fixture's hospitals were registered (before every month the tests ask of them).
REGISTERED = datetime(2025, 1, 10, 2, 0, tzinfo=timezone.utc)


@pytest.fixture
def app(centre_app):
    """Every test here runs on a centre installation (the common fixtures build on `app`)."""
    return centre_app


@pytest.fixture
def hospital_layout():
    departments = {"centre": {"code": "QCC", "name": "质控中心", "kind": "functional"}}
    people = {"centre": ("centre", "centre", "centre"), "quality": ("quality", "quality", "centre"),
              "admin": ("admin", "admin", "centre")}
    return departments, people


class Factory:
    """Rows as the receiving service writes them: hospitals, submissions (versions) and their monthly values."""

    def __init__(self):
        from qcflow.extensions import db

        self.db = db
        self.keys = {}

    def hospital(self, code, level, *, region="郑州", ownership="public", name=None, active=True, registered=None):
        from qcflow.region.models import RegionHospital

        key = protocol.generate_key()
        row = RegionHospital(code=code, name=name or f"{code}医院", name_en=f"Hospital {code}", level=level,
                             ownership=ownership, region=region, public_key=protocol.public_key_text(key),
                             is_active=active, created_at=registered or REGISTERED, updated_at=AT, updated_by="test")
        self.db.session.add(row)
        self.db.session.flush()
        self.keys[code] = key
        return row

    def month(self, hospital, month: date, values: dict, *, revision=1, received_at=None):
        """One version of a month; it becomes the current one (an earlier version of the month stops being)."""
        from qcflow.region.models import RegionSubmission, RegionValue

        period = f"{month:%Y-%m}"
        for older in self.db.session.query(RegionSubmission).filter_by(hospital_id=hospital.id, kind="month",
                                                                      period=period, is_current=True):
            older.is_current = False
            self.db.session.query(RegionValue).filter_by(submission_id=older.id).update({"is_current": False})
        submission = RegionSubmission(hospital_id=hospital.id, kind="month", period=period, revision=revision,
                                      starts_on=month, ends_on=month, document="{}", digest="0" * 64,
                                      signature="ed25519=x", signed_at=received_at or AT,
                                      received_at=received_at or AT, is_current=True)
        self.db.session.add(submission)
        self.db.session.flush()
        for code, value in values.items():
            numerator, denominator, number = (value + (None,)) if isinstance(value, tuple) else (None, None, value)
            if numerator is not None and denominator:
                number = numerator * 100 / denominator
            self.db.session.add(RegionValue(submission_id=submission.id, hospital_id=hospital.id, code=code,
                                            month_on=month, numerator=numerator, denominator=denominator,
                                            value=number, is_current=True))
        self.db.session.flush()
        return submission


@pytest.fixture
def factory(ctx):
    return Factory()


@pytest.fixture
def fixture(factory):
    """T1, T2 tertiary, S1 secondary. T2 corrected January (version 2 replaces version 1)."""
    t1, t2 = factory.hospital("T1", "tertiary"), factory.hospital("T2", "tertiary", region="洛阳")
    s1 = factory.hospital("S1", "secondary")
    factory.month(t1, date(2026, 1, 1), {RATE: (8, 10), TIME: 10.0})
    factory.month(t1, date(2026, 2, 1), {RATE: (9, 10), TIME: 14.0})
    factory.month(t2, date(2026, 1, 1), {RATE: (1, 10), TIME: 30.0})
    factory.month(t2, date(2026, 1, 1), {RATE: (5, 10), TIME: 9.0}, revision=2)
    factory.month(t2, date(2026, 2, 1), {RATE: (6, 10), TIME: 11.0})
    factory.month(s1, date(2026, 1, 1), {RATE: (3, 4)})
    factory.db.session.commit()
    return {"T1": t1, "T2": t2, "S1": s1}


def test_rates_are_pooled_from_current_values_and_ranked_by_direction(fixture):
    from qcflow.region import comparisons

    tertiary = comparisons.compare(RATE, START, END).level("tertiary")
    rows = {r.hospital.code: r for r in tertiary.rows}
    assert (rows["T1"].numerator, rows["T1"].denominator, rows["T1"].value) == (17, 20, pytest.approx(85.0))
    # T2's January counts as its second version says (5/10), not its first (1/10).
    assert (rows["T2"].numerator, rows["T2"].denominator, rows["T2"].value) == (11, 20, pytest.approx(55.0))
    assert (tertiary.regional.numerator, tertiary.regional.denominator) == (28, 40)
    assert tertiary.regional_value == pytest.approx(70.0)
    assert (rows["T1"].rank, rows["T2"].rank) == (1, 2)  # higher is better
    assert [r.hospital.code for r in tertiary.rows] == ["T1", "T2"]
    # The plan's target for 2026 (Henan, ≥ 85 from 2025 on): T1 meets it, T2 does not.
    assert (tertiary.target.comparison, tertiary.target.value) == ("ge", 85.0)
    assert (rows["T1"].met, rows["T2"].met) == (True, False)
    assert rows["T1"].months == 2 and rows["T2"].months == 2


def test_a_time_is_the_mean_of_the_months_and_lower_ranks_first(fixture):
    from qcflow.region import comparisons

    tertiary = comparisons.compare(TIME, START, END, level="tertiary").level("tertiary")
    rows = {r.hospital.code: r for r in tertiary.rows}
    assert rows["T1"].value == pytest.approx(12.0) and rows["T2"].value == pytest.approx(10.0)
    assert (rows["T2"].rank, rows["T1"].rank) == (1, 2)
    assert tertiary.regional_value == pytest.approx(11.0)  # (10 + 14 + 9 + 11) / 4
    assert tertiary.limits == [] and tertiary.proportion is None


def test_levels_are_compared_apart_and_a_small_cell_is_flagged(fixture):
    from qcflow.region import comparisons

    secondary = comparisons.compare(RATE, START, END).level("secondary")
    assert [r.hospital.code for r in secondary.rows] == ["S1"]
    assert secondary.rows[0].value == pytest.approx(75.0) and secondary.rows[0].small  # 4 cases < k = 5
    assert secondary.rows[0].rank is None  # a rate over so few cases is not ranked
    # The level's regional value would be S1's hidden cell itself (4 cases pooled < k): not shown.
    assert secondary.regional_value is None


def test_ranks_share_a_place_on_a_tie():
    from qcflow.region.comparisons import ranks

    assert ranks({1: 80.0, 2: 90.0, 3: 80.0, 4: None}, "higher") == {2: 1, 1: 2, 3: 2}
    assert ranks({1: 80.0, 2: 90.0, 3: 70.0}, "falling") == {3: 1, 1: 2, 2: 3}
    assert ranks({1: 80.0}, "none") == {}


def test_funnel_limits_at_known_values():
    from qcflow.region.comparisons import limit_at, outside

    limit = limit_at("percent", 0.2, 100)  # se = 0.04
    assert limit.lower95 == pytest.approx(12.16, abs=1e-3) and limit.upper95 == pytest.approx(27.84, abs=1e-3)
    assert limit.lower998 == pytest.approx(7.639, abs=1e-3) and limit.upper998 == pytest.approx(32.361, abs=1e-3)
    per100 = limit_at("per100", 0.5, 200)  # Poisson: se = sqrt(0.5 / 200) = 0.05
    assert per100.upper95 == pytest.approx(59.8, abs=1e-2) and per100.lower998 == pytest.approx(34.549, abs=1e-2)
    assert limit_at("percent", 0.02, 10).lower95 == 0.0  # never below zero
    assert outside("percent", 0.2, 40, 100) == "above" and outside("percent", 0.2, 5, 100) == "below"
    assert outside("percent", 0.2, 25, 100) is None


def test_the_funnel_marks_a_hospital_outside_the_limits(factory):
    from qcflow.region import comparisons

    for n, (numerator, denominator) in enumerate([(50, 100), (50, 100), (50, 100), (90, 100)]):
        factory.month(factory.hospital(f"H{n}", "tertiary"), date(2026, 3, 1), {RATE: (numerator, denominator)})
    level = comparisons.compare(RATE, START, END, level="tertiary").level("tertiary")
    assert {r.hospital.code: r.outside for r in level.rows} == {"H0": None, "H1": None, "H2": None, "H3": "above"}
    assert level.limits and level.limits[-1].denominator > 100  # the limits reach past the largest hospital


def test_completeness_grid_and_overdue(factory, centre_app):
    from qcflow.region import comparisons

    t1, t2 = factory.hospital("T1", "tertiary"), factory.hospital("T2", "tertiary")
    factory.hospital("OLD", "tertiary", active=False)
    factory.month(t1, date(2026, 6, 1), {RATE: (1, 2)}, received_at=datetime(2026, 7, 3, 1, 0, tzinfo=timezone.utc))
    factory.month(t1, date(2026, 6, 1), {RATE: (1, 3)}, revision=2)
    today = date(2026, 8, 10)  # July is owed until 15 August; June was due on 15 July
    months, rows = comparisons.completeness(2026, today)
    grid = {r.hospital.code: r.cells for r in rows}
    assert set(grid) == {"T1", "T2"}  # a retired hospital owes nothing
    assert grid["T1"][date(2026, 6, 1)].status == "sent" and grid["T1"][date(2026, 6, 1)].revision == 2
    assert grid["T2"][date(2026, 6, 1)].status == "overdue"
    assert grid["T2"][date(2026, 7, 1)].status == "missing"
    assert grid["T2"][date(2026, 8, 1)].status == "not_due"
    counts = comparisons.month_counts(months, rows)
    assert counts[date(2026, 6, 1)] == {"sent": 1, "missing": 0, "overdue": 1, "not_due": 0,
                                         "not_expected": 0}
    _months, secondary = comparisons.completeness(2026, today, level="secondary")
    assert secondary == []


def test_the_reminder_is_sent_once_per_month_with_a_notification_and_a_webhook(factory, hospital, centre_app):
    from qcflow.extensions import db
    from qcflow.notify.models import Notification
    from qcflow.notify.webhook import PENDING
    from qcflow.region.centre_jobs import remind_missing
    from qcflow.region.models import RegionReminder

    centre_app.config["WEBHOOK_URL"] = "http://127.0.0.1:9/hook"
    t1, t2 = factory.hospital("T1", "tertiary"), factory.hospital("T2", "tertiary")
    factory.month(t1, date(2026, 7, 1), {RATE: (1, 2)})
    db.session.commit()
    assert remind_missing(datetime(2026, 8, 10, 2, tzinfo=timezone.utc)) == "not yet due"
    result = remind_missing(datetime(2026, 8, 15, 2, tzinfo=timezone.utc))
    assert result.startswith("2026-07: 1 hospitals missing")
    notes = db.session.query(Notification).all()
    assert [n.user_id for n in notes] == [hospital["centre"].id]
    assert notes[0].params["hospitals"] == "T2医院（T2）"  # named, with the code
    hooks = [payload for _url, _timeout, payload in db.session().info.get(PENDING, [])]
    assert len(hooks) == 1  # one POST: the notification's, with the month and the hospitals' codes
    assert hooks[0]["kind"] == "region.missing_month"
    assert hooks[0]["params"] == {"month": "2026-07", "missing": 1, "hospitals": "T2医院（T2）", "codes": "T2"}
    db.session.commit()
    from qcflow.core.audit import AuditEntry

    assert [e.object_type for e in db.session.query(AuditEntry).filter_by(action="region_reminder.send")] == [
        "region_reminder"]
    assert remind_missing(datetime(2026, 8, 16, 2, tzinfo=timezone.utc)) == "2026-07: reminder already sent"
    assert db.session.query(Notification).count() == 1
    assert db.session.query(RegionReminder).one().missing == 1
    from qcflow.region.centre_jobs import reminders

    sent = reminders(2026)
    assert [(r.month_on, [h.code for h in r.hospitals], r.recipients) for r in sent] == [(date(2026, 7, 1), ["T2"], 1)]


def test_the_reminder_does_nothing_on_a_hospital_installation(app_hospital_ctx):
    from qcflow.region.centre_jobs import remind_missing

    assert remind_missing(datetime(2026, 8, 15, 2, tzinfo=timezone.utc)) == "not a centre"


@pytest.fixture
def app_hospital_ctx(database_url, tmp_path):
    from tests.conftest import make_app

    with make_app(database_url, str(tmp_path / "h")).app_context():
        yield


def test_the_profile_ranks_n_of_n_within_the_level(fixture):
    from qcflow.region import comparisons

    rows = {r.entry.code: r for r in comparisons.profile(fixture["T2"], START, END)}
    assert rows[RATE].value == pytest.approx(55.0) and (rows[RATE].rank, rows[RATE].ranked) == (2, 2)
    assert rows[RATE].regional_value == pytest.approx(70.0) and rows[RATE].met is False
    assert (rows[TIME].rank, rows[TIME].ranked) == (1, 2) and rows[TIME].sums.months == 2
    assert rows["annual_work_plan_status"].value is None and rows["annual_work_plan_status"].rank is None


def test_the_indicator_list_counts_hospitals_and_regional_values_per_level(fixture):
    from qcflow.region import comparisons

    found = {s.entry.code: s for s in comparisons.indicator_summaries(START, END)}
    assert found[RATE].levels["tertiary"][0] == 2 and found[RATE].levels["tertiary"][1] == pytest.approx(70.0)
    assert found[RATE].levels["secondary"][0] == 1
    assert found[TIME].levels["secondary"] == (0, None)


def test_periods_default_to_the_last_complete_half_year_and_refuse_the_future():
    from qcflow.core.errors import Unprocessable
    from qcflow.region.comparisons import check_months

    assert check_months(None, None, date(2026, 8, 5)) == (date(2026, 1, 1), date(2026, 6, 1))
    assert check_months(None, None, date(2026, 3, 5)) == (date(2025, 7, 1), date(2025, 12, 1))
    with pytest.raises(Unprocessable) as refused:
        check_months(date(2026, 5, 1), date(2026, 9, 1), date(2026, 8, 5))
    assert "to" in refused.value.errors
    with pytest.raises(Unprocessable) as refused:
        check_months(date(2026, 5, 1), date(2026, 2, 1), date(2026, 8, 5))
    assert "from" in refused.value.errors


# Findings of the review: counts, values and months -----------------------------------------------------------------

def test_meeting_the_target_is_counted_over_the_same_hospitals(fixture, factory):
    """A small hospital (not ranked) was counted in X but not in Y: "2 of 2" with one of the two not meeting it,
    "1 of 0" at a level of small hospitals only."""
    from qcflow.region import comparisons

    factory.month(factory.hospital("T3", "tertiary"), date(2026, 3, 1), {RATE: (3, 3)})  # 100 %, 3 cases < k
    factory.month(factory.hospital("S2", "secondary"), date(2026, 3, 1), {RATE: (4, 4)})
    factory.db.session.commit()
    comparison = comparisons.compare(RATE, START, END)
    tertiary, secondary = comparison.level("tertiary"), comparison.level("secondary")
    assert (tertiary.meeting, len(tertiary.judged)) == (1, 2)  # T1 meets it, T2 does not; T3 too small
    assert (secondary.meeting, len(secondary.judged)) == (0, 0)


SURVIVAL = "cancer_5y_survival"


def test_a_rate_sent_as_a_value_only_is_the_mean_of_months_then_of_hospitals(factory):
    """Five-year survival comes as a percentage without its parts: it was shown as "—" with no regional value."""
    from qcflow.region import comparisons

    t1, t2 = factory.hospital("T1", "tertiary"), factory.hospital("T2", "tertiary")
    factory.month(t1, date(2026, 1, 1), {SURVIVAL: 60.0})
    factory.month(t1, date(2026, 2, 1), {SURVIVAL: 70.0})
    factory.month(t2, date(2026, 1, 1), {SURVIVAL: 50.0})
    factory.db.session.commit()
    level = comparisons.compare(SURVIVAL, START, END, level="tertiary").level("tertiary")
    rows = {r.hospital.code: r for r in level.rows}
    assert rows["T1"].value == pytest.approx(65.0) and rows["T2"].value == pytest.approx(50.0)
    assert (rows["T1"].rank, rows["T2"].rank) == (1, 2) and not rows["T1"].small
    # The mean of the hospitals (65 + 50) / 2, not of the months (60 + 70 + 50) / 3.
    assert level.regional_value == pytest.approx(57.5) and level.limits == []
    summary = next(s for s in comparisons.indicator_summaries(START, END) if s.entry.code == SURVIVAL)
    assert summary.levels["tertiary"] == (2, pytest.approx(57.5))
    profile = {r.entry.code: r for r in comparisons.profile(t2, START, END)}
    assert profile[SURVIVAL].value == pytest.approx(50.0) and profile[SURVIVAL].regional_value == pytest.approx(57.5)


def test_a_regional_value_made_only_of_hidden_cells_is_not_shown(factory):
    from qcflow.region import comparisons

    factory.month(factory.hospital("S1", "secondary"), date(2026, 1, 1), {RATE: (3, 4)})
    factory.db.session.commit()
    assert comparisons.compare(RATE, START, END).level("secondary").regional_value is None
    summary = next(s for s in comparisons.indicator_summaries(START, END) if s.entry.code == RATE)
    assert summary.levels["secondary"] == (1, None)
    assert comparisons.regional_trend(RATE, START, END)["secondary"][0] == (date(2026, 1, 1), None)


def test_months_before_a_hospitals_registration_are_not_expected(factory):
    """Registered on 5 August: January to July are neither overdue nor missing, nor in the reminder."""
    from qcflow.region import comparisons

    factory.hospital("OLD", "tertiary")
    factory.hospital("NEW", "tertiary", registered=AT)
    factory.db.session.commit()
    months, rows = comparisons.completeness(2026, date(2026, 8, 20))
    grid = {r.hospital.code: r.cells for r in rows}
    assert {grid["NEW"][date(2026, m, 1)].status for m in range(1, 8)} == {"not_expected"}
    assert grid["NEW"][date(2026, 8, 1)].status == "not_due"
    assert grid["OLD"][date(2026, 6, 1)].status == "overdue"
    new = next(r for r in rows if r.hospital.code == "NEW")
    assert new.owed == 0 and new.expected(months[:6]) == 0
    counts = comparisons.month_counts(months, rows)
    assert counts[date(2026, 6, 1)]["overdue"] == 1 and counts[date(2026, 6, 1)]["not_expected"] == 1
    assert [h.code for h in comparisons.missing_hospitals(date(2026, 7, 1))] == ["OLD"]
    assert [h.code for h in comparisons.missing_hospitals(date(2026, 8, 1))] == ["NEW", "OLD"]


def test_a_hospital_that_sent_before_its_registration_owes_the_months_from_its_first(factory):
    """Registered on 5 August after sending from February (keys re-registered, a centre set up late): its gap in
    June is a gap, not "before registration", and the reminder names it."""
    from qcflow.region import comparisons

    early = factory.hospital("EARLY", "tertiary", registered=AT)
    for month in (2, 3, 4, 5, 7):
        factory.month(early, date(2026, month, 1), {RATE: (1, 2)})
    factory.db.session.commit()
    _months, rows = comparisons.completeness(2026, date(2026, 8, 20))
    cells = rows[0].cells
    assert cells[date(2026, 1, 1)].status == "not_expected"
    assert cells[date(2026, 6, 1)].status == "overdue"
    assert [h.code for h in comparisons.missing_hospitals(date(2026, 6, 1))] == ["EARLY"]
