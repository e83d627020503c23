"""The hooks the clinical services call: requests made once, the death-review window, the booking record."""
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from qcflow.mdt import services
from tests.conftest import SHANGHAI
from tests.mdt.conftest import complete_record
from tests.factories import discussion_of


def discussions(**where):
    from qcflow.extensions import db
    from qcflow.mdt.models import Discussion

    stmt = sa.select(Discussion)
    for column, value in where.items():
        stmt = stmt.where(getattr(Discussion, column) == value)
    return list(db.session.scalars(stmt.order_by(Discussion.id)))


def audit_actions(discussion):
    from qcflow.core.audit import AuditEntry
    from qcflow.extensions import db

    return list(db.session.scalars(sa.select(AuditEntry.action).where(
        AuditEntry.object_type == "mdt_discussion", AuditEntry.object_id == str(discussion.id))
        .order_by(AuditEntry.seq)))


def notifications(user, kind):
    from qcflow.extensions import db
    from qcflow.notify.models import Notification

    from qcflow.notify.messages import texts

    return [texts(n)[0] for n in db.session.scalars(sa.select(Notification).where(Notification.user_id == user.id,
                                                                                   Notification.kind == kind))]


# Operation planned ------------------------------------------------------------------------------

def test_planned_grade_four_operation_requests_one_preop_discussion_with_proposed_participants(
        hospital, grade_four, mdt_now):
    first = discussion_of(services.on_operation_planned(grade_four, now=mdt_now))
    again = discussion_of(services.on_operation_planned(grade_four, now=mdt_now + timedelta(hours=1)))
    assert again.id == first.id and len(discussions(operation_id=grade_four.id)) == 1
    assert (first.kind, first.state, first.department_id) == ("preop_level4", "requested", hospital["surgery"].id)
    assert (first.patient_id, first.encounter_id) == (grade_four.patient_id, grade_four.encounter_id)
    assert first.due_at == grade_four.planned_at
    # The surgeon, anaesthesia (required), and one more specialty from another department.
    invited = [(p.user_id, p.specialty) for p in first.participants]
    assert invited[:2] == [(hospital["clinician"].id, "general_surgery"), (hospital["anaesthetist"].id, "anaesthesia")]
    assert len(invited) == 3 and invited[2][1] in ("oncology", "radiology")
    assert audit_actions(first) == ["mdt_discussion.request"]
    assert len(notifications(hospital["clinician"], "mdt.requested")) == 1


def test_a_new_planned_time_moves_the_due_time_of_the_open_discussion(hospital, grade_four, mdt_now):
    discussion = discussion_of(services.on_operation_planned(grade_four, now=mdt_now))
    grade_four.planned_at = grade_four.planned_at + timedelta(days=2)
    again = discussion_of(services.on_operation_planned(grade_four, now=mdt_now + timedelta(hours=1)))
    assert again.id == discussion.id
    assert discussion.due_at == grade_four.planned_at
    assert audit_actions(discussion) == ["mdt_discussion.request", "mdt_discussion.due_changed"]
    discussion_of(services.on_operation_planned(grade_four, now=mdt_now + timedelta(hours=2)))
    assert audit_actions(discussion)[-1] == "mdt_discussion.due_changed" and len(audit_actions(discussion)) == 2


def test_operations_below_grade_four_request_nothing_but_restricted_technology_does(
        hospital, create_operation, create_procedure, mdt_now):
    surgeon = hospital["staff"]["surgeon"]
    grade_three = create_operation(hospital["surgery"], surgeon, mdt_now, procedure=create_procedure(grade=3))
    assert discussion_of(services.on_operation_planned(grade_three, now=mdt_now)) is None
    robot = create_operation(hospital["surgery"], surgeon, mdt_now,
                             procedure=create_procedure(grade=3, is_restricted_technology=True))
    assert discussion_of(services.on_operation_planned(robot, now=mdt_now)).kind == "preop_level4"


def test_a_live_discussion_requested_by_hand_is_not_duplicated(hospital, grade_four, actor_of, mdt_now):
    by_hand = services.request_discussion({"kind": "preop_level4", "operation_id": grade_four.id, "question": "?"},
                                          actor=actor_of("clinician"), now=mdt_now)
    assert discussion_of(services.on_operation_planned(grade_four, now=mdt_now)).id == by_hand.id


