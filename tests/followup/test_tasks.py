"""The daily queue and task steps over the API: claim, attempts, complete, reschedule, cancel, reassign."""
import threading
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
import time_machine

from tests.conftest import sh


@pytest.fixture
def calls(ctx, enrol, ward, frozen):
    """Open calls in general surgery (urgent 24 h call, overdue yearly call, due cancer call) and one in cardiology."""
    from qcflow.extensions import db

    now = frozen
    day = enrol("day_surgery", anchor_at=now - timedelta(hours=3), now=now)
    yearly = enrol("four_level_surgery", anchor_at=sh(2025, 1, 20, 9, 0), now=sh(2025, 1, 20, 9, 0))
    cancer = enrol("cancer_lung", anchor_at=sh(2025, 12, 1, 0, 0), now=sh(2025, 12, 1, 0, 0))
    other = enrol("cancer_lung", anchor_at=sh(2025, 12, 1, 0, 0), now=sh(2025, 12, 1, 0, 0), department=ward["cardio"])
    from qcflow.core.actors import Actor
    from qcflow.followup import services
    from qcflow.followup.models import Task

    services.generate_due(now)
    stale = db.session.scalar(sa.select(Task).where(Task.plan_id == yearly.id, Task.occurrence == 1))
    services.cancel_task(stale, {"reason": "已在门诊随访"}, actor=Actor.system("test"), now=now)
    db.session.commit()

    def first(plan, occurrence=1):
        from qcflow.followup.models import Task

        return db.session.scalar(sa.select(Task.id).where(Task.plan_id == plan.id, Task.occurrence == occurrence))

    return {"urgent": first(day), "overdue": first(yearly, 2), "due": first(cancer), "other": first(other),
            "plans": {"day": day.id, "yearly": yearly.id, "cancer": cancer.id}}


def post(client, path, headers, **body):
    """POST a step from the version just read, as a page would (unless the test gives its own)."""
    if "version" not in body and not path.endswith(("/claim", "/attempts")):
        body["version"] = current_version(path)
    return client.post(path, json=body, headers=headers)


def current_version(path: str) -> int:
    from qcflow.extensions import db
    from qcflow.followup.models import EventPrompt, Task

    kind, object_id = path.split("/")[4:6]
    db.session.expire_all()
    row = db.session.get({"tasks": Task, "prompts": EventPrompt}[kind], int(object_id))
    return row.version if row is not None else 1


def test_the_queue_is_my_departments_most_urgent_first(client, tokens, calls):
    response = client.get("/api/v1/followup/queue", headers=tokens("nurse"))
    assert response.status_code == 200, response.json
    ids = [item["id"] for item in response.json["items"]]
    assert ids == [calls["urgent"], calls["overdue"], calls["due"]]
    assert [i["timeliness"] for i in response.json["items"]] == ["due", "overdue", "due"]
    assert calls["other"] not in ids
    assert response.json["counts"] == {"due": 2, "overdue": 1, "not_open": 0, "urgent": 1, "mine": 0, "total": 3}
    quality = client.get("/api/v1/followup/queue", headers=tokens("quality")).json
    assert calls["other"] in [i["id"] for i in quality["items"]]


def test_queue_pages_with_a_keyset_cursor(client, tokens, calls):
    seen, cursor = [], None
    for _ in range(5):
        query = "?limit=1" + (f"&cursor={cursor}" if cursor else "")
        page = client.get("/api/v1/followup/queue" + query, headers=tokens("nurse")).json
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [calls["urgent"], calls["overdue"], calls["due"]]


def test_the_queue_page_is_the_json_its_schema_dumps(client, tokens, calls, monkeypatch):
    """The page is built in QueuePage's form without a dump (schemas.Dumped): for calls claimed
    (phone shown) and not, tried, urgent, overdue and due, its JSON is byte for byte what
    marshmallow's own dump of the same page gives."""
    from marshmallow import Schema

    from qcflow.core.schemas import BaseSchema
    from qcflow.followup import api

    path = f"/api/v1/followup/tasks/{calls['due']}"
    post(client, path + "/claim", tokens("nurse"))
    assert post(client, path + "/attempts", tokens("nurse"), channel="phone", result="no_answer").status_code == 201
    built = client.get("/api/v1/followup/queue", headers=tokens("nurse"))
    monkeypatch.setattr(api, "Dumped", dict)
    monkeypatch.setattr(BaseSchema, "dump", Schema.dump)
    dumped = client.get("/api/v1/followup/queue", headers=tokens("nurse"))
    assert built.status_code == dumped.status_code == 200
    assert built.get_data() == dumped.get_data()
    items = built.json["items"]
    assert [i["patient"]["phone"] == i["patient"]["phone"].replace("*", "") for i in items] == [False, False, True]
    assert items[2]["attempt_count"] == 1 and items[2]["due_at"].endswith("+00:00")


