"""MDT clinics (多学科门诊): the quality office's list, its rules, the API and the indicator that counts them."""
import re
from datetime import date, time

import pytest
import sqlalchemy as sa

from tests.conftest import csrf_from, sh

NOW = sh(2026, 3, 10, 9)
LUNG = {"name": "肺结节多学科门诊", "name_en": "Lung nodule MDT clinic", "department_id": "GS",
        "specialties": ["thoracic_surgery", "respiratory", "radiology"],
        "slots": [{"weekday": 3, "starts_at": "14:00", "ends_at": "17:00"}], "active_from": "2026-01-01"}


def body(**changes):
    return {**LUNG, **changes}


def post(clients, data, who="quality"):
    client = clients(who)
    return client.post("/api/v1/mdt/clinics", headers=client.csrf, json=data)


def count(start, end, now=NOW, department_id=None):
    from qcflow.indicators.queries import compute

    return compute(start, end, codes=["mdt_clinic_count"], now=now, department_id=department_id)[0]


def audit_actions():
    from qcflow.core.audit import AuditEntry
    from qcflow.extensions import db

    return [e.action for e in db.session.scalars(sa.select(AuditEntry).where(AuditEntry.object_type == "mdt_clinic")
                                                  .order_by(AuditEntry.id))]


def test_quality_office_adds_a_clinic_and_the_indicator_counts_it(clients, hospital):
    response = post(clients, LUNG)
    assert response.status_code == 201, response.get_json()
    clinic = response.get_json()
    assert clinic["is_counted"] is True and clinic["slots"] == LUNG["slots"]
    assert clinic["department_id"] == hospital["surgery"].id and clinic["version"] == 1
    value = count(date(2026, 3, 1), date(2026, 3, 31))
    assert (value.numerator, value.value, value.unit) == (1, 1.0, "count")
    assert audit_actions() == ["mdt_clinic.create"]


@pytest.mark.parametrize("changes, counted", [
    ({"specialties": ["thoracic_surgery"]}, False),                       # one specialty: not multidisciplinary
    ({"specialties": ["thoracic_surgery", "respiratory"]}, True),         # two: the edge
    ({"slots": []}, False),                                                # no weekly slot
    ({"active_from": "2026-03-31"}, True),                                 # opens on the period's last day
    ({"active_from": "2026-04-01"}, False),                                # opens after it
    ({"active_to": "2026-03-31"}, True),                                   # closes on the last day: still open
    ({"active_to": "2026-03-30"}, False),                                  # closed the day before
])
def test_counted_on_the_period_s_last_day(clients, hospital, changes, counted):
    assert post(clients, body(**changes)).status_code == 201
    value = count(date(2026, 3, 1), date(2026, 3, 31), now=sh(2026, 4, 2))
    assert value.numerator == int(counted)


def test_a_count_is_not_summed_over_months(clients, hospital):
    """A year's value is the clinics open on 31 December, not the sum of twelve monthly counts (rollups)."""
    from qcflow.core.actors import Actor
    from qcflow.extensions import db
    from qcflow.indicators.services import refresh_rollups

    for name in ("甲", "乙", "丙"):
        assert post(clients, body(name=name, active_from="2025-01-01")).status_code == 201
    refresh_rollups(actor=Actor.system("test"), now=sh(2026, 2, 10))
    db.session.commit()
    value = count(date(2025, 1, 1), date(2025, 12, 31), now=sh(2026, 2, 10))
    assert (value.numerator, value.value) == (3, 3.0)


def test_department_and_drill_down_list_the_clinics(clients, hospital):
    post(clients, LUNG)
    post(clients, body(name="心血管门诊", department_id="CARD"))
    assert count(date(2026, 3, 1), date(2026, 3, 31), department_id=hospital["cardio"].id).numerator == 1
    cases = clients("quality").get("/api/v1/indicators/mdt_clinic_count/cases?from=2026-03-01&to=2026-03-10"
                                   "&part=numerator").get_json()
    assert cases["total"] == 2
    assert {item["label"] for item in cases["items"]} == {"肺结节多学科门诊", "心血管门诊"}
    assert all(re.fullmatch(r"/mdt/clinics/\d+", item["url"]) for item in cases["items"])


