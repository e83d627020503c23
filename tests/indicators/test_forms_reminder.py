"""The January reminder: on the configured dates the quality office hears which of last year's values are still
missing and whether the annual form was generated; once per date, catching up a missed date, silent after the due
day and when nothing is left to do."""
from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from tests.conftest import sh
from tests.indicators.reporting_fixtures import narrow_reported
from tests.indicators.test_forms import report


def remind(runner, at):
    result = runner.invoke(args=["qcflow", "scheduler", "tick", "--job", "indicators.remind_annual_form",
                                 "--now", at.isoformat()])
    assert result.exit_code == 0, result.output
    return result.output


def notifications():
    from qcflow.extensions import db
    from qcflow.notify.models import Notification

    db.session.expire_all()
    return list(db.session.scalars(sa.select(Notification).where(Notification.kind == "indicators.form_reminder")
                                   .order_by(Notification.id)))


def report_half(hospital):
    """2025: pain assessment approved January..October, November awaiting approval, December not reported."""
    from qcflow.extensions import db

    for month in range(1, 11):
        report(hospital, "pain_assessment_rate", date(2025, month, 1), "approved", 9, 10)
    report(hospital, "pain_assessment_rate", date(2025, 11, 1), "submitted", 9, 10)
    db.session.commit()


@pytest.fixture
def half_reported(hospital):
    """The catalogue narrowed to pain assessment as the one reported indicator (the others set up as not
    applicable), reported for half of 2025 (report_half)."""
    narrow_reported({"pain_assessment_rate"})
    report_half(hospital)


def test_missing_values_lists_reported_indicators_with_months_not_approved(app, hospital, half_reported):
    from qcflow.indicators import forms

    missing = forms.missing_values("henan", 2025)
    assert [(m.code, [d.month for d in m.months], m.pending) for m in missing] == [
        ("pain_assessment_rate", [11, 12], 1)]  # the computed follow-up rate is never missing
    assert forms.missing_values("henan", 2024)[0].months == tuple(date(2024, m, 1) for m in range(1, 13))


def test_with_the_full_catalogue_every_reported_indicator_of_the_annex_is_missing_until_approved(app, hospital):
    """Nothing set up: each indicator of the annex the catalogue reports by default is missing for every month not
    approved, in the annex's order; computed and not applicable ones never are."""
    from qcflow.indicators import catalogue, forms

    report_half(hospital)
    entries = {e.code: e for e in catalogue.entries(include_local=False)}
    annex = list(dict.fromkeys(code for row in catalogue.annex("henan") for code in row.codes))
    reported = [code for code in annex if entries[code].method == "reported"]
    missing = forms.missing_values("henan", 2025)
    assert [m.code for m in missing] == reported and len(reported) > 1
    by_code = {m.code: m for m in missing}
    assert ([d.month for d in by_code["pain_assessment_rate"].months], by_code["pain_assessment_rate"].pending) == (
        [11, 12], 1)
    assert all(len(m.months) == 12 and m.pending == 0 for m in missing if m.code != "pain_assessment_rate")
    assert "followup_rate_level4" in annex and "followup_rate_level4" not in by_code
    assert {m.department_id for m in missing} == {None}  # the quality office's until a department is named
    from qcflow.extensions import db
    from qcflow.indicators.models import IndicatorSetup

    db.session.add(IndicatorSetup(code="pain_assessment_rate", method="reported", department_id=hospital["surgery"].id,
                                  updated_at=sh(2026, 1, 2, 9, 0), updated_by="system:test"))
    db.session.flush()
    pain = {m.code: m for m in forms.missing_values("henan", 2025)}["pain_assessment_rate"]
    assert (pain.department_id, pain.department_key) == (hospital["surgery"].id, hospital["surgery"].id)
    assert pain.department == hospital["surgery"].name


