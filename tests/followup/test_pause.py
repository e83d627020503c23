"""Pausing and resuming a plan (R5): nothing is generated while paused, open calls are cancelled,
occurrences whose window closed during the pause are skipped, the rest comes back exactly once."""
from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.conftest import csrf_from, sh
from tests.followup.test_generator import generate

ANCHOR = sh(2025, 6, 1, 10, 0)


def plan_audit(plan, action):
    from qcflow.core.audit import AuditEntry
    from qcflow.extensions import db

    return db.session.scalars(sa.select(AuditEntry).where(AuditEntry.object_type == "followup_plan",
                                                          AuditEntry.object_id == str(plan.id),
                                                          AuditEntry.action == action)).all()


def test_pause_cancels_open_calls_and_resume_skips_windows_that_closed(enrol, tasks_of, actor_of):
    from qcflow.extensions import db
    from qcflow.followup import services

    plan = enrol("cancer_lung", anchor_at=ANCHOR, now=ANCHOR)
    generate(sh(2025, 8, 25, 8, 0))
    assert [(t.occurrence, t.state) for t in tasks_of(plan)] == [(1, "pending")]

    services.pause_plan(plan, {"reason": "赴外地治疗三个月"}, actor=actor_of("head"), now=sh(2025, 8, 26, 9, 0))
    db.session.commit()
    assert plan.state == "paused"
    assert [(t.occurrence, t.state) for t in tasks_of(plan)] == [(1, "cancelled")]
    assert "赴外地治疗三个月" in tasks_of(plan)[0].cancel_reason

    generate(sh(2026, 1, 10, 8, 0))  # the December call falls in the pause: nothing is generated
    assert [t.occurrence for t in tasks_of(plan)] == [1]

    resumed_at = sh(2026, 1, 20, 9, 0)
    services.resume_plan(plan, {}, actor=actor_of("head"), now=resumed_at)
    db.session.commit()
    # #2 (due 1 Dec 2025, window closed 15 Dec) is skipped; #3 (due 1 Mar 2026) comes next.
    assert plan.next_occurrence == 3 and plan.next_due_on == date(2026, 3, 1)
    [entry] = plan_audit(plan, "followup_plan.resume")
    assert json.loads(entry.detail)["skipped_occurrences"] == [2]
    generate(sh(2026, 2, 1, 8, 0))
    tasks = tasks_of(plan)
    assert [(t.occurrence, t.state) for t in tasks] == [(1, "cancelled"), (3, "pending")]

    generate(sh(2026, 6, 1, 8, 0))
    assert [t.occurrence for t in tasks_of(plan)] == [1, 3, 4]


def test_a_paused_plan_stops_on_death_and_can_be_withdrawn(enrol, tasks_of, actor_of, create_patient):
    from qcflow.extensions import db
    from qcflow.followup import services

    patient = create_patient()
    plan = enrol("four_level_surgery", anchor_at=ANCHOR, now=ANCHOR, patient=patient)
    services.pause_plan(plan, {"reason": "转外院"}, actor=actor_of("head"), now=ANCHOR + timedelta(days=1))
    services.on_death(patient, died_on=date(2025, 7, 1), now=sh(2025, 7, 1, 12, 0))
    db.session.commit()
    assert plan.state == "stopped"
    other = enrol("four_level_surgery", anchor_at=ANCHOR, now=ANCHOR)
    services.pause_plan(other, {"reason": "转外院"}, actor=actor_of("head"), now=ANCHOR + timedelta(days=1))
    services.withdraw_plan(other, {"reason": "患者拒绝随访"}, actor=actor_of("quality"), now=ANCHOR + timedelta(days=2))
    db.session.commit()
    assert other.state == "withdrawn"
    generate(ANCHOR + timedelta(days=400))
    assert all(t.state == "cancelled" for t in tasks_of(plan) + tasks_of(other))


def test_plan_steps_over_the_api(app, enrol, ward, tokens):
    from qcflow.extensions import db

    plan = enrol("cancer_breast", anchor_at=ANCHOR, now=ANCHOR)
    db.session.commit()
    client = app.test_client()
    url = f"/api/v1/followup/plans/{plan.id}/transitions?lang=en"

    assert client.post(url, json={"action": "pause", "reason": "x"}, headers=tokens("nurse")).status_code == 403
    assert client.post(url, json={"action": "pause", "reason": "x"}, headers=tokens("card_nurse")).status_code == 403
    missing = client.post(url, json={"action": "pause", "version": plan.version}, headers=tokens("head"))
    assert missing.status_code == 422 and "reason" in missing.get_json()["message"]
    wrong = client.post(url, json={"action": "resume", "version": plan.version}, headers=tokens("head"))
    assert wrong.status_code == 409
    paused = client.post(url, json={"action": "pause", "reason": "出国", "version": plan.version},
                         headers=tokens("head"))
    assert paused.status_code == 200 and paused.get_json()["state"] == "paused"
    stale = client.post(url, json={"action": "resume", "version": plan.version}, headers=tokens("head"))
    assert stale.status_code == 409
    resumed = client.post(url, json={"action": "resume", "version": paused.get_json()["version"]},
                          headers=tokens("quality"))
    assert resumed.status_code == 200 and resumed.get_json()["state"] == "active"
    assert client.post(url, json={"action": "stop"}, headers=tokens("head")).status_code == 422
    assert client.post(url, json={"action": "pause", "reason": "x", "state": "active"},
                       headers=tokens("head")).status_code == 422