@pytest.mark.parametrize("changes, field", [
    ({"specialties": ["thoracic_surgery", "not_a_specialty"]}, "specialties"),
    ({"specialties": []}, "specialties"),
    ({"specialties": ["radiology", "radiology"]}, "specialties"),
    ({"department_id": "NOPE"}, "department_id"),
    ({"active_to": "2025-12-31"}, "active_to"),
    ({"slots": [{"weekday": 8, "starts_at": "14:00", "ends_at": "17:00"}]}, "slots"),
    ({"slots": [{"weekday": 1, "starts_at": "17:00", "ends_at": "14:00"}]}, "slots"),
    ({"slots": [{"weekday": 1, "starts_at": "08:00", "ends_at": "12:00"},
                {"weekday": 1, "starts_at": "11:30", "ends_at": "13:00"}]}, "slots"),
    ({"name": ""}, "name"),
    ({"name": "   "}, "name"),
    ({"name": "肺结节\x00门诊"}, "name"),
    ({"name_en": "Lung\x1b[31m"}, "name_en"),
    ({"active_from": "1900-01-01"}, "active_from"),
])
def test_invalid_clinics_are_refused_with_the_field(clients, hospital, changes, field):
    response = post(clients, body(**changes))
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["errors"]
    assert clients("quality").get("/api/v1/mdt/clinics").get_json()["items"] == []


def test_back_to_back_slots_do_not_overlap(clients, hospital):
    slots = [{"weekday": 1, "starts_at": "08:00", "ends_at": "12:00"},
             {"weekday": 1, "starts_at": "12:00", "ends_at": "13:00"}]
    assert post(clients, body(slots=slots)).status_code == 201


def test_patch_changes_given_fields_and_a_stale_version_is_409(clients, hospital):
    clinic = post(clients, LUNG).get_json()
    url = f"/api/v1/mdt/clinics/{clinic['id']}"
    q = clients("quality")
    changed = q.patch(url, headers=q.csrf, json={"version": 1, "name": "肺癌多学科门诊"})
    assert changed.status_code == 200 and changed.get_json()["version"] == 2
    assert changed.get_json()["specialties"] == LUNG["specialties"]
    stale = q.patch(url, headers=q.csrf, json={"version": 1, "active_to": "2026-03-31"})
    assert stale.status_code == 409
    closed = q.patch(url, headers=q.csrf, json={"version": 2, "active_to": "2026-03-05"})
    assert closed.status_code == 200 and closed.get_json()["is_counted"] is False
    assert audit_actions() == ["mdt_clinic.create", "mdt_clinic.update", "mdt_clinic.update"]
    assert q.patch("/api/v1/mdt/clinics/999", headers=q.csrf, json={"version": 1}).status_code == 404


def test_only_the_quality_office_keeps_the_list(clients, hospital):
    assert post(clients, LUNG, who="head").status_code == 403
    assert clients("clinician").get("/mdt/clinics").status_code == 403


def test_active_on_filters_the_list(clients, hospital):
    post(clients, LUNG)
    post(clients, body(name="已停诊", active_to="2026-02-01"))
    names = [c["name"] for c in clients("quality").get("/api/v1/mdt/clinics?active_on=2026-03-01").get_json()["items"]]
    assert names == ["肺结节多学科门诊"]


