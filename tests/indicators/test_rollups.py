"""The monthly rollup: after any inserts and edits (into past months too) and a refresh, every
indicator served from the rollup equals the same indicator counted from the records."""
import random
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from tests.indicators.conftest import Builder, sh

MONTHS = [date(2026, month, 1) for month in range(1, 8)]
#: Judged on 10 July 2026: January to June are settled, July is the current month.
NOW = sh(2026, 7, 10, 9)
PERIODS = [(date(2026, 1, 1), date(2026, 6, 30)), (date(2026, 1, 15), date(2026, 5, 10)),
           (date(2026, 3, 1), date(2026, 3, 31)), (date(2026, 2, 1), date(2026, 7, 10)),
           (date(2025, 12, 20), date(2026, 7, 1))]
PATHWAYS = ("four_level_surgery", "cancer_lung", "cancer_breast", "cancer_colorectal")


def instant(rng):
    """A time in December 2025 – July 2026, often exactly local midnight on the 1st (a boundary)."""
    month = rng.choice([date(2025, 12, 1)] + MONTHS)
    if rng.random() < 0.3:
        return sh(month.year, month.month, 1)
    return sh(month.year, month.month, rng.randint(1, 28), rng.randint(0, 23), rng.choice((0, 30, 59)))


def populate(rng, b, h):
    """Random records of every kind behind the indicators, over December – July."""
    departments = [h["surgery"], h["cardio"], h["qc"]]
    rows = {"events": [], "encounters": [], "tasks": [], "operations": [], "deaths": []}
    for _ in range(25):
        state = rng.choice(("submitted", "triaged", "investigating", "closed", "closed", "duplicate", "withdrawn"))
        at = instant(rng)
        closed = at + timedelta(days=rng.choice((1, 29, 30, 31, 45)), hours=rng.randint(0, 5)) \
            if state == "closed" else None
        rows["events"].append(b.event(rng.choice(departments), state, at, closed_at=closed,
                                      grade=rng.choice(("I", "II", "III", "IV"))))
    b.event(departments[0], "draft", None)
    for _ in range(20):
        rows["encounters"].append(b.encounter(rng.choice(departments), instant(rng),
                                              is_day_surgery=rng.random() < 0.4,
                                              disposition=rng.choice(("home", "home", "death"))))
    for department, month in rng.sample([(d, m) for d in (h["surgery"], h["qc"]) for m in MONTHS[:6]], 6):
        b.census(department, month, rng.randint(1, 50))
    for _ in range(8):  # day cases and their first call (window: discharge → +24 h)
        discharged = instant(rng)
        encounter = b.encounter(rng.choice(departments), discharged, is_day_surgery=True)
        plan = b.plan("day_surgery", h["surgery"], source_type="encounter", source_id=encounter.id,
                      anchor_at=discharged)
        state = rng.choice(("completed", "completed", "pending"))
        rows["tasks"].append(b.task("day_surgery", h["surgery"], discharged, discharged + timedelta(hours=24), state,
                                    closed_at=discharged + timedelta(hours=rng.choice((3, 23, 30)))
                                    if state == "completed" else None,
                                    is_effective=rng.random() < 0.8 if state == "completed" else None, plan=plan))
    for _ in range(30):
        opens = instant(rng)
        closes = opens + timedelta(days=rng.choice((1, 7, 14, 31)))
        state = rng.choice(("completed", "completed", "pending", "in_progress", "cancelled", "unreachable"))
        closed = opens + timedelta(days=rng.choice((0, 3, 10, 20))) if state in ("completed", "cancelled",
                                                                                 "unreachable") else None
        effective = rng.random() < 0.8 if state == "completed" else None
        rows["tasks"].append(b.task(rng.choice(PATHWAYS), rng.choice(departments), opens, closes, state,
                                    closed_at=closed, is_effective=effective))
    for _ in range(15):
        at = instant(rng)
        operation = b.operation(rng.choice(departments[:2]), rng.choice(("G4", "G3R", "G2")), at,
                                day_surgery=rng.random() < 0.3, unplanned=rng.random() < 0.2,
                                emergency=rng.random() < 0.2)
        rows["operations"].append(operation)
        if rng.random() < 0.6:
            signed = at + timedelta(days=rng.choice((-3, -1, 2)))
            b.discussion("preop_level4", rng.choice(("signed", "signed", "held")), operation=operation,
                         signed_at=signed)
    for _ in range(8):
        operation = rng.choice(rows["operations"])
        patient = b.patient(died_on=instant(rng).date() if rng.random() < 0.5 else None)
        encounter = None if patient.died_on else b.encounter(h["surgery"], instant(rng),
                                                             disposition="death", patient=patient)
        state = rng.choice(("signed", "requested", "cancelled"))
        due = instant(rng)
        rows["deaths"].append(b.discussion("perioperative_death", state, operation=operation, patient=patient,
                                           encounter=encounter, due_at=due,
                                           signed_at=due + timedelta(days=rng.choice((-2, 3)))
                                           if state == "signed" else None))
    return rows


