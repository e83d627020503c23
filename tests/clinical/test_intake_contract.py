"""The intake contract: every kind's rows in the OpenAPI document, CSV templates, re-sent rows that never
erase what they leave out, and what each row set off."""
import csv
import io

import pytest
import sqlalchemy as sa
from openapi_spec_validator import validate

from tests.conftest import csrf_from, logged_in

#: The order an HIS (or an administrator with the templates) sends things in.
ORDER = ("procedures", "staff", "authorisations", "patients", "encounters", "operations", "diagnoses", "census",
         "transfers", "administrations", "lab_results")


def test_the_openapi_document_validates_and_shows_every_field_of_every_kind(client):
    from qcflow.clinical.services import KINDS

    spec = client.get("/api/v1/openapi.json").json
    validate(spec)
    assert set(ORDER) == set(KINDS)
    for name, kind in KINDS.items():
        body = spec["paths"][f"/api/v1/intake/{name}"]["post"]["requestBody"]["content"]["application/json"]
        rows = body["schema"]["properties"]["items"]
        documented = spec["components"]["schemas"][rows["items"]["$ref"].rsplit("/", 1)[1]]
        fields = kind.schema._declared_fields
        assert list(documented["properties"]) == list(fields), name
        assert set(documented["required"]) == {f for f, field in fields.items() if field.required}, name
        for field_name, prop in documented["properties"].items():
            assert len(prop.get("description", "")) > 10, (name, field_name)
        # Every field has an example but those the example row leaves empty (a death, a cancellation).
        assert {f for f, prop in documented["properties"].items() if "example" not in prop} <= {
            "died_on", "cancelled_at", "cancel_reason"}, name
        assert rows["maxItems"] == 1000 and body["schema"]["required"] == ["items"]
    encounter = spec["components"]["schemas"]["EncounterIn"]["properties"]
    assert "+08:00" in encounter["admitted_at"]["description"] and encounter["admitted_at"]["format"] == "date-time"
    assert encounter["disposition"]["nullable"] and "death" in encounter["disposition"]["enum"]
    assert encounter["is_day_surgery"]["default"] is False
    effect = spec["components"]["schemas"]["EffectOut"]["properties"]
    assert "plan_enrolled" in effect["code"]["enum"] and "discussion_requested" in effect["code"]["enum"]


def test_a_row_of_the_wrong_shape_is_still_refused_alone(ctx, reference):
    response = reference.push("patients", [{"his_id": "P7", "mrn": "BA007", "name": "甲", "sex": "F"},
                                           {"his_id": "P8", "mrn": "BA008", "name": "乙", "sex": "F", "pet": "cat"}])
    assert response.status_code == 200
    assert [r["status"] for r in response.json["results"]] == ["created", "error"]
    assert set(response.json["results"][1]["errors"]) == {"pet"}


@pytest.fixture
def admin(app, his, create_user, create_department):
    """The administrator's browser, the account the staff template's example row links to, and the intensive
    care unit the transfer's example row moves to."""
    from qcflow.extensions import db

    create_department(code="ICU", name="重症医学科")
    create_user(username="wangzr", roles=("clinician",))
    create_user(username="adm", roles=("admin",))
    db.session.commit()
    return logged_in(app, "adm")


#: A record of each kind made from the template's example row by changing one value.
FILLED_IN = {"patients": ("name", "周明"), "encounters": ("disposition", "transfer"),
             "operations": ("is_unplanned_reoperation", "true"), "diagnoses": ("stage", "IIB"),
             "census": ("discharges", "398"), "procedures": ("name", "腹腔镜胆囊切除术（经脐）"),
             "staff": ("name", "王志荣"), "authorisations": ("valid_until", "2027-06-30"),
             "transfers": ("transferred_at", "2026-03-02T11:45:00+08:00"), "administrations": ("dose", "0.8 mg iv"),
             "lab_results": ("value", "1.9")}


