"""The counting rules of issue 21 §1, at their edges (docs/indicators.md states each in words):

1. a death cancels only the follow-up calls whose window had not closed when the patient died;
2. a perioperative death is dated by the day the patient died, not by the surgical stay's discharge;
3. a death learnt at a follow-up call requests the same one review as a HIS death and is counted;
4. the death-discussion deadline: 7 days or 5 working days (Chinese calendar), a setting for the MDT
   module, both indicators counted from the time of death;
5. unplanned return to theatre within 48 hours and within 31 days of an earlier operation.
"""
from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from tests.conftest import sh
from tests.indicators.conftest import Builder


@pytest.fixture
def b(hospital):
    return Builder(hospital)


def value(code, start, end, now, **kwargs):
    from qcflow.indicators.queries import compute

    got = compute(start, end, codes=[code], now=now, live=True, **kwargs)[0]
    return got.numerator, got.denominator


def case_ids(code, part, start, end, now):
    from qcflow.indicators.queries import cases

    return {item["id"] for item in cases(code, part, start, end, department_id=None, now=now, limit=100)[0]}


def record_death(patient, *, now, died_on=None, encounter=None, source="his", actor=None):
    """A death as the HIS (a death discharge, or the patient's day of death) or a follow-up call reports it."""
    from qcflow.clinical.services import record_death as record
    from qcflow.core.actors import Actor
    from qcflow.core.time import local
    from qcflow.extensions import db

    died_on = died_on or local(encounter.discharged_at).date()
    effects = record(patient, died_on, source=source, actor=actor or Actor.system("his"), now=now,
                     died_at=encounter.discharged_at if encounter is not None else None, encounter=encounter)
    db.session.commit()
    return effects


def operation_of(b, patient, department, performed_at, *, unplanned=False, state="performed"):
    """An operation of an existing patient (the builder's operations each have a new patient)."""
    from qcflow.clinical.models import Operation

    stay = b.encounter(department, performed_at + timedelta(days=3), patient=patient)
    return b._add(Operation(
        his_id=f"OP{patient.id}-{performed_at:%m%d%H%M}", encounter_id=stay.id, patient_id=patient.id,
        department_id=department.id, procedure_code="G2", grade=2, is_restricted_technology=False,
        surgeon_staff_id=b.surgeon.id, state=state, planned_at=performed_at - timedelta(hours=2),
        performed_at=performed_at if state == "performed" else None, is_unplanned_reoperation=unplanned,
        is_emergency_override=False, created_at=b.created, updated_at=b.created))


def patient_of(patient_id):
    from qcflow.clinical.models import Patient
    from qcflow.extensions import db

    return db.session.get(Patient, patient_id)


def death_reviews(patient_id):
    from qcflow.extensions import db
    from qcflow.mdt.models import Discussion

    return list(db.session.scalars(sa.select(Discussion).where(
        Discussion.patient_id == patient_id, Discussion.kind == "perioperative_death")))


# 1. A death cancels only calls whose window has not closed --------------------------------------------------

DIED_AT = sh(2026, 3, 10, 14, 0)


@pytest.fixture
def calls_around_a_death(b, hospital):
    """A four-level follow-up plan whose calls closed before, at and after the death of 10 March 14:00."""
    gs = hospital["surgery"]
    patient = b.patient()
    plan = b.plan("four_level_surgery", gs, patient=patient, anchor_at=sh(2026, 2, 1))
    day = timedelta(days=1)

    def call(name, opens_at, closes_at, state="pending", **kwargs):
        return name, b.task("four_level_surgery", gs, opens_at, closes_at, state, plan=plan,
                            occurrence=next(numbers), **kwargs)

    calls: dict = {}
    numbers = iter(range(1, 10))
    for name, task in (
            call("missed_before", DIED_AT - 5 * day, DIED_AT - timedelta(hours=1)),
            call("closing_at_death", DIED_AT - 5 * day, DIED_AT, state="in_progress"),
            call("unreachable_before", DIED_AT - 9 * day, DIED_AT - 2 * day, "unreachable",
                 closed_at=DIED_AT - 3 * day),
            call("completed_before", DIED_AT - 9 * day, DIED_AT - 4 * day, "completed", closed_at=DIED_AT - 6 * day,
                 is_effective=True),
            call("open_at_death", DIED_AT - day, DIED_AT + timedelta(minutes=1)),
            call("closed_after_death", DIED_AT - day, DIED_AT + 2 * day),
            call("not_yet_open", DIED_AT + 20 * day, DIED_AT + 30 * day)):
        calls[name] = task
    b.db.session.commit()
    return patient, calls