def test_queue_filters_and_another_departments_queue(client, tokens, calls, ward):
    nurse = tokens("nurse")
    assert [i["id"] for i in client.get("/api/v1/followup/queue?pathway=cancer_lung", headers=nurse).json["items"]] == [calls["due"]]
    assert client.get(f"/api/v1/followup/queue?department={ward['cardio'].id}", headers=nurse).status_code == 404
    assert client.get("/api/v1/followup/queue?colour=red", headers=nurse).status_code == 422
    assert client.get("/api/v1/followup/queue?assignee=me", headers=nurse).json["items"] == []
    assert client.get("/api/v1/followup/queue", headers=tokens("doctor")).status_code == 403


def test_another_departments_task_is_not_found(client, tokens, calls):
    for path in (f"/api/v1/followup/tasks/{calls['other']}", f"/api/v1/followup/tasks/{calls['other']}/claim"):
        response = client.get(path, headers=tokens("nurse")) if "claim" not in path else post(
            client, path, tokens("nurse"))
        assert response.status_code == 404


def test_claim_then_a_second_nurse_gets_409(client, tokens, calls, ward):
    path = f"/api/v1/followup/tasks/{calls['due']}/claim"
    first = post(client, path, tokens("nurse"))
    assert first.status_code == 200 and first.json["state"] == "in_progress"
    assert first.json["assignee_id"] == ward["nurse"].id
    assert post(client, path, tokens("nurse2")).status_code == 409


def test_concurrent_claims_leave_exactly_one_holder(app, ctx, create_user, tokens, calls, ward):
    """Eight nurses press "claim" at the same instant: one wins, seven get 409, one audit entry."""
    from qcflow.core.audit import AuditEntry
    from qcflow.extensions import db
    from qcflow.followup.models import Task

    names = []
    for n in range(8):
        user = create_user(username=f"racer{n}", roles=("nurse",), department=ward["surgery"])
        ward[f"racer{n}"] = user
        names.append(f"racer{n}")
    db.session.commit()
    headers = [tokens(name) for name in names]
    barrier, results = threading.Barrier(len(names)), [None] * len(names)

    def race(i):
        client = app.test_client()
        barrier.wait()
        results[i] = client.post(f"/api/v1/followup/tasks/{calls['due']}/claim", headers=headers[i]).status_code

    threads = [threading.Thread(target=race, args=(i,)) for i in range(len(names))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200] + [409] * 7
    db.session.expire_all()
    task = db.session.get(Task, calls["due"])
    assert task.assignee_id == ward[names[results.index(200)]].id
    claims = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry).where(
        AuditEntry.action == "followup_task.claim", AuditEntry.object_id == str(task.id)))
    assert claims == 1


def test_every_step_on_a_task_or_plan_needs_the_version_read(client, tokens, calls, ward):
    """Without it, a step taken on a stale screen would silently undo what someone did meanwhile."""
    from qcflow.extensions import db
    from qcflow.followup.models import Task

    path = f"/api/v1/followup/tasks/{calls['due']}"
    assert client.post(path + "/claim", headers=tokens("nurse")).status_code == 200
    for step, body, user in (("cancel", {"reason": "转院"}, "nurse"), ("unreachable", {}, "nurse"),
                             ("release", {}, "nurse"), ("complete", {"respondent": "patient"}, "nurse"),
                             ("reassign", {"assignee_id": ward["nurse2"].id}, "head")):
        response = client.post(f"{path}/{step}", json=body, headers=tokens(user))
        assert response.status_code == 422 and "version" in response.json["errors"], (step, response.json)
    db.session.expire_all()
    task = db.session.get(Task, calls["due"])
    assert (task.state, task.assignee_id) == ("in_progress", ward["nurse"].id)
    plan = client.post(f"/api/v1/followup/plans/{task.plan_id}/transitions", json={"action": "withdraw", "reason": "x"},
                       headers=tokens("head"))
    assert plan.status_code == 422 and "version" in plan.json["errors"]
    stale = client.post(path + "/cancel", json={"reason": "转院", "version": task.version - 1}, headers=tokens("nurse"))
    assert stale.status_code == 409


