"""Follow-up pages: queue, task page and its forms, prompts, the home counts, the PDF record sheet."""
import shutil
import subprocess
from datetime import timedelta

import pytest
import sqlalchemy as sa

from tests.conftest import csrf_from, sh


def step(client, task_id, name, **form):
    token = csrf_from(client, f"/followup/tasks/{task_id}")
    return client.post(f"/followup/tasks/{task_id}/{name}", data={"csrf_token": token, **form})


@pytest.fixture
def queue(ctx, enrol, create_patient, frozen):
    """A due cancer call, an overdue yearly call, then the 24 h call of 陈静, made in that order:
    the queue's order (24 h call, overdue, due) is the reverse of the order they were stored in."""
    from qcflow.core.actors import Actor
    from qcflow.extensions import db
    from qcflow.followup import services
    from qcflow.followup.models import Task

    def task_of(plan, occurrence=1):
        return db.session.scalar(sa.select(Task.id).where(Task.plan_id == plan.id, Task.occurrence == occurrence))

    cancer = enrol("cancer_lung", anchor_at=sh(2025, 12, 1, 0, 0), now=sh(2025, 12, 1, 0, 0))
    services.generate_due(frozen)  # one plan per run: the order a batch inserts in is the database's
    yearly = enrol("four_level_surgery", anchor_at=sh(2025, 1, 20, 9, 0), now=sh(2025, 1, 20, 9, 0))
    services.generate_due(frozen)
    stale = db.session.get(Task, task_of(yearly))
    services.cancel_task(stale, {"reason": "已在门诊随访"}, actor=Actor.system("test"), now=frozen)
    patient = create_patient(name="陈静", mrn="BA3001", phone="13912345678")
    day = enrol("day_surgery", patient=patient, anchor_at=frozen - timedelta(hours=3), now=frozen)
    db.session.commit()
    return {"urgent": task_of(day), "overdue": task_of(yearly, 2), "due": task_of(cancer)}


def test_the_queue_page_lists_the_24_hour_call_first(clients, queue):
    page = clients("nurse").get("/followup/queue")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "陈静" in html
    assert queue["urgent"] > queue["overdue"] > queue["due"]  # stored in the reverse of the queue's order
    rows = [html.index(f'href="/followup/tasks/{queue[kind]}"') for kind in ("urgent", "overdue", "due")]
    assert rows == sorted(rows)
    assert clients("doctor").get("/followup/queue").status_code == 403
    assert clients("nurse").get("/followup/queue?state=nonsense").status_code == 422


def test_home_shows_todays_counts_to_the_nurse(clients, call):
    html = clients("nurse").get("/?lang=en").get_data(as_text=True)
    assert 'id="home-followup"' in html and "/followup/queue" in html
    assert "1 calls due" in html and "1 within 24 h of discharge" in html
    assert "No follow-up calls are due today." in clients("card_nurse").get("/?lang=en").get_data(as_text=True)


def test_the_phone_on_the_task_page_is_unmasked_only_for_the_holder(clients, call):
    nurse, other = clients("nurse"), clients("nurse2")
    assert "139****5678" in nurse.get(f"/followup/tasks/{call}").get_data(as_text=True)
    assert step(nurse, call, "claim").status_code == 302
    assert "13912345678" in nurse.get(f"/followup/tasks/{call}").get_data(as_text=True)
    theirs = other.get(f"/followup/tasks/{call}").get_data(as_text=True)
    assert "13912345678" not in theirs and "139****5678" in theirs
    assert clients("card_nurse").get(f"/followup/tasks/{call}").status_code == 404