def states(calls):
    from qcflow.extensions import db

    for task in calls.values():
        db.session.refresh(task)
    return {name: task.state for name, task in calls.items()}


def test_a_death_learnt_days_later_cancels_only_the_calls_open_at_the_death(b, hospital, calls_around_a_death):
    from qcflow.extensions import db
    from qcflow.followup.models import Plan

    patient, calls = calls_around_a_death
    stay = b.encounter(hospital["surgery"], DIED_AT, disposition="death", patient=patient)
    # The HIS sends the death discharge five days later: by then "closed_after_death" has closed too,
    # unanswered, but it was open when the patient died.
    record_death(patient, encounter=stay, now=DIED_AT + timedelta(days=5))
    assert states(calls) == {
        "missed_before": "pending", "closing_at_death": "in_progress", "unreachable_before": "unreachable",
        "completed_before": "completed", "open_at_death": "cancelled", "closed_after_death": "cancelled",
        "not_yet_open": "cancelled"}
    assert {calls[n].cancel_code for n in ("open_at_death", "closed_after_death")} == {"plan_stopped"}
    plan = db.session.get(Plan, calls["missed_before"].plan_id)
    assert (plan.state, plan.ended_on) == ("stopped", date(2026, 3, 10))


def test_the_calls_missed_before_the_death_stay_in_the_effective_follow_up_rate(b, hospital, calls_around_a_death):
    patient, calls = calls_around_a_death
    stay = b.encounter(hospital["surgery"], DIED_AT, disposition="death", patient=patient)
    record_death(patient, encounter=stay, now=DIED_AT + timedelta(days=5))
    judged = sh(2026, 4, 10)
    due = case_ids("followup_rate_level4", "denominator", date(2026, 3, 1), date(2026, 3, 31), judged)
    # The missed, the one closing at the death, the unreachable and the completed call are March's due
    # calls; the cancelled ones are not due; only the completed one was effective.
    assert due == {calls[n].id for n in ("missed_before", "closing_at_death", "unreachable_before",
                                          "completed_before")}
    assert value("followup_rate_level4", date(2026, 3, 1), date(2026, 3, 31), judged) == (1, 4)


def test_a_death_known_by_its_day_counts_from_the_days_last_instant(b, hospital):
    """No time of death (a date from the HIS's patient row or a follow-up call): a window that closed that
    day keeps its outcome; one that closes at the midnight ending it was still open and is cancelled."""
    gs = hospital["surgery"]
    patient = b.patient()
    plan = b.plan("day_surgery", gs, patient=patient, anchor_at=sh(2026, 3, 9, 18))
    closed_that_day = b.task("day_surgery", gs, sh(2026, 3, 9, 18), sh(2026, 3, 10, 18), "pending", plan=plan)
    closes_at_midnight = b.task("day_surgery", gs, sh(2026, 3, 10), sh(2026, 3, 11), "pending", plan=plan,
                                occurrence=2)
    b.db.session.commit()
    record_death(patient, died_on=date(2026, 3, 10), now=sh(2026, 3, 20, 9))
    assert states({"a": closed_that_day, "b": closes_at_midnight}) == {"a": "pending", "b": "cancelled"}


# 2. A perioperative death is dated by the day the patient died -----------------------------------------------

def test_a_death_at_home_weeks_after_discharge_counts_in_the_month_of_death(b, hospital):
    february = b.operation(hospital["surgery"], "G4", sh(2026, 2, 10, 9))  # its stay ends on 11 February
    patient = patient_of(february.patient_id)
    b.db.session.commit()
    record_death(patient, died_on=date(2026, 3, 5), now=sh(2026, 3, 6, 9))  # 23 days later, at home
    (review,) = death_reviews(patient.id)
    judged = sh(2026, 4, 20)
    assert case_ids("periop_death_discussion_rate", "denominator", date(2026, 3, 1), date(2026, 3, 31),
                    judged) == {review.id}
    assert value("periop_death_discussion_rate", date(2026, 2, 1), date(2026, 2, 28), judged) == (0, 0)


