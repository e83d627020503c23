"""The data-entry, approval and completeness pages; reported indicators on /indicators, their page and drill-down;
the reminders job."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from qcflow.core.periods import add_months, month_end, month_start
from qcflow.core.time import today
from tests.indicators.reporting_fixtures import default_reported, reported  # noqa: F401

SNAKE = re.compile(r">[^<]*\b[a-z]+_[a-z_]+\b[^<]*<")


@pytest.fixture
def last_month():
    return add_months(month_start(today()), -1)


def _reports():
    from qcflow.extensions import db
    from qcflow.indicators.models import IndicatorReport

    db.session.expire_all()
    return db.session.scalars(sa.select(IndicatorReport).order_by(IndicatorReport.id)).all()


def _form(client, path, **fields):
    page = client.get(path).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return client.post(path, data={"csrf_token": token, **fields})


def _visible(html: str) -> str:
    """The page's text outside <code>, scripts and attributes."""
    html = re.sub(r"<code>.*?</code>|<script.*?</script>|<style.*?</style>", "", html, flags=re.S)
    return re.sub(r"<[^>]+>", " ", html)


def test_a_head_enters_their_departments_values(reported, clients, last_month):
    head = clients("head")
    path = f"/indicators/report?month={last_month:%Y-%m}"
    page = head.get(path)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "指标数据填报" in html and "疼痛评估规范率" in html
    assert 'id="report-local_gs_wait"' in html and 'id="report-local_card_ratio"' not in html
    assert 'name="numerator"' in html and '<option value="1"' in html  # a rate's parts; a status as done/not done
    assert not re.findall(r"\b[a-z]+_[a-z_]+\b", _visible(html).replace("csrf_token", ""))
    saved = _form(head, path, code="pain_assessment_rate", month=f"{last_month:%Y-%m}", numerator="45",
                  denominator="50", note="抽查50份")
    assert saved.status_code == 302 and "saved=pain_assessment_rate" in saved.headers["Location"]
    (report,) = _reports()
    assert (report.state, report.value, report.department_id) == ("submitted", 90.0, reported["surgery"].id)
    after = head.get(saved.headers["Location"])
    assert after.status_code == 200
    html = after.get_data(as_text=True)
    assert "已保存" in html and "已提交" in html
    assert f'name="version" value="{report.version}"' in html


def test_a_refused_form_shows_its_errors_in_chinese_and_english(reported, clients, last_month):
    head = clients("head")
    path = f"/indicators/report?month={last_month:%Y-%m}"
    refused = _form(head, path, code="pain_assessment_rate", month=f"{last_month:%Y-%m}", numerator="60",
                    denominator="50")
    assert refused.status_code == 422
    assert "分子不能大于分母" in refused.get_data(as_text=True)
    english = _form(head, path + "&lang=en", code="local_gs_checklist", month=f"{last_month:%Y-%m}", value="2")
    assert english.status_code == 422 and "Enter 1 (done) or 0 (not done)." in english.get_data(as_text=True)
    assert _reports() == []


def test_this_month_cannot_be_entered_before_its_last_day(reported, clients):
    this_month = month_start(today())
    if month_end(this_month) == today():
        pytest.skip("today is the month's last day")
    html = clients("head").get(f"/indicators/report?month={this_month:%Y-%m}").get_data(as_text=True)
    assert "起方可填报" in html and 'name="numerator"' not in html


def test_another_departments_head_gets_404_and_a_nurse_403(reported, clients, last_month):
    other = reported["cardio"].id
    assert clients("head").get(f"/indicators/report?department={other}").status_code == 404
    assert clients("head").get(f"/indicators/completeness?department={other}").status_code == 404
    assert clients("head").get("/indicators/approvals").status_code == 403
    assert clients("nurse").get("/indicators/report").status_code == 403
    quality = clients("quality").get(f"/indicators/report?month={last_month:%Y-%m}&department={other}")
    assert quality.status_code == 200 and 'id="report-local_card_ratio"' in quality.get_data(as_text=True)


