"""The triggers as data: read, tuned, switched off and added over the API and on the page, each change a new
version, audited; a trigger that cannot be evaluated is refused when saved (422), never in the job."""
from __future__ import annotations

import json

import sqlalchemy as sa

from tests.conftest import csrf_from
from tests.extraction.conftest import T0


def patch(client, code, headers, **body):
    return client.patch(f"/api/v1/triggers/{code}", json=body, headers=headers)


def test_the_quality_office_reads_every_default_trigger_others_may_not(client, tokens):
    listed = client.get("/api/v1/triggers", headers=tokens("quality"))
    assert listed.status_code == 200
    by_code = {t["code"]: t for t in listed.json}
    assert {"return_theatre_48h", "return_theatre_31d", "readmission_31d", "icu_after_operation_48h", "rescue_drug",
            "transfusion_reaction", "critical_inr", "critical_glucose", "critical_potassium",
            "death_30d_after_operation"} == set(by_code)
    assert by_code["return_theatre_48h"]["window_hours"] == 48 and by_code["return_theatre_31d"]["window_hours"] == 744
    assert by_code["icu_after_operation_48h"]["reads"] == ["operation", "transfer"]
    for who in ("head", "nurse", "doctor"):
        assert client.get("/api/v1/triggers", headers=tokens(who)).status_code == 403


def test_tuning_makes_a_new_version_audited_and_the_next_firing_carries_it(client, tokens, facts):
    from qcflow.core.audit import AuditEntry

    got = client.get("/api/v1/triggers/critical_potassium", headers=tokens("quality")).json
    tuned = patch(client, "critical_potassium", tokens("quality"), version=got["version"],
                  params={**got["params"], "above": 6.0})
    assert tuned.status_code == 200 and tuned.json["version"] == got["version"] + 1
    assert tuned.json["params"]["above"] == 6.0
    entry = facts.db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "extraction_trigger.update"))
    detail = json.loads(entry.detail)
    assert detail["changed"] == ["params"] and detail["before"]["params"]["above"] == 6.2
    assert patch(client, "critical_potassium", tokens("quality"), version=got["version"],
                 is_active=False).status_code == 409
    facts.lab(facts.stay(facts.patient()), "K", 6.1)
    facts.evaluate()
    (firing,) = facts.firings("critical_potassium")
    assert firing.trigger_version == tuned.json["version"]


def test_a_trigger_that_cannot_be_evaluated_is_refused_when_saved_and_nothing_changes(client, tokens):
    quality = tokens("quality")
    version = client.get("/api/v1/triggers/critical_inr", headers=quality).json["version"]
    cases = [
        ({"params": {"test_code": "INR", "above": "six"}}, "above"),
        ({"params": {"test_code": "INR"}}, "above"),
        ({"params": {"test_code": "INR", "above": 6, "bogus": 1}}, "bogus"),
        ({"params": {"test_code": "", "above": 6}}, "test_code"),
        ({"params": {"test_code": "K", "above": 2, "below": 5}}, "below"),
        ({"window_hours": 48}, "window_hours"),
    ]
    for body, field in cases:
        refused = patch(client, "critical_inr", quality, version=version, **body)
        assert refused.status_code == 422 and field in refused.json["errors"], (body, refused.json)
    drug = client.get("/api/v1/triggers/rescue_drug", headers=quality).json
    refused = patch(client, "rescue_drug", quality, version=drug["version"], params={"drugs": ["aspirin"]})
    assert refused.status_code == 422 and "aspirin" in str(refused.json["errors"])
    window = client.get("/api/v1/triggers/return_theatre_48h", headers=quality).json
    assert patch(client, "return_theatre_48h", quality, version=window["version"],
                 window_hours=None).status_code == 422
    assert patch(client, "return_theatre_48h", quality, version=window["version"],
                 window_hours=0).status_code == 422
    assert client.get("/api/v1/triggers/critical_inr", headers=quality).json["version"] == version


def test_a_switched_off_trigger_stops_firing_and_a_new_trigger_fires(client, tokens, facts):
    quality = tokens("quality")
    drug = client.get("/api/v1/triggers/rescue_drug", headers=quality).json
    assert patch(client, "rescue_drug", quality, version=drug["version"], is_active=False).json["is_active"] is False
    sodium = {"code": "critical_sodium", "name": "血钠危急值", "name_en": "Critical sodium", "rule": "critical_lab",
              "params": {"test_code": "NA", "below": 120}}
    created = client.post("/api/v1/triggers", json=sodium, headers=quality)
    assert created.status_code == 201 and created.json["version"] == 1
    assert client.post("/api/v1/triggers", json=sodium, headers=quality).status_code == 409
    assert client.post("/api/v1/triggers", json={**sodium, "code": "x2", "rule": "bogus"},
                       headers=quality).status_code == 422
    assert client.post("/api/v1/triggers", json={**sodium, "code": "x3", "window_hours": 5},
                       headers=quality).status_code == 422
    assert client.post("/api/v1/triggers", json=sodium, headers=tokens("head")).status_code == 403
    stay = facts.stay(facts.patient())
    facts.drug(stay, "naloxone", T0)
    facts.lab(stay, "Na", 118)
    facts.evaluate()
    assert [p.trigger.code for p in facts.firings()] == ["critical_sodium"]


def test_the_triggers_page_in_chinese_and_a_tuned_window_from_the_form(clients, hospital):
    quality = clients("quality")
    page = quality.get("/admin/triggers?lang=zh").get_data(as_text=True)
    assert "术后48小时内非计划重返手术室" in page and "return_to_theatre" not in page.replace("return_theatre", "")
    form = quality.get("/admin/triggers/return_theatre_48h").get_data(as_text=True)
    assert 'name="window_hours"' in form
    token = csrf_from(quality, "/admin/triggers/return_theatre_48h")
    base = {"csrf_token": token, "version": "1", "name": "术后72小时内非计划重返手术室", "name_en": "Return within 72 h",
            "reviewer_department_id": "", "is_active": "on"}
    bad = quality.post("/admin/triggers/return_theatre_48h", data={**base, "window_hours": "abc"})
    assert bad.status_code == 422
    saved = quality.post("/admin/triggers/return_theatre_48h", data={**base, "window_hours": "72"})
    assert saved.status_code == 302
    listed = quality.get("/admin/triggers?lang=en").get_data(as_text=True)
    assert "Return within 72 h" in listed and "72 h" in listed and "v2" in listed
    assert clients("head").get("/admin/triggers").status_code == 403
