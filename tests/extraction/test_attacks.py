"""What an outsider's attempts found in the automatic extraction, each fixed: a link only to the same harm the
reviewer may read, the stay's department kept beside the trigger's reviewers, a stay that cannot change patient
under its facts, the confidential filer unnamed to heads, and input refused with a 4xx instead of stored or a 500."""
from __future__ import annotations

import json
from datetime import timedelta

import sqlalchemy as sa

from tests.conftest import csrf_from
from tests.extraction.conftest import T0
from tests.extraction.test_review import items
from tests.followup.test_labels import visible

H = timedelta(hours=1)


def vitamin_k(facts, department="surgery"):
    patient = facts.patient()
    facts.drug(facts.stay(patient, department=department), "vitamin_k", T0, dose="10 mg")
    facts.evaluate()
    return patient, facts.firings("rescue_drug")[-1]


def report(client, headers, patient, category, department, **extra):
    at = (T0 + H).isoformat()
    body = {"mode": "named", "category_code": category, "reporter_grade": "III", "care_stage": "nursing",
            "occurred_at": at, "discovered_at": at, "department_id": department, "location": "病房",
            "description": "夜间如厕跌倒，无损伤。", "patient_mrn": patient.mrn, **extra}
    filed = client.post("/api/v1/events", json=body, headers=headers)
    assert filed.status_code == 201, filed.json
    return filed.json["id"]


def test_a_report_of_another_harm_does_not_swallow_the_firing_and_the_note_is_kept(client, tokens, facts, hospital):
    from qcflow.core.audit import AuditEntry

    patient, prompt = vitamin_k(facts)
    fall = report(client, tokens("doctor"), patient, "fall", hospital["surgery"].id)
    filed = client.post(f"/api/v1/followup/prompts/{prompt.id}/file",
                        json={"version": prompt.version, "note": "华法林过量，INR 9"}, headers=tokens("quality"))
    assert filed.status_code == 201 and filed.json["state"] == "filed" and filed.json["event_id"] != fall
    # the same harm reported: linked, and the reviewer's words kept in the trail
    other, second = vitamin_k(facts)
    medication = report(client, tokens("doctor"), other, "medication", hospital["surgery"].id)
    linked = client.post(f"/api/v1/followup/prompts/{second.id}/file",
                         json={"version": second.version, "note": "已上报"}, headers=tokens("quality"))
    assert linked.json["state"] == "linked" and linked.json["event_id"] == medication
    entry = facts.db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "followup_prompt.link"))
    assert json.loads(entry.detail)["note"] == "已上报"


def test_a_head_is_never_linked_to_a_report_they_may_not_read(client, tokens, facts, hospital):
    patient, prompt = vitamin_k(facts)
    report(client, tokens("doctor"), patient, "medication", hospital["ortho"].id)
    filed = client.post(f"/api/v1/followup/prompts/{prompt.id}/file", json={"version": prompt.version},
                        headers=tokens("head"))
    assert filed.status_code == 201 and filed.json["state"] == "filed"
    assert client.get(f"/api/v1/events/{filed.json['event_id']}", headers=tokens("head")).status_code == 200


def test_an_anonymous_report_whose_hour_has_not_ended_is_not_linked(client, tokens, facts, hospital):
    patient, prompt = vitamin_k(facts)
    at = (T0 + H).isoformat()
    anonymous = client.post("/api/v1/events", json={
        "mode": "anonymous", "category_code": "medication", "reporter_grade": "II", "care_stage": "medication",
        "occurred_at": at, "discovered_at": at, "department_id": hospital["surgery"].id, "location": "病房",
        "description": "用药后出血", "patient_mrn": patient.mrn})
    assert anonymous.status_code == 201, anonymous.json
    filed = client.post(f"/api/v1/followup/prompts/{prompt.id}/file", json={"version": prompt.version},
                        headers=tokens("quality"))
    assert filed.json["state"] == "filed" and filed.json["event_id"] < 2**30


def test_a_trigger_with_its_own_reviewers_keeps_the_stays_department(client, tokens, facts, hospital):
    from qcflow.events.models import AdverseEvent

    version = client.get("/api/v1/triggers/rescue_drug", headers=tokens("quality")).json["version"]
    assert client.patch("/api/v1/triggers/rescue_drug", json={"version": version, "reviewer_department_id": "ORTH"},
                        headers=tokens("quality")).status_code == 200
    _patient, prompt = vitamin_k(facts)
    assert (prompt.department_id, prompt.reviewer_department_id) == (hospital["surgery"].id, hospital["ortho"].id)
    assert [p["id"] for p in items(client, tokens("ortho_head"), "?source=trigger")] == [prompt.id]
    assert [p["id"] for p in items(client, tokens("head"), "?source=trigger")] == [prompt.id]
    filed = client.post(f"/api/v1/followup/prompts/{prompt.id}/file", json={"version": prompt.version},
                        headers=tokens("ortho_head"))
    assert filed.status_code == 201
    assert facts.db.session.get(AdverseEvent, filed.json["event_id"]).department_id == hospital["surgery"].id