def test_a_death_at_2330_on_the_last_day_of_a_month_is_that_months(b, hospital):
    operation = b.operation(hospital["surgery"], "G4", sh(2026, 3, 20, 9))
    patient = patient_of(operation.patient_id)
    stay = b.encounter(hospital["surgery"], sh(2026, 3, 31, 23, 30), disposition="death", patient=patient)
    b.db.session.commit()
    record_death(patient, encounter=stay, now=sh(2026, 4, 1, 8))  # 15:30 UTC: still 31 March in Shanghai
    assert patient.died_on == date(2026, 3, 31)
    judged = sh(2026, 4, 20)
    assert value("periop_death_discussion_rate", date(2026, 3, 1), date(2026, 3, 31), judged) == (0, 1)
    assert value("periop_death_discussion_rate", date(2026, 4, 1), date(2026, 4, 19), judged) == (0, 0)


# 3. A death learnt at a follow-up call -------------------------------------------------------------------------

@pytest.fixture
def call_in_hand(b, hospital):
    """A patient operated on 1 March with a four-level follow-up call the nurse holds; returns (patient, task)."""
    gs = hospital["surgery"]
    operation = b.operation(gs, "G4", sh(2026, 3, 1, 9))
    patient = patient_of(operation.patient_id)
    plan = b.plan("four_level_surgery", gs, patient=patient, source_type="operation", source_id=operation.id,
                  anchor_at=operation.performed_at)
    task = b.task("four_level_surgery", gs, sh(2026, 3, 20), sh(2026, 3, 31), "in_progress", plan=plan)
    task.assignee_id = hospital["nurse"].id
    b.db.session.commit()
    return patient, task


def report_death_at_call(task, actor, died_on, now):
    from qcflow.extensions import db
    from qcflow.followup.services import complete_task

    complete_task(task, {"respondent": "family", "vital_status": "dead", "date_of_death": died_on,
                         "complication": False, "recurrence_metastasis": False}, actor=actor, now=now)
    db.session.commit()


def test_a_death_learnt_at_a_call_requests_the_review_and_counts(call_in_hand, actor_of):
    from qcflow.core.audit import AuditEntry
    from qcflow.extensions import db

    patient, task = call_in_hand
    report_death_at_call(task, actor_of("nurse"), date(2026, 3, 18), sh(2026, 3, 21, 10))
    (review,) = death_reviews(patient.id)
    assert review.state == "requested"
    requested = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "mdt_discussion.request",
                                                              AuditEntry.object_id == str(review.id)))
    assert requested is not None
    # Counted on the day of death (18 March), not the day of the call or of the operation's stay.
    judged = sh(2026, 4, 20)
    assert case_ids("periop_death_discussion_rate", "denominator", date(2026, 3, 18), date(2026, 3, 18),
                    judged) == {review.id}


def test_the_his_sending_the_same_death_later_makes_no_second_review(call_in_hand, actor_of, b, hospital):
    patient, task = call_in_hand
    report_death_at_call(task, actor_of("nurse"), date(2026, 3, 18), sh(2026, 3, 21, 10))
    (review,) = death_reviews(patient.id)
    # The HIS sends the patient's day of death (another day: the HIS's date stands) …
    effects = record_death(patient, died_on=date(2026, 3, 17), now=sh(2026, 3, 23, 10))
    assert [(e.code, e.id) for e in effects if e.record == "mdt_discussion"] == [
        ("discussion_already_requested", review.id)]
    # … and the death discharge of a stay it had not sent before.
    stay = b.encounter(hospital["surgery"], sh(2026, 3, 17, 6), disposition="death", patient=patient)
    record_death(patient, encounter=stay, now=sh(2026, 3, 24, 10))
    assert [r.id for r in death_reviews(patient.id)] == [review.id]
    judged = sh(2026, 4, 20)
    assert value("periop_death_discussion_rate", date(2026, 3, 1), date(2026, 3, 31), judged) == (0, 1)
    assert value("periop_death_discussion_rate", date(2026, 3, 18), date(2026, 3, 31), judged) == (0, 0)


