"""Discussions over the JSON API: a whole journey, access, conflicts, and the case review that lets an event close."""
from datetime import timedelta

import pytest


URL = "/api/v1/mdt/discussions"


def step(client, discussion_id, action, version, **fields):
    return client.post(f"{URL}/{discussion_id}/transitions", headers=client.csrf,
                       json={"action": action, "version": version, **fields})


def test_surgeon_requests_chairs_and_signs_a_preop_discussion(clients, hospital, grade_four):
    doctor = clients("clinician")
    created = doctor.post(URL, headers=doctor.csrf, json={"kind": "preop_level4", "operation_id": grade_four.id,
                                                          "question": "高龄患者行胰十二指肠切除术的风险评估"})
    assert created.status_code == 201, created.json
    d = created.json
    assert (d["state"], d["patient_id"]) == ("requested", grade_four.patient_id)
    assert d["department_id"] == hospital["surgery"].id
    assert [p["specialty"] for p in d["participants"]][:2] == ["general_surgery", "anaesthesia"]
    d = step(doctor, d["id"], "schedule", d["version"], scheduled_at="2026-03-05T14:00:00+08:00").json
    assert d["state"] == "scheduled" and d["scheduled_at"] == "2026-03-05T06:00:00+00:00"
    d = step(doctor, d["id"], "hold", d["version"]).json
    assert d["state"] == "held" and d["held_at"]
    d = doctor.put(f"{URL}/{d['id']}/attendance", headers=doctor.csrf,
                   json={"version": d["version"], "attended": [p["id"] for p in d["participants"]]}).json
    d = doctor.patch(f"{URL}/{d['id']}", headers=doctor.csrf,
                     json={"version": d["version"], "chair_user_id": hospital["clinician"].id,
                           "summary": "麻醉科评估心肺功能可耐受。"}).json
    signed = step(doctor, d["id"], "sign", d["version"], conclusion="同意手术", decision="modify_plan")
    assert signed.status_code == 200, signed.json
    assert signed.json["state"] == "signed"
    assert (signed.json["decision"], signed.json["conclusion"]) == ("modify_plan", "同意手术")
    late_edit = doctor.patch(f"{URL}/{d['id']}", headers=doctor.csrf,
                             json={"version": signed.json["version"], "conclusion": "改"})
    assert late_edit.status_code == 409
    addendum = doctor.post(f"{URL}/{d['id']}/addenda", headers=doctor.csrf, json={"text": "术中改为保留幽门。"})
    assert addendum.status_code == 201 and addendum.json["author_user_id"] == hospital["clinician"].id
    assert doctor.get(f"{URL}/{d['id']}").json["addenda"][0]["text"] == "术中改为保留幽门。"
    from qcflow.core import audit

    assert audit.verify().ok


def test_access_by_department_participation_and_role(clients, hospital, held_preop):
    url = f"{URL}/{held_preop.id}"
    assert clients("other_head").get(url).status_code == 404
    assert step(clients("other_head"), held_preop.id, "cancel", held_preop.version, reason="x").status_code == 404
    assert clients("nurse").get(url).status_code == 403
    assert step(clients("nurse"), held_preop.id, "sign", held_preop.version).status_code == 403
    # A clinician of the department may record but not sign unless chairing.
    assert step(clients("clinician"), held_preop.id, "sign", held_preop.version).status_code == 403
    # The anaesthetist is invited from another department, and so sees it; the quality office sees all.
    assert clients("anaesthetist").get(url).status_code == 200
    assert clients("quality").get(url).status_code == 200
    listed = {role: [d["id"] for d in clients(role).get(URL).json["items"]]
              for role in ("other_head", "anaesthetist", "oncologist", "radiologist", "quality", "head")}
    assert listed["anaesthetist"] == listed["oncologist"] == [held_preop.id]  # invited by the proposal
    assert listed["other_head"] == listed["radiologist"] == []
    assert listed["quality"] == listed["head"] == [held_preop.id]
    assert clients("radiologist").get(url).status_code == 404


