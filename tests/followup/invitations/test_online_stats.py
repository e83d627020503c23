"""The measures of follow-up answered online: calls completed online and their share, invitations answered,
alarming answers, calls saved and the time saved, per pathway and department, on the page, over the API and in the
monthly bulletin."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from tests.conftest import sh
from tests.reports.pdftools import needs_poppler, pdf_text

NORMAL = {"respondent": "patient", "condition": "same", "complication": False, "unplanned_readmission": False,
          "reoperation": False, "recurrence_metastasis": False, "satisfaction": 4}
PHONE = {"respondent": "patient", "complication": False, "unplanned_readmission": False, "reoperation": False,
         "recurrence_metastasis": False, "vital_status": "alive"}


@pytest.fixture
def month_of_calls(ctx, enrol, create_patient, frozen, senders, ward, actor_of):
    """In general surgery, three invited calls: a four-level one answered and confirmed (a call saved), a lung
    cancer one answered with a complication, tried by phone, then confirmed (online, not saved), a four-level one
    unanswered and completed by phone. In cardiology, one call completed by phone (only the office sees it)."""
    from qcflow.extensions import db
    from qcflow.followup import services as followup
    from qcflow.followup.invitations import queries, services
    from qcflow.followup.models import Task

    def patient(year):
        return create_patient(phone="13900000000", birth_on=date(year, 1, 1))

    saved = enrol("four_level_surgery", patient=patient(1950), anchor_at=frozen - timedelta(days=30), now=frozen)
    alarming = enrol("cancer_lung", patient=patient(1951), anchor_at=sh(2025, 12, 1, 0, 0), now=frozen)
    unanswered = enrol("four_level_surgery", patient=patient(1952), anchor_at=frozen - timedelta(days=31), now=frozen)
    phoned = enrol("four_level_surgery", anchor_at=frozen - timedelta(days=30), now=frozen, department=ward["cardio"])
    followup.generate_due(frozen)
    assert services.invite_due(frozen) == 3
    for out in services.take_due(frozen):
        services.record_send(out.invitation_id, out.kind, ok=True, now=frozen)

    def call(plan):
        return db.session.query(Task).filter(Task.plan_id == plan.id, Task.occurrence == 1).one()

    nurse, at = actor_of("nurse"), frozen + timedelta(hours=3)
    for plan, born, answers in ((saved, "1950", NORMAL),
                                (alarming, "1951", {**NORMAL, "complication": True, "condition": "worse"})):
        invitation = queries.invitation_of(call(plan))
        assert services.check_factor(invitation, born, now=at)
        services.answer(invitation, answers, now=at)
    services.confirm(call(saved), actor=nurse, now=at + timedelta(hours=1))
    task = call(alarming)
    followup.claim_task(task, actor=nurse, now=at + timedelta(hours=1))
    followup.log_attempt(task, {"channel": "phone", "result": "reached"}, actor=nurse, now=at + timedelta(hours=1))
    services.confirm(task, actor=nurse, now=at + timedelta(hours=2))
    for plan, who in ((unanswered, nurse), (phoned, actor_of("card_nurse"))):
        task = call(plan)
        followup.claim_task(task, actor=who, now=at)
        followup.complete_task(task, PHONE, actor=who, now=at)
    db.session.commit()


def test_the_months_figures_per_pathway_and_department(ctx, month_of_calls, actor_of, ward):
    from qcflow.followup.invitations import queries

    stats = queries.statistics(actor_of("nurse"), date(2026, 3, 1))
    total = stats["total"]
    assert (total["closed"], total["online"], total["online_share"]) == (3, 2, 66.7)
    assert (total["sent"], total["answered"], total["answer_rate"], total["alarming"]) == (3, 2, 66.7, 1)
    assert (total["saved"], total["minutes_saved"]) == (1, 8)
    pathways = {p["pathway"]: p for p in stats["pathways"]}
    assert (pathways["four_level_surgery"]["closed"], pathways["four_level_surgery"]["saved"]) == (2, 1)
    assert (pathways["cancer_lung"]["online"], pathways["cancer_lung"]["alarming"], pathways["cancer_lung"]["saved"]) \
        == (1, 1, 0)
    assert [d["department_id"] for d in stats["departments"]] == [ward["surgery"].id]
    office = queries.statistics(actor_of("quality"), date(2026, 3, 1))
    assert office["total"]["closed"] == 4 and len(office["departments"]) == 2
    assert queries.statistics(actor_of("quality"), date(2026, 3, 1),
                              department=ward["cardio"].id)["total"]["online"] == 0
    assert queries.statistics(actor_of("nurse"), date(2026, 2, 1))["total"]["closed"] == 0


def test_the_page_and_the_api(clients, client, tokens, month_of_calls, ward):
    html = clients("nurse").get("/followup/online?month=2026-03").get_data(as_text=True)
    assert "患者在线随访" in html and 'id="online-pathways"' in html and "66.7 %" in html
    assert "8 分钟" in html  # 8 minutes saved
    english = clients("nurse").get("/followup/online?month=2026-03&lang=en").get_data(as_text=True)
    assert "Follow-up answered online" in english and "Calls saved" in english
    assert clients("nurse").get("/followup/online?month=2026-13").status_code == 422
    assert clients("doctor").get("/followup/online").status_code == 403
    assert clients("quality").get("/followup/online?month=2026-03").status_code == 200
    body = client.get("/api/v1/followup/online-stats?month=2026-03", headers=tokens("nurse")).json
    assert body["month"] == "2026-03" and body["total"]["saved"] == 1 and body["call_minutes"] == 8
    assert client.get(f"/api/v1/followup/online-stats?department={ward['cardio'].id}",
                      headers=tokens("nurse")).status_code == 404
    assert client.get("/api/v1/followup/online-stats?month=March", headers=tokens("nurse")).status_code == 422
    assert client.get("/api/v1/followup/online-stats", headers=tokens("doctor")).status_code == 403
    assert client.get("/api/v1/followup/online-stats", headers=tokens("nurse")).json["month"] == "2026-03"


@needs_poppler
def test_the_bulletin_prints_the_answers_online(app, ctx, month_of_calls, tmp_path):
    from qcflow.reports import bulletin

    with app.test_request_context("/"):
        text = pdf_text(bulletin.render(date(2026, 3, 1), sh(2026, 4, 1, 9, 0)), tmp_path)
    assert "患者在线随访" in text
    section = text[text.index("患者在线随访"):]
    figures = section.split()
    assert figures[1:3] == ["2/4", "2/3"] and "8 分钟" in section  # the whole hospital: cardiology's call too
    lung = next(line for line in section.splitlines() if line.startswith("肺癌随访"))
    assert lung.split()[1:] == ["1", "1", "(100.0", "%)", "1", "1", "(100.0", "%)", "1", "0", "0", "分钟"]