def test_the_reminder_dates_tell_the_quality_office_once_each(app, runner, hospital, half_reported):
    from flask_babel import force_locale

    from qcflow.notify.messages import render

    assert "no reminder due" in remind(runner, sh(2026, 1, 4, 9, 0))
    assert notifications() == []
    assert "1 values missing, form not generated, 1 told" in remind(runner, sh(2026, 1, 5, 8, 30))
    told = notifications()
    assert [n.user_id for n in told] == [hospital["quality"].id]
    assert told[0].params == {"year": 2025, "due": "2026-01-31", "missing": 1, "form": "no"}
    assert told[0].link == "/indicators/forms?year=2025"
    with force_locale("en"):
        title, body = render("indicators.form_reminder", told[0].params)
    assert title.startswith("Annual indicator form 2025, due by 2026-01-31: 1 reported")
    assert body == "The annual form has not been generated yet."
    assert "already sent" in remind(runner, sh(2026, 1, 5, 17, 0))  # a second run the same day
    assert "already sent" in remind(runner, sh(2026, 1, 12, 8, 30))  # days between two dates: the same reminder
    assert len(notifications()) == 1
    remind(runner, sh(2026, 1, 20, 8, 30))
    assert len(notifications()) == 2
    assert "no reminder due" in remind(runner, sh(2026, 2, 1, 8, 30))  # after the due day
    assert len(notifications()) == 2


def test_a_missed_date_is_caught_up_until_the_next(app, runner, hospital, half_reported):
    """The scheduler was down on 5 January: the first run after it sends that reminder."""
    remind(runner, sh(2026, 1, 9, 8, 30))
    assert len(notifications()) == 1
    remind(runner, sh(2026, 1, 19, 8, 30))
    assert len(notifications()) == 1


def test_nothing_missing_and_the_form_generated_tells_nobody(app, runner, hospital, half_reported, actor_of):
    from qcflow.extensions import db
    from qcflow.indicators import forms
    from qcflow.indicators.models import IndicatorFormReminder, IndicatorReport

    for row in db.session.scalars(sa.select(IndicatorReport).where(IndicatorReport.month_on == date(2025, 11, 1))):
        row.state = "approved"
    report(hospital, "pain_assessment_rate", date(2025, 12, 1), "approved", 9, 10)
    forms.generate_form("henan", "annual", 2025, None, actor=actor_of("quality"), now=sh(2026, 1, 4, 9, 0))
    db.session.commit()
    assert "0 values missing, form revision 1, 0 told" in remind(runner, sh(2026, 1, 5, 8, 30))
    assert notifications() == []
    assert db.session.scalar(sa.select(sa.func.count()).select_from(IndicatorFormReminder)) == 1


def test_the_form_generated_but_values_missing_says_so(app, runner, hospital, half_reported, actor_of):
    from qcflow.extensions import db
    from qcflow.indicators import forms

    forms.generate_form("henan", "annual", 2025, None, actor=actor_of("quality"), now=sh(2026, 1, 4, 9, 0))
    db.session.commit()
    remind(runner, sh(2026, 1, 20, 8, 30))
    assert notifications()[0].params["form"] == "yes"


def test_the_dates_are_settings(app, runner, hospital, half_reported):
    app.config["INDICATOR_FORM_REMINDER_DATES"] = ["01-02"]
    app.config["INDICATOR_FORM_DUE"] = "01-10"
    remind(runner, sh(2026, 1, 2, 9, 0))
    assert notifications()[0].params["due"] == "2026-01-10"
    app.config["INDICATOR_FORM_REMINDER_DATES"] = "01-02, 01-03"  # from the environment, not JSON
    remind(runner, sh(2026, 1, 3, 9, 0))
    assert len(notifications()) == 2
    app.config["INDICATOR_FORM_REMINDER_DATES"] = ["1st of January"]
    result = runner.invoke(args=["qcflow", "scheduler", "tick", "--job", "indicators.remind_annual_form",
                                 "--now", sh(2027, 1, 2, 9, 0).isoformat()])
    assert result.exit_code == 1  # the run is logged as failed, naming the setting
    assert "INDICATOR_FORM_REMINDER_DATES: '1st of January' is not a day of the year as MM-DD" in result.output


def test_the_job_is_in_the_jobs_table():
    from qcflow.scheduling.jobs import find_job

    spec = find_job("indicators.remind_annual_form")
    assert spec.function == "qcflow.indicators.jobs:remind_annual_form" and spec.trigger == "cron"
