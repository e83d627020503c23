"""The monthly quality bulletin: Chinese title, the indicator numbers, embedded CJK font, page numbers,
month validation, and the scheduler job that archives last month's bulletin once."""
import os
import re
from datetime import date, datetime, timezone

import pytest

from tests.conftest import sh as local
from tests.reports.conftest import NOW
from tests.reports.pdftools import CJK_FONT, embedded_fonts, missing_glyphs, needs_poppler, pdf_text


def render(app, month=date(2026, 2, 1), now=NOW):
    from qcflow.reports import bulletin

    with app.test_request_context("/"):
        return bulletin.render(month, now)


@needs_poppler
def test_bulletin_prints_the_title_and_the_indicator_numbers(app, ctx, february, tmp_path):
    from qcflow.indicators.queries import compute

    with missing_glyphs() as missing:
        data = render(app)
    assert data.startswith(b"%PDF") and missing == []
    text = pdf_text(data, tmp_path)
    assert "质量安全月报" in text and "2026年2月" in text
    value = compute(date(2026, 2, 1), date(2026, 2, 28), codes=["ae_per_100_discharges"], now=NOW)[0]
    assert (value.numerator, value.denominator) == (30, 1250) and value.met is False
    row = next(line for line in text.splitlines() if "每百出院人次主动报告不良事件例次" in line)
    assert re.search(r"2\.40\s+30\s+1250\s+>\s*2\.50\s+未达标", row), row
    assert re.search(r"第\s*1\s*页\s*/\s*共\s*\d+\s*页", text)
    assert any(CJK_FONT.search(name) for name in embedded_fonts(data, tmp_path))


@needs_poppler
def test_bulletin_shows_the_analysis_and_hides_small_department_counts(app, ctx, february, tmp_path):
    text = pdf_text(render(app), tmp_path)
    assert "漏报" in text or "Under-reporting" in text
    department_rows = [line for line in text.splitlines() if line.strip().startswith("骨科")]
    assert department_rows and all("<5" in line or "≤" in line for line in department_rows), department_rows
    assert "2.40" in text  # the hospital rate, as the API reports it


def test_api_serves_the_pdf_to_the_quality_office(clients, february, hospital):
    response = clients("quality").get("/api/v1/reports/monthly.pdf?month=2026-02")
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert 'filename="bulletin-2026-02.pdf"' in response.headers["Content-Disposition"]
    assert response.get_data().startswith(b"%PDF")


@pytest.mark.parametrize("month", ["2026-13", "26-02", "2026-2", "february", ""])
def test_malformed_month_is_422_with_the_reason(clients, hospital, month):
    response = clients("quality").get(f"/api/v1/reports/monthly.pdf?month={month}&lang=en")
    assert response.status_code == 422
    assert "YYYY-MM" in response.json["errors"]["month"][0]


def test_future_month_is_422_with_the_reason(clients, hospital):
    import time_machine

    with time_machine.travel(datetime(2026, 3, 5, 1, 0, tzinfo=timezone.utc), tick=False):
        response = clients("quality").get("/api/v1/reports/monthly.pdf?month=2026-04&lang=en")
        current = clients("quality").get("/api/v1/reports/monthly.pdf?month=2026-03&lang=en")
    assert response.status_code == 422
    assert "future" in response.json["errors"]["month"][0]
    assert current.status_code == 200


@pytest.mark.parametrize("user, status", [("head", 403), ("doctor", 403), ("anonymous", 401)])
def test_bulletin_is_for_the_quality_office(clients, hospital, user, status):
    assert clients(user).get("/api/v1/reports/monthly.pdf?month=2026-02").status_code == status


def test_job_archives_last_month_once(app, ctx, february):
    from qcflow.reports import jobs
    from qcflow.scheduling.jobs import find_job

    assert find_job("reports.monthly_bulletin").trigger_args == {"day": 1, "hour": 2, "minute": 0}
    path = os.path.join(app.instance_path, "reports", "bulletin-2026-02.pdf")
    first = jobs.monthly_bulletin(now=local(2026, 3, 1, 2, 0))
    with open(path, "rb") as handle:
        assert first.endswith(path) and handle.read(4) == b"%PDF"
    stamp = os.stat(path).st_mtime_ns
    assert jobs.monthly_bulletin(now=local(2026, 3, 1, 2, 5)) == "2026-02: already archived"
    assert os.stat(path).st_mtime_ns == stamp
    assert os.listdir(os.path.dirname(path)) == ["bulletin-2026-02.pdf"]


@needs_poppler
def test_bulletin_prints_the_months_approved_reported_values_and_what_awaits_approval(app, ctx, hospital, tmp_path):
    from qcflow.extensions import db
    from qcflow.indicators.models import IndicatorReport, IndicatorSetup

    feb = date(2026, 2, 1)
    # Pain assessment, reported by surgery (approved) and cardiology (awaiting approval); the nursing
    # department's time-based indicator reported by surgery as a value with its unit.
    for code in ("pain_assessment_rate", "emergency_response_time_mean"):
        db.session.add(IndicatorSetup(code=code, method="reported", updated_at=NOW, updated_by="test"))
    rows = [("pain_assessment_rate", hospital["surgery"], "approved", 45, 50, 90.0),
            ("pain_assessment_rate", hospital["cardio"], "submitted", 10, 10, 100.0),
            ("emergency_response_time_mean", hospital["surgery"], "approved", None, None, 12.5)]
    for code, department, state, numerator, denominator, value in rows:
        db.session.add(IndicatorReport(code=code, month_on=feb, department_id=department.id, numerator=numerator,
                                       denominator=denominator, value=value, state=state, channel="page",
                                       submitted_at=NOW, submitted_by="test"))
    db.session.flush()
    text = pdf_text(render(app), tmp_path)
    assert "科室上报指标" in text
    pain = next(line for line in text.splitlines() if "疼痛评估规范率" in line)
    # Only the approved report counts: 45 / 50; cardiology's waits, named but not counted.
    assert re.search(r"90\.0\s*%\s+45\s+50", pain) and "1 条待审核" in text, pain
    response = next(line for line in text.splitlines() if "12.5 分钟" in line)
    assert response