# 4. The death-discussion deadline ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("died_at", "rule", "due"), [
    # Friday before the Spring Festival 2026 (15–23 February off; Saturday 14 and 28 February worked):
    # 14, 24, 25, 26, 27 February → the end of Friday 27 February.
    (sh(2026, 2, 13, 10), "5wd", sh(2026, 2, 28)),
    (sh(2026, 2, 13, 10), "7d", sh(2026, 2, 20, 10)),
    # Friday before National Day 2025 (1–8 October off; Sunday 28 September and Saturday 11 October worked):
    # 28, 29, 30 September, 9, 10 October → the end of Friday 10 October.
    (sh(2025, 9, 26, 23, 59), "5wd", sh(2025, 10, 11)),
    # The day of death is not counted, whatever the hour; a death on a holiday counts from the next day.
    (sh(2025, 10, 3, 0, 0), "5wd", sh(2025, 10, 15)),
    (sh(2026, 3, 2, 0, 0), "5wd", sh(2026, 3, 10)),
])
def test_death_discussion_deadlines(ctx, died_at, rule, due):
    from qcflow.mdt.deadlines import death_discussion_due

    assert death_discussion_due(died_at, rule) == due


def test_the_setting_chooses_the_reviews_due_time_and_its_escalation(app, b, hospital):
    from qcflow.extensions import db
    from qcflow.mdt.services import escalate_overdue

    app.config["DEATH_DISCUSSION_DEADLINE"] = "5wd"
    operation = b.operation(hospital["surgery"], "G4", sh(2026, 2, 10, 9))
    patient = patient_of(operation.patient_id)
    stay = b.encounter(hospital["surgery"], sh(2026, 2, 13, 10), disposition="death", patient=patient)
    b.db.session.commit()
    record_death(patient, encounter=stay, now=sh(2026, 2, 13, 11))
    (review,) = death_reviews(patient.id)
    assert review.due_at == sh(2026, 2, 28)
    assert escalate_overdue(sh(2026, 2, 27, 23, 59)) == 0
    assert escalate_overdue(sh(2026, 2, 28)) == 1
    db.session.commit()


def test_the_7_day_deadline_is_the_default(app, b, hospital):
    operation = b.operation(hospital["surgery"], "G4", sh(2026, 2, 10, 9))
    patient = patient_of(operation.patient_id)
    stay = b.encounter(hospital["surgery"], sh(2026, 2, 13, 10), disposition="death", patient=patient)
    b.db.session.commit()
    record_death(patient, encounter=stay, now=sh(2026, 2, 13, 11))
    assert death_reviews(patient.id)[0].due_at == sh(2026, 2, 20, 10)


def test_an_unknown_deadline_setting_is_refused(app, b, hospital):
    from qcflow.mdt.services import due_at_for

    app.config["DEATH_DISCUSSION_DEADLINE"] = "1w"
    with pytest.raises(ValueError, match="DEATH_DISCUSSION_DEADLINE"):
        due_at_for("perioperative_death", start=sh(2026, 2, 13, 10))


@pytest.fixture
def signed_reviews(b, hospital):
    """Signed reviews of deaths on Friday 13 February 2026 (before the Spring Festival), by when they were
    signed; in hospital at 10:00 (the death discharge's time) or known by the day only."""
    operation = b.operation(hospital["surgery"], "G4", sh(2026, 2, 1, 9))
    made = {}

    def review(name, signed_at, *, in_hospital, disputed=False):
        patient = b.patient(died_on=date(2026, 2, 13))
        encounter = (b.encounter(hospital["surgery"], sh(2026, 2, 13, 10), disposition="death", patient=patient)
                     if in_hospital else None)
        discussion = b.discussion("perioperative_death", "signed", operation=operation, patient=patient,
                                  encounter=encounter, signed_at=signed_at,
                                  due_at=sh(2026, 2, 14, 10) if disputed else sh(2026, 2, 20, 10))
        discussion.is_disputed = disputed
        made[name] = discussion.id

    review("hospital_at_7_days", sh(2026, 2, 20, 10), in_hospital=True)
    review("hospital_7_days_1_min", sh(2026, 2, 20, 10, 1), in_hospital=True)
    review("day_end_of_7th_day", sh(2026, 2, 20, 23, 59), in_hospital=False)
    review("day_8th_day", sh(2026, 2, 21, 0, 0), in_hospital=False)
    review("disputed_day_3", sh(2026, 2, 16, 10), in_hospital=True, disputed=True)
    review("end_of_5th_working_day", sh(2026, 2, 27, 23, 59), in_hospital=True)
    review("saturday_after", sh(2026, 2, 28, 0, 1), in_hospital=False)
    b.db.session.commit()
    return made