def test_the_quality_office_approves_many_returns_and_reopens(reported, clients, actor_of, last_month):
    from qcflow.extensions import db
    from qcflow.indicators import reporting

    head = actor_of("head")
    at = datetime.now(timezone.utc)
    first, _ = reporting.submit("pain_assessment_rate", last_month, head.department_id, numerator=4, denominator=5,
                                actor=head, now=at)
    second, _ = reporting.submit("local_gs_operations", last_month, head.department_id, value=3, actor=head, now=at)
    third, _ = reporting.submit("local_gs_wait", last_month, head.department_id, value=20, actor=head, now=at)
    db.session.commit()
    quality = clients("quality")
    path = f"/indicators/approvals?month={last_month:%Y-%m}"
    html = quality.get(path).get_data(as_text=True)
    assert "审核填报数值" in html and html.count('form="bulk-approve"') == 7
    done = _form(quality, path, action="approve", id=[str(first.id), str(second.id)],
                 **{f"version-{first.id}": "1", f"version-{second.id}": "1"})
    assert done.status_code == 302
    # The page says what happened: the approved rows leave the list of values awaiting a decision.
    assert "已审核通过 2 项" in quality.get(done.headers["Location"]).get_data(as_text=True)
    no_reason = _form(quality, path, action="return", id=str(third.id), **{f"version-{third.id}": "1"})
    assert no_reason.status_code == 422 and "请填写原因" in no_reason.get_data(as_text=True)
    returned = _form(quality, path, action="return", id=str(third.id), reason="时间单位应为分钟",
                     **{f"version-{third.id}": "1"})
    assert returned.status_code == 302
    # The department's head is told what to correct, with the quality office's words and a link to the value.
    from qcflow.notify.models import Notification

    told = db.session.scalars(sa.select(Notification).where(Notification.user_id == head.user_id)).all()
    assert [n.kind for n in told] == ["indicator.report_returned"]
    assert "/indicators/report?month=" in told[0].link and told[0].params["reason"] == "时间单位应为分钟"
    stale = _form(quality, path + "&state=approved", action="reopen", id=str(first.id), reason="更正",
                  **{f"version-{first.id}": "1"})
    assert stale.status_code == 409
    reopened = _form(quality, path + "&state=approved", action="reopen", id=str(first.id), reason="病案室更正",
                     **{f"version-{first.id}": "2"})
    assert reopened.status_code == 302
    assert [r.state for r in _reports()] == ["reopened", "approved", "returned"]
    # The head sees the quality office's reason on the entry page.
    entry = clients("head").get(f"/indicators/report?month={last_month:%Y-%m}").get_data(as_text=True)
    assert "时间单位应为分钟" in entry and "病案室更正" in entry


def test_completeness_for_the_quality_office_and_for_a_head(reported, clients, actor_of, last_month):
    from qcflow.extensions import db
    from qcflow.indicators import reporting

    card = actor_of("card_head")
    reporting.submit("local_card_ratio", last_month, card.department_id, value=1.5, actor=card,
                     now=datetime.now(timezone.utc))
    db.session.commit()
    year = last_month.year
    quality = clients("quality").get(f"/indicators/completeness?year={year}")
    assert quality.status_code == 200
    html = quality.get_data(as_text=True)
    assert "指标填报完整性" in html and "疼痛评估规范率" in html and "未填报" in html and "普通外科" in html
    # One section per reporting department, the quality office's (what no department was named for) first,
    # each with what it still owes counted: the full catalogue stays readable.
    months = len(reporting.months_so_far(year, datetime.now(timezone.utc)))
    summary = html.split('id="completeness-summary"', 1)[1].split("</ul>", 1)[0]
    assert summary.index("质控办") < summary.index("普通外科") < summary.index("心内科")
    assert f"心内科</a>：2 项指标，{2 * months - 1} 个月份值未填报" in summary
    assert f"普通外科</a>：4 项指标，{4 * months} 个月份值未填报" in summary
    assert html.index('id="owed-0"') < html.index(f'id="owed-{reported["surgery"].id}"')
    assert "疼痛评估规范率" in html.split(f'id="owed-{reported["surgery"].id}"', 1)[1].split("</section>", 1)[0]
    own = clients("card_head").get(f"/indicators/completeness?year={year}").get_data(as_text=True)
    assert "疼痛评估规范率" not in own and "科室指标" in own and "已提交" in own or "待审核" in own
    assert 'id="completeness-summary"' not in own  # one department: no summary
    assert clients("quality").get("/indicators/completeness?year=2999").status_code == 422


