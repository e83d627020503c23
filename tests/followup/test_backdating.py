"""A call logged late: the nurse gives when it was made; it is closed, judged on time and counted at that
time, the recording time is kept beside it, and the bounds (future, before the anchor, too far back
without the quality office) are 422 on `completed_at`."""
import json
from datetime import timedelta, timezone

import pytest
import sqlalchemy as sa

from tests.followup.test_tasks import post

OUTCOME = {"respondent": "patient", "complication": False, "unplanned_readmission": False,
           "health_education_given": True, "satisfaction": 5}


@pytest.fixture
def yesterdays_call(ctx, enrol, create_patient, frozen):
    """A day-surgery patient discharged 30 hours ago: the 24 h window closed 6 hours ago."""
    from qcflow.extensions import db
    from qcflow.followup.models import Task

    plan = enrol("day_surgery", patient=create_patient(), anchor_at=frozen - timedelta(hours=30), now=frozen)
    db.session.commit()
    return db.session.scalar(sa.select(Task.id).where(Task.plan_id == plan.id, Task.occurrence == 1))


def claimed(client, tokens, task_id, who="nurse"):
    path = f"/api/v1/followup/tasks/{task_id}"
    assert post(client, path + "/claim", tokens(who)).status_code == 200
    return path


def test_a_call_made_in_the_window_and_logged_after_it_is_on_time_and_counted(client, tokens, yesterdays_call,
                                                                             frozen):
    from qcflow.core.audit import AuditEntry
    from qcflow.extensions import db
    from qcflow.followup.models import Attempt, Task
    from qcflow.indicators.definitions import effective_on_time

    path = claimed(client, tokens, yesterdays_call)
    made = frozen - timedelta(hours=12)  # last night, inside discharge + 24 h
    done = post(client, path + "/complete", tokens("nurse"), completed_at=made.isoformat(), **OUTCOME)
    assert done.status_code == 200, done.json
    assert done.json["timeliness"] == "due"  # on time: judged when it was made, not when it was typed
    task = db.session.get(Task, yesterdays_call)
    assert (task.closed_at, task.closed_recorded_at) == (made, frozen)
    assert done.json["closed_recorded_at"] == frozen.astimezone(timezone.utc).isoformat()
    attempt = db.session.scalar(sa.select(Attempt).where(Attempt.task_id == task.id))
    assert (attempt.attempted_at, attempt.recorded_at) == (made, frozen)
    # The indicators' own clause counts it as an effective call on time.
    assert db.session.scalar(sa.select(Task.id).where(Task.id == task.id, effective_on_time(Task, frozen))) == task.id
    entry = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "followup_task.complete",
                                                          AuditEntry.object_id == str(task.id)))
    detail = json.loads(entry.detail)
    assert (detail["happened_at"], detail["recorded_at"]) == (made.astimezone(timezone.utc).isoformat(),
                                                              frozen.astimezone(timezone.utc).isoformat())
    assert entry.at == frozen


def test_the_same_call_logged_without_its_time_is_late(client, tokens, yesterdays_call, frozen):
    from qcflow.core.audit import AuditEntry
    from qcflow.extensions import db
    from qcflow.followup.models import Task

    path = claimed(client, tokens, yesterdays_call)
    done = post(client, path + "/complete", tokens("nurse"), **OUTCOME)
    assert done.json["timeliness"] == "overdue"
    task = db.session.get(Task, yesterdays_call)
    assert task.closed_at == task.closed_recorded_at == frozen
    entry = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "followup_task.complete"))
    assert "happened_at" not in json.loads(entry.detail)


@pytest.mark.parametrize("offset, message", [
    (timedelta(minutes=30), "This time is in the future."),
    (-timedelta(hours=31), "A call cannot be made before the operation, discharge or diagnosis it follows up."),
])
def test_a_call_time_in_the_future_or_before_the_anchor_is_422_and_closes_nothing(client, tokens, yesterdays_call,
                                                                                  frozen, offset, message):
    from qcflow.extensions import db
    from qcflow.followup.models import Task

    path = claimed(client, tokens, yesterdays_call)
    response = post(client, path + "/complete?lang=en", tokens("nurse"), completed_at=(frozen + offset).isoformat(),
                    **OUTCOME)
    assert response.status_code == 422 and response.json["errors"]["completed_at"] == [message]
    db.session.expire_all()
    assert db.session.get(Task, yesterdays_call).state == "in_progress"


def test_a_few_minutes_ahead_of_the_server_is_clock_slack_and_stored_as_now(client, tokens, yesterdays_call, frozen):
    from qcflow.extensions import db
    from qcflow.followup.models import Task

    path = claimed(client, tokens, yesterdays_call)
    done = post(client, path + "/complete", tokens("nurse"), completed_at=(frozen + timedelta(minutes=3)).isoformat(),
                **OUTCOME)
    assert done.status_code == 200
    assert db.session.get(Task, done.json["id"]).closed_at == frozen


