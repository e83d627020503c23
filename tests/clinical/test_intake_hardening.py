"""The HIS intake refuses what cannot be true (facts after a death, a performed operation rewritten, times out of
order, control characters), answers every error in the reader's language with the row's key, and reads CSV
files without guessing."""
import io
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from tests.clinical.test_booking_gate import PLANNED, PLANNED_AT, book, push_operation
from tests.clinical.test_booking_pushed_states import audit_actions, operation, row
from tests.clinical.test_intake_contract import stored
from tests.conftest import csrf_from, logged_in


@pytest.fixture(autouse=True)
def after_the_operation(monkeypatch):
    """The server's clock: a week after the planned day, so the times sent are in its past."""
    monkeypatch.setattr("qcflow.clinical.api.now", lambda: PLANNED_AT + timedelta(days=7))


def grade2(his_id="O2", **extra):
    return row(his_id, code="47.0101", **extra)


def errors_of(response, index=0):
    return response.json["results"][index]["errors"]


def test_facts_after_the_patients_death_are_row_errors_naming_the_date(ctx, reference):
    from qcflow.extensions import db
    from qcflow.mdt.models import Discussion

    assert reference.push("patients", [{"his_id": "P1", "mrn": "BA001", "name": "王小明", "sex": "M",
                                        "died_on": "2026-03-10"}]).json["failed"] == 0
    planned = reference.push("operations", [row("O9")])
    assert planned.status_code == 422 and "2026-03-10" in errors_of(planned)["planned_at"][0]
    assert operation("O9") is None and db.session.scalar(sa.select(sa.func.count(Discussion.id))) == 0
    performed = reference.push("operations", [grade2("O8", planned_at="2026-03-09T08:00:00+08:00", state="performed",
                                                     performed_at="2026-03-11T09:00:00+08:00")])
    assert set(errors_of(performed)) == {"performed_at"} and operation("O8") is None
    admitted = reference.push("encounters", [{"his_id": "E9", "patient_his_id": "P1", "department_code": "GS",
                                              "admitted_at": "2026-03-11T08:00:00+08:00"}])
    assert "2026-03-10" in errors_of(admitted)["admitted_at"][0]
    cancelled = reference.push("operations", [grade2("O7", state="cancelled", cancelled_at="2026-03-10T18:00:00+08:00",
                                                     cancel_reason="患者死亡")])
    assert cancelled.json["results"][0]["status"] == "created" and operation("O7").state == "cancelled"


def test_impossible_dates_of_birth_and_death_are_row_errors(ctx, reference):
    sent = reference.push("patients", [
        {"his_id": "P5", "mrn": "BA005", "name": "甲", "sex": "F", "birth_on": "2026-04-20"},
        {"his_id": "P6", "mrn": "BA006", "name": "乙", "sex": "F", "died_on": "2026-04-20"},
        {"his_id": "P1", "mrn": "BA001", "name": "王小明", "sex": "M", "died_on": "1950-01-01"},
    ]).json
    assert [set(r["errors"]) for r in sent["results"]] == [{"birth_on"}, {"died_on"}, {"died_on"}]
    assert "1960-05-01" in sent["results"][2]["errors"]["died_on"][0]


def test_a_performed_operation_keeps_what_the_indicators_count_it_by(ctx, reference):
    from qcflow.extensions import db

    performed = dict(state="performed", performed_at="2026-03-20T09:05:00+08:00")
    operation_id = push_operation(reference, "O4", "52.7001", **performed)
    rewritten = reference.push("operations", [{**row(code="47.0101", surgeon_his_id="S2",
                                                     planned_at="2026-03-22T08:00:00+08:00"), **performed}])
    assert rewritten.status_code == 422
    assert set(errors_of(rewritten)) == {"procedure_code", "surgeon_his_id", "planned_at"}
    assert "质控" in errors_of(rewritten)["procedure_code"][0]
    db.session.expire_all()
    stored = operation("O4")
    assert (stored.procedure_code, stored.grade, stored.planned_at) == ("52.7001", 4, PLANNED_AT)
    flagged = reference.push("operations", [row(is_unplanned_reoperation=True, **performed)])
    assert flagged.json["results"][0]["status"] == "updated" and operation("O4").is_unplanned_reoperation
    assert operation("O4").id == operation_id