def test_another_departments_plan_is_not_found(app, enrol, ward, tokens):
    from qcflow.extensions import db

    plan = enrol("cancer_breast", anchor_at=ANCHOR, now=ANCHOR, department=ward["cardio"])
    db.session.commit()
    response = app.test_client().post(f"/api/v1/followup/plans/{plan.id}/transitions",
                                      json={"action": "pause", "reason": "x", "version": plan.version},
                                      headers=tokens("head"))
    assert response.status_code == 404


def test_head_pauses_and_resumes_on_the_plan_page(enrol, clients, tasks_of):
    from qcflow.extensions import db

    plan = enrol("cancer_gastric", anchor_at=ANCHOR, now=ANCHOR)
    db.session.commit()
    head = clients("head")
    page = head.get(f"/followup/plans/{plan.id}")
    assert page.status_code == 200 and "暂停" in page.get_data(as_text=True)
    posted = head.post(f"/followup/plans/{plan.id}/pause",
                       data={"csrf_token": csrf_from(head, f"/followup/plans/{plan.id}"), "version": plan.version,
                             "reason": "住院化疗"})
    assert posted.status_code == 302
    listed = head.get("/followup/plans?state=paused").get_data(as_text=True)
    assert f"/followup/plans/{plan.id}" in listed
    db.session.expire_all()
    assert head.post(f"/followup/plans/{plan.id}/resume",
                     data={"csrf_token": csrf_from(head, f"/followup/plans/{plan.id}"),
                           "version": plan.version}).status_code == 302
    db.session.expire_all()
    assert plan.state == "active"
    nurse_page = clients("nurse").get(f"/followup/plans/{plan.id}").get_data(as_text=True)
    assert "/resume" not in nurse_page and "/pause" not in nurse_page


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pathway=st.sampled_from(["cancer_liver", "four_level_surgery", "day_surgery"]),
       paused_after=st.integers(min_value=0, max_value=900), pause_days=st.integers(min_value=1, max_value=500))
def test_r5_pause_and_resume_leave_exactly_the_expected_calls(enrol, tasks_of, actor_of, pathway, paused_after,
                                                              pause_days):
    """Whatever the dates: calls generated before the pause are cancelled if still open, none is
    generated while paused, and after resuming every occurrence whose window had not closed is
    generated exactly once (and no other)."""
    from flask import current_app

    from qcflow.core.time import hospital_tz
    from qcflow.extensions import db
    from qcflow.followup import services
    from qcflow.followup.schedule import expand, occurrences

    plan = enrol(pathway, anchor_at=ANCHOR, now=ANCHOR)
    paused_at = ANCHOR + timedelta(days=paused_after, hours=3)
    resumed_at = paused_at + timedelta(days=pause_days)
    through = resumed_at + timedelta(days=400)
    generate(paused_at)
    before = {t.occurrence for t in tasks_of(plan)}
    services.pause_plan(plan, {"reason": "r"}, actor=actor_of("head"), now=paused_at)
    db.session.commit()
    generate(paused_at + timedelta(days=pause_days // 2))
    assert {t.occurrence for t in tasks_of(plan)} == before
    services.resume_plan(plan, {}, actor=actor_of("head"), now=resumed_at)
    db.session.commit()
    generate(through)

    horizon = through + timedelta(days=current_app.config["FOLLOWUP_LOOKAHEAD_DAYS"])
    after = {o.number for o in occurrences(expand(plan.protocol.schedule_phases()), plan.anchor_at, hospital_tz())
             if o.closes_at > resumed_at and o.due_at <= horizon and o.number > max(before, default=0)}
    tasks = tasks_of(plan)
    assert sorted(t.occurrence for t in tasks) == sorted(before | after)
    assert all(t.state == "cancelled" for t in tasks if t.occurrence in before)
    assert all(t.created_at >= resumed_at for t in tasks if t.occurrence in after)
