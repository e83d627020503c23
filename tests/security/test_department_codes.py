"""A department is named by its code (GS) wherever it is named by its id, with the same answers: the own
one (and, for the quality office, any) 200, another department 404, an unknown code a 422 naming the
parameter. The departments and their codes are listed by GET /api/v1/departments."""
from __future__ import annotations

from tests.security.test_department_rule import wrong_answers


def test_every_department_filter_takes_the_code_with_the_answers_of_the_id(app, world, role_client):
    wrong = wrong_answers(app, role_client, {"dept_head": {"GS": 200, "CARD": 404, "NOPE": 422},
                                             "quality": {"GS": 200, "CARD": 200, "NOPE": 422}})
    assert not wrong, "\n".join(wrong)


def test_a_code_reads_the_same_figures_as_the_id(world, role_client):
    client = role_client("quality")
    by_id = client.get(f"/api/v1/indicators?department={world['B']['department'].id}")
    by_code = client.get("/api/v1/indicators?department=CARD")
    assert by_id.status_code == 200 and by_code.json == by_id.json
    everyone = client.get("/api/v1/indicators")
    assert [v["denominator"] for v in everyone.json] != [v["denominator"] for v in by_code.json]


def test_body_fields_take_the_code(world, role_client):
    from tests.conftest import csrf_from

    nurse = role_client("nurse")
    token = {"X-CSRFToken": csrf_from(nurse, "/account")}
    body = {"patient_id": world["A"]["patient"].id, "pathway": "four_level_surgery", "source_type": "manual",
            "anchor_at": "2026-01-05T09:00:00+08:00"}
    enrolled = nurse.post("/api/v1/followup/plans", headers=token, json={**body, "department_id": "GS"})
    assert enrolled.status_code == 201 and enrolled.json["department_id"] == world["A"]["department"].id
    other = nurse.post("/api/v1/followup/plans", headers=token, json={**body, "department_id": "CARD"})
    assert other.status_code == 404
    unknown = nurse.post("/api/v1/followup/plans", headers=token, json={**body, "department_id": "NOPE"})
    assert unknown.status_code == 422 and "department_id" in unknown.json["errors"], unknown.json

    quality = role_client("quality")
    token = {"X-CSRFToken": csrf_from(quality, "/account")}
    discussion = quality.post("/api/v1/mdt/discussions", headers=token,
                              json={"kind": "cancer_board", "patient_mrn": world["B"]["patient"].mrn,
                                    "department_id": "CARD", "question": "术后辅助治疗方案"})
    assert discussion.status_code == 201, discussion.json
    assert discussion.json["department_id"] == world["B"]["department"].id
    action = quality.post(f"/api/v1/events/{world['A']['event'].id}/actions", headers=token,
                          json={"title": "心内科双人核对培训", "improvement_type": "training",
                                "owner_department_id": "CARD", "due_on": "2030-01-01"})
    assert action.status_code == 201, action.json
    assert action.json["owner_department_id"] == world["B"]["department"].id
    unknown = quality.post(f"/api/v1/events/{world['A']['event'].id}/actions", headers=token,
                           json={"title": "t", "improvement_type": "training", "owner_department_id": "NOPE",
                                 "due_on": "2030-01-01"})
    assert unknown.status_code == 422 and "owner_department_id" in unknown.json["errors"]


def test_any_user_lists_the_active_departments_with_their_codes(app, world, role_client, ctx):
    from qcflow.auth.models import Department
    from qcflow.extensions import api, db

    closed = db.session.get(Department, world["B"]["department"].id)
    closed.is_active = False
    db.session.commit()
    listed = role_client("nurse").get("/api/v1/departments")
    assert listed.status_code == 200
    codes = [d["code"] for d in listed.json]
    assert codes == sorted(codes) and "GS" in codes and "CARD" not in codes
    surgery = next(d for d in listed.json if d["code"] == "GS")
    assert surgery == {"id": world["A"]["department"].id, "code": "GS", "name": "普通外科", "name_en": None,
                       "kind": "clinical", "is_active": True}
    assert role_client("anonymous").get("/api/v1/departments").status_code == 401
    with app.app_context():
        spec = api.spec.to_dict()
    assert "get" in spec["paths"]["/api/v1/departments"]
    parameter = next(p for p in spec["paths"]["/api/v1/indicators"]["get"]["parameters"] if p["name"] == "department")
    assert {"type": "string", "maxLength": 40} in parameter["schema"]["oneOf"]


def test_a_page_filtered_by_code_shows_that_department_chosen(world, role_client):
    chosen = f'value="{world["B"]["department"].id}" selected'
    for page in ("/followup/queue?department=CARD", "/events?department_id=CARD", "/indicators?department=CARD"):
        assert chosen in role_client("quality").get(page).get_data(as_text=True), page


def test_a_code_made_of_digits_names_that_department_not_the_id(world, role_client, ctx, create_department):
    """HIS department codes are often digits ("0301", "12"): such a code is the department that has it; digits
    that are no code are an id."""
    from qcflow.extensions import db

    numbered = create_department(code=str(world["A"]["department"].id), name="数字编码科")
    db.session.commit()
    client = role_client("quality")
    by_code = client.get(f"/api/v1/indicators?department={numbered.code}")
    by_id = client.get(f"/api/v1/indicators?department={numbered.id}")
    assert by_code.status_code == by_id.status_code == 200 and by_code.json == by_id.json
    assert client.get("/api/v1/indicators?department=999999").status_code == 422  # no such department