def test_the_booking_step_is_audited_with_the_real_booking_time(ctx, reference, quality_client):
    reference.push("operations", [grade2("O2", state="booked", booked_at="2026-03-18T15:20:00+08:00")])
    [(_, detail)] = [(a, d) for a, d in audit_actions(operation("O2").id) if a == "operation.book"]
    assert datetime.fromisoformat(detail["booked_at"]) == datetime.fromisoformat("2026-03-18T15:20:00+08:00")
    manual_id = push_operation(reference, "O3", "47.0101")
    assert book(quality_client, manual_id).status_code == 200
    [(_, detail)] = [(a, d) for a, d in audit_actions(manual_id) if a == "operation.book"]
    assert datetime.fromisoformat(detail["booked_at"]) == operation("O3").booked_at


def test_operation_times_are_bounded_by_the_stored_record_and_the_planned_time(ctx, reference):
    long_ago = reference.push("operations", [grade2("O1", state="booked", booked_at="1900-01-02T08:00:00+08:00")])
    assert set(errors_of(long_ago)) == {"booked_at"} and operation("O1") is None
    reference.push("operations", [grade2("O2", state="booked", booked_at="2026-03-18T15:20:00+08:00")])
    early = reference.push("operations", [grade2("O2", state="performed", performed_at="2026-03-17T09:00:00+08:00")])
    assert "2026-03-18 15:20" in errors_of(early)["performed_at"][0] and operation("O2").state == "booked"
    for cancelled_at in ("1901-01-01T08:00:00+08:00", "2026-03-18T10:00:00+08:00"):
        cancelled = reference.push("operations", [grade2("O2", state="cancelled", cancelled_at=cancelled_at,
                                                         cancel_reason="推迟")])
        assert set(errors_of(cancelled)) == {"cancelled_at"} and operation("O2").state == "booked"
    fine = reference.push("operations", [grade2("O2", state="cancelled", cancelled_at="2026-03-19T17:00:00+08:00",
                                                cancel_reason="推迟")])
    assert fine.json["results"][0]["status"] == "updated" and operation("O2").state == "cancelled"


def test_field_errors_are_in_the_readers_language(ctx, reference):
    sent = reference.push("patients", [
        {"his_id": "P5", "mrn": "", "name": "甲", "sex": "F", "phone": "call me", "id_number": "#"}])
    errors = errors_of(sent)
    assert errors["mrn"] == ["请输入 1 到 40 个字符。"]
    assert all("pattern" not in message and "格式" in message for message in errors["phone"] + errors["id_number"])
    mapping = reference.push("patients", [[1]])
    assert mapping.json["errors"] == {"items": {"0": ["请按字段名给出一个对象（{…}）。"]}}
    needs = reference.push("operations", [grade2(state="performed")])
    assert errors_of(needs)["performed_at"] == ["状态“已实施”需要提供实施时间。"]
    unknown = reference.push("operations", [grade2(state="done")])
    assert "已实施" in errors_of(unknown)["state"][0] and "performed" not in errors_of(unknown)["state"][0]


def test_every_marshmallow_field_message_is_translated(app):
    from flask_babel import force_locale

    from qcflow.core.errors import translate_errors

    messages = ["Missing data for required field.", "Field may not be null.", "Unknown field.", "Invalid input type.",
                "Not a valid integer.", "Not a valid number.", "Number too large.", "Not a valid boolean.",
                "Not a valid string.", "Not a valid utf-8 string.", "Not a valid list.", "Not a valid tuple.",
                "Not a valid mapping type.", "Invalid type.", "Not a valid date.", "Not a valid datetime.",
                "Not a valid aware datetime.", "Must be one of: a, b.", "Longer than maximum length 40.",
                "Shorter than minimum length 1.", "Length must be between 1 and 40.", "Length must be 6.",
                "Must be greater than or equal to 0.", "Must be less than or equal to 4.",
                "Must be greater than or equal to 1 and less than or equal to 4.", "Must be greater than 0.",
                "String does not match expected pattern.", "Not a valid email address.", "Not a valid URL.",
                "Invalid value.", "Invalid input.", "One or more of the choices you made was not in: a, b."]
    with app.test_request_context("/api/v1/x?lang=zh"), force_locale("zh"):
        untranslated = [m for m in messages if not any("\u4e00" <= c <= "\u9fff" for c in translate_errors(m))]
    assert untranslated == []


