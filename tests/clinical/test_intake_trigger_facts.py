"""The facts the triggers read, from the HIS: transfers, listed medicines given and critical laboratory results.

Each is upserted by HIS id like the other kinds, checked against its stay (known, in its time, not after the
death), and queued for the automatic extraction when it is new or changed, never when it is re-sent as is."""
import io

import pytest
import sqlalchemy as sa

from tests.conftest import csrf_from, logged_in

TRANSFER = {"his_id": "T1", "encounter_his_id": "E1", "from_department_code": "GS", "to_department_code": "ICU",
            "to_icu": True, "transferred_at": "2026-03-02T11:40:00+08:00"}
GIVEN = {"his_id": "M1", "encounter_his_id": "E1", "drug": "naloxone", "dose": "0.4 mg iv",
         "given_at": "2026-03-02T12:15:00+08:00", "reaction": False}
RESULT = {"his_id": "L1", "encounter_his_id": "E1", "test_code": "GLU", "value": 2.1, "unit": "mmol/L",
          "resulted_at": "2026-03-02T13:05:00+08:00"}
#: kind, a row, a change to it, the queued fact's kind, the time field.
FACTS = [("transfers", TRANSFER, {"to_icu": False}, "transfer", "transferred_at"),
         ("administrations", GIVEN, {"reaction": True}, "administration", "given_at"),
         ("lab_results", RESULT, {"value": 1.9}, "lab", "resulted_at")]
IDS = [fact[0] for fact in FACTS]


@pytest.fixture
def stay(reference, create_department):
    """P1's stay E1 (admitted 2026-03-01 08:00, still in hospital), and an intensive care unit."""
    from qcflow.extensions import db

    create_department(code="ICU", name="重症医学科")
    db.session.commit()
    return reference


def count(model, *where):
    from qcflow.extensions import db

    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def queued():
    from qcflow.extensions import db
    from qcflow.extraction.models import QueuedFact

    db.session.expire_all()
    return [(q.kind, q.record_id, q.patient_id) for q in db.session.scalars(sa.select(QueuedFact).order_by(QueuedFact.id))]


def errors(response, row=0):
    return response.json["results"][row]["errors"]


@pytest.mark.parametrize("kind, row, change, fact, at", FACTS, ids=IDS)
def test_a_fact_is_created_queued_once_unchanged_when_re_sent_and_updated_when_changed(ctx, stay, kind, row, change,
                                                                                       fact, at):
    from qcflow.clinical.models import Patient
    from qcflow.clinical.services import KINDS
    from qcflow.core.audit import AuditEntry
    from qcflow.extensions import db

    patient_id = db.session.scalar(sa.select(Patient.id).where(Patient.his_id == "P1"))
    before = queued()
    created = stay.push(kind, [row])
    assert created.status_code == 200 and created.json["results"][0]["status"] == "created", created.json
    record_id = created.json["results"][0]["id"]
    assert created.json["results"][0]["effects"] == []
    record = db.session.get(KINDS[kind].model, record_id)
    assert record.patient_id == patient_id and record.encounter_id is not None
    assert queued() == before + [(fact, record_id, patient_id)]
    audits = count(AuditEntry)

    again = stay.push(kind, [row]).json
    assert again["unchanged"] == 1 and again["results"][0]["id"] == record_id
    assert queued() == before + [(fact, record_id, patient_id)] and count(AuditEntry) == audits

    updated = stay.push(kind, [{**row, **change}]).json
    assert updated["updated"] == 1
    entry = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == f"intake.{kind}.updated")).one()
    assert f'"changed":["{next(iter(change))}"]' in entry.detail
    assert queued()[-1] == (fact, record_id, patient_id) and len(queued()) == len(before) + 2