def edit_the_past(rng, b, h, rows):
    """Late and edited records: what the HIS, reporters and nurses do to months already rolled up."""
    from qcflow.clinical.models import DischargeCensus, Encounter, Operation, Patient
    from qcflow.events.models import AdverseEvent
    from qcflow.followup.models import Task
    from qcflow.mdt.models import Discussion

    session = b.db.session
    for _ in range(3):  # reported late about a past month (a corrected submission time)
        b.event(rng.choice([h["surgery"], h["cardio"]]), "submitted", instant(rng))
    event = rng.choice(rows["events"])
    session.execute(sa.update(AdverseEvent).where(AdverseEvent.id == event.id).values(
        state="closed", closed_at=event.submitted_at + timedelta(days=rng.choice((5, 40)))))
    session.execute(sa.update(AdverseEvent).where(AdverseEvent.id == rng.choice(rows["events"]).id).values(
        confirmed_grade=rng.choice(("I", "IV")), department_id=None))
    session.execute(sa.update(AdverseEvent).where(AdverseEvent.id == rng.choice(rows["events"]).id).values(
        state="duplicate"))
    task = rng.choice(rows["tasks"])
    session.execute(sa.update(Task).where(Task.id == task.id).values(
        state="completed", closed_at=task.opens_at + timedelta(hours=2), is_effective=True))
    session.execute(sa.update(Task).where(Task.id == rng.choice(rows["tasks"]).id).values(state="cancelled"))
    moved = instant(rng)
    session.execute(sa.update(Encounter).where(Encounter.id == rng.choice(rows["encounters"]).id).values(
        admitted_at=moved - timedelta(days=2), discharged_at=moved))
    session.execute(sa.update(Operation).where(Operation.id == rng.choice(rows["operations"]).id).values(
        performed_at=instant(rng)))
    session.execute(sa.update(Operation).where(Operation.id == rng.choice(rows["operations"]).id).values(
        state="cancelled"))
    session.execute(sa.update(Discussion).where(Discussion.id == rng.choice(rows["deaths"]).id).values(
        state="signed", signed_at=instant(rng)))
    session.execute(sa.update(Patient).where(Patient.id == rng.choice(rows["deaths"]).patient_id).values(
        died_on=instant(rng).date()))
    session.execute(sa.delete(DischargeCensus).where(DischargeCensus.id == session.scalar(
        sa.select(sa.func.min(DischargeCensus.id)))))
    b.census(h["cardio"], rng.choice(MONTHS[:6]), rng.randint(1, 9))
    b.encounter(h["surgery"], instant(rng), is_day_surgery=True)  # pushed late by the HIS
    session.commit()


def refresh(now=NOW):
    from qcflow.core.actors import Actor
    from qcflow.extensions import db
    from qcflow.indicators.services import refresh_rollups

    months = refresh_rollups(actor=Actor.system("test"), now=now)
    db.session.commit()
    return months


def assert_served_equals_live(h, now=NOW):
    from qcflow.indicators.queries import compute

    for start, end in PERIODS:
        for department_id in (None, h["surgery"].id, h["cardio"].id, h["qc"].id):
            served = [(v.code, v.numerator, v.denominator)
                      for v in compute(start, end, department_id=department_id, now=now)]
            live = [(v.code, v.numerator, v.denominator)
                    for v in compute(start, end, department_id=department_id, now=now, live=True)]
            assert served == live, (start, end, department_id)


@pytest.mark.parametrize("seed", range(6))
def test_rollup_equals_live_after_inserts_edits_and_refresh(hospital, seed):
    from qcflow.indicators.definitions import Period
    from qcflow.indicators.queries import rolled_up_months

    rng = random.Random(seed)
    b = Builder(hospital)
    rows = populate(rng, b, hospital)
    b.db.session.commit()
    assert refresh() == 7  # December 2025 (the oldest record) to June 2026
    assert rolled_up_months(Period(date(2026, 1, 1), date(2026, 7, 10), NOW)) == MONTHS[:6]
    assert_served_equals_live(hospital)
    edit_the_past(rng, b, hospital, rows)
    refresh()
    assert_served_equals_live(hospital)


def test_refresh_is_idempotent_and_audited(hospital):
    from qcflow.core.audit import AuditEntry
    from qcflow.extensions import db
    from qcflow.indicators.models import IndicatorRollup

    rng = random.Random(99)
    populate(rng, Builder(hospital), hospital)
    db.session.commit()

    def stored():
        return sorted(db.session.execute(sa.select(IndicatorRollup.month_on, IndicatorRollup.code,
                                                   IndicatorRollup.part, IndicatorRollup.department_id,
                                                   IndicatorRollup.total)).all(), key=repr)

    refresh()
    first = stored()
    refresh()
    assert stored() == first and first
    entries = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "indicator_rollup.refresh")).all()
    assert len(entries) == 1  # the second run found the same counts and wrote nothing
    Builder(hospital, reference_data=False).event(hospital["cardio"], "submitted", sh(2026, 2, 3, 10))
    db.session.commit()
    refresh()
    assert stored() != first
    entries = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "indicator_rollup.refresh")).all()
    assert len(entries) == 2


