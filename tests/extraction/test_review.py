"""Review, not auto-report: a firing is a possible event in the one inbox, for the department's heads and the
quality office; confirming files a confidential report found by a trigger, or links the report already filed;
dismissing takes a reason from the list."""
from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from tests.conftest import csrf_from
from tests.followup.test_labels import visible
from tests.extraction.conftest import T0


def fired_return(facts, department="surgery"):
    patient = facts.patient()
    stay = facts.stay(patient, department=department)
    facts.operation(stay, T0)
    facts.operation(stay, T0 + timedelta(hours=20))
    facts.evaluate()
    return patient, facts.firings("return_theatre_48h")[-1]


def items(client, headers, query=""):
    response = client.get(f"/api/v1/followup/prompts{query}", headers=headers)
    assert response.status_code == 200, response.json
    return response.json["items"]


def test_the_departments_head_and_the_quality_office_are_told_and_see_it_others_do_not(client, tokens, facts,
                                                                                        hospital):
    from qcflow.notify.models import Notification

    _patient, surgery = fired_return(facts)
    _other, ortho = fired_return(facts, department="ortho")
    told = {n.user_id for n in facts.db.session.scalars(sa.select(Notification).where(
        Notification.kind == "extraction.found"))}
    assert {hospital["head"].id, hospital["ortho_head"].id, hospital["quality"].id} <= told
    assert hospital["doctor"].id not in told
    assert {p["id"] for p in items(client, tokens("head"), "?trigger=return_theatre_48h")} == {surgery.id}
    assert {p["department_id"] for p in items(client, tokens("head"), "?source=trigger")} == {hospital["surgery"].id}
    assert {p["id"] for p in items(client, tokens("quality"), "?trigger=return_theatre_48h")} == {surgery.id, ortho.id}
    first = items(client, tokens("head"), "?trigger=return_theatre_48h")[0]
    assert first["trigger"] == "return_theatre_48h" and [f["kind"] for f in first["facts"]] == ["operation", "operation"]
    assert client.post(f"/api/v1/followup/prompts/{ortho.id}/dismiss", json={"version": ortho.version,
                       "reason_code": "planned"}, headers=tokens("head")).status_code == 404
    assert client.get("/api/v1/followup/prompts", headers=tokens("nurse")).status_code == 403
    assert client.get("/api/v1/followup/prompts?department=ORTH", headers=tokens("head")).status_code == 404


def test_confirming_files_a_confidential_report_found_by_the_trigger(client, tokens, facts, hospital):
    from qcflow.events.models import AdverseEvent

    patient, prompt = fired_return(facts)
    filed = client.post(f"/api/v1/followup/prompts/{prompt.id}/file",
                        json={"version": prompt.version, "note": "术后出血再次手术"}, headers=tokens("head"))
    assert filed.status_code == 201 and filed.json["state"] == "filed"
    event = facts.db.session.get(AdverseEvent, filed.json["event_id"])
    assert (event.mode, event.found_by, event.reporter_user_id) == ("confidential", "trigger", hospital["head"].id)
    assert (event.category_code, event.subcategory_code, event.is_unplanned_reoperation) == (
        "surgery", "unplanned_reoperation", True)
    assert event.patient_mrn == patient.mrn and event.department_id == hospital["surgery"].id
    assert event.origin["trigger"] == "return_theatre_48h" and event.description == "术后出血再次手术"
    case = client.get(f"/api/v1/events/{event.id}?lang=zh", headers=tokens("quality")).json
    assert "术后48小时内非计划重返手术室" in case["description"] and "术后出血再次手术" in case["description"]
    again = client.post(f"/api/v1/followup/prompts/{prompt.id}/file", json={"version": prompt.version},
                        headers=tokens("quality"))
    assert again.status_code == 409
    assert facts.db.session.scalar(sa.select(sa.func.count()).select_from(AdverseEvent)) == 1


def test_a_firing_whose_harm_was_reported_already_is_linked_not_filed_twice(client, tokens, facts):
    from qcflow.events.models import AdverseEvent

    patient, prompt = fired_return(facts)
    report = {"category_code": "surgery", "reporter_grade": "II", "occurred_at": (T0 + timedelta(hours=21)).isoformat(),
              "discovered_at": (T0 + timedelta(hours=21)).isoformat(), "care_stage": "surgery_anaesthesia",
              "location": "病房",
              "department_id": facts.hospital["surgery"].id, "description": "术后出血，再次手术止血。",
              "patient_mrn": patient.mrn}
    filed = client.post("/api/v1/events", json={"mode": "named", **report}, headers=tokens("doctor"))
    assert filed.status_code == 201, filed.json
    other, _elsewhere = fired_return(facts)
    del other
    confirmed = client.post(f"/api/v1/followup/prompts/{prompt.id}/file", json={"version": prompt.version},
                            headers=tokens("quality"))
    assert confirmed.status_code == 201 and confirmed.json["state"] == "linked"
    assert confirmed.json["event_id"] == filed.json["id"]
    assert facts.db.session.scalar(sa.select(sa.func.count()).select_from(AdverseEvent)) == 1