def test_a_row_of_an_unknown_stay_is_refused_and_the_rest_of_the_batch_lands(ctx, stay):
    from qcflow.clinical.models import Transfer

    response = stay.push("transfers", [TRANSFER, {**TRANSFER, "his_id": "T2", "encounter_his_id": "E404"},
                                       {**TRANSFER, "his_id": "T3", "transferred_at": "2026-03-03T09:00:00+08:00"}])
    assert response.status_code == 200
    assert [r["status"] for r in response.json["results"]] == ["created", "error", "created"]
    assert set(errors(response, 1)) == {"encounter_his_id"} and "E404" in errors(response, 1)["encounter_his_id"][0]
    assert response.json["results"][1]["key"] == "T2"
    assert count(Transfer) == 2 and [q[0] for q in queued()].count("transfer") == 2
    alone = stay.push("lab_results", [{**RESULT, "encounter_his_id": "E404"}])
    assert alone.status_code == 422 and set(errors(alone)) == {"encounter_his_id"}


def test_a_medicine_off_the_list_is_refused_and_a_listed_one_is_taken_by_its_name(ctx, stay):
    from qcflow.clinical.models import MedicationAdministration
    from qcflow.extensions import db

    refused = stay.push("administrations", [{**GIVEN, "drug": "morphine"}])
    assert refused.status_code == 422 and set(errors(refused)) == {"drug"}
    assert "纳洛酮" in errors(refused)["drug"][0] and "morphine" in errors(refused)["drug"][0]
    named = stay.push("administrations", [{**GIVEN, "his_id": "M2", "drug": "鱼精蛋白"},
                                          {**GIVEN, "his_id": "M3", "drug": "Vitamin K"}]).json
    assert named["created"] == 2
    drugs = db.session.scalars(sa.select(MedicationAdministration.drug).order_by(MedicationAdministration.his_id))
    assert list(drugs) == ["protamine", "vitamin_k"]


@pytest.mark.parametrize("kind, row, change, fact, at", FACTS, ids=IDS)
def test_a_time_in_the_future_or_before_the_admission_is_refused(ctx, stay, kind, row, change, fact, at):
    from datetime import datetime, timedelta, timezone

    future = (datetime.now(timezone.utc) + timedelta(minutes=30)).isoformat()
    response = stay.push(kind, [{**row, at: future}, {**row, "his_id": "X2", at: "2026-03-01T07:59:00+08:00"}])
    assert response.status_code == 422
    assert errors(response, 0) == {at: ["该时间在未来，请检查。"]}
    assert set(errors(response, 1)) == {at} and "2026-03-01 08:00" in errors(response, 1)[at][0]
    slack = (datetime.now(timezone.utc) + timedelta(minutes=3)).isoformat()
    assert stay.push(kind, [{**row, at: slack}]).json["created"] == 1


def test_after_the_discharge_a_transfer_is_refused_and_a_result_has_seven_days(ctx, stay):
    stay.push("encounters", [{"his_id": "E2", "patient_his_id": "P1", "department_code": "GS",
                              "admitted_at": "2026-03-05T08:00:00+08:00", "discharged_at": "2026-03-10T10:00:00+08:00"}])
    late_transfer = stay.push("transfers", [{**TRANSFER, "encounter_his_id": "E2",
                                             "transferred_at": "2026-03-10T10:01:00+08:00"}])
    assert late_transfer.status_code == 422 and "2026-03-10 10:00" in errors(late_transfer)["transferred_at"][0]
    given = stay.push("administrations", [{**GIVEN, "encounter_his_id": "E2", "given_at": "2026-03-10T10:50:00+08:00"},
                                          {**GIVEN, "his_id": "M2", "encounter_his_id": "E2",
                                           "given_at": "2026-03-10T11:01:00+08:00"}])
    assert [r["status"] for r in given.json["results"]] == ["created", "error"]
    results = stay.push("lab_results", [
        {**RESULT, "encounter_his_id": "E2", "resulted_at": "2026-03-17T09:00:00+08:00"},
        {**RESULT, "his_id": "L2", "encounter_his_id": "E2", "resulted_at": "2026-03-17T10:01:00+08:00"}])
    assert [r["status"] for r in results.json["results"]] == ["created", "error"]
    assert "168" in errors(results, 1)["resulted_at"][0]


