"""The nurse's side of an online answer: the call shows its invitation and delivery log, the answers as a pending
outcome, confirmed in one click (page and API) or called instead; who may confirm; the queue's badges."""
from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine

from tests.conftest import csrf_from

NORMAL = {"respondent": "patient", "condition": "better", "complication": False, "unplanned_readmission": False,
          "reoperation": False, "satisfaction": 5, "revisit_requested": True, "note": "恢复很好"}
ALARMING = {**NORMAL, "condition": "worse", "complication": True, "complication_note": "伤口红肿流脓"}


@pytest.fixture
def answered(invited, frozen):
    """The invited surgery patient answered two hours after the invitation went out (delivered meanwhile)."""
    from qcflow.extensions import db
    from qcflow.followup.invitations import services

    def make(answers=NORMAL):
        services.record_delivery("gw-1", "delivered", now=frozen + timedelta(minutes=1))
        at = frozen + timedelta(hours=2)
        assert services.check_factor(invited, "1961", now=at)
        services.answer(invited, answers, now=at)
        db.session.commit()
        return invited.task_id

    return make


def api_confirm(client, tokens, who, task_id, version=None):
    from qcflow.extensions import db
    from qcflow.followup.models import Task

    db.session.expire_all()
    version = version if version is not None else db.session.get(Task, task_id).version
    return client.post(f"/api/v1/followup/tasks/{task_id}/confirm-online", json={"version": version},
                       headers=tokens(who))


def test_the_task_shows_the_invitation_its_log_and_the_pending_answers(clients, client, tokens, answered):
    task_id = answered(ALARMING)
    html = clients("nurse").get(f"/followup/tasks/{task_id}").get_data(as_text=True)
    assert 'id="invitation"' in html and "已在线答复，待确认" in html and "短信" in html
    assert 'id="invitation-log"' in html and "已送达" in html  # the gateway's report
    assert 'id="pending-answers"' in html and "伤口红肿流脓" in html and "比以前差" in html
    assert 'id="alarm-notice"' in html and "并发症" in html
    # alarming answers ask for a call first: no confirming before someone has reached the patient
    assert "立即电话联系患者" in html and "/confirm_online" not in html
    english = clients("nurse").get(f"/followup/tasks/{task_id}?lang=en").get_data(as_text=True)
    assert "Answered online, to confirm" in english and "Worse than before" in english and "Call the patient now" in english
    # The department's head reads it too; the API gives the same, with the log and the answers.
    assert "伤口红肿流脓" in clients("head").get(f"/followup/tasks/{task_id}").get_data(as_text=True)
    body = client.get(f"/api/v1/followup/tasks/{task_id}", headers=tokens("nurse")).json
    invitation = body["invitation"]
    assert invitation["state"] == "answered" and invitation["channel"] == "sms" and body["alarm"]
    assert invitation["alarms"] == ["complication", "worsening"] and invitation["answers"]["condition"] == "worse"
    assert [(m["kind"], m["status"]) for m in invitation["messages"]] == [("invitation", "sent"), ("report", "delivered")]
    assert invitation["sent_at"] and invitation["delivered_at"] and invitation["answered_at"]


def test_confirming_on_the_page_completes_the_call_online_at_the_answer_time(clients, answered, frozen):
    from qcflow.extensions import db
    from qcflow.followup.models import Task

    task_id = answered()
    with time_machine.travel(frozen + timedelta(days=1), tick=False):
        nurse = clients("nurse")  # logged in the next day
        token = csrf_from(nurse, f"/followup/tasks/{task_id}")
        version = db.session.get(Task, task_id).version
        response = nurse.post(f"/followup/tasks/{task_id}/confirm_online", data={"csrf_token": token,
                                                                               "version": version})
        assert response.status_code == 302
        html = nurse.get(f"/followup/tasks/{task_id}").get_data(as_text=True)
    db.session.expire_all()
    task = db.session.get(Task, task_id)
    assert task.state == "completed" and task.channel == "online" and task.is_effective
    assert task.closed_at == frozen + timedelta(hours=2) and task.revisit_booked is None  # asked for, not booked
    assert "患者希望预约复诊" in task.outcome_note
    assert "已确认患者答复" in html and 'id="pending-answers"' not in html and 'id="outcome"' in html


def test_the_api_confirms_and_refuses_a_stale_version_another_holder_and_other_people(client, tokens, answered,
                                                                                      actor_of):
    from qcflow.extensions import db
    from qcflow.followup import services
    from qcflow.followup.models import Task

    task_id = answered()
    assert api_confirm(client, tokens, "nurse", task_id, version=99).status_code == 409
    assert api_confirm(client, tokens, "card_nurse", task_id).status_code == 404  # another department
    assert api_confirm(client, tokens, "doctor", task_id).status_code == 403  # a clinician
    services.claim_task(db.session.get(Task, task_id), actor=actor_of("nurse2"), now=db.session.get(Task, task_id).opens_at)
    db.session.commit()
    held = api_confirm(client, tokens, "nurse", task_id)
    assert held.status_code == 409 and "其他护士" in held.json["message"]
    done = api_confirm(client, tokens, "nurse2", task_id)
    assert done.status_code == 200 and done.json["state"] == "completed" and done.json["channel"] == "online"
    assert api_confirm(client, tokens, "nurse2", task_id).status_code == 409  # nothing left to confirm