def test_wrong_state_stale_version_and_duplicates(clients, hospital, grade_four, held_preop):
    quality = clients("quality")
    wrong = step(quality, held_preop.id, "schedule", held_preop.version, scheduled_at="2026-03-05T14:00:00+08:00")
    assert wrong.status_code == 409 and wrong.json["allowed_actions"] == ["cancel", "sign"]
    stale = step(quality, held_preop.id, "cancel", held_preop.version - 1, reason="x")
    assert stale.status_code == 409 and stale.json["current_version"] == held_preop.version
    again = quality.post(URL, headers=quality.csrf, json={"kind": "preop_level4", "operation_id": grade_four.id})
    assert again.status_code == 409 and again.json["discussion_id"] == held_preop.id


def test_links_are_checked_and_foreign_operations_are_unknown(clients, hospital, grade_four, create_operation):
    from qcflow.extensions import db

    cardio_op = create_operation(hospital["cardio"], hospital["staff"]["surgeon"], grade_four.planned_at)
    db.session.commit()
    doctor = clients("clinician")
    foreign = doctor.post(URL, headers=doctor.csrf, json={"kind": "preop_level4", "operation_id": cardio_op.id})
    assert foreign.status_code == 422 and "operation_id" in foreign.json["errors"]
    no_operation = doctor.post(URL, headers=doctor.csrf, json={"kind": "preop_level4", "question": "?"})
    assert no_operation.status_code == 422 and "operation_id" in no_operation.json["errors"]
    unknown_mrn = doctor.post(URL, headers=doctor.csrf, json={"kind": "difficult_case", "patient_mrn": "NOPE"})
    assert unknown_mrn.status_code == 422 and "patient_mrn" in unknown_mrn.json["errors"]
    mrn = grade_four.encounter.patient.mrn
    by_mrn = doctor.post(URL, headers=doctor.csrf, json={"kind": "difficult_case", "patient_mrn": mrn})
    assert by_mrn.status_code == 201 and by_mrn.json["patient_id"] == grade_four.patient_id
    assert by_mrn.json["due_at"] is None and by_mrn.json["department_id"] == hospital["surgery"].id
    smuggled = doctor.post(URL, headers=doctor.csrf, json={"kind": "difficult_case", "state": "signed"})
    assert smuggled.status_code == 422
    decision = doctor.patch(f"{URL}/{by_mrn.json['id']}", headers=doctor.csrf,
                            json={"version": by_mrn.json["version"], "decision": "proceed"})
    assert decision.status_code == 422 and "decision" in decision.json["errors"]


def test_list_filters_and_pages(clients, hospital, held_preop, operated_death):
    quality = clients("quality")
    assert [d["kind"] for d in quality.get(URL + "?kind=perioperative_death").json["items"]] == ["perioperative_death"]
    assert [d["id"] for d in quality.get(URL + "?state=held").json["items"]] == [held_preop.id]
    first = quality.get(URL + "?limit=1").json
    rest = quality.get(f"{URL}?limit=1&cursor={first['next_cursor']}").json
    assert [first["items"][0]["id"], rest["items"][0]["id"]] == [operated_death.id, held_preop.id]
    assert quality.get(URL + "?kind=nope").status_code == 422
    assert quality.get(URL + "?colour=red").status_code == 422


def test_participants_over_the_api(clients, hospital, held_preop):
    head = clients("head")
    url = f"{URL}/{held_preop.id}/participants"
    expert = head.post(url, headers=head.csrf, json={"name": "王教授（省人民医院）", "specialty": "pathology",
                                                     "role": "invited"})
    assert expert.status_code == 201 and expert.json["user_id"] is None
    version = head.get(f"{URL}/{held_preop.id}").json["version"]
    marked = head.patch(f"{url}/{expert.json['id']}", headers=head.csrf, json={"version": version, "attended": True})
    assert marked.status_code == 200 and marked.json["attended"] is True
    stale = head.patch(f"{url}/{expert.json['id']}", headers=head.csrf, json={"version": version, "attended": False})
    assert stale.status_code == 409 and stale.json["current_version"] == version + 1
    assert head.delete(f"{url}/{expert.json['id']}", headers=head.csrf).status_code == 204
    assert head.patch(f"{url}/{expert.json['id']}", headers=head.csrf,
                      json={"version": version + 2, "attended": True}).status_code == 404


@pytest.fixture
def report_body(hospital):
    def make(**overrides):
        return {"category_code": "surgery", "reporter_grade": "II", "care_stage": "surgery_anaesthesia",
                "occurred_at": "2026-03-01T09:30:00+08:00", "discovered_at": "2026-03-01T10:00:00+08:00",
                "location": "手术室3间", "department_id": hospital["surgery"].id,
                "description": "术后出血，非计划再次手术。", **overrides}

    return make