def test_every_kind_has_a_template_whose_example_row_is_refused_as_is_and_accepted_filled_in(ctx, admin):
    from qcflow.clinical.services import KINDS

    for kind in ORDER:
        response = admin.get(f"/admin/reference/{kind}/template.csv")
        assert response.status_code == 200 and response.mimetype == "text/csv"
        assert response.data.startswith("\ufeff".encode())
        header, example = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))
        assert header == list(KINDS[kind].schema._declared_fields)
        page = f"/admin/reference/{kind}"
        assert f'href="{page}/template.csv"' in admin.get(page).get_data(as_text=True)

        def upload(data: bytes):
            return admin.post(page, content_type="multipart/form-data",
                              data={"csrf_token": csrf_from(admin, page), "file": (io.BytesIO(data), "t.csv")})

        as_is = upload(response.data)  # the example row itself never lands (it named the guide's records)
        assert as_is.status_code == 422 and "模板中的示例行" in as_is.get_data(as_text=True), kind
        column, value = FILLED_IN[kind]
        example[header.index(column)] = value
        filled = io.StringIO()
        csv.writer(filled).writerows([header, example])
        landed = upload(filled.getvalue().encode())
        assert landed.status_code == 200, (kind, landed.get_data(as_text=True)[-3000:])
        assert "新增" in landed.get_data(as_text=True), kind
    assert admin.get("/admin/reference/pets/template.csv").status_code == 404


def stored(kind, key):
    """The record of a kind by its HIS id (a procedure by code, an authorisation by procedure code)."""
    from qcflow.clinical.services import KINDS
    from qcflow.extensions import db

    model = KINDS[kind].model
    column = getattr(model, {"procedures": "code", "authorisations": "procedure_code"}.get(kind, "his_id"))
    return db.session.scalar(sa.select(model).where(column == key))


#: kind, the full row, the row re-sent with only its required fields, the stored values it must keep.
RESENT = [
    ("patients", {"his_id": "P5", "mrn": "BA005", "name": "赵五", "sex": "F", "birth_on": "1970-01-02",
                  "phone": "13900000005", "id_number": "110101197001021234", "died_on": "2026-02-01"},
     {"his_id": "P5", "mrn": "BA005", "name": "赵五", "sex": "F"},
     {"phone": "13900000005", "id_number": "110101197001021234", "birth_on": "1970-01-02", "died_on": "2026-02-01"}),
    ("encounters", {"his_id": "E5", "patient_his_id": "P1", "department_code": "GS",
                    "admitted_at": "2026-03-01T08:00:00+08:00", "discharged_at": "2026-03-01T16:00:00+08:00",
                    "is_day_surgery": True, "disposition": "home"},
     {"his_id": "E5", "patient_his_id": "P1", "department_code": "GS", "admitted_at": "2026-03-01T08:00:00+08:00"},
     {"is_day_surgery": True, "disposition": "home", "discharged_at": "2026-03-01T08:00:00+00:00"}),
    ("operations", {"his_id": "O5", "encounter_his_id": "E1", "procedure_code": "51.2301", "surgeon_his_id": "S1",
                    "planned_at": "2026-03-03T08:00:00+08:00", "department_code": "ANES",
                    "is_unplanned_reoperation": True},
     {"his_id": "O5", "encounter_his_id": "E1", "procedure_code": "51.2301", "surgeon_his_id": "S1",
      "planned_at": "2026-03-03T08:00:00+08:00"},
     {"is_unplanned_reoperation": True, "department_id": "ANES"}),
    ("diagnoses", {"his_id": "D5", "patient_his_id": "P1", "cancer_type": "other", "icd10": "C80",
                   "diagnosed_on": "2026-02-01", "stage": "IV", "department_code": "ANES"},
     {"his_id": "D5", "patient_his_id": "P1", "cancer_type": "other", "icd10": "C80", "diagnosed_on": "2026-02-01"},
     {"stage": "IV", "department_id": "ANES"}),
    ("procedures", {"code": "99.0001", "name": "试验手术", "grade": 3, "is_restricted_technology": True,
                    "is_day_surgery_allowed": True, "is_active": False},
     {"code": "99.0001", "name": "试验手术", "grade": 3},
     {"is_restricted_technology": True, "is_day_surgery_allowed": True, "is_active": False}),
    ("staff", {"his_id": "S5", "name": "钱五", "department_code": "ANES", "specialty": "anaesthesia",
               "username": "his", "is_active": False},
     {"his_id": "S5", "name": "钱五"},
     {"specialty": "anaesthesia", "is_active": False, "department_id": "ANES", "user_id": "his"}),
    ("authorisations", {"staff_his_id": "S2", "procedure_code": "47.0101", "valid_from": "2026-01-01",
                        "valid_until": "2026-06-30"},
     {"staff_his_id": "S2", "procedure_code": "47.0101", "valid_from": "2026-01-01"},
     {"valid_until": "2026-06-30"}),
    ("transfers", {"his_id": "T5", "encounter_his_id": "E1", "from_department_code": "GS", "to_department_code": "ANES",
                   "to_icu": True, "transferred_at": "2026-03-02T11:40:00+08:00"},
     {"his_id": "T5", "encounter_his_id": "E1", "from_department_code": "GS", "to_department_code": "ANES",
      "transferred_at": "2026-03-02T11:40:00+08:00"},
     {"to_icu": True}),
    ("administrations", {"his_id": "M5", "encounter_his_id": "E1", "drug": "blood_product", "dose": "2 U",
                         "given_at": "2026-03-02T12:15:00+08:00", "reaction": True},
     {"his_id": "M5", "encounter_his_id": "E1", "drug": "blood_product", "given_at": "2026-03-02T12:15:00+08:00"},
     {"dose": "2 U", "reaction": True}),
    ("lab_results", {"his_id": "L5", "encounter_his_id": "E1", "test_code": "K", "value": 6.8, "unit": "mmol/L",
                     "resulted_at": "2026-03-02T13:05:00+08:00"},
     {"his_id": "L5", "encounter_his_id": "E1", "test_code": "K", "value": 6.8,
      "resulted_at": "2026-03-02T13:05:00+08:00"},
     {"unit": "mmol/L"}),
]


