"""Lists by patient: a discussion, a call (in any state, not only the open queue) and a plan are found by
the patient's HIS id or record number, within the reader's department, a page at a time."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.conftest import sh


@pytest.fixture
def patients(ctx, ward, enrol, create_patient, create_encounter, actor_of, frozen):
    """Two general-surgery patients (one with a cancelled call) and a cardiology one, each with a
    day-surgery and a lung-cancer plan and a cancer-board discussion."""
    from qcflow.extensions import db
    from qcflow.followup import services
    from qcflow.followup.models import Task
    from qcflow.mdt import services as mdt
    from qcflow.mdt.schemas import DiscussionIn

    made = {}
    for key, mrn, department in (("wang", "BA101", "surgery"), ("li", "BA102", "surgery"),
                                 ("zhao", "BA103", "cardio")):
        patient = create_patient(his_id=f"H-{mrn}", mrn=mrn)
        create_encounter(patient, ward[department])
        for pathway, anchor in (("day_surgery", sh(2026, 3, 2, 6, 0)), ("cancer_lung", sh(2025, 12, 1, 0, 0))):
            enrol(pathway, patient=patient, anchor_at=anchor, now=anchor, department=ward[department])
        made[key] = patient
    services.generate_due(frozen)
    first = db.session.scalars(sa.select(Task).where(Task.patient_id == made["wang"].id).order_by(Task.id)).first()
    services.cancel_task(first, {"reason": "患者已在门诊复诊"}, actor=actor_of("head"), now=frozen)
    for key, department in (("wang", "surgery"), ("li", "surgery"), ("zhao", "cardio")):
        data = DiscussionIn().load({"kind": "cancer_board", "patient_mrn": made[key].mrn,
                                    "department_id": ward[department].id, "question": "术后辅助治疗"})
        mdt.request_discussion(data, actor=actor_of("quality"), now=frozen)
    db.session.commit()
    return made


def patient_ids(items):
    return {item["patient_id"] if "patient_id" in item else item["patient"]["id"] for item in items}


def test_calls_in_every_state_by_patient_record_number_or_his_id(client, tokens, patients):
    from qcflow.extensions import db
    from qcflow.followup.models import Task

    wang = patients["wang"]
    by_mrn = client.get("/api/v1/followup/calls?patient=BA101", headers=tokens("nurse"))
    assert by_mrn.status_code == 200, by_mrn.json
    expected = db.session.scalars(sa.select(Task.id).where(Task.patient_id == wang.id).order_by(Task.id.desc())).all()
    assert [c["id"] for c in by_mrn.json["items"]] == expected and len(expected) >= 2
    assert "cancelled" in {c["state"] for c in by_mrn.json["items"]}  # the queue would not show it
    assert by_mrn.json["items"][0]["patient"]["phone"] != wang.phone  # masked: nobody holds the call
    by_his_id = client.get("/api/v1/followup/calls?patient=H-BA101", headers=tokens("nurse")).json
    assert by_his_id["items"] == by_mrn.json["items"]
    cancelled = client.get("/api/v1/followup/calls?patient=BA101&state=cancelled", headers=tokens("nurse")).json
    assert [c["state"] for c in cancelled["items"]] == ["cancelled"]
    everyone = client.get("/api/v1/followup/calls", headers=tokens("nurse")).json["items"]
    assert patient_ids(everyone) == {wang.id, patients["li"].id}  # general surgery's only


def test_calls_are_paged_newest_first_without_overlap(client, tokens, patients):
    seen, cursor = [], None
    while True:
        page = client.get("/api/v1/followup/calls?limit=1" + (f"&cursor={cursor}" if cursor else ""),
                          headers=tokens("nurse")).json
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    everyone = client.get("/api/v1/followup/calls", headers=tokens("nurse")).json["items"]
    assert seen == [c["id"] for c in everyone] == sorted(seen, reverse=True)


def test_another_departments_patient_is_not_found_by_a_nurse_but_by_the_quality_office(client, tokens, patients):
    zhao = patients["zhao"]
    assert client.get("/api/v1/followup/calls?patient=BA103", headers=tokens("nurse")).json["items"] == []
    assert client.get("/api/v1/followup/plans?patient=BA103", headers=tokens("nurse")).json["items"] == []
    assert client.get("/api/v1/followup/calls?department=CARD", headers=tokens("nurse")).status_code == 404
    quality = client.get("/api/v1/followup/calls?patient=BA103&department=CARD", headers=tokens("quality")).json
    assert quality["items"] and patient_ids(quality["items"]) == {zhao.id}


def test_plans_by_patient_and_state(client, tokens, patients):
    li = patients["li"]
    plans = client.get("/api/v1/followup/plans?patient=BA102", headers=tokens("head"))
    assert plans.status_code == 200
    assert len(plans.json["items"]) == 2 and patient_ids(plans.json["items"]) == {li.id}
    assert client.get("/api/v1/followup/plans?patient=BA102&state=paused", headers=tokens("head")).json["items"] == []
    assert client.get("/api/v1/followup/plans?state=gone", headers=tokens("head")).status_code == 422


def test_discussions_by_patient(client, tokens, patients):
    found = client.get("/api/v1/mdt/discussions?patient=H-BA102", headers=tokens("doctor"))
    assert found.status_code == 200
    assert [d["patient_id"] for d in found.json["items"]] == [patients["li"].id]
    assert client.get("/api/v1/mdt/discussions?patient=BA103", headers=tokens("doctor")).json["items"] == []
    assert client.get("/api/v1/mdt/discussions?patient=NOBODY", headers=tokens("quality")).json["items"] == []


def test_the_plans_and_discussions_pages_search_by_patient(clients, patients):
    wang, li = patients["wang"], patients["li"]
    plans = clients("head").get("/followup/plans?patient=BA101").get_data(as_text=True)
    assert wang.name in plans and li.name not in plans
    discussions = clients("doctor").get("/mdt?patient=BA102").get_data(as_text=True)
    assert li.name in discussions and wang.name not in discussions
    assert 'name="patient"' in discussions and 'value="BA102"' in discussions


def test_the_calls_page_lists_every_state_by_patient(clients, patients):
    wang, li = patients["wang"], patients["li"]
    page = clients("nurse").get("/followup/calls?patient=BA101&state=cancelled")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and wang.name in text and li.name not in text
    assert "患者已在门诊复诊" in text  # the cancelled call, which the queue no longer shows
    assert clients("nurse").get("/followup/calls?state=gone").status_code == 422
    assert clients("nurse").get("/followup/calls?department=CARD").status_code == 404
    everyone = clients("quality").get("/followup/calls?department=CARD").get_data(as_text=True)
    assert patients["zhao"].name in everyone and wang.name not in everyone