def test_dismissing_takes_a_reason_from_the_list_and_other_needs_words(client, tokens, facts):
    _patient, prompt = fired_return(facts)
    url = f"/api/v1/followup/prompts/{prompt.id}/dismiss"
    headers = tokens("quality")
    assert client.post(url, json={"version": prompt.version, "reason_code": "bogus"}, headers=headers).status_code == 422
    refused = client.post(url, json={"version": prompt.version, "reason_code": "other"}, headers=headers)
    assert refused.status_code == 422
    done = client.post(url, json={"version": prompt.version, "reason_code": "planned", "reason": "分期手术"},
                       headers=headers)
    assert done.status_code == 200 and (done.json["state"], done.json["dismiss_code"]) == ("dismissed", "planned")
    assert client.post(url, json={"version": done.json["version"], "reason_code": "planned"},
                       headers=headers).status_code == 409


def test_the_inbox_page_shows_the_facts_in_the_readers_language_and_confirms(clients, facts):
    _patient, prompt = fired_return(facts)
    head = clients("head")
    zh = visible(head.get("/followup/prompts?lang=zh").get_data(as_text=True))
    assert "术后48小时内非计划重返手术室" in zh and "腹腔镜阑尾切除术" in zh and "return_theatre" not in zh
    en = visible(head.get("/followup/prompts?lang=en&source=trigger").get_data(as_text=True))
    assert "Return to theatre within 48 h" in en and "General surgery" in en
    token = csrf_from(head, "/followup/prompts")
    done = head.post(f"/followup/prompts/{prompt.id}/dismiss", data={
        "csrf_token": token, "version": prompt.version, "reason_code": "expected_course", "reason": ""})
    assert done.status_code == 302
    dismissed = head.get("/followup/prompts?state=dismissed&lang=en").get_data(as_text=True)
    assert "Expected course of the illness or treatment" in dismissed


def test_the_inbox_filters_by_the_days_a_firing_was_raised_in(client, tokens, facts):
    """T0 is 09:00 on 2 March in the hospital's time (01:00 UTC)."""
    fired_return(facts)
    march = items(client, tokens("quality"), "?source=trigger&from=2026-03-02&to=2026-03-02")
    assert {p["trigger"] for p in march} == {"return_theatre_48h"}
    assert items(client, tokens("quality"), "?source=trigger&to=2026-03-01") == []
    assert items(client, tokens("quality"), "?source=trigger&from=2026-03-03") == []
    bad = client.get("/api/v1/followup/prompts?from=2026-02-30", headers=tokens("quality"))
    assert bad.status_code == 422 and "from" in bad.json["errors"]


def test_the_inbox_page_filters_by_the_days_too(clients, facts):
    fired_return(facts)
    quality = clients("quality")
    page = visible(quality.get("/followup/prompts?state=&source=trigger&from=2026-03-02&to=2026-03-02&lang=en")
                   .get_data(as_text=True))
    assert "Return to theatre within 48 h" in page
    empty = visible(quality.get("/followup/prompts?state=&source=trigger&from=2026-03-03&lang=en").get_data(as_text=True))
    assert "No possible events match." in empty
    assert quality.get("/followup/prompts?from=2026-13-01").status_code == 422


def test_the_reviewer_links_a_firing_to_a_report_of_another_category_they_choose(client, clients, tokens, facts):
    """The ICU transfer after the operation was reported by the anaesthetist as a medication event: the
    reviewer sees it among the reports about the patient then and links to it; another patient's report is
    refused."""
    from tests.extraction.test_attacks import report

    patient, prompt = fired_return(facts)
    medication = report(client, tokens("doctor"), patient, "medication", facts.hospital["surgery"].id)
    other = facts.patient()
    facts.db.session.commit()
    stranger = report(client, tokens("doctor"), other, "surgery", facts.hospital["surgery"].id)
    page = visible(clients("quality").get("/followup/prompts?source=trigger&lang=en").get_data(as_text=True))
    assert "Reported already: link to" in page
    url = f"/api/v1/followup/prompts/{prompt.id}/file"
    refused = client.post(url, json={"version": prompt.version, "event_id": stranger}, headers=tokens("quality"))
    assert refused.status_code == 422 and "event_id" in refused.json["errors"]
    linked = client.post(url, json={"version": prompt.version, "event_id": medication}, headers=tokens("quality"))
    assert linked.status_code == 201 and (linked.json["state"], linked.json["event_id"]) == ("linked", medication)
