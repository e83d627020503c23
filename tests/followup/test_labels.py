"""Follow-up pages, PDFs and stored text speak the reader's language: pathway names and every other
code as labels, the system's reasons stored as codes, a completed call showing what was recorded."""
import html
import re
import shutil
import subprocess
from datetime import date

import pytest
import sqlalchemy as sa

from tests.conftest import csrf_from, sh
from tests.followup.test_generator import generate
from tests.followup.test_pages import step

CODES = re.compile(r"\b(day_surgery|four_level_surgery|cancer_[a-z]+|operation:\d+|encounter:\d+|manual:\S+|"
                   r"complication|unplanned_readmission|plan_paused|death|None)\b")


def visible(page: str) -> str:
    """The text a user reads: no tags, no attribute values, no scripts."""
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def complete_with_complication(client, task_id):
    from qcflow.extensions import db
    from qcflow.followup.models import Task

    step(client, task_id, "claim")
    db.session.expire_all()
    done = step(client, task_id, "complete", respondent="family", channel="phone", complication="1",
                complication_note="切口红肿渗液", unplanned_readmission="0", reoperation="0",
                health_education_given="1", satisfaction="4", note="已嘱门诊换药",
                version=str(db.session.get(Task, task_id).version))
    assert done.status_code == 302, done.get_data(as_text=True)


def test_the_queue_names_pathways_in_the_readers_language(clients, call):
    nurse = clients("nurse")
    zh = visible(nurse.get("/followup/queue?lang=zh").get_data(as_text=True))
    assert "日间手术随访" in zh and not CODES.search(zh), CODES.search(zh)
    en = visible(nurse.get("/followup/queue?lang=en").get_data(as_text=True))
    assert "Day surgery follow-up" in en and not CODES.search(en), CODES.search(en)
    # The filter still filters by code.
    assert "陈静" in nurse.get("/followup/queue?pathway=day_surgery&lang=zh").get_data(as_text=True)
    assert "陈静" not in nurse.get("/followup/queue?pathway=cancer_lung&lang=zh").get_data(as_text=True)


def test_a_completed_call_shows_what_was_recorded_and_no_due_badge(clients, call):
    nurse = clients("nurse")
    complete_with_complication(nurse, call)
    page = nurse.get(f"/followup/tasks/{call}?lang=zh").get_data(as_text=True)
    heading = re.search(r"<h1>.*?</h1>", page, flags=re.S).group(0)
    assert "已完成" in heading and "badge" not in heading  # no yellow 到期 on a closed call
    text = visible(page)
    for fact in ("家属", "并发症", "切口红肿渗液", "非计划再入院", "已进行健康宣教", "满意度", "4/5", "已嘱门诊换药",
                 "按时完成"):
        assert fact in text, fact
    assert "提醒质控办" in text and "待质控办处理" in text  # the possible-event prompt, as the nurse reads it
    assert not CODES.search(text), CODES.search(text)
    english = visible(nurse.get(f"/followup/tasks/{call}?lang=en").get_data(as_text=True))
    assert "Family member" in english and "Complication details" in english and "Completed on time" in english
    assert "passed to the quality office" in english and "Day surgery follow-up" in english
    # The plan's history carries the same outcome.
    from qcflow.extensions import db
    from qcflow.followup.models import Task

    plan_page = visible(nurse.get(f"/followup/plans/{db.session.get(Task, call).plan_id}?lang=zh")
                        .get_data(as_text=True))
    assert "切口红肿渗液" in plan_page and "满意度（1–5）：4/5" in plan_page and not CODES.search(plan_page)


def test_the_quality_office_sees_a_link_to_the_prompt_from_the_call(clients, call):
    from qcflow.extensions import db
    from qcflow.followup.models import EventPrompt

    complete_with_complication(clients("nurse"), call)
    prompt = db.session.scalar(sa.select(EventPrompt))
    quality = clients("quality").get(f"/followup/tasks/{call}").get_data(as_text=True)
    assert f"#prompt-{prompt.id}" in quality
    assert f"#prompt-{prompt.id}" not in clients("nurse").get(f"/followup/tasks/{call}").get_data(as_text=True)