def test_a_month_is_served_from_the_rollup_only_once_settled(hospital):
    """A day-surgery discharge counts once its 24 hours have passed, so June's rollup (made on
    10 July) is not read on 1 July at noon: the last day's discharge is not yet counted then."""
    from qcflow.indicators.definitions import Period
    from qcflow.indicators.queries import compute, rolled_up_months

    b = Builder(hospital)
    b.encounter(hospital["surgery"], sh(2026, 6, 30, 22), is_day_surgery=True)
    b.db.session.commit()
    refresh()
    early = sh(2026, 7, 1, 12)
    assert date(2026, 6, 1) not in rolled_up_months(Period(date(2026, 6, 1), date(2026, 6, 30), early))
    value = compute(date(2026, 6, 1), date(2026, 6, 30), codes=["day_surgery_24h_followup_rate"], now=early)[0]
    assert value.denominator == 0
    value = compute(date(2026, 6, 1), date(2026, 6, 30), codes=["day_surgery_24h_followup_rate"], now=NOW)[0]
    assert value.denominator == 1


def test_changed_definitions_leave_the_rollup_unread(hospital, app):
    from qcflow.indicators.definitions import Period
    from qcflow.indicators.queries import compute, rolled_up_months

    b = Builder(hospital)
    b.event(hospital["surgery"], "closed", sh(2026, 2, 20, 10), closed_at=sh(2026, 4, 1, 10), grade="III")
    b.db.session.commit()
    refresh()
    app.config["EVENT_CLOSURE_DAYS"] = {**app.config["EVENT_CLOSURE_DAYS"], "III": 45}
    assert rolled_up_months(Period(date(2026, 1, 1), date(2026, 6, 30), NOW)) == []
    value = compute(date(2026, 1, 1), date(2026, 6, 30), codes=["ae_closure_on_time_rate"], now=NOW)[0]
    assert (value.numerator, value.denominator) == (1, 1)  # 40 days: on time under the new 45
    refresh()
    assert rolled_up_months(Period(date(2026, 1, 1), date(2026, 6, 30), NOW)) == MONTHS[1:6]  # from February


def test_a_window_closing_at_midnight_on_the_first_counts_in_the_month_it_starts(hospital):
    """Months add up to the year: a call whose window closes at 00:00 on 1 April is April's."""
    from qcflow.indicators.queries import compute

    b = Builder(hospital)
    b.task("four_level_surgery", hospital["surgery"], sh(2026, 3, 25), sh(2026, 4, 1), "pending")

    def due(start, end):
        return compute(start, end, codes=["followup_rate_level4"], now=NOW, live=True)[0].denominator

    assert due(date(2026, 3, 1), date(2026, 3, 31)) == 0
    assert due(date(2026, 4, 1), date(2026, 4, 30)) == 1
    assert due(date(2026, 3, 1), date(2026, 4, 30)) == 1


def test_nightly_job_refreshes_the_rollup(app, hospital):
    from qcflow.scheduling.jobs import find_job
    from qcflow.scheduling.runner import run_job

    spec = find_job("indicators.refresh_rollups")
    assert spec is not None and spec.trigger == "cron"
    run = run_job(spec, NOW)
    assert run.status == "ok" and run.result == "rollup months refreshed 0"  # no records yet
    b = Builder(hospital)
    b.event(hospital["surgery"], "submitted", sh(2026, 5, 3, 10))
    b.db.session.commit()
    run = run_job(spec, NOW)
    assert run.status == "ok" and run.result == "rollup months refreshed 2"  # May and June


def test_trend_reads_the_rollup_and_agrees_with_live_counts(hospital, monkeypatch):
    from qcflow.extensions import db
    from qcflow.indicators import queries

    populate(random.Random(7), Builder(hospital), hospital)
    db.session.commit()
    refresh()
    points = queries.trend("ae_closure_on_time_rate", date(2026, 7, 1), 12, now=NOW)
    live = [queries.compute(month, queries.month_end(month) if month < date(2026, 7, 1) else NOW.date(),
                            codes=["ae_closure_on_time_rate"], now=NOW, live=True)[0] for month, _ in points]
    assert [(v.numerator, v.denominator) for _, v in points] == [(v.numerator, v.denominator) for v in live]
    assert any(v.denominator for _, v in points)
    counted = []
    monkeypatch.setattr(queries, "_count", lambda *args: counted.append(args) or 0)
    queries.trend("ae_closure_on_time_rate", date(2026, 6, 1), 6, now=NOW)
    assert counted == []  # January to June: every month from the rollup, nothing counted from the records