def test_attempts_need_the_holder_and_an_open_task(client, tokens, calls):
    path = f"/api/v1/followup/tasks/{calls['due']}"
    body = {"channel": "phone", "result": "no_answer", "note": "无人接听"}
    assert post(client, path + "/attempts", tokens("nurse"), **body).status_code == 409  # not claimed yet
    post(client, path + "/claim", tokens("nurse"))
    assert post(client, path + "/attempts", tokens("nurse2"), **body).status_code == 409  # held by someone else
    made = post(client, path + "/attempts", tokens("nurse"), **body)
    assert made.status_code == 201 and made.json["result"] == "no_answer"
    assert post(client, path + "/attempts", tokens("nurse"), channel="fax", result="busy").status_code == 422
    assert post(client, path + "/cancel", tokens("nurse"), reason="患者转院随访").status_code == 200
    refused = post(client, path + "/attempts", tokens("nurse"), **body)
    assert refused.status_code == 409 and refused.json["code"] == "invalid_transition"


def test_call_back_later_hides_the_task_until_then(client, tokens, calls, frozen):
    path = f"/api/v1/followup/tasks/{calls['due']}"
    post(client, path + "/claim", tokens("nurse"))
    later = (frozen + timedelta(hours=2)).isoformat()
    assert post(client, path + "/attempts", tokens("nurse"), channel="phone", result="call_back_later",
                snooze_until=later).status_code == 201
    ids = [i["id"] for i in client.get("/api/v1/followup/queue", headers=tokens("nurse")).json["items"]]
    assert calls["due"] not in ids
    with time_machine.travel(frozen + timedelta(hours=2, minutes=1), tick=False):
        ids = [i["id"] for i in client.get("/api/v1/followup/queue", headers=tokens("nurse")).json["items"]]
    assert calls["due"] in ids


def test_completing_a_task_not_claimed_by_the_caller_is_409(client, tokens, calls):
    path = f"/api/v1/followup/tasks/{calls['due']}"
    outcome = {"respondent": "patient", "recurrence_metastasis": False, "vital_status": "alive"}
    assert post(client, path + "/complete", tokens("nurse"), **outcome).status_code == 409  # waiting, unclaimed
    post(client, path + "/claim", tokens("nurse"))
    assert post(client, path + "/complete", tokens("nurse2"), **outcome).status_code == 409
    assert post(client, path + "/complete", tokens("head"), **outcome).status_code == 409


def test_complete_records_the_outcome_and_decides_effective_follow_up(client, tokens, calls):
    path = f"/api/v1/followup/tasks/{calls['due']}"
    post(client, path + "/claim", tokens("nurse"))
    done = post(client, path + "/complete", tokens("nurse"), respondent="family", channel="wechat",
                recurrence_metastasis=False, vital_status="alive", health_education_given=True, satisfaction=5)
    assert done.status_code == 200, done.json
    assert (done.json["state"], done.json["is_effective"], done.json["timeliness"]) == ("completed", True, "due")
    other = f"/api/v1/followup/tasks/{calls['overdue']}"
    post(client, other + "/claim", tokens("nurse"))
    partial = post(client, other + "/complete", tokens("nurse"), respondent="patient", complication=False)
    assert partial.json["is_effective"] is False  # core items missing
    assert partial.json["timeliness"] == "overdue"  # completed after the window closed


def test_an_outcome_from_someone_else_is_not_effective(client, tokens, calls):
    path = f"/api/v1/followup/tasks/{calls['due']}"
    post(client, path + "/claim", tokens("nurse"))
    done = post(client, path + "/complete", tokens("nurse"), respondent="other", recurrence_metastasis=False,
                vital_status="alive")
    assert done.json["is_effective"] is False


@pytest.mark.parametrize("body, field", [
    ({"vital_status": "dead"}, "date_of_death"),
    ({"vital_status": "alive", "date_of_death": "2026-03-01"}, "vital_status"),
    ({"vital_status": "dead", "date_of_death": "2026-03-05"}, "date_of_death"),
    ({"satisfaction": 6}, "satisfaction"),
])
def test_inconsistent_outcomes_are_422(client, tokens, calls, body, field):
    path = f"/api/v1/followup/tasks/{calls['due']}"
    post(client, path + "/claim", tokens("nurse"))
    response = post(client, path + "/complete", tokens("nurse"), respondent="patient", **body)
    assert response.status_code == 422 and field in response.json["errors"]