def shown(obj, column):
    """A stored value as the test table writes it (departments and accounts by code and login)."""
    from qcflow.auth.models import Department, User
    from qcflow.extensions import db

    value = getattr(obj, column)
    if column == "department_id":
        return db.session.get(Department, value).code
    if column == "user_id":
        return db.session.get(User, value).username
    if column == "discharged_at":
        return value.isoformat()
    return value.isoformat() if hasattr(value, "isoformat") else value


@pytest.mark.parametrize("kind, full, required, kept", RESENT, ids=[case[0] for case in RESENT])
def test_a_re_sent_row_never_erases_what_it_does_not_mention(ctx, reference, kind, full, required, kept):
    from qcflow.core.audit import AuditEntry
    from qcflow.extensions import db

    assert reference.push(kind, [full]).json["created"] == 1
    audits = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry))
    again = reference.push(kind, [required]).json
    assert again["results"][0]["status"] == "unchanged", again
    obj = stored(kind, required.get("his_id") or required.get("code") or required["procedure_code"])
    assert {column: shown(obj, column) for column in kept} == kept
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)) == audits


def test_a_new_record_gets_the_defaults_and_an_explicit_null_clears(ctx, reference):
    row = {"his_id": "E6", "patient_his_id": "P1", "department_code": "GS", "admitted_at": "2026-03-01T08:00:00+08:00"}
    assert reference.push("encounters", [row]).json["created"] == 1
    assert stored("encounters", "E6").is_day_surgery is False
    cleared = reference.push("patients", [{"his_id": "P1", "mrn": "BA001", "name": "王小明", "sex": "M",
                                           "phone": None}]).json
    assert cleared["results"][0]["status"] == "updated" and stored("patients", "P1").phone is None
    assert stored("patients", "P1").id_number == "110101196005011234"


def effects(response):
    return [[(e["code"], e["record"], e["detail"]) for e in r["effects"]] for r in response.json["results"]]


