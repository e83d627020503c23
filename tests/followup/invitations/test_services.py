"""The invitation's life as the services drive it: who is invited, the link, reminders that stop, the second
factor, answers and the nurse's confirmation."""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa


def test_only_open_self_report_calls_of_patients_with_a_phone_and_a_factor_are_invited(
        ctx, enrol, create_patient, frozen, senders, surgery_call):
    from qcflow.extensions import db
    from qcflow.followup.invitations import services
    from qcflow.followup.invitations.models import Invitation

    day = enrol("day_surgery", patient=create_patient(birth_on=surgery_call.plan.anchor_at.date()),
                anchor_at=frozen - timedelta(hours=3), now=frozen)  # its 24 h call is a phone call
    enrol("four_level_surgery", patient=create_patient(phone=None), anchor_at=frozen - timedelta(days=30), now=frozen)
    enrol("four_level_surgery", patient=create_patient(), anchor_at=frozen - timedelta(days=30), now=frozen)  # no factor
    enrol("four_level_surgery", patient=create_patient(birth_on=frozen.date()), anchor_at=frozen - timedelta(days=20),
          now=frozen)  # window not open yet
    db.session.commit()
    assert services.invite_due(frozen) == 1
    invitation = db.session.scalar(sa.select(Invitation))
    assert invitation.task_id == surgery_call.id and invitation.state == "queued" and invitation.factor == "birth_year"
    assert invitation.expires_at == surgery_call.closes_at and day.id != invitation.task.plan_id
    assert services.invite_due(frozen) == 0  # once per call