def test_reschedule_inside_the_window_hides_the_task_outside_it_is_422_with_the_range(client, tokens, calls):
    path = f"/api/v1/followup/tasks/{calls['due']}"  # cancer call due 1 March 2026, window ±14 days
    post(client, path + "/claim", tokens("nurse"))
    outside = post(client, path + "/reschedule", tokens("nurse"), due_on="2026-03-20", reason="患者外出")
    assert outside.status_code == 422
    assert "2026-02-15" in outside.json["message"] and "2026-03-15" in outside.json["message"]
    assert outside.json["allowed_range"] == {"from": "2026-02-15", "to": "2026-03-15"}
    assert post(client, path + "/reschedule", tokens("nurse"), due_on="2026-03-06").status_code == 422  # no reason
    moved = post(client, path + "/reschedule", tokens("nurse"), due_on="2026-03-06", reason="患者 3 月 6 日复诊")
    assert moved.status_code == 200 and moved.json["due_on"] == "2026-03-06"
    ids = [i["id"] for i in client.get("/api/v1/followup/queue", headers=tokens("nurse")).json["items"]]
    assert calls["due"] not in ids
    assert client.get("/api/v1/followup/queue?date=2026-03-06", headers=tokens("nurse")).status_code == 200


def test_the_24_hour_call_reschedules_by_time_within_24_hours(client, tokens, calls, frozen):
    path = f"/api/v1/followup/tasks/{calls['urgent']}"
    post(client, path + "/claim", tokens("nurse"))
    late = post(client, path + "/reschedule", tokens("nurse"), due_at=(frozen + timedelta(hours=22)).isoformat(),
                reason="家属要求晚些")
    assert late.status_code == 422 and "allowed_range" in late.json
    ok = post(client, path + "/reschedule", tokens("nurse"), due_at=(frozen + timedelta(hours=4)).isoformat(),
              reason="患者休息中")
    assert ok.status_code == 200


def test_reassign_is_for_department_heads_and_stays_in_the_department(client, tokens, calls, ward):
    path = f"/api/v1/followup/tasks/{calls['due']}/reassign"
    assert post(client, path, tokens("nurse"), assignee_id=ward["nurse2"].id).status_code == 403
    assert post(client, path, tokens("head"), assignee_id=ward["card_nurse"].id).status_code == 422
    done = post(client, path, tokens("head"), assignee_id=ward["nurse2"].id)
    assert done.status_code == 200 and done.json["assignee_id"] == ward["nurse2"].id
    assert done.json["state"] == "in_progress"


def test_the_phone_is_unmasked_only_for_the_nurse_holding_the_task(client, tokens, calls):
    path = f"/api/v1/followup/tasks/{calls['due']}"
    assert client.get(path, headers=tokens("nurse")).json["patient"]["phone"] == "138****5678"
    post(client, path + "/claim", tokens("nurse"))
    assert client.get(path, headers=tokens("nurse")).json["patient"]["phone"] == "13812345678"
    for other in ("nurse2", "head", "quality"):
        assert client.get(path, headers=tokens(other)).json["patient"]["phone"] == "138****5678"


def test_three_unreachable_calls_in_a_row_lose_the_plan(ctx, enrol, tasks_of, actor_of, ward):
    from qcflow.extensions import db
    from qcflow.followup import services

    plan = enrol("four_level_surgery", anchor_at=sh(2021, 1, 4, 9, 0), now=sh(2021, 1, 4, 9, 0))
    services.generate_due(sh(2024, 3, 1, 9, 0))
    nurse = actor_of("nurse")
    tasks = tasks_of(plan)
    assert len(tasks) == 4
    for task in tasks[:3]:
        at = task.opens_at + timedelta(days=1)
        services.claim_task(task, actor=nurse, now=at)
        services.log_attempt(task, {"channel": "phone", "result": "wrong_number"}, actor=nurse, now=at)
        services.mark_unreachable(task, {}, actor=nurse, now=at)
        db.session.flush()
    assert plan.state == "lost" and plan.next_due_at is None
    assert tasks_of(plan)[3].state == "cancelled"
    assert services.generate_due(sh(2030, 1, 1, 0, 0)).tasks == 0