@pytest.mark.parametrize("setting", ["7d", "5wd"])
def test_both_deadline_indicators_count_from_the_time_of_death(app, signed_reviews, setting):
    app.config["DEATH_DISCUSSION_DEADLINE"] = setting  # the indicators count both, whatever the MDT uses
    february, judged = (date(2026, 2, 1), date(2026, 2, 28)), sh(2026, 3, 20)
    seven = case_ids("periop_death_discussion_7d_rate", "numerator", *february, judged)
    five = case_ids("periop_death_discussion_5wd_rate", "numerator", *february, judged)
    r = signed_reviews
    # A disputed death was due in 24 hours, but it was discussed within 7 days: the indicator is the latter.
    assert seven == {r["hospital_at_7_days"], r["day_end_of_7th_day"], r["disputed_day_3"]}
    assert five == set(r.values()) - {r["saturday_after"]}
    assert value("periop_death_discussion_5wd_rate", *february, judged) == (6, 7)


# 5. Unplanned return to theatre within 48 hours and within 31 days ------------------------------------------------

@pytest.fixture
def returns(b, hospital):
    """Unplanned reoperations in March 2026 after an earlier operation at the edges of the windows."""
    gs, card = hospital["surgery"], hospital["cardio"]
    made = {}

    def pair(name, first_at, second_at, *, first_state="performed", department=gs):
        patient = b.patient()
        operation_of(b, patient, department, first_at, state=first_state)
        made[name] = operation_of(b, patient, department, second_at, unplanned=True).id

    pair("exactly_48h", sh(2026, 3, 1, 10), sh(2026, 3, 3, 10))
    pair("48h_1min", sh(2026, 3, 1, 10), sh(2026, 3, 3, 10, 1))
    pair("exactly_31d_from_february", sh(2026, 2, 10, 10), sh(2026, 3, 13, 10), department=card)
    pair("31d_1min", sh(2026, 2, 10, 10), sh(2026, 3, 13, 10, 1))
    pair("earlier_one_not_performed", sh(2026, 3, 20, 8), sh(2026, 3, 21, 10), first_state="planned")
    made["no_earlier_one"] = operation_of(b, b.patient(), gs, sh(2026, 3, 25, 10), unplanned=True).id
    # Another patient's operation an hour before is not this patient's.
    operation_of(b, b.patient(), gs, sh(2026, 3, 25, 9))
    b.db.session.commit()
    return made


def test_return_to_theatre_within_48_hours_and_31_days(returns, hospital):
    march, judged = (date(2026, 3, 1), date(2026, 3, 31)), sh(2026, 4, 10)
    r = returns
    assert case_ids("unplanned_reoperation_48h_rate", "numerator", *march, judged) == {r["exactly_48h"]}
    assert case_ids("unplanned_reoperation_31d_rate", "numerator", *march, judged) == {
        r["exactly_48h"], r["48h_1min"], r["exactly_31d_from_february"]}
    # Performed in March: the two first operations of 1 March, six reoperations, the other patient's → 9.
    assert value("unplanned_reoperation_48h_rate", *march, judged) == (1, 9)
    assert value("unplanned_reoperation_31d_rate", *march, judged) == (3, 9)
    assert value("unplanned_reoperation_rate", *march, judged) == (6, 9)
    # Department: the reoperation's.
    assert value("unplanned_reoperation_31d_rate", *march, judged, department_id=hospital["cardio"].id) == (1, 1)


def test_the_per_mille_value_and_direction(returns):
    from qcflow.indicators.queries import compute

    got = compute(date(2026, 3, 1), date(2026, 3, 31), codes=["unplanned_reoperation_31d_rate"],
                  now=sh(2026, 4, 10), live=True)[0]
    assert (got.unit, got.direction, got.value) == ("permille", "lower", pytest.approx(3 / 9 * 1000))
    assert got.target is None and got.met is None


def test_an_unknown_death_discussion_deadline_refuses_to_start(database_url, tmp_path):
    """A typo in the setting stops the start, not the first death the HIS sends (which would answer 500)."""
    from tests.conftest import make_app

    with pytest.raises(RuntimeError, match="DEATH_DISCUSSION_DEADLINE.*7d, 5wd"):
        make_app(database_url, str(tmp_path), DEATH_DISCUSSION_DEADLINE="5d")
    assert make_app(database_url, str(tmp_path), DEATH_DISCUSSION_DEADLINE="5wd").config[
        "DEATH_DISCUSSION_DEADLINE"] == "5wd"