# Death review window ----------------------------------------------------------------------------

#: An operation performed at 23:30 Shanghai time on 1 January 2026 (15:30 UTC).
PERFORMED = datetime(2026, 1, 1, 23, 30, tzinfo=SHANGHAI)


@pytest.fixture
def operated(hospital, create_operation, create_patient, create_encounter):
    """A patient operated at PERFORMED, discharged home three days later."""
    patient = create_patient(name="张三")
    stay = create_encounter(patient, hospital["surgery"], PERFORMED - timedelta(days=1),
                            discharged_at=PERFORMED + timedelta(days=3), disposition="home")
    operation = create_operation(hospital["surgery"], hospital["staff"]["surgeon"], PERFORMED - timedelta(hours=2),
                                 encounter=stay, performed_at=PERFORMED)
    return patient, operation


@pytest.mark.parametrize("died_at, perioperative", [
    (datetime(2026, 1, 31, 23, 59, tzinfo=SHANGHAI), True),   # calendar day 30 (UTC: 31 Jan 15:59)
    (datetime(2026, 2, 1, 0, 10, tzinfo=SHANGHAI), False),    # day 31, although only 30 d 0 h 40 min later
    (datetime(2026, 1, 2, 0, 5, tzinfo=SHANGHAI), True),      # the next local day
    (datetime(2026, 1, 1, 23, 45, tzinfo=SHANGHAI), True),    # the same evening
    (datetime(2026, 3, 1, 9, 0, tzinfo=SHANGHAI), False),
])
def test_perioperative_window_counts_calendar_days_in_the_hospital_time_zone(
        hospital, operated, mdt_now, died_at, perioperative):
    patient, operation = operated
    discussion = discussion_of(services.on_death(patient, died_at=died_at, now=mdt_now))
    if perioperative:
        assert discussion.kind == "perioperative_death" and discussion.operation_id == operation.id
        assert discussion.department_id == hospital["med"].id  # organised by medical affairs
        assert discussion.due_at == died_at + timedelta(days=7)
    else:
        assert discussion is None  # not perioperative, and no in-hospital encounter given


def test_death_during_the_surgical_admission_is_perioperative_however_long_the_stay(
        hospital, create_operation, create_patient, create_encounter, mdt_now):
    patient = create_patient()
    stay = create_encounter(patient, hospital["surgery"], PERFORMED - timedelta(days=1))  # still admitted
    create_operation(hospital["surgery"], hospital["staff"]["surgeon"], PERFORMED, encounter=stay,
                     performed_at=PERFORMED)
    died_at = PERFORMED + timedelta(days=45)
    review = discussion_of(services.on_death(patient, died_at=died_at, encounter=stay, now=mdt_now))
    assert review.kind == "perioperative_death"


def test_in_hospital_death_without_operation_requests_a_death_case_review_once(
        hospital, create_patient, create_encounter, mdt_now):
    patient = create_patient()
    stay = create_encounter(patient, hospital["cardio"], mdt_now - timedelta(days=3))
    died_at = mdt_now - timedelta(hours=2)
    first = discussion_of(services.on_death(patient, died_at=died_at, encounter=stay, now=mdt_now))
    again = discussion_of(services.on_death(patient, died_at=died_at, encounter=stay,
                                            now=mdt_now + timedelta(minutes=1)))
    assert again.id == first.id and len(discussions(patient_id=patient.id)) == 1
    assert (first.kind, first.department_id, first.encounter_id) == ("death_case", hospital["cardio"].id, stay.id)
    assert first.due_at == died_at + timedelta(days=7)
    assert len(notifications(hospital["other_head"], "mdt.death_case")) == 1


def test_perioperative_death_is_requested_once_and_a_later_dispute_shortens_the_deadline(
        hospital, operated, mdt_now):
    patient, _ = operated
    died_at = PERFORMED + timedelta(days=5)
    first = discussion_of(services.on_death(patient, died_at=died_at, now=mdt_now))
    again = discussion_of(services.on_death(patient, died_at=died_at, now=mdt_now, disputed=True))
    assert again.id == first.id and len(discussions(patient_id=patient.id)) == 1
    assert first.is_disputed and first.due_at == died_at + timedelta(hours=24)
    assert len(notifications(hospital["quality"], "mdt.perioperative_death")) == 1
    assert audit_actions(first) == ["mdt_discussion.request", "mdt_discussion.disputed"]