def test_refusals_name_procedures_and_times_in_words(ctx, reference):
    refused = reference.push("operations", [row("O3", code="51.2301", surgeon_his_id="S2", state="booked",
                                                booked_at="2026-03-18T15:20:00+08:00")])
    assert "腹腔镜胆囊切除术" in errors_of(refused)["state"][0]
    reference.push("operations", [grade2("O2", state="booked", booked_at="2026-03-18T15:20:00+08:00")])
    kept = reference.push("operations", [grade2("O2", state="booked", booked_at="2026-03-18T16:00:00+08:00")])
    [warning] = kept.json["results"][0]["warnings"]
    assert warning.startswith("预约时间") and "booked_at" not in warning


def test_one_code_per_error_kind(ctx, reference, quality_client):
    empty = reference.post("/api/v1/intake/patients", json={"items": []}, headers=reference.auth)
    assert empty.status_code == 422 and empty.json["code"] == "unprocessable"
    operation_id = push_operation(reference, "O2", "47.0101")
    forged = quality_client.post(f"/api/v1/operations/{operation_id}/transitions", json={"action": "book", "version": 1})
    assert forged.status_code == 400 and forged.json["code"] == "csrf_error"


def test_control_characters_are_refused_row_by_row(ctx, reference):
    from qcflow.clinical.models import Patient
    from qcflow.extensions import db

    sent = reference.push("patients", [
        {"his_id": "P5", "mrn": "BA005", "name": "a\u0000b", "sex": "F"},
        {"his_id": "P6", "mrn": "BA006", "name": "\u0007\u001b[31m", "sex": "F"},
        {"his_id": "P7", "mrn": "BA007", "name": "丙", "sex": "F"},
    ])
    assert sent.status_code == 200
    assert [set(r["errors"]) for r in sent.json["results"]] == [{"name"}, {"name"}, set()]
    assert db.session.scalars(sa.select(Patient.his_id).order_by(Patient.his_id)).all() == ["P1", "P7"]
    reason = "患者要求推迟\n\t下周再议"
    cancelled = reference.push("operations", [grade2(state="cancelled", cancelled_at="2026-03-19T17:00:00+08:00",
                                                     cancel_reason=reason)])
    assert cancelled.json["failed"] == 0 and operation("O2").cancel_reason == reason


def test_a_refused_row_still_names_its_key(ctx, reference):
    patients = reference.push("patients", [{"his_id": "P5", "mrn": "BA005", "name": "甲", "sex": "X"}]).json
    assert patients["results"][0]["key"] == "P5"
    census = reference.push("census", [{"department_code": "GS", "month": "2026-03", "discharges": -1}]).json
    assert census["results"][0]["key"] == "GS/2026-03"


@pytest.fixture
def upload(app, reference, create_user):
    from qcflow.extensions import db

    create_user(username="adm", roles=("admin",))
    db.session.commit()
    client = logged_in(app, "adm")

    def send(text: str):
        data = {"csrf_token": csrf_from(client, "/admin/reference/staff"),
                "file": (io.BytesIO(text.encode()), "staff.csv")}
        return client.post("/admin/reference/staff", data=data, content_type="multipart/form-data")
    return send


def test_a_csv_file_is_read_without_guessing(ctx, upload):
    from qcflow.clinical.models import Staff
    from qcflow.extensions import db

    twice = upload("his_id,name,department_code,name\nS9,钱医生,GS,孙医生\n")
    assert twice.status_code == 400 and "“name”" in twice.get_data(as_text=True)
    for text in ("", "his_id,name\n"):
        empty = upload(text)
        assert empty.status_code == 400 and "没有数据行" in empty.get_data(as_text=True)
    huge = upload("his_id,name\nS9," + "钱" * 140_000 + "\n")
    page = huge.get_data(as_text=True)
    assert huge.status_code == 400 and "128 KiB" in page and "field larger" not in page
    bell = upload("his_id,name\nS9,钱\u0007医生\n")
    assert bell.status_code == 422 and "控制字符" in bell.get_data(as_text=True)
    assert db.session.scalar(sa.select(Staff).where(Staff.his_id == "S9")) is None