def test_reported_indicators_on_the_dashboards(reported, clients, actor_of, last_month):
    from qcflow.extensions import db
    from qcflow.indicators import reporting

    head, quality = actor_of("head"), actor_of("quality")
    at = datetime.now(timezone.utc)
    report, _ = reporting.submit("pain_assessment_rate", last_month, head.department_id, numerator=9, denominator=10,
                                 actor=head, now=at)
    reporting.decide(report, "approve", actor=quality, now=at, expected_version=report.version)
    db.session.commit()
    period = f"from={last_month.isoformat()}&to={month_end(last_month).isoformat()}"
    index = clients("quality").get(f"/indicators?{period}").get_data(as_text=True)
    row = re.search(r'<tr id="ind-pain_assessment_rate".*?</tr>', index, re.S).group(0)
    assert "90.00%" in row and "/indicators/pain_assessment_rate/cases" in row
    detail = clients("quality").get(f"/indicators/pain_assessment_rate?month={last_month:%Y-%m}")
    assert detail.status_code == 200 and "90.00%" in detail.get_data(as_text=True)
    cases = clients("quality").get(f"/indicators/pain_assessment_rate/cases?{period}")
    html = cases.get_data(as_text=True)
    assert cases.status_code == 200 and "普通外科" in html and "已审核" in html or "审核通过" in html
    assert clients("nurse").get("/indicators/qc_centre_setup_rate").status_code == 404


# The reminders job ------------------------------------------------------------------------------------------

def _sh(*args):
    from tests.conftest import sh

    return sh(*args).astimezone(timezone.utc)


def test_reminders_before_the_deadline_once_and_overdue_after(reported, app):
    from qcflow.core.time import today as today_at
    from qcflow.extensions import db
    from qcflow.indicators import jobs, reporting
    from qcflow.notify.models import Notification

    def notes():
        db.session.expire_all()
        return [(n.user_id, n.kind) for n in db.session.scalars(sa.select(Notification).order_by(Notification.id))]

    def counts():
        return {n.user_id: n.params["n"] for n in db.session.scalars(
            sa.select(Notification).where(Notification.kind == "indicator.report_due"))}

    head, card_head, quality = reported["head"].id, reported["card_head"].id, reported["quality"].id
    assert "0" in jobs.remind_reports(_sh(2026, 4, 6, 9))            # before the window (deadline 10 April)
    db.session.commit()
    assert notes() == []
    # Surgery, cardiology and the quality office (for the catalogue's reported indicators no department was
    # named for): one notice each, with the count of what each owes.
    assert jobs.remind_reports(_sh(2026, 4, 7, 9)).startswith("departments reminded 3")
    db.session.commit()
    assert sorted(notes()) == sorted([(head, "indicator.report_due"), (card_head, "indicator.report_due"),
                                      (quality, "indicator.report_due")])
    assert counts() == {head: 4, card_head: 2, quality: len(default_reported(app)) - 1}
    assert jobs.remind_reports(_sh(2026, 4, 8, 9)).startswith("departments reminded 0")  # once per month
    db.session.commit()
    assert len(notes()) == 3
    # Cardiology reports its values; after the deadline the quality office hears of surgery's.
    from qcflow.core.actors import Actor

    card = Actor.for_user(reported["card_head"])
    for code, values in (("local_card_ratio", {"value": 1.0}), ("local_card_rate", {"numerator": 1, "denominator": 2})):
        reporting.submit(code, today_at(_sh(2026, 3, 31, 12)), card.department_id, actor=card,
                         now=_sh(2026, 4, 9, 9), **values)
    db.session.commit()
    assert jobs.remind_reports(_sh(2026, 4, 11, 9)).endswith("overdue notices 1")
    db.session.commit()
    assert notes()[-1] == (quality, "indicator.report_overdue")
    overdue = db.session.scalars(sa.select(Notification).order_by(Notification.id.desc())).first()
    assert overdue.params["departments"] == 2  # surgery and the quality office; cardiology has reported
    assert jobs.remind_reports(_sh(2026, 4, 12, 9)).endswith("overdue notices 0")
    db.session.commit()
    assert len(notes()) == 4


def test_the_reminder_job_is_in_the_jobs_table():
    from qcflow.scheduling.jobs import find_job

    spec = find_job("indicators.remind_reports")
    assert spec is not None and spec.function == "qcflow.indicators.jobs:remind_reports"


def test_the_deadline_follows_the_setting(app):
    from datetime import date

    from qcflow.indicators import reporting

    with app.app_context():
        assert reporting.deadline(date(2026, 3, 1)) == date(2026, 4, 10)
        app.config["INDICATOR_REPORT_DEADLINE_DAY"] = 31
        assert reporting.deadline(date(2026, 3, 1)) == date(2026, 4, 30)
        assert timedelta(days=app.config["INDICATOR_REMINDER_DAYS"]) == timedelta(days=3)