@pytest.mark.parametrize("filed_in, read_in", [("zh", "en"), ("en", "zh")])
def test_a_report_filed_from_a_call_reads_in_each_readers_language(clients, call, filed_in, read_in):
    """The report stores what generated it, not text in the filer's language: filed from the Chinese
    interface, the English case page says "After discharge" and "Day surgery follow-up" (and the other way
    round); the nurse's own words are kept as written."""
    from qcflow.events.models import AdverseEvent
    from qcflow.extensions import db
    from qcflow.followup.models import EventPrompt

    complete_with_complication(clients("nurse"), call)
    quality = clients("quality")
    prompt = db.session.scalar(sa.select(EventPrompt))
    prompts = visible(quality.get(f"/followup/prompts?lang={filed_in}").get_data(as_text=True))
    assert "day_surgery" not in prompts
    token = csrf_from(quality, "/followup/prompts")
    filed = quality.post(f"/followup/prompts/{prompt.id}/file?lang={filed_in}",
                         data={"csrf_token": token, "version": str(prompt.version)})
    assert filed.status_code == 302
    db.session.expire_all()
    event = db.session.scalar(sa.select(AdverseEvent))
    assert event.state == "submitted"
    words = {"zh": ["出院后（随访发现）", "日间手术随访", "并发症", "第 1 次随访"],
             "en": ["After discharge (found at follow-up)", "Day surgery follow-up", "Complication",
                    "follow-up call 1"]}
    stored = f"{event.location or ''} {event.description}"
    assert not [w for lang in words for w in words[lang] if w in stored], stored  # no system text stored
    page = visible(quality.get(f"/events/{event.id}?lang={read_in}").get_data(as_text=True))
    assert [w for w in words[read_in] if w not in page] == [], page
    assert [w for w in words[filed_in] if w in page] == [], page
    assert "切口红肿渗液" in page and "day_surgery" not in page and "complication," not in page


def test_the_systems_reasons_are_codes_shown_in_the_readers_language(clients, enrol, tasks_of, actor_of):
    from qcflow.extensions import db
    from qcflow.followup import services

    plan = enrol("cancer_breast", anchor_at=sh(2025, 6, 1, 10, 0), now=sh(2025, 6, 1, 10, 0))
    generate(sh(2025, 8, 25, 8, 0))
    services.pause_plan(plan, {"reason": "赴外地治疗"}, actor=actor_of("head"), now=sh(2025, 8, 26, 9, 0))
    db.session.commit()
    task = tasks_of(plan)[0]
    assert (task.state, task.cancel_code, task.cancel_reason) == ("cancelled", "plan_paused", "赴外地治疗")
    from qcflow.clinical.models import Patient

    services.on_death(db.session.get(Patient, plan.patient_id), died_on=date(2025, 9, 1), now=sh(2025, 9, 2, 9, 0))
    db.session.commit()
    db.session.expire_all()
    assert (plan.state, plan.end_code, plan.end_reason) == ("stopped", "death", None)

    head = clients("head")
    zh = visible(head.get(f"/followup/tasks/{task.id}?lang=zh").get_data(as_text=True))
    assert "随访计划已暂停：赴外地治疗" in zh
    en = visible(head.get(f"/followup/tasks/{task.id}?lang=en").get_data(as_text=True))
    assert "Plan paused: 赴外地治疗" in en
    plan_zh = visible(head.get(f"/followup/plans/{plan.id}?lang=zh").get_data(as_text=True))
    assert "患者死亡" in plan_zh and "乳腺癌随访" in plan_zh and not CODES.search(plan_zh), CODES.search(plan_zh)
    plan_en = visible(head.get(f"/followup/plans/{plan.id}?lang=en").get_data(as_text=True))
    assert "Death recorded" in plan_en and "Enrolled by hand" in plan_en


def test_a_changed_protocol_cancels_with_a_code(ctx, enrol, tasks_of, ward, actor_of):
    from qcflow.extensions import db
    from qcflow.followup import services

    plan = enrol("cancer_lung", anchor_at=sh(2025, 6, 1, 10, 0), now=sh(2025, 6, 1, 10, 0))
    generate(sh(2026, 9, 1, 8, 0))  # several calls generated, none worked on
    protocol = services.current_protocol("cancer_lung")
    services.create_protocol_version("cancer_lung", {
        "name": protocol.name, "name_en": protocol.name_en, "anchor": protocol.anchor,
        "outcome_items": protocol.outcome_items, "core_items": protocol.core_items,
        "based_on_version_no": protocol.version_no,
        "phases": [{"unit": "month", "start": 24, "early_hours": 0, "late_hours": 0}]},
        actor=actor_of("admin"), now=sh(2026, 9, 1, 9, 0))
    db.session.commit()
    cancelled = [t for t in tasks_of(plan) if t.state == "cancelled"]
    assert cancelled and all((t.cancel_code, t.cancel_reason) == ("protocol_changed", None) for t in cancelled)