def test_an_account_already_on_the_staff_list_is_the_rows_error_not_the_batchs(ctx, reference, create_user):
    from qcflow.extensions import db

    create_user(username="wang", roles=("clinician",))
    db.session.commit()
    first = reference.push("staff", [{"his_id": "S7", "name": "王医生", "username": "wang"}])
    assert first.status_code == 200 and first.json["created"] == 1
    both = reference.push("staff", [{"his_id": "S8", "name": "王二", "username": "wang"},
                                    {"his_id": "S9", "name": "吴九", "department_code": "GS"}])
    assert both.status_code == 200, both.json  # the good row lands; the other is refused on its own
    refused, landed = both.json["results"]
    assert "王医生" in refused["errors"]["username"][0] and refused["key"] == "S8"
    assert landed["status"] == "created"


def test_a_diagnosis_in_the_future_and_keys_as_the_his_sent_them(ctx, reference):
    reference.push("patients", [{"his_id": "P3", "mrn": "BA003", "name": "孙三", "sex": "M"}])
    future = reference.push("diagnoses", [{"his_id": "D3", "patient_his_id": "P3", "cancer_type": "gastric",
                                           "icd10": "C16.9", "diagnosed_on": "2199-01-01"}])
    assert future.status_code == 422 and "diagnosed_on" in future.json["results"][0]["errors"]
    unknown = reference.push("authorisations", [
        {"staff_his_id": "NOBODY", "procedure_code": "51.2301", "valid_from": "2026-01-01"},
        {"staff_his_id": "NOBODY2", "procedure_code": "51.2301", "valid_from": "2026-01-01"}])
    keys = [r["key"] for r in unknown.json["results"]]
    assert keys == ["NOBODY/51.2301/2026-01-01", "NOBODY2/51.2301/2026-01-01"]
    # Two unknown surgeons are two rows, not "the same record twice".
    assert all("row" not in r["errors"] for r in unknown.json["results"])
    census = reference.push("census", [{"department_code": "GS", "month": "2026-03", "discharges": 120}])
    assert census.json["results"][0]["key"] == "GS/2026-03"


def test_a_recalled_discharge_must_clear_its_disposition_and_never_fails_the_batch(ctx, reference):
    """A discharge recalled by the HIS (discharged_at: null) while a death disposition is stored: the row is
    refused on its own (it was a 500 for the whole batch), and clearing both is accepted."""
    reference.push("patients", [{"his_id": "P5", "mrn": "BA005", "name": "周五", "sex": "M"}])
    stay = {"his_id": "E5", "patient_his_id": "P5", "department_code": "GS",
            "admitted_at": "2026-03-01T08:00:00+08:00"}
    assert reference.push("encounters", [{**stay, "discharged_at": "2026-03-03T08:00:00+08:00",
                                          "disposition": "home"}]).json["failed"] == 0
    recalled = reference.push("encounters", [{**stay, "discharged_at": None}])
    assert recalled.status_code == 422 and "discharged_at" in recalled.json["results"][0]["errors"]
    cleared = reference.push("encounters", [{**stay, "discharged_at": None, "disposition": None}])
    assert cleared.status_code == 200 and cleared.json["results"][0]["status"] == "updated"
    # A disposition sent alone is judged with the stored discharge time.
    reference.push("encounters", [{**stay, "discharged_at": "2026-03-03T08:00:00+08:00"}])
    assert reference.push("encounters", [{**stay, "disposition": "home"}]).json["failed"] == 0


def test_a_feed_sending_null_keeps_a_recorded_death(ctx, reference):
    """A full-record feed sends died_on: null for everyone it thinks alive; a death recorded (by the HIS or a
    family at a follow-up call) stays, and the row says why."""
    patient = {"his_id": "P6", "mrn": "BA006", "name": "吴六", "sex": "F"}
    reference.push("patients", [{**patient, "died_on": "2026-03-02"}])
    resent = reference.push("patients", [{**patient, "died_on": None, "phone": "13900001111"}])
    [row] = resent.json["results"]
    assert resent.status_code == 200 and row["status"] == "updated" and "2026-03-02" in row["warnings"][0]
    assert stored("patients", "P6").died_on.isoformat() == "2026-03-02"
