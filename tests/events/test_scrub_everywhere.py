"""Every free-text field of a case is scrubbed, with the one name list, wherever it is shown outside
the quality office: the case page and API, the reporter's views, exports and notifications."""
from datetime import timedelta

import pytest
import sqlalchemy as sa

from tests.conftest import csrf_from

#: A patient, a HIS staff member who is not a user, and a user: every kind of name on the list.
NAMES = ("王小明", "李刀", "张建国")


@pytest.fixture
def named_case(hospital, event_now):
    """A case under way whose every free-text field names someone; returns its id."""
    from qcflow.clinical.models import Patient, Staff
    from qcflow.core.actors import Actor
    from qcflow.events import services
    from qcflow.extensions import db

    db.session.add_all([
        Patient(his_id="P900", mrn="BA900", name="王小明", sex="M", created_at=event_now, updated_at=event_now),
        Staff(his_id="S900", name="李刀", department_id=hospital["surgery"].id, specialty="general_surgery"),
    ])
    quality = Actor.for_user(hospital["quality"])
    event, _code = services.file_report(
        {"category_code": "medication", "subcategory_code": "wrong_dose", "reporter_grade": "III",
         "care_stage": "medication", "occurred_at": event_now - timedelta(hours=3),
         "discovered_at": event_now - timedelta(hours=2), "department_id": hospital["surgery"].id,
         "location": "王小明床旁", "clinical_state": "李刀主刀术后第2天", "patient_mrn": "BA900",
         "description": "李刀给王小明配药时剂量多了一倍。", "immediate_actions": "张建国通知了王小明家属。"},
        mode="named", actor=Actor.for_user(hospital["clinician"]), now=event_now)
    services.transition_event(event, "request_info", {"message": "王小明当时的体重是多少？"}, actor=quality,
                              now=event_now)
    services.transition_event(event, "provide_info", {"message": "王小明约60公斤。"},
                              actor=Actor.for_user(hospital["clinician"]), now=event_now)
    services.transition_event(event, "triage", {"confirmed_grade": "III", "handling_department_id": hospital["surgery"].id,
                                               "external_severity": "none"}, actor=quality, now=event_now)
    services.transition_event(event, "start_investigation", {}, actor=quality, now=event_now)
    services.add_action(event, {"title": "李刀与张建国双人核对培训", "improvement_type": "training",
                                "owner_department_id": hospital["surgery"].id,
                                "due_on": (event_now + timedelta(days=30)).date()}, actor=quality, now=event_now)
    services.transition_event(event, "plan_actions", {"rca_cause_domains": ["practice"],
                                                      "rca_factors": "李刀未核对王小明的医嘱。",
                                                      "analysis": "张建国所在组人手不足。"},
                              actor=quality, now=event_now)
    db.session.commit()
    return event.id


def names_in(text: str) -> list[str]:
    return [name for name in NAMES if name in text]


def test_a_department_head_reads_no_name_in_any_field_of_the_case(named_case, clients, hospital):
    head = clients("head")
    api = head.get(f"/api/v1/events/{named_case}")
    assert api.status_code == 200
    assert api.json["location"] == "[姓名]床旁" and api.json["clinical_state"] == "[姓名]主刀术后第2天"
    assert names_in(api.get_data(as_text=True)) == []
    page = head.get(f"/events/{named_case}")
    assert page.status_code == 200 and names_in(page.get_data(as_text=True)) == []
    listed = head.get("/api/v1/events")
    assert listed.json["items"] and names_in(listed.get_data(as_text=True)) == []
    # The quality office reads the case as written.
    assert "王小明床旁" in clients("quality").get(f"/events/{named_case}").get_data(as_text=True)


def test_completing_an_action_answers_the_head_without_names(named_case, clients, hospital):
    head = clients("head")
    action = head.get(f"/api/v1/events/{named_case}").json["actions"][0]
    done = head.post(f"/api/v1/events/{named_case}/actions/{action['id']}/transitions",
                     json={"action": "complete", "version": action["version"], "evidence": "王小明的医嘱已复核"},
                     headers={"X-CSRFToken": csrf_from(head, "/events")})
    assert done.status_code == 200, done.json
    assert done.json["title"] == "[姓名]与[姓名]双人核对培训" and names_in(done.get_data(as_text=True)) == []


