"""CSV and XLSX exports: columns, scrubbed narratives, nothing about the reporter, scoping, streaming."""
import csv
import io
import re
import zipfile
from datetime import timedelta
from xml.etree import ElementTree

import pytest

from tests.conftest import sh as local

FEB = {"from": "2026-02-01", "to": "2026-02-28", "lang": "en"}
NARRATIVE = "患者张建国（住院号 A12345，电话 13812345678）在12床跌倒，身份证110101199003071234。"


@pytest.fixture
def reports(hospital, create_report):
    from qcflow.extensions import db

    named = create_report(mode="named", description=NARRATIVE, submitted=local(2026, 2, 10, 9, 17),
                          clinical_state="术后第2天", patient_mrn="A12345", immediate_actions="=HYPERLINK(\"x\")")
    anonymous = create_report(mode="anonymous", department=hospital["cardio"], category="fall", grade="II",
                              submitted=local(2026, 2, 11, 14, 47), occurred=local(2026, 2, 11, 13, 5))
    confidential = create_report(mode="confidential", department=hospital["ortho"], submitted=local(2026, 2, 12, 8, 0))
    create_report(state="duplicate", submitted=local(2026, 2, 12, 8, 0))
    create_report(submitted=local(2026, 3, 2, 8, 0))
    db.session.commit()
    return {"named": named, "anonymous": anonymous, "confidential": confidential}


def read_csv(response) -> list[dict]:
    data = response.get_data()
    assert data.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM for Excel
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))


NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}


def read_xlsx(response) -> list[dict]:
    """The first sheet as dicts (shared or inline strings), read with the standard library only."""
    book = zipfile.ZipFile(io.BytesIO(response.get_data()))
    shared = []
    if "xl/sharedStrings.xml" in book.namelist():
        root = ElementTree.fromstring(book.read("xl/sharedStrings.xml"))
        shared = ["".join(t.text or "" for t in si.iter(f"{{{NS['m']}}}t")) for si in root.findall("m:si", NS)]
    sheet = ElementTree.fromstring(book.read("xl/worksheets/sheet1.xml"))
    rows = []
    for row in sheet.iter(f"{{{NS['m']}}}row"):
        cells = {}
        for cell in row.findall("m:c", NS):
            column = re.match(r"[A-Z]+", cell.get("r")).group(0)
            if cell.get("t") == "s":
                text = shared[int(cell.find("m:v", NS).text)]
            elif cell.get("t") == "inlineStr":
                text = "".join(t.text or "" for t in cell.iter(f"{{{NS['m']}}}t"))
            else:
                value = cell.find("m:v", NS)
                text = value.text if value is not None else ""
            cells[column] = text
        rows.append(cells)
    columns = sorted(rows[0], key=lambda c: (len(c), c))
    header = [rows[0][c] for c in columns]
    return [{header[i]: r.get(c, "") for i, c in enumerate(columns)} for r in rows[1:]]


REPORTER_WORDS = re.compile(r"reporter|receipt|mode|anonymous|confidential|named|user", re.I)


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_event_export_has_the_analysis_fields_and_no_reporter(clients, reports, hospital, fmt):
    response = clients("quality").get(f"/api/v1/exports/events.{fmt}", query_string=FEB)
    assert response.status_code == 200
    assert response.is_streamed
    rows = read_csv(response) if fmt == "csv" else read_xlsx(response)
    assert [r["Reference"] for r in rows] == [reports[m].reference for m in ("named", "anonymous", "confidential")]
    header = list(rows[0])
    for column in ("Category", "Grade", "Care stage", "Occurred at", "Location", "Department where it happened",
                   "Clinical state", "What happened", "Harm", "NCC MERP category"):
        assert column in header
    assert not [c for c in header if REPORTER_WORDS.search(c) and c != "Grade given by the reporter"]
    everything = " ".join(" ".join(r.values()) for r in rows)
    assert "张建国" not in everything and "13812345678" not in everything and "A12345" not in everything
    assert "110101199003071234" not in everything and "12床" not in everything
    named = rows[0]
    assert named["What happened"].startswith("患者[姓名]（住院号 [编号]，电话 [手机号]）在[床号]跌倒")
    assert named["Clinical state"] == "术后第2天" and named["Category"]
    # Every submission time to the hour, as an anonymous one is stored: the minute cannot single it out.
    assert named["Reported at"] == "2026-02-10 09:00"
    assert rows[1]["Reported at"] == "2026-02-11 14:00" and rows[1]["Occurred at"] == "2026-02-11 13:05"
    assert hospital["doctor"].display_name not in everything and "doctor" not in everything


def test_csv_cells_cannot_become_formulas(clients, reports):
    rows = read_csv(clients("quality").get("/api/v1/exports/events.csv", query_string=FEB))
    assert rows[0]["Immediate actions"] == "'=HYPERLINK(\"x\")"


def test_chinese_headers_by_default(clients, reports):
    response = clients("quality").get("/api/v1/exports/events.csv", query_string={"from": "2026-02-01", "to": "2026-02-28"})
    assert response.headers["Content-Type"].startswith("text/csv")
    assert 'filename="events-2026-02-01-2026-02-28.csv"' in response.headers["Content-Disposition"]
    rows = read_csv(response)
    assert set(rows[0]) >= {"类别", "发生时间", "事件经过"}, list(rows[0])


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_department_head_exports_only_own_department(clients, reports, hospital, fmt):
    response = clients("head").get(f"/api/v1/exports/events.{fmt}", query_string=FEB)
    rows = read_csv(response) if fmt == "csv" else read_xlsx(response)
    assert [r["Reference"] for r in rows] == [reports["named"].reference]
    other = clients("head").get(f"/api/v1/exports/events.{fmt}", query_string={**FEB, "department": hospital["cardio"].id})
    assert other.status_code == 404