def test_page_creates_edits_and_closes_a_clinic(clients, hospital):
    from qcflow.extensions import db
    from qcflow.mdt.models import Clinic

    q = clients("quality")
    page = q.get("/mdt/clinics")
    assert page.status_code == 200 and "多学科门诊" in page.get_data(as_text=True)
    token = csrf_from(q, "/mdt/clinics")
    form = {"csrf_token": token, "name": "乳腺多学科门诊", "department_id": str(hospital["surgery"].id), "active_from": "2026-01-01",
            "specialties": ["general_surgery", "oncology"], "slot_weekday": ["2", ""], "slot_start": ["09:00", ""],
            "slot_end": ["11:30", ""]}
    created = q.post("/mdt/clinics", data=form)
    assert created.status_code == 302
    clinic = db.session.scalar(sa.select(Clinic))
    assert [(s.weekday, s.starts_at, s.ends_at) for s in clinic.slots] == [(2, time(9), time(11, 30))]
    detail = q.get(created.headers["Location"]).get_data(as_text=True)
    assert "乳腺多学科门诊" in detail and "周二" in detail
    stale = q.post(f"/mdt/clinics/{clinic.id}", data={**form, "name": "改名", "version": "0"})
    assert stale.status_code == 409
    edited = q.post(f"/mdt/clinics/{clinic.id}", data={**form, "name": "改名", "version": "1"})
    assert edited.status_code == 302
    closed = q.post(f"/mdt/clinics/{clinic.id}/deactivate", data={"csrf_token": token, "version": "2", "active_to": "2026-01-31"})
    assert closed.status_code == 302
    db.session.expire_all()
    assert db.session.get(Clinic, clinic.id).active_to == date(2026, 1, 31)
    again = q.post(f"/mdt/clinics/{clinic.id}/deactivate", data={"csrf_token": token, "version": "3", "active_to": "2026-02-01"})
    assert again.status_code == 409
    assert audit_actions() == ["mdt_clinic.create", "mdt_clinic.update", "mdt_clinic.deactivate"]


def test_page_refusal_shows_the_field_and_writes_nothing(clients, hospital):
    from qcflow.extensions import db
    from qcflow.mdt.models import Clinic

    q = clients("quality")
    response = q.post("/mdt/clinics", data={"csrf_token": csrf_from(q, "/mdt/clinics"), "name": "缺专科", "department_id": str(hospital["surgery"].id),
                                                             "active_from": "2026-01-01"})
    assert response.status_code == 422
    assert 'id="specialties-error"' in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Clinic)) == 0


def test_pages_in_english_and_chinese_show_no_codes(clients, hospital):
    post(clients, LUNG)
    q = clients("quality")
    zh = q.get("/mdt/clinics").get_data(as_text=True)
    text = re.sub(r"<[^>]+>", " ", re.sub(r"<(script|style|title)\b.*?</\1>", "", zh, flags=re.S))
    assert "胸外科" in text and "thoracic_surgery" not in text
    assert not re.search(r"\b[a-z]+(_[a-z0-9]+)+\b", text)
    en = q.get("/mdt/clinics?lang=en").get_data(as_text=True)
    assert "Thoracic surgery" in en and "Lung nodule MDT clinic" in en
    mdt = q.get("/mdt").get_data(as_text=True)
    assert 'id="clinics-link"' in mdt


def test_a_copy_of_an_open_clinic_is_refused_so_it_never_counts_twice(clients, hospital):
    assert post(clients, LUNG).status_code == 201
    copy = post(clients, body(name=" 肺结节多学科门诊 "))
    assert copy.status_code == 422 and "name" in copy.get_json()["errors"]
    # The same name once the first one has closed is a new clinic.
    assert post(clients, body(active_from="2027-01-01")).status_code == 422
    first = clients("quality").get("/api/v1/mdt/clinics").get_json()["items"][0]
    client = clients("quality")
    closed = client.patch(f"/api/v1/mdt/clinics/{first['id']}", headers=client.csrf,
                          json={"active_to": "2026-06-30", "version": first["version"]})
    assert closed.status_code == 200, closed.get_json()
    assert post(clients, body(active_from="2026-07-01")).status_code == 201
    assert count(date(2026, 8, 1), date(2026, 8, 31)).numerator == 1