def test_disputed_death_is_due_in_24_hours(hospital, operated, mdt_now):
    patient, _ = operated
    died_at = PERFORMED + timedelta(days=2)
    discussion = discussion_of(services.on_death(patient, died_at=died_at, now=mdt_now, disputed=True))
    assert discussion.is_disputed and discussion.due_at == died_at + timedelta(hours=24)


def test_without_a_medical_affairs_department_the_operating_department_organises(app, hospital, operated, mdt_now):
    app.config["MEDICAL_AFFAIRS_DEPARTMENT"] = "NOPE"
    patient, operation = operated
    discussion = discussion_of(services.on_death(patient, died_at=PERFORMED + timedelta(days=1), now=mdt_now))
    assert discussion.department_id == operation.department_id == hospital["surgery"].id


def test_planned_but_not_performed_operations_do_not_make_a_death_perioperative(
        hospital, create_operation, create_patient, mdt_now):
    patient = create_patient()
    create_operation(hospital["surgery"], hospital["staff"]["surgeon"], mdt_now - timedelta(days=1), patient=patient)
    assert discussion_of(services.on_death(patient, died_at=mdt_now, now=mdt_now)) is None


# Unplanned reoperation --------------------------------------------------------------------------

def test_unplanned_reoperation_requests_one_case_review(hospital, operated, mdt_now):
    _, operation = operated
    first = discussion_of(services.on_unplanned_reoperation(operation, now=mdt_now))
    again = discussion_of(services.on_unplanned_reoperation(operation, now=mdt_now + timedelta(days=1)))
    assert again.id == first.id and len(discussions(kind="case_review")) == 1
    assert (first.kind, first.operation_id) == ("case_review", operation.id)
    assert first.department_id == hospital["surgery"].id
    assert first.due_at == mdt_now + timedelta(days=7)
    assert len(notifications(hospital["head"], "mdt.case_review")) == 1


# The record the booking gate asks for ---------------------------------------------------------

@pytest.mark.parametrize("signed_days_before, found", [(0, True), (30, True), (31, False)])
def test_signed_preop_discussion_window(hospital, grade_four, held_preop, actor_of, signed_days_before, found):
    from qcflow.extensions import db

    # Planned 09:30 on 9 March; signing at 23:00 local 30 calendar days before still counts.
    planned = grade_four.planned_at.astimezone(SHANGHAI)
    signed_at = (planned - timedelta(days=signed_days_before)).replace(hour=23, minute=0) \
        if signed_days_before else planned - timedelta(hours=1)
    complete_record(held_preop, actor_of("head"), signed_at, chair=hospital["head"])
    services.transition_discussion(held_preop, "sign", {}, actor=actor_of("head"), now=signed_at)
    db.session.commit()
    result = services.signed_preop_discussion(grade_four, window_days=30)
    assert (result.id if result else None) == (held_preop.id if found else None)


def test_a_discussion_signed_after_the_planned_time_does_not_count(hospital, grade_four, held_preop, actor_of):
    late = grade_four.planned_at + timedelta(minutes=1)
    complete_record(held_preop, actor_of("head"), late, chair=hospital["head"])
    services.transition_discussion(held_preop, "sign", {}, actor=actor_of("head"), now=late)
    assert services.signed_preop_discussion(grade_four, window_days=30) is None


def test_an_unsigned_discussion_does_not_count(grade_four, held_preop):
    assert services.signed_preop_discussion(grade_four, window_days=30) is None


def test_an_automatic_request_asks_its_question_in_the_readers_language(hospital, grade_four, mdt_now, clients):
    """The question qcflow writes for a request it makes by itself is not stored in one language: an English
    reader sees it in English, a Chinese reader in Chinese."""
    from qcflow.extensions import db

    discussion = discussion_of(services.on_operation_planned(grade_four, now=mdt_now))
    db.session.commit()
    assert discussion.question == ""
    name = grade_four.procedure.name
    head = clients("head")
    assert f"Pre-operative discussion: {name}" in head.get(f"/mdt/{discussion.id}?lang=en").get_data(as_text=True)
    assert f"术前讨论：{name}" in head.get(f"/mdt/{discussion.id}?lang=zh").get_data(as_text=True)