def test_page_refusals_for_another_department_and_a_clinician(clients, answered):
    task_id = answered()
    assert clients("card_nurse").get(f"/followup/tasks/{task_id}").status_code == 404
    assert clients("doctor").get(f"/followup/tasks/{task_id}").status_code == 403
    token = csrf_from(clients("card_nurse"), "/followup/queue")
    assert clients("card_nurse").post(f"/followup/tasks/{task_id}/confirm_online",
                                      data={"csrf_token": token, "version": 1}).status_code == 404


def test_calling_instead_claims_the_call_and_the_answers_stay_to_confirm(clients, answered, frozen):
    from qcflow.extensions import db
    from qcflow.followup.models import Task

    task_id = answered(ALARMING)
    with time_machine.travel(frozen + timedelta(hours=3), tick=False):  # an hour after the patient answered
        nurse = clients("nurse")
        token = csrf_from(nurse, f"/followup/tasks/{task_id}")
        assert nurse.post(f"/followup/tasks/{task_id}/claim", data={"csrf_token": token}).status_code == 302
        db.session.expire_all()
        assert db.session.get(Task, task_id).state == "in_progress"
        html = nurse.get(f"/followup/tasks/{task_id}").get_data(as_text=True)
        assert "/confirm_online" not in html and 'action="/followup/tasks/%d/attempts"' % task_id in html
        token = csrf_from(nurse, f"/followup/tasks/{task_id}")
        assert nurse.post(f"/followup/tasks/{task_id}/attempts", data={"csrf_token": token, "channel": "phone",
                                                                       "result": "reached"}).status_code == 302
        html = nurse.get(f"/followup/tasks/{task_id}").get_data(as_text=True)
        assert "确认答复" in html and "/confirm_online" in html  # reached by phone: the answers may be confirmed
        other = clients("nurse2").get(f"/followup/tasks/{task_id}").get_data(as_text=True)
    assert 'id="pending-answers"' in other and "/confirm_online" not in other and "由李护士负责" in other


def test_the_queue_marks_the_alarming_call_first_and_each_invitation_briefly(clients, client, tokens, answered,
                                                                             enrol, frozen):
    from qcflow.extensions import db
    from qcflow.followup.invitations import queries as invitation_queries

    enrol("day_surgery", anchor_at=frozen - timedelta(hours=3), now=frozen)  # a 24 h call, otherwise first
    db.session.commit()
    task_id = answered(ALARMING)
    html = clients("nurse").get("/followup/queue").get_data(as_text=True)
    rows = html[html.index('id="queue"'):].split("<tr")[2:]
    assert f'/followup/tasks/{task_id}"' in rows[0] and "is-alarm" in rows[0] and "警示答复" in rows[0]
    assert "已在线答复，待确认" in rows[0] and "is-alarm" not in rows[1]
    assert 'id="online-link"' in html
    page = client.get("/api/v1/followup/queue", headers=tokens("nurse")).json
    first = page["items"][0]
    assert first["id"] == task_id and first["alarm"] and first["invitation"]["state"] == "answered"
    assert "messages" not in first["invitation"] and page["items"][1]["invitation"] is None
    # One query reads the page's invitations, whatever its length.
    assert set(invitation_queries.of_tasks([task_id, task_id + 100])) == {task_id}


def test_the_queue_page_with_invitations_is_the_json_its_schema_dumps(client, tokens, answered, monkeypatch):
    from marshmallow import Schema

    from qcflow.core.schemas import BaseSchema
    from qcflow.followup import api

    answered()
    built = client.get("/api/v1/followup/queue", headers=tokens("nurse"))
    monkeypatch.setattr(api, "Dumped", dict)
    monkeypatch.setattr(BaseSchema, "dump", Schema.dump)
    dumped = client.get("/api/v1/followup/queue", headers=tokens("nurse"))
    assert built.status_code == dumped.status_code == 200 and built.get_data() == dumped.get_data()
    assert built.json["items"][0]["invitation"]["answered_at"].endswith("+00:00")


def test_the_calls_list_shows_the_invitation_and_the_online_channel(clients, client, tokens, answered):
    task_id = answered()
    assert "已在线答复，待确认" in clients("nurse").get("/followup/calls").get_data(as_text=True)
    assert api_confirm(client, tokens, "nurse", task_id).status_code == 200
    html = clients("nurse").get("/followup/calls").get_data(as_text=True)
    assert "短信" not in html and "线上" in html  # completed online: the invitation is history
    items = client.get("/api/v1/followup/calls", headers=tokens("nurse")).json["items"]
    assert items[0]["channel"] == "online" and items[0]["invitation"]["state"] == "answered"