@pytest.mark.parametrize("kind, row, change, fact, at", FACTS, ids=IDS)
def test_nothing_is_dated_after_the_patients_day_of_death(ctx, stay, kind, row, change, fact, at):
    stay.push("patients", [{"his_id": "P1", "mrn": "BA001", "name": "王小明", "sex": "M", "died_on": "2026-03-02"}])
    same_day = stay.push(kind, [{**row, at: "2026-03-02T23:00:00+08:00"}])
    assert same_day.json["created"] == 1
    after = stay.push(kind, [{**row, "his_id": "X2", at: "2026-03-03T00:30:00+08:00"}])
    assert after.status_code == 422 and "2026-03-02" in errors(after)[at][0]


def test_a_transfer_goes_to_another_known_department(ctx, stay):
    response = stay.push("transfers", [{**TRANSFER, "to_department_code": "GS"},
                                       {**TRANSFER, "his_id": "T2", "from_department_code": "NOPE"}])
    assert response.status_code == 422
    assert set(errors(response, 0)) == {"to_department_code"} and "GS" in errors(response, 0)["to_department_code"][0]
    assert set(errors(response, 1)) == {"from_department_code"}


def test_the_rules_answer_in_chinese_and_in_english(app, stay):
    same = {**TRANSFER, "to_department_code": "GS"}
    chinese = stay.post("/api/v1/intake/transfers", json={"items": [same]}, headers=stay.auth)
    english = stay.post("/api/v1/intake/transfers?lang=en", json={"items": [same]}, headers=stay.auth)
    assert errors(chinese)["to_department_code"] == ["转科应转往另一个科室：“GS”是转出科室。"]
    assert errors(english)["to_department_code"] == [
        "A transfer moves the patient to another department: “GS” is the department left."]
    early = {**RESULT, "resulted_at": "2026-02-28T08:00:00+08:00"}
    assert errors(stay.push("lab_results", [early]))["resulted_at"] == ["该时间早于本次住院的入院时间（2026-03-01 08:00）。"]


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e400", "10" + "0" * 400, '"NaN"',
                                   '"Infinity"', "1e13", "true", '"2.1 mmol/L"'])
def test_a_laboratory_value_must_be_a_finite_number_of_sane_size(ctx, stay, value):
    from qcflow.clinical.models import CriticalLabResult

    body = ('{"items": [{"his_id": "L1", "encounter_his_id": "E1", "test_code": "K", "value": %s, '
            '"resulted_at": "2026-03-02T13:05:00+08:00"}]}' % value)
    response = stay.post("/api/v1/intake/lab_results", data=body, content_type="application/json",
                         headers=stay.auth)
    assert response.status_code == 422, response.json
    assert set(errors(response)) == {"value"} and count(CriticalLabResult) == 0


def test_a_result_keeps_its_code_as_sent_without_spaces_and_a_null_clears_its_unit(ctx, stay):
    from qcflow.clinical.models import CriticalLabResult
    from qcflow.extensions import db

    assert stay.push("lab_results", [{**RESULT, "test_code": "  Glu ", "unit": " mmol/L "}]).json["created"] == 1
    result = db.session.scalar(sa.select(CriticalLabResult))
    assert (result.test_code, result.unit, result.value) == ("Glu", "mmol/L", 2.1)
    assert stay.push("lab_results", [{**RESULT, "test_code": "Glu"}]).json["unchanged"] == 1
    blank = stay.push("lab_results", [{**RESULT, "test_code": "   "}])
    assert set(errors(blank)) == {"test_code"}
    partial = {k: v for k, v in RESULT.items() if k != "unit"}
    assert stay.push("lab_results", [{**partial, "test_code": "Glu"}]).json["unchanged"] == 1
    assert stay.push("lab_results", [{**partial, "test_code": "Glu", "unit": None}]).json["updated"] == 1
    db.session.expire_all()
    assert db.session.scalar(sa.select(CriticalLabResult.unit)) is None