def test_a_completed_call_breaks_the_unreachable_run(ctx, enrol, tasks_of, actor_of):
    from qcflow.followup import services

    plan = enrol("four_level_surgery", anchor_at=sh(2021, 1, 4, 9, 0), now=sh(2021, 1, 4, 9, 0))
    services.generate_due(sh(2024, 3, 1, 9, 0))
    nurse = actor_of("nurse")
    for i, task in enumerate(tasks_of(plan)[:3]):
        at = task.opens_at + timedelta(days=1)
        services.claim_task(task, actor=nurse, now=at)
        if i == 1:
            services.complete_task(task, {"respondent": "patient"}, actor=nurse, now=at)
            continue
        services.log_attempt(task, {"channel": "sms", "result": "no_answer"}, actor=nurse, now=at)
        services.mark_unreachable(task, {}, actor=nurse, now=at)
    assert plan.state == "active"


def test_a_death_recorded_at_follow_up_stops_plans_and_prompts_the_quality_office(client, tokens, calls, ctx, ward):
    from qcflow.extensions import db
    from qcflow.followup.models import EventPrompt, Plan, Task
    from qcflow.notify.models import Notification

    path = f"/api/v1/followup/tasks/{calls['urgent']}"
    post(client, path + "/claim", tokens("nurse"))
    done = post(client, path + "/complete", tokens("nurse"), respondent="family", complication=True,
                unplanned_readmission=True, vital_status="dead", date_of_death="2026-03-02",
                complication_note="术后出血")
    assert done.status_code == 200, done.json
    db.session.expire_all()
    plan = db.session.get(Plan, calls["plans"]["day"])
    assert plan.state == "stopped" and plan.ended_on == date(2026, 3, 2)
    others = db.session.scalars(sa.select(Task).where(Task.plan_id == plan.id, Task.id != calls["urgent"])).all()
    assert others and all(t.state == "cancelled" for t in others)
    prompt = db.session.scalar(sa.select(EventPrompt))
    assert prompt.findings == "complication,unplanned_readmission,death" and prompt.state == "open"
    notified = db.session.scalars(sa.select(Notification.user_id).where(Notification.kind == "followup.event_prompt"))
    assert list(notified) == [ward["quality"].id]


def test_one_click_turns_a_prompt_into_a_confidential_report(client, tokens, calls, ctx, ward):
    from qcflow.events.models import AdverseEvent
    from qcflow.extensions import db

    path = f"/api/v1/followup/tasks/{calls['overdue']}"
    post(client, path + "/claim", tokens("nurse"))
    post(client, path + "/complete", tokens("nurse"), respondent="patient", reoperation=True, complication=False,
         unplanned_readmission=True, vital_status="alive")
    prompts = client.get("/api/v1/followup/prompts", headers=tokens("quality")).json["items"]
    assert client.get("/api/v1/followup/prompts", headers=tokens("nurse")).status_code == 403
    (prompt,) = prompts
    filed = post(client, f"/api/v1/followup/prompts/{prompt['id']}/file", tokens("quality"), version=prompt["version"])
    assert filed.status_code == 201 and filed.json["state"] == "filed"
    db.session.expire_all()
    event = db.session.get(AdverseEvent, filed.json["event_id"])
    assert (event.mode, event.state, event.reporter_user_id) == ("confidential", "submitted", ward["quality"].id)
    assert (event.category_code, event.subcategory_code, event.care_stage) == (
        "surgery", "unplanned_reoperation", "discharge_followup")
    assert event.is_unplanned_reoperation and event.department_id == ward["surgery"].id
    assert post(client, f"/api/v1/followup/prompts/{prompt['id']}/file", tokens("quality")).status_code == 409


def test_a_prompt_can_be_dismissed_with_a_reason(client, tokens, calls):
    path = f"/api/v1/followup/tasks/{calls['due']}"
    post(client, path + "/claim", tokens("nurse"))
    post(client, path + "/complete", tokens("nurse"), respondent="patient", complication=True,
         recurrence_metastasis=False, vital_status="alive")
    (prompt,) = client.get("/api/v1/followup/prompts", headers=tokens("quality")).json["items"]
    url = f"/api/v1/followup/prompts/{prompt['id']}/dismiss"
    assert post(client, url, tokens("quality"), reason="").status_code == 422
    assert post(client, url, tokens("quality"), reason="预期内的轻微反应").json["state"] == "dismissed"