def test_quality_filters_by_department(clients, reports, hospital):
    rows = read_csv(clients("quality").get("/api/v1/exports/events.csv",
                                           query_string={**FEB, "department": hospital["cardio"].id}))
    assert [r["Reference"] for r in rows] == [reports["anonymous"].reference]


@pytest.mark.parametrize("path", ["events.csv", "events.xlsx", "followup.csv", "followup.xlsx"])
@pytest.mark.parametrize("user, status", [("anonymous", 401), ("doctor", 403), ("nurse", 403)])
def test_exports_are_for_heads_and_quality(clients, hospital, path, user, status):
    assert clients(user).get(f"/api/v1/exports/{path}", query_string=FEB).status_code == status


def test_xlsx_is_a_workbook_with_a_temporary_file_removed(clients, reports, tmp_path, monkeypatch):
    import tempfile

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    response = clients("quality").get("/api/v1/exports/events.xlsx", query_string=FEB)
    assert response.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert response.get_data()[:2] == b"PK"
    response.close()
    assert list(scratch.iterdir()) == []


@pytest.fixture
def followups(hospital, create_report):
    """Two day-surgery calls in February: one completed with an outcome, one waiting; one in cardiology."""
    from qcflow.clinical.models import Patient
    from qcflow.core.actors import Actor
    from qcflow.extensions import db
    from qcflow.followup import services

    at = local(2026, 1, 1)

    def patient(n, name):
        p = Patient(his_id=f"P{n}", mrn=f"M{n:04d}", name=name, sex="F", phone="13912345678", created_at=at, updated_at=at)
        db.session.add(p)
        db.session.flush()
        return p

    plans = []
    for n, (name, department) in enumerate([("赵敏", hospital["surgery"]), ("钱红", hospital["surgery"]),
                                            ("孙丽", hospital["cardio"])], start=1):
        anchor = local(2026, 2, 10, 16, 0) + timedelta(days=n)
        plans.append(services.enrol(patient(n, name), "day_surgery", source_type="manual", source_id=None,
                                    source_key=f"manual:{n}", anchor_at=anchor, department_id=department.id,
                                    actor=Actor.system("test"), now=anchor))
    db.session.flush()
    from qcflow.followup.models import Task
    import sqlalchemy as sa

    task = db.session.scalar(sa.select(Task).where(Task.plan_id == plans[0].id, Task.occurrence == 1))
    nurse = Actor.for_user(hospital["nurse"])
    done_at = local(2026, 2, 12, 9, 0)
    services.claim_task(task, actor=nurse, now=done_at)
    services.complete_task(task, {"respondent": "patient", "channel": "phone", "complication": True,
                                  "complication_note": "切口渗液，电话13800001111复诊", "unplanned_readmission": False,
                                  "satisfaction": 5, "note": "已宣教"}, actor=nurse, now=done_at)
    db.session.commit()
    return plans


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_followup_export_has_outcomes_and_masked_phones(clients, followups, hospital, fmt):
    response = clients("quality").get(f"/api/v1/exports/followup.{fmt}", query_string=FEB)
    assert response.status_code == 200 and response.is_streamed
    rows = read_csv(response) if fmt == "csv" else read_xlsx(response)
    assert [r["Patient"] for r in rows] == ["赵敏", "钱红", "孙丽"]
    done = rows[0]
    assert done["Phone (masked)"] == "139****5678"
    assert done["State"] == "Completed" and done["Complication"] == "yes" and done["Satisfaction (1–5)"] == "5"
    assert done["Respondent"] == "Patient" and done["Effective follow-up"] in ("yes", "no")
    assert done["Complication note"] == "切口渗液，电话[手机号]复诊"
    assert done["Completed by"] == hospital["nurse"].display_name
    assert rows[1]["State"] == "Waiting" and rows[1]["Complication"] == ""
    # A call completed inside its window was completed on time (it once read "Due", like an open call).
    assert done["Timeliness"] == "Completed on time" and rows[1]["Timeliness"] in ("Not open yet", "Due", "Overdue")
    assert "13912345678" not in str(rows)


def test_followup_export_is_scoped_for_department_heads(clients, followups):
    rows = read_csv(clients("head").get("/api/v1/exports/followup.csv", query_string=FEB))
    assert [r["Patient"] for r in rows] == ["赵敏", "钱红"]


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_an_export_beyond_the_memory_spool_goes_to_disk_and_leaves_no_file(clients, reports, tmp_path, monkeypatch, fmt):
    import tempfile

    from qcflow.reports import exports

    in_memory = read_csv if fmt == "csv" else read_xlsx
    expected = in_memory(clients("quality").get(f"/api/v1/exports/events.{fmt}", query_string=FEB))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.setattr(exports, "SPOOL_BYTES", 64)
    response = clients("quality").get(f"/api/v1/exports/events.{fmt}", query_string=FEB)
    assert int(response.headers["Content-Length"]) > 64
    assert in_memory(response) == expected
    response.close()
    assert list(scratch.iterdir()) == []
