"""HIS intake: batch upserts by HIS id, per-row errors, re-import, CSV import, masking."""
import sqlalchemy as sa

from tests.conftest import login


def count(model):
    from qcflow.extensions import db

    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def test_resending_the_same_batch_changes_nothing(ctx, reference):
    from qcflow.clinical.models import Patient
    from qcflow.core.audit import AuditEntry

    batch = [{"his_id": "P2", "mrn": "BA002", "name": "李四", "sex": "F"},
             {"his_id": "P3", "mrn": "BA003", "name": "张三", "sex": "M"}]
    first = reference.push("patients", batch).json
    assert (first["created"], first["updated"], first["unchanged"], first["failed"]) == (2, 0, 0, 0)
    audits = count(AuditEntry)
    again = reference.push("patients", batch).json
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 2)
    assert count(AuditEntry) == audits and count(Patient) == 3


def test_a_changed_record_is_updated_and_audited_with_its_changes(ctx, reference):
    from qcflow.core.audit import AuditEntry
    from qcflow.extensions import db

    result = reference.push("patients", [{"his_id": "P1", "mrn": "BA001", "name": "王小明", "sex": "M",
                                          "birth_on": "1960-05-01", "phone": "13900000000",
                                          "id_number": "110101196005011234"}]).json
    assert result["updated"] == 1 and result["results"][0]["status"] == "updated"
    entry = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "intake.patients.updated")).one()
    assert '"changed":["phone"]' in entry.detail and "13900000000" in entry.detail


def test_one_bad_row_keeps_the_good_rows_and_names_the_problem(ctx, reference):
    from qcflow.clinical.models import Operation

    result = reference.push("operations", [
        {"his_id": "O1", "encounter_his_id": "E1", "procedure_code": "51.2301", "surgeon_his_id": "S1",
         "planned_at": "2026-03-03T08:00:00+08:00"},
        {"his_id": "O2", "encounter_his_id": "E1", "procedure_code": "99.9999", "surgeon_his_id": "S1",
         "planned_at": "2026-03-03T08:00:00+08:00"},
        {"his_id": "O3", "encounter_his_id": "E404", "procedure_code": "51.2301", "surgeon_his_id": "S1",
         "planned_at": "soon"},
    ]).json
    assert [r["status"] for r in result["results"]] == ["created", "error", "error"]
    assert "99.9999" in result["results"][1]["errors"]["procedure_code"][0]
    assert set(result["results"][2]["errors"]) == {"planned_at"}
    assert count(Operation) == 1


def test_strict_batch_with_a_bad_row_lands_nothing(ctx, reference):
    from qcflow.clinical.models import Patient

    response = reference.push("patients", [{"his_id": "P9", "mrn": "X", "name": "甲", "sex": "F"},
                                           {"his_id": "P10", "mrn": "Y", "name": "乙", "sex": "Q"}], strict=True)
    assert response.status_code == 422
    assert [r["status"] for r in response.json["results"]] == ["skipped", "error"]
    assert count(Patient) == 1


def test_the_catalogue_grade_wins_and_the_conflict_is_reported(ctx, reference):
    from qcflow.clinical.models import Operation
    from qcflow.extensions import db

    result = reference.push("operations", [
        {"his_id": "O1", "encounter_his_id": "E1", "procedure_code": "51.2301", "grade": 2, "surgeon_his_id": "S1",
         "planned_at": "2026-03-03T08:00:00+08:00"}]).json
    assert result["results"][0]["status"] == "created"
    assert "51.2301" in result["results"][0]["warnings"][0]
    assert db.session.scalar(sa.select(Operation.grade)) == 3


def test_duplicate_rows_in_one_batch_are_refused(ctx, reference):
    rows = [{"his_id": "P7", "mrn": "A", "name": "甲", "sex": "F"}] * 2
    result = reference.push("patients", rows).json
    assert [r["status"] for r in result["results"]] == ["created", "error"]


def test_census_is_keyed_by_department_and_month(ctx, reference):
    from qcflow.clinical.models import DischargeCensus

    assert reference.push("census", [{"department_code": "GS", "month": "2026-02", "discharges": 410}]).json["created"] == 1
    update = reference.push("census", [{"department_code": "GS", "month": "2026-02", "discharges": 415}]).json
    assert update["updated"] == 1 and count(DischargeCensus) == 1
    bad = reference.push("census", [{"department_code": "NOPE", "month": "2026-13", "discharges": -1}])
    assert bad.status_code == 422 and set(bad.json["results"][0]["errors"]) == {"month", "discharges"}


def test_unknown_kind_is_404_and_clinicians_cannot_push(app, his, create_user):
    from qcflow.extensions import db

    assert his.push("pets", [{"x": 1}]).status_code == 404
    create_user(username="doc", roles=("clinician",))
    db.session.commit()
    client = app.test_client()
    login(client, "doc")
    from tests.conftest import csrf_from

    response = client.post("/api/v1/intake/patients", json={"items": [{"his_id": "x"}]},
                           headers={"X-CSRFToken": csrf_from(client, "/account")})
    assert response.status_code == 403


def test_patient_phone_and_id_numbers_are_masked_in_lists(app, reference, quality_client):
    [patient] = quality_client.get("/api/v1/patients?mrn=BA001").json
    assert patient["phone"] == "138****5678" and patient["id_number"] == "110101********1234"
    assert patient["name"] == "王小明"


def test_cli_import_reports_rows_by_line_number(app, his, runner, tmp_path):
    from qcflow.clinical.models import Procedure

    path = tmp_path / "procedures.csv"
    path.write_text("code,name,grade,is_restricted_technology\n"
                    "47.0101,阑尾切除术,2,false\n"
                    "52.7001,胰十二指肠切除术,5,false\n"
                    "51.2301,腹腔镜胆囊切除术,3,\n", encoding="utf-8-sig")
    result = runner.invoke(args=["qcflow", "import", "procedures", str(path)])
    assert result.exit_code == 1
    assert "line 3: grade:" in result.output and "created 2" in result.output and "refused 1" in result.output
    again = runner.invoke(args=["qcflow", "import", "procedures", str(path)])
    assert "created 0" in again.output and "unchanged 2" in again.output
    strict = tmp_path / "strict.csv"
    strict.write_text("code,name,grade\n10.1,甲,1\n10.2,乙,9\n", encoding="utf-8")
    result = runner.invoke(args=["qcflow", "import", "procedures", str(strict), "--strict"])
    assert result.exit_code == 1 and "nothing imported" in result.output
    with app.app_context():
        from qcflow.extensions import db

        assert db.session.get(Procedure, "10.1") is None


def test_cli_import_unknown_kind_exits_2(runner, tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a\n1\n")
    result = runner.invoke(args=["qcflow", "import", "pets", str(path)])
    assert result.exit_code == 2 and "patients" in result.output


def test_admin_uploads_reference_csv_on_the_page(app, his, create_user):
    import io

    from qcflow.extensions import db
    from tests.conftest import csrf_from

    create_user(username="adm", roles=("admin",))
    db.session.commit()
    client = app.test_client()
    login(client, "adm")
    token = csrf_from(client, "/admin/reference/staff")
    data = {"csrf_token": token, "file": (io.BytesIO("his_id,name,department_code,specialty\nS9,钱医生,GS,oncology\n"
                                                    "S10,孙医生,NOPE,\n".encode()), "staff.csv")}
    response = client.post("/admin/reference/staff", data=data, content_type="multipart/form-data")
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "钱医生" in page and "NOPE" in page