def test_a_re_sent_row_keeps_the_flags_and_dose_it_leaves_out(ctx, stay):
    from qcflow.clinical.models import MedicationAdministration, Transfer
    from qcflow.extensions import db

    stay.push("administrations", [{**GIVEN, "drug": "blood_product", "dose": "2 U", "reaction": True}])
    stay.push("transfers", [TRANSFER])
    short = {k: v for k, v in GIVEN.items() if k not in ("dose", "reaction")}
    assert stay.push("administrations", [{**short, "drug": "blood_product"}]).json["unchanged"] == 1
    assert stay.push("transfers", [{k: v for k, v in TRANSFER.items() if k != "to_icu"}]).json["unchanged"] == 1
    given = db.session.scalar(sa.select(MedicationAdministration))
    assert (given.dose, given.reaction) == ("2 U", True) and db.session.scalar(sa.select(Transfer.to_icu)) is True


@pytest.fixture
def admin(app, stay, create_user):
    from qcflow.extensions import db

    create_user(username="adm", roles=("admin",))
    db.session.commit()
    return logged_in(app, "adm")


@pytest.mark.parametrize("kind, csv_text, fact", [
    ("transfers", "his_id,encounter_his_id,from_department_code,to_department_code,to_icu,transferred_at\n"
                  "T7,E1,GS,ICU,true,2026-03-02T11:40:00+08:00\nT8,E1,ICU,ICU,false,2026-03-03T11:40:00+08:00\n",
     "transfer"),
    ("administrations", "his_id,encounter_his_id,drug,dose,given_at,reaction\n"
                        "M7,E1,纳洛酮,0.4 mg iv,2026-03-02T12:15:00+08:00,\nM8,E1,morphine,,2026-03-02T12:15:00+08:00,\n",
     "administration"),
    ("lab_results", "his_id,encounter_his_id,test_code,value,unit,resulted_at\n"
                    "L7,E1,K,6.8,mmol/L,2026-03-02T13:05:00+08:00\nL8,E1,K,NaN,mmol/L,2026-03-02T13:05:00+08:00\n",
     "lab"),
], ids=["transfers", "administrations", "lab_results"])
def test_the_reference_page_uploads_each_kind_from_csv(app, admin, kind, csv_text, fact):
    page = f"/admin/reference/{kind}"
    shown = admin.get(page).get_data(as_text=True)
    assert f'href="{page}/template.csv"' in shown and f'href="{page}"' in shown
    template = admin.get(f"{page}/template.csv")
    assert template.status_code == 200 and template.data.decode("utf-8-sig").startswith(csv_text.split("\n")[0])
    response = admin.post(page, content_type="multipart/form-data",
                          data={"csrf_token": csrf_from(admin, page), "file": (io.BytesIO(csv_text.encode()), "f.csv")})
    assert response.status_code == 422
    results = response.get_data(as_text=True).split('id="import-results"', 1)[1]
    assert "新增" in results and "已拒绝" in results
    assert [q[0] for q in queued()] == ["encounter", fact]  # the stay E1, then the one row that landed


def test_the_medicines_page_lists_the_codes_with_their_names(admin):
    page = admin.get("/admin/reference/administrations").get_data(as_text=True)
    assert "<code>glucose_50</code> 高浓度葡萄糖（50%）" in page.split('id="drug-codes"', 1)[1]


def test_the_command_line_imports_critical_results_by_line(app, stay, runner, tmp_path):
    path = tmp_path / "lab.csv"
    path.write_text("his_id,encounter_his_id,test_code,value,unit,resulted_at\n"
                    "L7,E1,INR,6.4,,2026-03-02T13:05:00+08:00\n"
                    "L8,E9,INR,6.4,,2026-03-02T13:05:00+08:00\n", encoding="utf-8-sig")
    result = runner.invoke(args=["qcflow", "import", "lab_results", str(path)])
    assert result.exit_code == 1
    assert "line 3: encounter_his_id:" in result.output and "created 1" in result.output
    again = runner.invoke(args=["qcflow", "import", "lab_results", str(path)])
    assert "created 0" in again.output and "unchanged 1" in again.output
    assert [q[0] for q in queued()] == ["encounter", "lab"]
