"""Reports from patients and families are counted apart: never in the reporting rate of the funnel, shown as
their own count in the analysis and the monthly bulletin, marked in the exports without their contact."""
from datetime import date

import pytest

from tests.conftest import sh as local
from tests.reports.conftest import NOW
from tests.reports.pdftools import needs_poppler, pdf_text
from tests.reports.test_exports import read_csv, read_xlsx

FEB = {"from": "2026-02-01", "to": "2026-02-28"}


@pytest.fixture
def public(february, hospital, create_report):
    """Two February reports from a patient and a family in general surgery, beside the month's 30 by staff."""
    from qcflow.extensions import db

    made = [create_report(mode="anonymous", public_role=role, category=None, grade=None, care_stage=None,
                          contact_name="李明", contact_phone="13800138000", submitted=local(2026, 2, day, 10, 0))
            for role, day in (("patient", 8), ("family", 9))]
    db.session.commit()
    return made


def test_the_funnel_leaves_them_out_and_the_analysis_counts_them_apart(clients, public):
    body = clients("quality").get("/api/v1/reports/analysis", query_string=FEB).json
    assert body["underreporting"]["reports"] == 30
    assert (body["found_by"]["reporter"]["display"], body["found_by"]["public"]["display"]) == ("30", "2")
    assert body["total"]["count"] == 32
    page = clients("quality").get("/reports/analysis", query_string={**FEB, "lang": "en"}).get_data(as_text=True)
    assert "Reported by patients and families: <strong>2</strong>" in page


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_exports_say_who_reported_and_never_the_contact(clients, public, fmt):
    response = clients("quality").get(f"/api/v1/exports/events.{fmt}", query_string={**FEB, "lang": "en"})
    rows = read_csv(response) if fmt == "csv" else read_xlsx(response)
    by_reference = {row["Reference"]: row["Source of the report"] for row in rows}
    assert by_reference[public[0].reference] == "The patient" and by_reference[public[1].reference] == "A family member"
    found_by = {row["Reference"]: row["Found by"] for row in rows}  # never "Reported by staff" for theirs
    assert found_by[public[0].reference] == found_by[public[1].reference] == "Patients and families"
    assert sum(1 for source in by_reference.values() if source == "Staff") == 30
    assert "13800138000" not in str(rows) and "李明" not in str(rows)


@needs_poppler
def test_the_bulletin_prints_them_as_their_own_count(app, ctx, public, tmp_path):
    from qcflow.reports import bulletin

    with app.test_request_context("/"):
        text = pdf_text(bulletin.render(date(2026, 2, 1), NOW), tmp_path)
    flat = "".join(text.split())
    assert "员工主动报告30例" in flat and "患者及家属报告2例" in flat
    indicator = next(line for line in text.splitlines() if "每百出院人次主动报告不良事件例次" in line)
    assert "2.40" in indicator  # 30 / 1250: the two from patients and families are not in it


def test_the_indicator_page_shows_them_beside_the_reporting_rate(clients, public):
    html = clients("quality").get("/indicators", query_string=FEB).get_data(as_text=True)
    assert "患者及家属报告（不计入本指标）：2 例" in html
    english = clients("quality").get("/indicators", query_string={**FEB, "lang": "en"}).get_data(as_text=True)
    assert "Reports from patients and families (not counted here): 2" in english
