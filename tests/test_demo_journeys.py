"""The README's journeys can be walked straight after `make run` loads the demo data: the booking
gate stops the planned grade-4 operation, its discussion is held and signed by the demo users, the
indicators of the last months have real numbers, a possible-event prompt waits for the quality
office, and the inbox holds a case in every state."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from tests.conftest import CREATED_APPS, demo_app, make_app


@pytest.fixture
def demo_world(demo_snapshot, tmp_path):
    """An app over the demo data loaded as `make run` does (a copy of the run's snapshot), and what the loader
    returned."""
    app, data = demo_app(demo_snapshot, tmp_path)
    CREATED_APPS.append(app)  # closed after the test
    return app, data


@pytest.fixture
def app(demo_world):
    return demo_world[0]


@pytest.fixture
def demo(demo_world):
    """The demo data, and an API client per demo user."""
    from qcflow.auth import services as auth
    from qcflow.auth.models import User
    from qcflow.core.actors import Actor
    from qcflow.core.time import now
    from qcflow.extensions import db

    app, data = demo_world
    with app.app_context():
        tokens = {user.username: auth.create_token(user, "journeys", days=1, actor=Actor.system("test"),
                                                   now=now())[1]
                  for user in db.session.scalars(sa.select(User))}
        db.session.commit()

    def call(username, method, path, body=None):
        response = app.test_client().open(path, method=method, json=body,
                                          headers={"Authorization": f"Bearer {tokens[username]}"})
        return response.status_code, response.get_json()

    data.call = call
    return data


def operation_id(app, his_id):
    from qcflow.clinical.models import Operation
    from qcflow.extensions import db

    with app.app_context():
        return db.session.scalar(sa.select(Operation.id).where(Operation.his_id == his_id))


def test_the_gate_stops_the_planned_grade_four_operation_until_the_demo_users_sign_its_discussion(app, demo):
    from qcflow.clinical.models import Staff
    from qcflow.extensions import db

    with app.app_context():
        staff = {s.name: (s.specialty, s.user_id is not None) for s in db.session.scalars(sa.select(Staff))}
    assert staff["王主任"] == ("general_surgery", True)
    assert staff["孙麻醉"] == ("anaesthesia", True) and staff["钱心内"] == ("cardiology", True)

    operation = f"/api/v1/operations/{operation_id(app, 'DEMO-O4')}"
    status, body = demo.call("head", "GET", operation)
    assert status == 200 and body["state"] == "planned" and body["grade"] == 4, body
    status, refused = demo.call("head", "POST", f"{operation}/transitions",
                                {"action": "book", "version": body["version"]})
    assert status == 409, refused
    # Only the discussion is missing: the surgeon's authorisation is in place.
    assert len(refused["missing"]) == 1 and "多学科讨论" in refused["missing"][0], refused

    from qcflow.mdt.models import Discussion

    with app.app_context():
        discussion_id = db.session.scalar(sa.select(Discussion.id).where(
            Discussion.operation_id == operation_id(app, "DEMO-O4")))
    path = f"/api/v1/mdt/discussions/{discussion_id}"
    status, discussion = demo.call("head", "GET", path)
    assert status == 200 and discussion["state"] == "requested"
    specialties = {p["specialty"] for p in discussion["participants"]}
    assert {"general_surgery", "anaesthesia", "cardiology"} <= specialties, discussion["participants"]
    head_id = next(p["user_id"] for p in discussion["participants"] if p["specialty"] == "general_surgery")

    status, discussion = demo.call("head", "PUT", f"{path}/attendance", {
        "version": discussion["version"], "attended": [p["id"] for p in discussion["participants"]]})
    assert status == 200, discussion
    status, discussion = demo.call("head", "PATCH", path, {
        "version": discussion["version"], "chair_user_id": head_id, "summary": "麻醉评估 ASA II 级，心功能可耐受。",
        "conclusion": "同意按计划手术。", "decision": "proceed"})
    assert status == 200, discussion
    from qcflow.core.time import now

    for step in ({"action": "schedule", "scheduled_at": (now() - timedelta(hours=1)).isoformat()},
                 {"action": "hold"}, {"action": "sign"}):
        status, discussion = demo.call("head", "POST", f"{path}/transitions", {**step, "version": discussion["version"]})
        assert status == 200, (step, discussion)
    assert discussion["state"] == "signed"

    status, body = demo.call("head", "GET", operation)
    status, booked = demo.call("head", "POST", f"{operation}/transitions",
                               {"action": "book", "version": body["version"]})
    assert status == 200 and booked["state"] == "booked", booked


def test_the_anaesthetist_and_the_cardiologist_log_in_and_find_their_discussions(app, demo):
    from tests.conftest import login

    for username, password in (("anes", "demo-anes-2025"), ("cardio", "demo-cardio-2025")):
        client = app.test_client()
        assert login(client, username, password).status_code == 302
        status, listed = demo.call(username, "GET", "/api/v1/mdt/discussions")
        assert status == 200
        items = listed["items"] if isinstance(listed, dict) else listed
        states = {d["state"] for d in items}
        assert {"requested", "scheduled", "signed"} <= states, (username, states)


def test_the_indicators_of_the_last_months_have_real_numbers(demo):
    first_of_month = date.today().replace(day=1)
    start = (first_of_month - timedelta(days=150)).replace(day=1)
    last_day = first_of_month - timedelta(days=1)
    status, values = demo.call("quality", "GET", f"/api/v1/indicators?from={start}&to={last_day}")
    assert status == 200, values
    by_code = {v["code"]: v for v in values}
    for code in ("ae_per_100_discharges", "ae_closure_on_time_rate", "followup_rate_level4",
                 "day_surgery_24h_followup_rate", "preop_mdt_rate_level4", "day_surgery_share"):
        assert by_code[code]["denominator"] and by_code[code]["value"] is not None, by_code[code]
    # Over the year: every key cancer's calls, and the perioperative deaths with their reviews.
    year_ago = first_of_month.replace(year=first_of_month.year - 1)
    status, year = demo.call("quality", "GET", f"/api/v1/indicators?from={year_ago}&to={last_day}")
    by_code = {v["code"]: v for v in year}
    for code in [f"followup_rate_cancer_{t}" for t in ("lung", "gastric", "liver", "breast", "colorectal")] + [
            "periop_death_discussion_rate", "periop_death_discussion_7d_rate"]:
        assert by_code[code]["denominator"] and by_code[code]["value"] is not None, by_code[code]
    # Not everything is perfect: some calls are missed and one grade-4 operation went ahead in an emergency.
    assert 0 < by_code["followup_rate_level4"]["value"] < 100
    assert 0 < by_code["preop_mdt_rate_level4"]["value"] < 100
    month_end = first_of_month - timedelta(days=1)
    for _ in range(3):  # every one of the last three months has reports
        month_start = month_end.replace(day=1)
        status, values = demo.call("quality", "GET", f"/api/v1/indicators?from={month_start}&to={month_end}")
        ae = next(v for v in values if v["code"] == "ae_per_100_discharges")
        assert ae["numerator"] > 0, (month_start, ae)
        month_end = month_start - timedelta(days=1)


def test_a_possible_event_prompt_and_every_kind_of_call_are_there(app, demo):
    status, page = demo.call("quality", "GET", "/api/v1/followup/prompts?source=followup_call&state=open")
    prompts = page["items"]
    assert status == 200 and len(prompts) == 2 and all("complication" in p["findings"] for p in prompts), prompts
    assert sum("worsening" in p["findings"] for p in prompts) == 1  # the patient's alarming answer online

    from qcflow.extensions import db
    from qcflow.followup.models import Task

    with app.app_context():
        states = dict(db.session.execute(sa.select(Task.state, sa.func.count()).group_by(Task.state)).all())
    assert states["completed"] >= 40 and states["unreachable"] >= 3 and states["pending"] >= 4, states


def test_the_triggers_found_several_kinds_of_harm_the_office_confirms_one_and_dismisses_another(demo):
    """Issue 20's demo: firings of several triggers wait for review; confirming the naloxone links to the
    anaesthetist's report (no second report), confirming the transfusion reaction files one found by the
    system, and a critical INR is dismissed with a reason from the list."""
    status, page = demo.call("quality", "GET", "/api/v1/followup/prompts?source=trigger&state=open")
    assert status == 200
    waiting = {p["trigger"]: p for p in page["items"]}
    assert {"icu_after_operation_48h", "rescue_drug", "critical_inr", "readmission_31d",
            "transfusion_reaction"} <= set(waiting), sorted(waiting)
    status, head_page = demo.call("head", "GET", "/api/v1/followup/prompts?source=trigger&state=open")
    assert status == 200 and {p["id"] for p in head_page["items"]} == {p["id"] for p in page["items"]}
    naloxone = next(p for p in page["items"] if p["trigger"] == "rescue_drug"
                    and p["facts"][0]["drug"] == "naloxone")
    status, linked = demo.call("quality", "POST", f"/api/v1/followup/prompts/{naloxone['id']}/file",
                               {"version": naloxone["version"]})
    assert status == 201 and linked["state"] == "linked"
    status, case = demo.call("quality", "GET", f"/api/v1/events/{linked['event_id']}")
    assert status == 200 and "呼吸抑制" in case["description"]
    reaction = waiting["transfusion_reaction"]
    status, filed = demo.call("head", "POST", f"/api/v1/followup/prompts/{reaction['id']}/file",
                              {"version": reaction["version"], "note": "输血后寒战、发热，已停止输血。"})
    assert status == 201 and filed["state"] == "filed"
    status, case = demo.call("quality", "GET", f"/api/v1/events/{filed['event_id']}")
    assert case["category_code"] == "transfusion" and case["subcategory_code"] == "transfusion_reaction"
    inr = waiting["critical_inr"]
    status, dismissed = demo.call("quality", "POST", f"/api/v1/followup/prompts/{inr['id']}/dismiss",
                                  {"version": inr["version"], "reason_code": "expected_course",
                                   "reason": "华法林过量已知，已按计划处理。"})
    assert status == 200 and dismissed["state"] == "dismissed"


def test_the_quality_office_finds_only_the_last_days_notifications_unread(app, demo):
    from qcflow.auth.models import User
    from qcflow.extensions import db
    from qcflow.notify.models import Notification
    from qcflow.notify.services import unread_count

    with app.app_context():
        quality = db.session.scalar(sa.select(User.id).where(User.username == "quality"))
        received = db.session.scalar(sa.select(sa.func.count()).select_from(Notification)
                                     .where(Notification.user_id == quality))
        assert received > 50 and 1 <= unread_count(quality) <= 10, (received, unread_count(quality))


def test_every_case_state_is_there_with_corrective_actions_and_a_year_of_reports(app, demo):
    from qcflow.core.time import local
    from qcflow.events.models import AdverseEvent, CorrectiveAction
    from qcflow.events.workflow import EventState
    from qcflow.extensions import db

    with app.app_context():
        events = list(db.session.scalars(sa.select(AdverseEvent)))
        actions = list(db.session.scalars(sa.select(CorrectiveAction)))
        by_state = {}
        for event in events:
            by_state.setdefault(event.state, []).append(event)
        assert set(by_state) == {s.value for s in EventState}, sorted(by_state)  # a draft too (/my/reports)
        assert 60 <= len(events) <= 150
        assert len({local(e.submitted_at).strftime("%Y-%m") for e in events if e.submitted_at}) >= 12
        assert len({e.category_code for e in events}) >= 10 and len({e.department_id for e in events}) >= 5
        assert {e.mode for e in events} == {"anonymous", "named", "confidential"}
        assert any(e.confirmed_grade == "II" for e in by_state["investigating"])
        open_case = by_state["actions_open"][0]
        assert {a.state for a in open_case.actions} == {"open", "done"}
        assert all(a.state == "verified" for a in by_state["verifying"][0].actions)
        assert sum(bool(e.improvement_types) for e in by_state["closed"]) >= 10
        assert all(e.feedback for e in by_state["closed"] + by_state["not_reportable"])
        assert len(actions) >= 20
        assert len(demo.receipt_codes) == sum(e.mode == "anonymous" for e in events)


def test_a_death_review_is_signed_and_another_waits_to_be_held(app, demo):
    """The death-review journey: two ward deaths after a grade-4 operation, each with its date of death and a
    discharge as a death; one perioperative review signed, the other still requested, due within 7 days."""
    from qcflow.clinical.models import Encounter, Patient
    from qcflow.extensions import db
    from qcflow.mdt.models import Discussion

    with app.app_context():
        reviews = list(db.session.scalars(sa.select(Discussion).where(Discussion.kind == "perioperative_death")
                                          .order_by(Discussion.id)))
        assert [r.state for r in reviews] == ["signed", "requested"], [r.state for r in reviews]
        for review in reviews:
            patient = db.session.get(Patient, review.patient_id)
            encounter = db.session.get(Encounter, review.encounter_id)
            assert patient.died_on is not None and encounter.disposition == "death"
        pending_id = reviews[1].id
    status, pending = demo.call("quality", "GET", f"/api/v1/mdt/discussions/{pending_id}")
    assert status == 200 and pending["state"] == "requested", pending


def test_the_demo_loaded_just_after_midnight_still_finds_the_transfusion_reaction(database_url, tmp_path):
    """The demo's HIS facts arrive after the latest of them happened, whatever the hour it is loaded at (loaded
    between midnight and 10:00, the transfusion once came from the future and never fired)."""
    from qcflow.demo import load_demo
    from qcflow.extensions import db
    from qcflow.extraction.models import Trigger
    from qcflow.followup.models import EventPrompt
    from tests.conftest import sh

    app = make_app(database_url, str(tmp_path))
    with app.app_context():
        load_demo(now=sh(2026, 12, 7, 0, 40))
        fired = set(db.session.scalars(sa.select(Trigger.code).join(EventPrompt, EventPrompt.trigger_id == Trigger.id)))
    assert "transfusion_reaction" in fired, sorted(fired)