def test_more_than_the_setting_back_needs_the_quality_office(app, client, tokens, ctx, enrol, create_patient, frozen):
    from qcflow.extensions import db
    from qcflow.followup.models import Task

    plan = enrol("four_level_surgery", patient=create_patient(), anchor_at=frozen - timedelta(days=40), now=frozen)
    db.session.commit()
    first = db.session.scalar(sa.select(Task.id).where(Task.plan_id == plan.id, Task.occurrence == 1))
    ten_days_ago = (frozen - timedelta(days=10)).isoformat()
    path = claimed(client, tokens, first)
    refused = post(client, path + "/complete?lang=en", tokens("nurse"), completed_at=ten_days_ago, **OUTCOME)
    assert refused.status_code == 422
    assert refused.json["errors"]["completed_at"] == [
        "This time is more than 7 days ago: only the quality office may record it."]
    zh = client.post(path + "/complete?lang=zh", headers=tokens("nurse"),
                     json={"completed_at": ten_days_ago, "version": refused_version(first), **OUTCOME})
    assert zh.status_code == 422 and "质控" in zh.json["errors"]["completed_at"][0]
    app.config["BACKDATE_MAX_DAYS"] = 14
    assert post(client, path + "/complete", tokens("nurse"), completed_at=ten_days_ago, **OUTCOME).status_code == 200


def test_the_quality_office_logs_an_older_call(client, tokens, ctx, enrol, create_patient, frozen):
    from qcflow.extensions import db
    from qcflow.followup.models import Task

    plan = enrol("four_level_surgery", patient=create_patient(), anchor_at=frozen - timedelta(days=40), now=frozen)
    db.session.commit()
    first = db.session.scalar(sa.select(Task.id).where(Task.plan_id == plan.id, Task.occurrence == 1))
    path = claimed(client, tokens, first, "quality")
    made = frozen - timedelta(days=10)
    done = post(client, path + "/complete", tokens("quality"), completed_at=made.isoformat(), **OUTCOME)
    assert done.status_code == 200, done.json
    assert db.session.get(Task, first).closed_at == made


def refused_version(task_id):
    from tests.followup.test_tasks import current_version

    return current_version(f"/api/v1/followup/tasks/{task_id}")


def test_the_call_page_takes_the_time_of_a_call_logged_late_and_shows_when_it_was_recorded(clients, yesterdays_call,
                                                                                          frozen):
    from qcflow.extensions import db
    from qcflow.followup.models import Task
    from tests.followup.test_pages import step

    nurse = clients("nurse")
    form = nurse.get(f"/followup/tasks/{yesterdays_call}?lang=en").get_data(as_text=True)
    assert 'name="completed_at"' not in form  # only the holder completes
    step(nurse, yesterdays_call, "claim")
    form = nurse.get(f"/followup/tasks/{yesterdays_call}?lang=en").get_data(as_text=True)
    assert 'type="datetime-local" name="completed_at"' in form
    made = frozen - timedelta(hours=12)
    version = str(db.session.get(Task, yesterdays_call).version)
    too_old = step(nurse, yesterdays_call, "complete?lang=en", respondent="patient", version=version,
                   completed_at=(frozen - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M"))
    assert too_old.status_code == 422
    assert "A call cannot be made before the operation" in too_old.get_data(as_text=True)
    done = step(nurse, yesterdays_call, "complete", respondent="patient", version=version,
                completed_at=made.strftime("%Y-%m-%dT%H:%M"))  # hospital-local, as the browser sends it
    assert done.status_code == 302
    db.session.expire_all()
    assert db.session.get(Task, yesterdays_call).closed_at == made
    for lang, words in (("en", "recorded 2026-03-02 09:30"), ("zh", "录入于 2026-03-02 09:30")):
        page = nurse.get(f"/followup/tasks/{yesterdays_call}?lang={lang}").get_data(as_text=True)
        assert "2026-03-01 21:30" in page and words in page


def test_the_migration_gives_rows_recorded_before_it_their_happened_time(app, client, tokens, yesterdays_call,
                                                                        frozen):
    from flask_migrate import downgrade, upgrade

    from qcflow.extensions import db
    from qcflow.followup.models import Attempt, Task
    from tests.conftest import MIGRATIONS

    path = claimed(client, tokens, yesterdays_call)
    made = frozen - timedelta(hours=12)
    assert post(client, path + "/complete", tokens("nurse"), completed_at=made.isoformat(), **OUTCOME).status_code == 200
    db.session.commit()
    db.session.close()
    downgrade(directory=MIGRATIONS, revision="e61b0c4f8a27")
    upgrade(directory=MIGRATIONS)
    task = db.session.get(Task, yesterdays_call)
    attempt = db.session.scalar(sa.select(Attempt).where(Attempt.task_id == task.id))
    assert task.closed_recorded_at == task.closed_at == made
    assert attempt.recorded_at == attempt.attempted_at == made
