"""The province table (XLSX) and the six-monthly evaluation (PDF, in Chinese)."""
from __future__ import annotations

import re
import subprocess
import zipfile
from io import BytesIO
from xml.etree import ElementTree

import pytest

from tests.region.test_comparisons import RATE, TIME  # noqa: F401
from tests.region.test_comparisons import app, factory, fixture, hospital_layout  # noqa: F401

NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}


def sheet_rows(data: bytes) -> list[list]:
    """The first sheet's rows as lists of cell values (shared strings resolved, numbers as floats)."""
    with zipfile.ZipFile(BytesIO(data)) as book:
        strings = []
        if "xl/sharedStrings.xml" in book.namelist():
            root = ElementTree.fromstring(book.read("xl/sharedStrings.xml"))
            strings = ["".join(t.text or "" for t in si.iter(f"{{{NS['m']}}}t")) for si in root.findall("m:si", NS)]
        sheet = ElementTree.fromstring(book.read("xl/worksheets/sheet1.xml"))
    rows = []
    for row in sheet.iter(f"{{{NS['m']}}}row"):
        cells = {}
        for cell in row.findall("m:c", NS):
            column = re.match(r"[A-Z]+", cell.get("r")).group(0)
            index = 0
            for letter in column:
                index = index * 26 + ord(letter) - 64
            value = cell.find("m:v", NS)
            if value is None:
                continue
            cells[index - 1] = strings[int(value.text)] if cell.get("t") == "s" else float(value.text)
        rows.append([cells.get(i) for i in range(max(cells) + 1)] if cells else [])
    return rows


def test_the_province_table_has_a_row_per_hospital_targets_and_regional_values(fixture, clients):
    response = clients("centre").get("/centre/province.xlsx?from=2026-01&to=2026-06")
    assert response.status_code == 200 and response.mimetype.endswith("spreadsheetml.sheet")
    rows = sheet_rows(response.data)
    header = next(r for r in rows if r and r[0] == "医院代码")
    rate = header.index("急性ST段抬高型心肌梗死再灌注治疗率（%）")
    time = next(i for i, name in enumerate(header) if name and name.startswith("平均急救响应时间（"))
    # No indicator codes shown as values; one note row explains "<5".
    assert not any(RATE in row or TIME in row for row in rows)
    assert sum(1 for r in rows if r and "<5" in str(r[0]) and "5" in str(r[0])) == 1
    by_code = {r[0]: r for r in rows if r and r[0] in ("T1", "T2", "S1")}
    assert set(by_code) == {"T1", "T2", "S1"}
    assert by_code["T1"][:5] == ["T1", "T1医院", "三级医院", "公立", "郑州"]
    assert by_code["T1"][rate] == pytest.approx(85.0) and by_code["T2"][rate] == pytest.approx(55.0)
    assert by_code["T2"][time] == pytest.approx(10.0)
    assert by_code["S1"][rate] == "<5"  # 4 cases: a small cell
    targets = [r for r in rows if r and str(r[0]).startswith("目标值")]
    assert len(targets) == 2 and targets[0][rate] == "≥85.00%"
    regional = [r for r in rows if r and str(r[0]).startswith("区域值")]
    assert len(regional) == 2 and regional[0][rate] == pytest.approx(70.0)
    # The secondary level's regional value would be S1's hidden cell (4 cases): left empty beside its "<5".
    assert len(regional[1]) <= rate or regional[1][rate] is None


def test_the_province_table_refuses_a_bad_period(fixture, clients):
    response = clients("centre").get("/centre/province.xlsx?from=2026-06&to=2026-01")
    assert response.status_code == 422


def pdf_text(data: bytes, tmp_path) -> str:
    path = tmp_path / "evaluation.pdf"
    path.write_bytes(data)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout


def test_the_six_monthly_evaluation_is_a_chinese_pdf(fixture, clients, tmp_path):
    response = clients("centre").get("/centre/evaluation.pdf?year=2026&half=1&lang=en")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    text = pdf_text(response.data, tmp_path)
    assert "医疗质量指标半年评价报告" in text
    assert "半年报送完整性" in text and "急性ST段抬高型心肌梗死再灌注治疗率" in text
    assert "T1医院" in text and "2026 年上半年" in text and "第 1 个半年" not in text
    # Two hospitals: one ranking, not the same two as the best five and as the worst five.
    assert "最好的五家" not in text and "最差的五家" not in text


def test_the_evaluation_refuses_a_half_year_not_yet_ended(fixture, clients):
    assert clients("centre").get("/centre/evaluation.pdf?year=2200&half=1").status_code == 422
    assert clients("centre").get("/centre/evaluation.pdf?year=2026&half=3").status_code == 422


def test_the_documents_are_rate_limited_like_the_other_exports(fixture, clients, centre_app):
    centre_app.config["RATE_LIMITS"] = {**centre_app.config["RATE_LIMITS"], "export": (1, 60), "pdf": (1, 60)}
    client = clients("centre")
    assert client.get("/centre/province.xlsx?from=2026-01&to=2026-06").status_code == 200
    assert client.get("/centre/province.xlsx?from=2026-01&to=2026-06").status_code == 429
    assert client.get("/centre/evaluation.pdf?year=2026&half=1").status_code == 200
    assert client.get("/centre/evaluation.pdf?year=2026&half=1").status_code == 429


def test_the_province_table_shows_statuses_in_words(fixture, factory, clients):
    from datetime import date

    factory.month(fixture["T1"], date(2026, 3, 1), {"annual_work_plan_status": 1.0})
    factory.month(fixture["T2"], date(2026, 3, 1), {"annual_work_plan_status": 0.0})
    factory.db.session.commit()
    rows = sheet_rows(clients("centre").get("/centre/province.xlsx?from=2026-01&to=2026-06").data)
    header = next(r for r in rows if r and r[0] == "医院代码")
    column = next(i for i, name in enumerate(header) if name and name.startswith("年度工作方案制定情况"))
    by_code = {r[0]: r for r in rows if r and r[0] in ("T1", "T2")}
    assert (by_code["T1"][column], by_code["T2"][column]) == ("已完成", "未完成")


def test_the_evaluation_counts_months_from_registration_and_lists_all_of_a_small_level(fixture, factory, clients,
                                                                                       tmp_path):
    from datetime import datetime, timezone

    factory.hospital("NEW", "tertiary", registered=datetime(2026, 5, 20, tzinfo=timezone.utc), name="新医院")
    factory.db.session.commit()
    text = pdf_text(clients("centre").get("/centre/evaluation.pdf?year=2026&half=1").data, tmp_path)
    new_line = next(line for line in text.splitlines() if "新医院" in line)
    assert "0/2" in new_line  # May and June expected, none sent; January to April not counted as missing
    assert "排名" in text


def test_the_evaluation_names_its_centre_ranks_with_cases_and_met_and_keeps_a_level_with_its_heading(
        fixture, clients, centre_app, tmp_path):
    centre_app.config["HOSPITAL_NAME"] = "河南省医疗质量控制中心"
    response = clients("centre").get("/centre/evaluation.pdf?year=2026&half=1")
    text = pdf_text(response.data, tmp_path)
    cover = text.split("\f")[0]
    assert "河南省医疗质量控制中心" in cover
    assert "分母（例数）" in text and "达标" in text.split("分母（例数）")[1]
    assert "0 家医院中 0 家" not in text  # the secondary level has only a rate over fewer than k cases:
    assert "无医院例数足以判定是否达标" in text and "本期无医院报送" not in text  # it reported, it was not judged
    # A level's heading, its chart and its ranking stay on one page.
    page = next(p for p in text.split("\f") if "急性ST段抬高型心肌梗死再灌注治疗率" in p and "三级医院" in p)
    assert "T1医院" in page.split("三级医院")[1]