def test_a_grade_two_event_closes_once_a_linked_case_review_is_signed(clients, hospital, report_body):
    from tests.events.conftest import transition as act

    quality = clients("quality")
    q = quality.csrf
    doctor = clients("clinician")
    event_id = doctor.post("/api/v1/events", json=report_body(), headers=doctor.csrf).json["id"]
    r = act(quality, event_id, "triage", 2, q, confirmed_grade="II", handling_department_id=hospital["med"].id,
            external_severity="none")
    r = act(quality, event_id, "start_investigation", r.json["version"], q)
    action = quality.post(f"/api/v1/events/{event_id}/actions", headers=q, json={
        "title": "术后出血观察流程培训", "improvement_type": "training", "owner_department_id": hospital["surgery"].id,
        "due_on": "2026-04-30"}).json
    version = quality.get(f"/api/v1/events/{event_id}").json["version"]
    r = act(quality, event_id, "plan_actions", version, q, rca_cause_domains=["process"], rca_factors="观察频次不足")
    path = f"/api/v1/events/{event_id}/actions/{action['id']}/transitions"
    done = quality.post(path, headers=q, json={"action": "complete", "version": action["version"],
                                               "evidence": "签到表"}).json
    quality.post(path, headers=q, json={"action": "verify", "version": done["version"]})
    r = act(quality, event_id, "verify", quality.get(f"/api/v1/events/{event_id}").json["version"], q)
    closing = {"improvement_types": ["training"], "feedback": "已完成培训。"}
    refused = act(quality, event_id, "close", r.json["version"], q, **closing)
    assert refused.status_code == 422 and refused.json["code"] == "guard_failed"

    d = quality.post(URL, headers=q, json={"kind": "case_review", "event_id": event_id,
                                           "chair_user_id": hospital["quality"].id}).json
    assert d["event_id"] == event_id and d["due_at"]
    d = step(quality, d["id"], "schedule", d["version"], scheduled_at="2026-03-03T14:00:00+08:00").json
    d = step(quality, d["id"], "hold", d["version"]).json
    d = quality.put(f"{URL}/{d['id']}/attendance", headers=q,
                    json={"version": d["version"], "attended": [p["id"] for p in d["participants"]]}).json
    signed = step(quality, d["id"], "sign", d["version"], conclusion="观察流程缺陷，已整改。")
    assert signed.status_code == 200, signed.json
    closed = act(quality, event_id, "close", r.json["version"], q, **closing)
    assert closed.status_code == 200 and closed.json["state"] == "closed"


def test_every_app_asks_the_mdt_domain_for_the_case_review(app, database_url, tmp_path):
    from qcflow.mdt.services import has_signed_case_review
    from qcflow.reactions import EXTENSION
    from tests.conftest import make_app

    other = make_app(database_url, str(tmp_path))
    for each in (app, other):
        assert each.extensions[EXTENSION].answers["event.has_signed_case_review"] is has_signed_case_review


def test_a_case_review_linked_by_operation_counts_for_the_event(ctx, hospital, operated_death, actor_of, mdt_now):
    from types import SimpleNamespace

    from qcflow.mdt import services

    operation_id = operated_death.operation_id
    review = services.request_discussion({"kind": "case_review", "operation_id": operation_id},
                                         actor=actor_of("quality"), now=mdt_now)
    event = SimpleNamespace(id=999, operation_id=operation_id)
    assert not services.has_signed_case_review(event)
    quality = actor_of("quality")
    services.update_discussion(review, {"chair_user_id": hospital["quality"].id, "conclusion": "可避免"}, actor=quality,
                               now=mdt_now)
    services.transition_discussion(review, "schedule", {"scheduled_at": mdt_now}, actor=quality, now=mdt_now)
    services.transition_discussion(review, "hold", {}, actor=quality, now=mdt_now)
    services.record_attendance(review, [p.id for p in review.participants], actor=quality,
                               now=mdt_now + timedelta(minutes=1))
    services.transition_discussion(review, "sign", {}, actor=quality, now=mdt_now + timedelta(minutes=2))
    assert services.has_signed_case_review(event)