def test_a_refused_step_names_what_is_missing_in_words(app, enrol, tokens):
    from qcflow.extensions import db

    plan = enrol("cancer_breast", anchor_at=sh(2025, 6, 1, 10, 0), now=sh(2025, 6, 1, 10, 0))
    db.session.commit()
    url = f"/api/v1/followup/plans/{plan.id}/transitions?lang=zh"
    refused = app.test_client().post(url, json={"action": "pause", "version": plan.version}, headers=tokens("head"))
    assert refused.status_code == 422 and refused.get_json()["message"] == "请填写原因。"


@pytest.fixture
def operated(ctx, ward):
    """A grade-4 operation performed on 2 March 2026 (胰十二指肠切除术): a four-level surgery plan."""
    from qcflow.clinical.models import Operation
    from qcflow.clinical.services import import_rows, transition_operation
    from qcflow.core.actors import Actor
    from qcflow.extensions import db
    from qcflow.followup.models import Plan

    admin = Actor.for_user(ward["admin"])
    rows = [("procedures", [{"code": "52.7001", "name": "胰十二指肠切除术", "grade": 4}]),
            ("staff", [{"his_id": "S1", "name": "李刀", "department_code": "GS"}]),
            ("patients", [{"his_id": "P1", "mrn": "BA001", "name": "王小红", "sex": "F", "phone": "13812345678"}]),
            ("encounters", [{"his_id": "E1", "patient_his_id": "P1", "department_code": "GS",
                             "admitted_at": "2026-03-01T08:00:00+08:00"}]),
            ("operations", [{"his_id": "O1", "encounter_his_id": "E1", "procedure_code": "52.7001",
                             "surgeon_his_id": "S1", "planned_at": "2026-03-02T08:00:00+08:00"}])]
    for kind, batch in rows:
        assert not any(r.errors for r in import_rows(kind, batch, actor=admin, now=sh(2026, 3, 1, 9, 0)))
    quality = Actor.for_user(ward["quality"])
    operation = db.session.scalar(sa.select(Operation))
    transition_operation(operation, "book", {"emergency_override": True, "override_reason": "急诊"}, actor=quality,
                         now=sh(2026, 3, 2, 7, 0))
    transition_operation(operation, "perform", {"performed_at": sh(2026, 3, 2, 9, 0)}, actor=quality,
                         now=sh(2026, 3, 2, 12, 0))
    db.session.commit()
    return db.session.scalar(sa.select(Plan))


def test_the_record_sheet_names_sex_and_operation(clients, operated, tmp_path):
    if not shutil.which("pdftotext"):
        pytest.skip("poppler-utils not installed")
    response = clients("nurse").get(f"/followup/patients/{operated.patient_id}/sheet.pdf?lang=zh")
    assert response.status_code == 200
    path = tmp_path / "sheet.pdf"
    path.write_bytes(response.data)
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    assert "女" in text and "胰十二指肠切除术" in text and "2026-03-02" in text and "四级手术随访" in text
    assert not re.search(r"\bF\b", text) and not CODES.search(text), CODES.search(text)
    plan_page = visible(clients("nurse").get(f"/followup/plans/{operated.id}?lang=zh").get_data(as_text=True))
    assert "手术 胰十二指肠切除术 · 2026-03-02" in plan_page and not CODES.search(plan_page)


def test_a_dismissed_prompt_shows_why(clients, call):
    from qcflow.extensions import db
    from qcflow.followup.models import EventPrompt

    complete_with_complication(clients("nurse"), call)
    quality = clients("quality")
    prompt = db.session.scalar(sa.select(EventPrompt))
    token = csrf_from(quality, "/followup/prompts")
    dismissed = quality.post(f"/followup/prompts/{prompt.id}/dismiss",
                             data={"csrf_token": token, "version": str(prompt.version), "reason": "切口换药即可，非不良事件"})
    assert dismissed.status_code == 302
    page = visible(quality.get("/followup/prompts?state=dismissed&lang=zh").get_data(as_text=True))
    assert "原因：切口换药即可，非不良事件" in page
    assert "日间手术随访 #1" in page