def test_a_call_worked_from_the_task_page(clients, call, ctx, frozen):
    from qcflow.extensions import db
    from qcflow.followup.models import Attempt, Task

    nurse = clients("nurse")
    step(nurse, call, "claim")
    local_later = (frozen + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    assert step(nurse, call, "attempts", channel="phone", result="busy", snooze_until=local_later,
                note="占线").status_code == 302
    outside = step(nurse, call, "reschedule", due_at=(frozen + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M"),
                   reason="患者要求", version="3")
    closes = (frozen + timedelta(hours=21)).astimezone(frozen.tzinfo).strftime("%Y-%m-%d %H:%M")
    assert outside.status_code == 422 and closes in outside.get_data(as_text=True)
    db.session.expire_all()
    version = db.session.get(Task, call).version
    done = step(nurse, call, "complete", respondent="patient", channel="phone", complication="0",
                unplanned_readmission="0", health_education_given="1", satisfaction="4", version=str(version))
    assert done.status_code == 302
    db.session.expire_all()
    task = db.session.get(Task, call)
    assert (task.state, task.is_effective, task.satisfaction, task.complication) == ("completed", True, 4, False)
    attempts = db.session.scalars(sa.select(Attempt.result).where(Attempt.task_id == call).order_by(Attempt.id))
    assert list(attempts) == ["busy", "reached"]


def test_task_forms_need_a_csrf_token(clients, call):
    response = clients("nurse").post(f"/followup/tasks/{call}/claim", data={})
    assert response.status_code == 400


def test_unknown_steps_are_404(clients, call):
    assert step(clients("nurse"), call, "teleport").status_code == 404


def test_a_stale_version_is_409(clients, call):
    nurse = clients("nurse")
    step(nurse, call, "claim")
    assert step(nurse, call, "cancel", reason="重复", version="1").status_code == 409


def test_prompts_page_files_a_confidential_report_in_one_click(clients, call, ctx, ward):
    from qcflow.events.models import AdverseEvent
    from qcflow.extensions import db
    from qcflow.followup.models import EventPrompt, Task

    nurse = clients("nurse")
    step(nurse, call, "claim")
    version = db.session.get(Task, call).version
    step(nurse, call, "complete", respondent="family", complication="1", complication_note="切口感染",
         unplanned_readmission="1", health_education_given="1", version=str(version))
    quality = clients("quality")
    page = quality.get("/followup/prompts").get_data(as_text=True)
    assert "陈静" in page
    assert clients("nurse").get("/followup/prompts").status_code == 403
    prompt = db.session.scalar(sa.select(EventPrompt))
    token = csrf_from(quality, "/followup/prompts")
    filed = quality.post(f"/followup/prompts/{prompt.id}/file", data={"csrf_token": token,
                                                                     "version": str(prompt.version)})
    assert filed.status_code == 302 and "/events/" in filed.headers["Location"]
    db.session.expire_all()
    event = db.session.scalar(sa.select(AdverseEvent))
    assert event.mode == "confidential" and "切口感染" in event.description
    assert event.patient_mrn == "BA3001" and event.care_stage == "discharge_followup"


def test_the_record_sheet_pdf_has_the_chinese_text_and_an_embedded_cjk_font(clients, call, tmp_path):
    if not (shutil.which("pdftotext") and shutil.which("pdffonts")):
        pytest.skip("poppler-utils not installed")
    nurse = clients("nurse")
    step(nurse, call, "claim")
    response = nurse.get("/followup/patients/" + str(_patient_of(call)) + "/sheet.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    path = tmp_path / "sheet.pdf"
    path.write_bytes(response.data)
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    assert "随访记录单" in text and "陈静" in text and "BA3001" in text
    assert "13912345678" not in text and "139****5678" in text
    fonts = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True, check=True).stdout
    cjk = [line for line in fonts.splitlines() if "CJK" in line or "WenQuanYi" in line]
    assert cjk and all(" yes " in line for line in cjk), fonts
    assert clients("card_nurse").get("/followup/patients/" + str(_patient_of(call)) + "/sheet.pdf").status_code == 404


def _patient_of(task_id):
    from qcflow.extensions import db
    from qcflow.followup.models import Task

    return db.session.get(Task, task_id).patient_id


def test_timeliness_is_one_rule_in_python_and_sql(ctx, enrol, tasks_of):
    """The SQL CASE used by lists and counts answers exactly like the Python function, at every edge."""
    from qcflow.extensions import db
    from qcflow.followup.models import Task
    from qcflow.followup.timeliness import of, timeliness_sql

    plan = enrol("day_surgery", anchor_at=sh(2026, 3, 1, 16, 0), now=sh(2026, 3, 1, 16, 0))
    task = tasks_of(plan)[1]
    probes = [task.opens_at - timedelta(seconds=1), task.opens_at, task.due_at, task.closes_at - timedelta(seconds=1),
              task.closes_at, task.closes_at + timedelta(days=400)]
    for at in probes:
        in_sql = db.session.scalar(sa.select(timeliness_sql(Task, at)).where(Task.id == task.id))
        assert in_sql == of(task, at).value, at