def test_the_action_notification_to_the_department_names_nobody(named_case, hospital):
    from qcflow.extensions import db
    from qcflow.notify.models import Notification

    notes = list(db.session.scalars(sa.select(Notification).where(Notification.kind == "action.assigned")))
    from qcflow.notify.messages import texts

    assert notes and all(names_in("".join(texts(n))) == [] for n in notes)


def test_the_department_export_scrubs_every_free_text_column(named_case, clients):
    csv = clients("head").get("/api/v1/exports/events.csv?from=2026-03-01&to=2026-03-31")
    assert csv.status_code == 200
    text = csv.get_data(as_text=True)
    assert "[姓名]床旁" in text and names_in(text) == []


def test_the_analysis_labels_of_free_text_values_name_no_staff(named_case, clients):
    analysis = clients("quality").get("/api/v1/reports/analysis?from=2026-03-01&to=2026-03-31")
    assert analysis.status_code == 200
    (table,) = [t for t in analysis.json["dimensions"] if t["name"] == "clinical_state"]
    assert "[姓名]主刀术后第2天" in [row["label"] for row in table["rows"]]
    assert names_in(analysis.get_data(as_text=True)) == []


def test_the_reporter_reads_the_questions_without_names(named_case, clients):
    page = clients("clinician").get("/my/reports")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "[姓名]当时的体重是多少" in text and "王小明" not in text  # (the page header names the user herself)


#: What a family member wrote into a public report's text: the contact details they left in its own fields.
SIGNED = {"contact_name": "王秀英", "contact_phone": "021-64041990"}
SIGNED_TEXT = ("我是家属王秀英，请打座机021-64041990联系我，或打 021 6404 1990、（021）64041990、02164041990，"
               "父亲夜里摔倒了。")


@pytest.fixture
def signed_public_case(hospital, event_now):
    """A family's report whose description, immediate actions and place repeat its contact name and phone."""
    from qcflow.events.services import file_public_report
    from qcflow.extensions import db

    event, _code = file_public_report(
        {"public_role": "family", "department_id": hospital["surgery"].id,
         "occurred_at": event_now - timedelta(hours=20), "description": SIGNED_TEXT,
         "immediate_actions": "王秀英叫了护士。", "location": "王 秀英父亲的病房", **SIGNED},
        now=event_now - timedelta(hours=3))
    db.session.commit()
    return event.id


def contact_in(text: str) -> list[str]:
    return [found for found in ("王秀英", "秀英", "6404", "64041990") if found in text]


def test_a_public_reports_own_contact_details_are_scrubbed_from_its_text(signed_public_case, clients):
    head = clients("head")
    api = head.get(f"/api/v1/events/{signed_public_case}")
    assert api.status_code == 200
    assert api.json["description"].startswith("我是家属[姓名]，请打座机[电话]联系我，或打 [电话]、[电话]、[电话]，")
    assert contact_in(api.get_data(as_text=True)) == []
    page = head.get(f"/events/{signed_public_case}")
    assert page.status_code == 200 and contact_in(page.get_data(as_text=True)) == []
    assert contact_in(head.get("/api/v1/events").get_data(as_text=True)) == []
    csv = head.get("/api/v1/exports/events.csv?from=2026-02-01&to=2026-03-31")
    assert "我是家属[姓名]" in csv.get_data(as_text=True) and contact_in(csv.get_data(as_text=True)) == []
    analysis = clients("quality").get("/api/v1/reports/analysis?from=2026-02-01&to=2026-03-31")
    (table,) = [t for t in analysis.json["dimensions"] if t["name"] == "location"]
    assert "[姓名]父亲的病房" in [row["label"] for row in table["rows"]]
    # The quality office, who may also reveal the contact, reads the text as written.
    assert "021-64041990" in clients("quality").get(f"/api/v1/events/{signed_public_case}").json["description"]