def test_each_row_says_what_it_set_off_with_the_records_ids(ctx, reference):
    from qcflow.extensions import db
    from qcflow.followup.models import Plan
    from qcflow.mdt.models import Discussion

    grade_four = {"his_id": "O7", "encounter_his_id": "E1", "procedure_code": "52.7001", "surgeon_his_id": "S1",
                  "planned_at": "2026-03-05T08:00:00+08:00"}
    planned = reference.push("operations", [grade_four])
    assert effects(planned) == [[("discussion_requested", "mdt_discussion", "preop_level4")]]
    discussion = db.session.get(Discussion, planned.json["results"][0]["effects"][0]["id"])
    assert discussion.operation_id == stored("operations", "O7").id
    moved = reference.push("operations", [{**grade_four, "planned_at": "2026-03-06T08:00:00+08:00"}])
    assert effects(moved) == [[("discussion_rescheduled", "mdt_discussion", "preop_level4")]]
    assert moved.json["results"][0]["effects"][0]["id"] == discussion.id
    grade_four["planned_at"] = "2026-03-06T08:00:00+08:00"
    assert effects(reference.push("operations", [grade_four])) == [[]]
    reoperation = reference.push("operations", [{**grade_four, "is_unplanned_reoperation": True}])
    assert effects(reoperation) == [[("discussion_requested", "mdt_discussion", "case_review")]]

    day_case = {"his_id": "E8", "patient_his_id": "P1", "department_code": "GS", "is_day_surgery": True,
                "admitted_at": "2026-03-01T08:00:00+08:00", "discharged_at": "2026-03-01T16:00:00+08:00"}
    lung = {"his_id": "D8", "patient_his_id": "P1", "cancer_type": "lung", "icd10": "C34.1",
            "diagnosed_on": "2026-02-20"}
    enrolled = reference.push("encounters", [day_case]), reference.push("diagnoses", [lung])
    assert [effects(r) for r in enrolled] == [[[("plan_enrolled", "followup_plan", "day_surgery")]],
                                              [[("plan_enrolled", "followup_plan", "cancer_lung")]]]
    plan_ids = {r.json["results"][0]["effects"][0]["id"] for r in enrolled}
    assert {p.id for p in db.session.scalars(sa.select(Plan))} == plan_ids

    died = reference.push("patients", [{"his_id": "P1", "mrn": "BA001", "name": "王小明", "sex": "M",
                                        "died_on": "2026-03-02"}])
    assert sorted(effects(died)[0]) == [("plan_stopped", "followup_plan", "cancer_lung"),
                                        ("plan_stopped", "followup_plan", "day_surgery")]
    assert {e["id"] for e in died.json["results"][0]["effects"]} == plan_ids


def test_the_upload_page_shows_what_each_line_set_off_in_words(app, admin, reference):
    page = "/admin/reference/operations"
    rows = ("his_id,encounter_his_id,procedure_code,surgeon_his_id,planned_at\n"
            "O9,E1,52.7001,S1,2026-03-05T08:00:00+08:00\n")
    response = admin.post(page, content_type="multipart/form-data",
                          data={"csrf_token": csrf_from(admin, page), "file": (io.BytesIO(rows.encode()), "o.csv")})
    assert response.status_code == 200
    results = response.get_data(as_text=True).split('id="import-results"', 1)[1]
    assert "已申请讨论：术前讨论（四级手术） #" in results and "discussion_requested" not in results
    english = admin.get(f"{page}?lang=en").get_data(as_text=True)
    assert "Current rows" not in english and "Records kept on paper" in english


def test_a_diagnosis_without_a_department_says_no_plan_started_and_starts_it_when_resent_with_one(ctx, reference):
    reference.push("patients", [{"his_id": "P2", "mrn": "BA002", "name": "李四", "sex": "F"}])
    lung = {"his_id": "D9", "patient_his_id": "P2", "cancer_type": "lung", "icd10": "C34.1",
            "diagnosed_on": "2026-02-20"}
    first = reference.push("diagnoses", [lung])
    assert effects(first) == [[("plan_not_enrolled_no_department", "followup_plan", "cancer_lung")]]
    assert first.json["results"][0]["effects"][0]["id"] is None
    resent = reference.push("diagnoses", [{**lung, "department_code": "GS"}])
    assert resent.json["results"][0]["status"] == "updated"
    assert effects(resent) == [[("plan_enrolled", "followup_plan", "cancer_lung")]]
    assert effects(reference.push("diagnoses", [{**lung, "department_code": "GS"}])) == [[]]
