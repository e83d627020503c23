"""Reports found by the system (filed from a trigger's firing) are counted apart: never in the reporting rate
of the funnel plot, not a report that keeps a department off the silent list, marked in the exports, and
printed with the trigger statistics in the monthly bulletin."""
import re
from datetime import date

import pytest

from tests.conftest import sh as local
from tests.reports.conftest import NOW
from tests.reports.pdftools import needs_poppler, pdf_text
from tests.reports.test_exports import read_csv, read_xlsx

FEB = {"from": "2026-02-01", "to": "2026-02-28"}


def render(app, month=date(2026, 2, 1)):
    from qcflow.reports import bulletin

    with app.test_request_context("/"):
        return bulletin.render(month, NOW)


@pytest.fixture
def found(february, hospital, create_report):
    """Two February reports filed from firings in orthopaedics, beside the month's 30 reports by staff."""
    from qcflow.extensions import db

    for day in (8, 9):
        create_report(department=hospital["ortho"], found_by="trigger", mode="confidential",
                      submitted=local(2026, 2, day, 10, 0))
    db.session.commit()


def test_funnel_counts_only_reports_made_by_staff(clients, found, hospital):
    body = clients("quality").get("/api/v1/reports/analysis", query_string=FEB).json
    funnel = body["underreporting"]
    assert (funnel["reports"], funnel["discharges"], funnel["hospital_rate"]) == (30, 1250, 2.4)
    assert body["found_by"]["reporter"]["display"] == "30" and body["found_by"]["trigger"]["display"] == "2"
    assert body["total"]["count"] == 32  # the analysis itself covers every report, whoever found the harm


def test_a_department_with_only_reports_found_by_the_system_is_silent(clients, hospital, create_report,
                                                                      create_census):
    from qcflow.extensions import db

    create_census(hospital["ortho"], date(2026, 2, 1), 100)
    create_report(department=hospital["ortho"], found_by="trigger", mode="confidential",
                  submitted=local(2026, 2, 20, 10, 0))
    create_report(department=hospital["surgery"], submitted=local(2026, 2, 20, 10, 0))
    db.session.commit()
    funnel = clients("quality").get("/api/v1/reports/analysis", query_string=FEB).json["underreporting"]
    silent = {d["code"] for d in funnel["silent"]}
    assert "ORTH" in silent and "GS" not in silent
    assert funnel["reports"] == 1


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_exports_label_who_found_each_report(clients, hospital, create_report, fmt):
    from qcflow.extensions import db

    staff = create_report(submitted=local(2026, 2, 3, 9, 0))
    system = create_report(found_by="trigger", mode="confidential", submitted=local(2026, 2, 4, 9, 0))
    db.session.commit()
    for lang, column, labels in (("en", "Found by", ("Reported by staff", "Found by the system")),
                                 ("zh", "发现方式", ("主动报告", "系统发现"))):
        response = clients("quality").get(f"/api/v1/exports/events.{fmt}", query_string={**FEB, "lang": lang})
        rows = read_csv(response) if fmt == "csv" else read_xlsx(response)
        by_reference = {row["Reference" if lang == "en" else "编号"]: row[column] for row in rows}
        assert by_reference == {staff.reference: labels[0], system.reference: labels[1]}


@needs_poppler
def test_bulletin_prints_the_trigger_statistics_in_chinese(app, ctx, february, firings, tmp_path):
    text = pdf_text(render(app), tmp_path)
    assert "自动提取：触发器统计" in text and "系统发现但无人上报的损害" in text
    row = next(line for line in text.splitlines() if "术后48小时内非计划重返手术室" in line)
    # firings, reviewed, confirmed, dismissed, positive predictive value, median time to review
    assert re.search(r"5\s+4\s+2\s+2\s+50\.0 %\s+7\.0 小时", row), row
    total = next(line for line in text.splitlines() if line.strip().startswith("合计") and "60.0 %" in line)
    assert re.search(r"6\s+5\s+3\s+2\s+60\.0 %\s+4\.0 小时", total), total
    # February's 30 reports and the one linked to a firing count; the two filed from firings do not.
    indicator = next(line for line in text.splitlines() if "每百出院人次主动报告不良事件例次" in line)
    assert re.search(r"2\.48\s+31\s+1250", indicator), indicator
    assert "员工主动报告 31 例" in text and "系统发现）2 例" in text