def test_the_link_holds_no_personal_data_and_only_its_hash_is_stored(invited):
    from qcflow.followup.invitations import services

    link = services.link_of(invited)
    token = link.rsplit("/", 1)[1]
    assert link.startswith("https://fu.hospital.example/f/") and len(token) == 43
    assert "13912345678" not in link and "王建国" not in link and "BA4001" not in link
    assert token not in (invited.token_hash, invited.token_seed)
    assert services.find(token).id == invited.id
    assert services.find(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert services.find("../../etc/passwd") is None


def test_reminders_follow_and_stop_once_the_patient_answers(invited, frozen):
    from qcflow.extensions import db
    from qcflow.followup.invitations import services

    assert invited.state == "sent" and invited.next_send_at == frozen + timedelta(hours=48)
    assert services.take_due(frozen + timedelta(hours=47)) == []
    reminder, = services.take_due(frozen + timedelta(hours=48))
    assert reminder.kind == "reminder"
    services.record_send(reminder.invitation_id, "reminder", ok=True, now=frozen + timedelta(hours=48))
    assert invited.reminders_sent == 1 and invited.next_send_at == frozen + timedelta(hours=168)
    at = frozen + timedelta(hours=50)
    assert services.check_factor(invited, "1961", now=at)
    services.answer(invited, {"respondent": "patient", "condition": "better", "complication": False,
                              "unplanned_readmission": False, "reoperation": False, "satisfaction": 5}, now=at)
    db.session.commit()
    assert invited.state == "answered" and invited.next_send_at is None
    assert services.take_due(frozen + timedelta(days=30)) == []


def test_a_call_completed_by_phone_stops_the_reminders_and_the_link(invited, frozen, actor_of):
    from qcflow.followup import services as followup
    from qcflow.followup.invitations import services

    nurse = actor_of("nurse")
    followup.claim_task(invited.task, actor=nurse, now=frozen)
    followup.complete_task(invited.task, {"respondent": "patient", "complication": False, "unplanned_readmission": False,
                                          "reoperation": False, "vital_status": "alive"}, actor=nurse, now=frozen)
    assert services.take_due(frozen + timedelta(hours=48)) == []
    assert invited.state == "closed" and not services.usable(invited, frozen)


def test_wrong_second_factors_rest_the_invitation_and_a_right_one_then_waits(invited, frozen, app):
    from qcflow.followup.invitations import services

    for n in range(app.config["INVITATION_WRONG_FACTORS"]):
        assert not services.check_factor(invited, "1962", now=frozen)
    assert services.is_locked(invited, frozen)
    assert not services.check_factor(invited, "1961", now=frozen + timedelta(minutes=1))  # right, but resting
    assert services.check_factor(invited, "1961", now=frozen + timedelta(minutes=31))
    assert invited.state == "opened"


def test_alarming_answers_top_the_queue_open_a_prompt_and_the_nurse_confirms_in_one_step(invited, frozen, actor_of,
                                                                                          enrol):
    from qcflow.extensions import db
    from qcflow.followup import queries
    from qcflow.followup.invitations import services
    from qcflow.followup.models import EventPrompt

    at = frozen + timedelta(hours=2)
    enrol("day_surgery", anchor_at=frozen - timedelta(hours=3), now=frozen)  # a 24 h call, otherwise first
    nurse = actor_of("nurse")
    before, _patients, _cursor = queries.queue(nurse, now=at)
    assert before[0].is_urgent and before[1].id == invited.task_id
    assert services.check_factor(invited, "1961", now=at)
    with pytest.raises(Exception) as missing:
        services.answer(invited, {"respondent": "patient"}, now=at)
    assert set(missing.value.errors) == {"condition", "complication", "unplanned_readmission", "reoperation",
                                         "satisfaction"}
    services.answer(invited, {"respondent": "patient", "condition": "worse", "complication": True,
                              "complication_note": "伤口红肿流脓", "unplanned_readmission": False,
                              "reoperation": False, "satisfaction": 3}, now=at)
    db.session.commit()
    task = invited.task
    assert task.alarm and invited.alarm_list == ["complication", "worsening"]
    prompt = db.session.scalar(sa.select(EventPrompt).where(EventPrompt.task_id == task.id))
    assert prompt.findings == "complication,worsening"
    first, _patients, _cursor = queries.queue(nurse, now=at)
    assert [t.id for t in first] == [task.id, before[0].id]



def test_the_nurse_confirms_plain_answers_in_one_step_judged_at_the_patients_answer(invited, frozen, actor_of):
    from qcflow.core.errors import Conflict
    from qcflow.extensions import db
    from qcflow.followup.invitations import services

    at = frozen + timedelta(hours=2)
    assert services.check_factor(invited, "1961", now=at)
    services.answer(invited, {"respondent": "family", "vital_status": "alive", "condition": "better",
                              "complication": False, "unplanned_readmission": False, "reoperation": False,
                              "satisfaction": 5}, now=at)
    task, nurse = invited.task, actor_of("nurse")
    services.confirm(task, actor=nurse, now=at + timedelta(days=1))
    db.session.commit()
    assert task.state == "completed" and task.channel == "online" and task.is_effective
    assert task.closed_at == at and task.respondent == "family" and task.complication is False
    with pytest.raises(Conflict):
        services.confirm(task, actor=nurse, now=at + timedelta(days=1))


def test_free_text_with_control_characters_or_direction_overrides_is_refused(app):
    from marshmallow import ValidationError

    from qcflow.followup.invitations.questions import AnswersIn

    for text in ("伤口\x00渗液", "\x1b[2J", "正常\u202e液渗", "\x85"):
        with pytest.raises(ValidationError) as refused:
            AnswersIn().load({"note": text, "complication_note": text})
        assert set(refused.value.messages) == {"note", "complication_note"}
    assert AnswersIn().load({"note": "第一行\n第二行\t好"})["note"] == "第一行\n第二行\t好"


def test_a_validator_factory_listed_without_its_call_is_refused_at_once():
    from marshmallow import fields

    from qcflow.core.schemas import no_control_characters

    with pytest.raises(TypeError):
        fields.String(validate=[no_control_characters]).deserialize("text\x00")


def test_ten_wrong_identity_answers_close_the_link_and_tell_the_nurses(invited, frozen, app, hospital):
    from qcflow.extensions import db
    from qcflow.followup.invitations import services
    from qcflow.notify.models import Notification

    at = frozen
    for n in range(app.config["INVITATION_MAX_WRONG_FACTORS"]):
        at = invited.locked_until or at
        assert not services.check_factor(invited, "1962", now=at)
    db.session.commit()
    assert invited.state == "closed" and not services.usable(invited, at)
    assert not services.check_factor(invited, "1961", now=at + timedelta(hours=2))
    told = db.session.scalars(sa.select(Notification.user_id).where(Notification.kind == "followup.invitation_closed"))
    assert set(told) == {hospital["nurse"].id, hospital["nurse2"].id}


def test_a_typing_slip_in_the_identity_answer_is_the_fields_error_not_a_try(invited, frozen):
    from qcflow.core.errors import Unprocessable
    from qcflow.followup.invitations import services

    for slip in ("abcd", "61", "19611"):
        with pytest.raises(Unprocessable) as refused:
            services.check_factor(invited, slip, now=frozen)
        assert "1958" in refused.value.errors["factor"][0]  # what a year of birth looks like
    assert invited.wrong_factors == 0


def test_alarming_answers_are_not_confirmed_without_a_call(invited, frozen, actor_of):
    from qcflow.core.errors import Conflict
    from qcflow.followup import services as followup
    from qcflow.followup.invitations import services

    assert services.check_factor(invited, "1961", now=frozen)
    services.answer(invited, {"respondent": "patient", "condition": "same", "complication": True,
                              "unplanned_readmission": False, "reoperation": False, "satisfaction": 4}, now=frozen)
    nurse = actor_of("nurse")
    with pytest.raises(Conflict):
        services.confirm(invited.task, actor=nurse, now=frozen)
    assert invited.task.state == "pending"
    followup.claim_task(invited.task, actor=nurse, now=frozen)
    # a call that reached the patient before the alarming answers came is not a call about them
    followup.log_attempt(invited.task, {"channel": "phone", "result": "reached"}, actor=nurse,
                         now=frozen - timedelta(minutes=30))
    with pytest.raises(Conflict):
        services.confirm(invited.task, actor=nurse, now=frozen)
    followup.log_attempt(invited.task, {"channel": "phone", "result": "reached"}, actor=nurse, now=frozen)
    services.confirm(invited.task, actor=nurse, now=frozen)  # the patient reached by phone: confirmed
    assert invited.task.state == "completed" and invited.task.complication


def test_a_family_reporting_a_death_answers_only_who_they_are_and_the_date(invited, frozen):
    from qcflow.followup.invitations import services

    assert services.check_factor(invited, "1961", now=frozen)
    services.answer(invited, {"respondent": "family", "vital_status": "dead",
                              "died_on": frozen.date() - timedelta(days=3)}, now=frozen)
    assert invited.state == "answered" and invited.alarm_list == ["death"] and invited.task.alarm


def test_a_revisit_asked_for_is_not_a_revisit_booked_and_a_recurrence_may_be_not_known(
        ctx, enrol, create_patient, frozen, senders, actor_of):
    from datetime import date

    from flask_babel import gettext

    from qcflow.extensions import db
    from qcflow.followup.invitations import queries, services

    patient = create_patient(birth_on=date(1950, 1, 1))
    plan = enrol("cancer_lung", patient=patient, anchor_at=frozen - timedelta(days=91), now=frozen)
    db.session.commit()
    assert services.invite_due(frozen) == 1
    task = next(t for t in plan_tasks(plan) if t.opens_at <= frozen)
    invitation = queries.invitation_of(task)
    assert services.check_factor(invitation, "1950", now=frozen)
    services.answer(invitation, {"respondent": "patient", "condition": "same", "complication": False,
                                 "unplanned_readmission": False, "recurrence_metastasis": "unknown",
                                 "satisfaction": 4, "revisit_requested": True}, now=frozen)
    assert invitation.alarm_list == []
    services.confirm(task, actor=actor_of("nurse"), now=frozen)
    assert task.revisit_booked is None and task.recurrence_metastasis is None
    assert gettext("Asks for a revisit appointment.") in task.outcome_note


def plan_tasks(plan):
    from qcflow.extensions import db
    from qcflow.followup.models import Task

    return db.session.scalars(sa.select(Task).where(Task.plan_id == plan.id).order_by(Task.occurrence)).all()


def test_a_link_works_only_once_its_calls_window_has_opened(invited, frozen):
    from qcflow.followup.invitations import services

    invited.task.opens_at = frozen + timedelta(days=1)
    assert not services.usable(invited, frozen)


def test_the_live_invitations_index_names_the_live_states():
    import re

    from qcflow.followup.invitations.models import LIVE_SQL
    from qcflow.followup.invitations.workflow import LIVE

    assert set(re.findall(r"'(\w+)'", LIVE_SQL)) == {state.value for state in LIVE}