def test_a_stay_with_facts_cannot_move_to_another_patient(client, tokens, facts, create_patient):
    patient = facts.patient()
    stay = facts.stay(patient)
    facts.drug(stay, "naloxone", T0)
    facts.db.session.commit()
    other = create_patient()
    facts.db.session.commit()
    moved = client.post("/api/v1/intake/encounters", headers=tokens("quality"), json={"items": [{
        "his_id": stay.his_id, "patient_his_id": other.his_id, "department_code": "GS",
        "admitted_at": stay.admitted_at.isoformat()}]})
    (row,) = moved.json["results"]
    assert row["status"] == "error" and "patient_his_id" in row["errors"]


def test_a_head_reads_no_name_of_who_filed_a_confidential_report(clients, tokens, client, facts, hospital):
    _patient, prompt = vitamin_k(facts)
    client.post(f"/api/v1/followup/prompts/{prompt.id}/file", json={"version": prompt.version},
                headers=tokens("quality"))
    page = visible(clients("head").get("/followup/prompts?state=filed").get_data(as_text=True))
    assert "质控员" not in page and "已上报" in page
    assert "质控员" in visible(clients("quality").get("/followup/prompts?state=filed").get_data(as_text=True))


def test_the_trigger_form_refuses_odd_digits_and_versions_with_a_422(clients):
    quality = clients("quality")
    token = csrf_from(quality, "/admin/triggers/return_theatre_48h")
    base = {"csrf_token": token, "version": "1", "name": "术后48小时内非计划重返手术室", "name_en": "Return",
            "window_hours": "48", "reviewer_department_id": "", "is_active": "on"}
    for change in ({"window_hours": "²"}, {"window_hours": "٣"}, {"version": "abc"}, {"version": "²"},
                   {"reviewer_department_id": "²"}, {"name": "x" * 101}, {"name": "a\x1bb"}):
        response = quality.post("/admin/triggers/return_theatre_48h", data={**base, **change})
        assert response.status_code in (409, 422), (change, response.status_code)
    got = quality.get("/api/v1/triggers/return_theatre_48h").json
    assert (got["version"], got["window_hours"], got["reviewer_department_id"]) == (1, 48, None)


def test_the_triggers_api_refuses_look_alike_codes_control_characters_and_sloppy_numbers(client, tokens):
    quality = tokens("quality")
    new = {"code": "critical_inr2", "name": "INR", "name_en": "INR", "rule": "critical_lab",
           "params": {"test_code": "INR", "above": 5}}
    for change in ({"code": "critical_inr\n"}, {"name": "   "}, {"name": "IN\x00R"}, {"name_en": "a\x1b[31m"},
                   {"params": {"test_code": "IN\x00R", "above": 5}}, {"params": {"test_code": "INR", "above": 5,
                                                                                "unit": "mmol\x07"}},
                   {"rule": "return_to_theatre", "params": {}, "window_hours": 47.9}):
        response = client.post("/api/v1/triggers", json={**new, **change}, headers=quality)
        assert response.status_code == 422, (change, response.json)
    drug = client.get("/api/v1/triggers/rescue_drug", headers=quality).json
    doubled = client.patch("/api/v1/triggers/rescue_drug", headers=quality, json={
        "version": drug["version"], "params": {"drugs": ["naloxone"] * 10_000}})
    assert doubled.status_code == 422
    zh = client.post("/api/v1/triggers?lang=zh", json={**new, "code": "Bad"}, headers=quality)
    assert zh.status_code == 422 and "小写" in str(zh.json["errors"]["code"])


def test_notes_and_reasons_refuse_control_characters(client, tokens, facts):
    _patient, prompt = vitamin_k(facts)
    url = f"/api/v1/followup/prompts/{prompt.id}"
    assert client.post(url + "/file", json={"version": prompt.version, "note": "a\x00b"},
                       headers=tokens("quality")).status_code == 422
    assert client.post(url + "/dismiss", json={"version": prompt.version, "reason_code": "other",
                                               "reason": "\x1b[2J"}, headers=tokens("quality")).status_code == 422
    kept = client.post(url + "/dismiss", json={"version": prompt.version, "reason_code": "other",
                                               "reason": "第一行\n第二行"}, headers=tokens("quality"))
    assert kept.status_code == 200
