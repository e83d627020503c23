"""Perioperative mortality (围术期死亡率): deaths within the MDT module's perioperative window, by the day of death,
over the discharges of surgical admissions."""
from datetime import date

import pytest

from tests.conftest import sh
from tests.indicators.conftest import Builder

APRIL = (date(2026, 4, 1), date(2026, 4, 30))
JUDGED = sh(2026, 5, 10)


@pytest.fixture
def b(hospital):
    return Builder(hospital)


def value(start=APRIL[0], end=APRIL[1], department_id=None):
    from qcflow.indicators.queries import compute

    return compute(start, end, codes=["periop_mortality_rate"], now=JUDGED, department_id=department_id)[0]


def died(b, operation, day):
    from qcflow.clinical.models import Patient

    patient = b.db.session.get(Patient, operation.patient_id)
    patient.died_on = day
    b.db.session.flush()
    return patient


def test_day_30_after_the_operation_counts_day_31_does_not(b, hospital):
    gs = hospital["surgery"]
    on_day_30 = b.operation(gs, "G2", sh(2026, 3, 11, 9))
    died(b, on_day_30, date(2026, 4, 10))                      # 30 days after 11 March
    on_day_31 = b.operation(gs, "G2", sh(2026, 3, 10, 9))
    died(b, on_day_31, date(2026, 4, 10))                      # 31 days: not perioperative
    b.db.session.commit()
    got = value()
    assert got.numerator == 1 and got.unit == "permille" and got.direction == "lower"


def test_days_are_counted_in_the_hospital_time_zone(b, hospital):
    """00:30 on 1 February in Shanghai is still 31 January in UTC; the hospital's calendar day counts."""
    gs = hospital["surgery"]
    just_after_midnight = b.operation(gs, "G2", sh(2026, 2, 1, 0, 30))
    died(b, just_after_midnight, date(2026, 3, 3))             # 30 local days
    before_midnight = b.operation(gs, "G2", sh(2026, 1, 31, 23, 30))
    died(b, before_midnight, date(2026, 3, 3))                 # 31 local days
    b.db.session.commit()
    assert value(date(2026, 3, 1), date(2026, 3, 31)).numerator == 1


def test_a_death_at_home_is_dated_by_the_day_of_death_not_the_discharge(b, hospital):
    gs = hospital["surgery"]
    operation = b.operation(gs, "G2", sh(2026, 3, 25, 9))      # discharged 26 March
    died(b, operation, date(2026, 4, 5))
    b.db.session.commit()
    assert value().numerator == 1
    march = value(date(2026, 3, 1), date(2026, 3, 31))
    assert (march.numerator, march.denominator) == (0, 1)


def test_a_death_late_in_a_long_admission_counts(b, hospital):
    from qcflow.clinical.models import Encounter

    gs = hospital["surgery"]
    operation = b.operation(gs, "G2", sh(2026, 2, 20, 9))
    stay = b.db.session.get(Encounter, operation.encounter_id)
    stay.discharged_at, stay.disposition = sh(2026, 4, 8, 6), "death"   # 47 days later, in the same admission
    died(b, operation, date(2026, 4, 8))
    b.db.session.commit()
    got = value()
    assert (got.numerator, got.denominator) == (1, 1)
    assert got.value == pytest.approx(1000.0)


def test_not_perioperative_without_a_performed_operation_before_the_death(b, hospital):
    gs = hospital["surgery"]
    planned = b.operation(gs, "G2", None, state="planned")
    died(b, planned, date(2026, 4, 3))                          # never operated
    later = b.operation(gs, "G2", sh(2026, 4, 20, 9))
    died(b, later, date(2026, 4, 19))                           # died before the operation's day
    b.db.session.commit()
    assert value().numerator == 0


def test_a_death_learnt_at_a_follow_up_call_counts_like_one_from_the_his(b, hospital, actor_of):
    from qcflow.clinical import services as clinical
    from qcflow.clinical.models import Patient

    operation = b.operation(hospital["surgery"], "G4", sh(2026, 3, 30, 9))
    patient = b.db.session.get(Patient, operation.patient_id)
    clinical.record_death(patient, date(2026, 4, 15), source=clinical.DEATH_FROM_FOLLOWUP,
                          actor=actor_of("nurse"), now=sh(2026, 4, 16, 10))
    b.db.session.commit()
    assert value().numerator == 1


def test_department_is_the_operation_s_and_the_drill_down_lists_patients(b, hospital):
    from qcflow.indicators.queries import cases

    gs, card = hospital["surgery"], hospital["cardio"]
    first = b.operation(gs, "G2", sh(2026, 3, 20, 9))
    second = b.operation(card, "G2", sh(2026, 3, 28, 9), )
    second.patient_id = first.patient_id                        # the same patient, operated again in CARD
    b.db.session.flush()
    patient = died(b, first, date(2026, 4, 2))
    b.operation(gs, "G2", sh(2026, 4, 10, 9))                   # a surgical discharge in April
    b.db.session.commit()
    assert value(department_id=card.id).numerator == 1          # the latest operation before the death
    assert value(department_id=gs.id).numerator == 0
    items, _cursor, total = cases("periop_mortality_rate", "numerator", *APRIL, department_id=None, now=JUDGED)
    assert total == 1 and items[0]["kind"] == "patient" and items[0]["id"] == patient.id
    assert patient.mrn in items[0]["label"]
    _items, _cursor, discharges = cases("periop_mortality_rate", "denominator", *APRIL, department_id=None, now=JUDGED)
    assert discharges == 1


def test_the_window_is_the_mdt_module_s_setting(b, hospital, app):
    app.config["PERIOPERATIVE_DEATH_DAYS"] = 7
    operation = b.operation(hospital["surgery"], "G2", sh(2026, 3, 25, 9))
    died(b, operation, date(2026, 4, 2))                        # 8 days
    b.db.session.commit()
    assert value().numerator == 0
