"""Each default trigger at the edges of its window and condition (issue 20, "Done when"), and once only."""
from __future__ import annotations

from datetime import timedelta

from tests.extraction.conftest import T0

H = timedelta(hours=1)
D = timedelta(days=1)


def test_return_to_theatre_47_hours_fires_the_48_hour_trigger_49_hours_the_31_day_one(facts):
    """A return within 48 h is within 31 days too: the same harm, raised once (by the 48-hour trigger)."""
    a = facts.patient()
    stay = facts.stay(a)
    first = facts.operation(stay, T0)
    facts.operation(stay, T0 + 47 * H)
    b = facts.patient()
    stay_b = facts.stay(b)
    facts.operation(stay_b, T0)
    facts.operation(stay_b, T0 + 49 * H)
    facts.evaluate()
    by_patient = {}
    for p in facts.firings():
        by_patient.setdefault(p.patient_id, set()).add(p.trigger.code)
    assert by_patient == {a.id: {"return_theatre_48h"}, b.id: {"return_theatre_31d"}}
    rt = facts.firings("return_theatre_48h")[0]
    assert rt.window_key == f"operation:{first.id}" and rt.department_id == facts.hospital["surgery"].id
    assert [f["kind"] for f in rt.facts] == ["operation", "operation"]


def test_return_to_theatre_31_days_fires_32_days_does_not(facts):
    a, b = facts.patient(), facts.patient()
    for patient, gap in ((a, 31 * D), (b, 32 * D)):
        facts.operation(facts.stay(patient), T0)
        facts.operation(facts.stay(patient, admitted_at=T0 + gap - D), T0 + gap)
    facts.evaluate()
    assert [p.patient_id for p in facts.firings("return_theatre_31d")] == [a.id]


def test_a_return_that_arrives_before_the_first_operation_fires_once_for_the_first(facts):
    """Out of order: the HIS sends the second operation first; the pair fires when the first arrives, once."""
    a = facts.patient()
    stay = facts.stay(a)
    second = facts.operation(stay, T0 + 10 * H)
    facts.evaluate()
    assert facts.firings() == []
    first = facts.operation(stay, T0)
    facts.requeue("operation", second)  # and the second re-sent unchanged
    facts.evaluate()
    assert [p.window_key for p in facts.firings("return_theatre_48h")] == [f"operation:{first.id}"]
    assert facts.firings("return_theatre_31d") == []


def test_readmission_same_specialty_31_days_fires_32_days_or_another_department_does_not(facts):
    a, b, c = facts.patient(), facts.patient(), facts.patient()
    for patient, gap, department in ((a, 31 * D, "surgery"), (b, 32 * D, "surgery"), (c, 2 * D, "ortho")):
        facts.stay(patient, admitted_at=T0 - 5 * D, discharged_at=T0)
        facts.stay(patient, admitted_at=T0 + gap, department=department)
    facts.evaluate()
    assert [p.patient_id for p in facts.firings("readmission_31d")] == [a.id]


def test_a_stay_that_ended_in_death_has_no_readmission(facts):
    a = facts.patient()
    facts.stay(a, admitted_at=T0 - 5 * D, discharged_at=T0, disposition="death")
    facts.stay(a, admitted_at=T0 + D)
    facts.evaluate()
    assert facts.firings("readmission_31d") == []


def test_icu_transfer_47_hours_after_an_operation_fires_49_hours_does_not(facts):
    a, b = facts.patient(), facts.patient()
    for patient, gap in ((a, 47 * H), (b, 49 * H)):
        stay = facts.stay(patient)
        facts.operation(stay, T0)
        facts.transfer(stay, T0 + gap)
    c = facts.patient()
    stay_c = facts.stay(c)
    facts.operation(stay_c, T0)
    facts.transfer(stay_c, T0 + 2 * H, to="ortho", to_icu=False)  # a ward, not intensive care
    facts.evaluate()
    assert [p.patient_id for p in facts.firings("icu_after_operation_48h")] == [a.id]


def test_an_icu_transfer_sent_before_its_operation_fires_when_the_operation_arrives(facts):
    a = facts.patient()
    stay = facts.stay(a)
    facts.transfer(stay, T0 + 3 * H)
    facts.evaluate()
    op = facts.operation(stay, T0)
    facts.evaluate()
    assert [p.window_key for p in facts.firings("icu_after_operation_48h")] == [f"operation:{op.id}"]


def test_rescue_drugs_fire_once_per_stay_and_a_transfusion_only_with_a_reaction(facts):
    a = facts.patient()
    stay = facts.stay(a)
    facts.drug(stay, "naloxone", T0, dose="0.4 mg iv")
    facts.drug(stay, "naloxone", T0 + 5 * H)
    facts.drug(stay, "blood_product", T0)
    b = facts.patient()
    facts.drug(facts.stay(b), "blood_product", T0, reaction=True)
    facts.evaluate()
    assert [p.patient_id for p in facts.firings("rescue_drug")] == [a.id]
    assert [p.patient_id for p in facts.firings("transfusion_reaction")] == [b.id]


def test_critical_results_fire_beyond_their_thresholds_only(facts):
    cases = [("INR", 6.1, None, True), ("INR", 6.0, None, False), ("GLU", 2.7, "mmol/L", True),
             ("GLU", 2.8, "mmol/L", False), ("GLU", 2.7, "mg/dL", False), ("K", 6.3, "mmol/L", True),
             ("k", 2.7, " mmol/l", True), ("K", 4.0, "mmol/L", False)]
    fired = {}
    for test, value, unit, _expected in cases:
        patient = facts.patient()
        facts.lab(facts.stay(patient), test, value, unit=unit)
        fired[patient.id] = (test, value, unit)
    facts.evaluate()
    got = {p.patient_id for code in ("critical_inr", "critical_glucose", "critical_potassium")
           for p in facts.firings(code)}
    assert {fired[i] for i in got} == {(t, v, u) for t, v, u, expected in cases if expected}


def test_death_30_days_after_an_operation_fires_31_days_does_not_and_either_order_fires_once(facts):
    from qcflow.core.time import local

    a, b, c = facts.patient(), facts.patient(), facts.patient()
    day = local(T0).date()
    for patient, days in ((a, 30), (b, 31)):
        facts.operation(facts.stay(patient), T0)
        facts.death(patient, day + timedelta(days=days))
    facts.death(c, day + timedelta(days=3))  # the death known first, the operation arrives late
    facts.evaluate()
    facts.operation(facts.stay(c, admitted_at=T0 - 2 * D), T0)
    facts.evaluate()
    assert sorted(p.patient_id for p in facts.firings("death_30d_after_operation")) == sorted([a.id, c.id])
    assert all(p.window_key == "death" for p in facts.firings("death_30d_after_operation"))


def test_re_sent_facts_change_nothing_and_a_dismissed_firing_does_not_come_back(facts, actor_of):
    from qcflow.followup import services as followup

    a = facts.patient()
    stay = facts.stay(a)
    first = facts.operation(stay, T0)
    second = facts.operation(stay, T0 + 5 * H)
    facts.evaluate()
    before = [(p.id, p.trigger_id, p.window_key) for p in facts.firings()]
    prompt = facts.firings("return_theatre_48h")[0]
    followup.dismiss_prompt(prompt, {"reason_code": "planned"}, actor=actor_of("quality"), now=T0 + D,
                            expected_version=prompt.version)
    for op in (first, second, first):
        facts.requeue("operation", op)
    result = facts.evaluate(now=T0 + 2 * D)
    assert result.facts == 3 and result.firings == 0
    assert [(p.id, p.trigger_id, p.window_key) for p in facts.firings()] == before
    assert facts.firings("return_theatre_48h")[0].state == "dismissed"


def test_a_switched_off_trigger_does_not_fire(facts):
    import sqlalchemy as sa

    from qcflow.extraction.models import Trigger

    facts.db.session.execute(sa.update(Trigger).where(Trigger.code == "rescue_drug").values(is_active=False))
    facts.drug(facts.stay(facts.patient()), "naloxone", T0)
    facts.evaluate()
    assert facts.firings() == []


def test_a_trigger_broken_in_the_database_is_left_out_and_the_others_still_fire(facts, caplog):
    """Saved through the API a trigger is checked (422); one written around it must not stop the queue."""
    import sqlalchemy as sa

    from qcflow.extraction.models import Trigger

    facts.db.session.execute(sa.update(Trigger).where(Trigger.code == "critical_inr").values(
        params={"test_code": "INR", "above": "six"}))
    stay = facts.stay(facts.patient())
    facts.lab(stay, "INR", 9.0)
    facts.drug(stay, "naloxone", T0)
    facts.evaluate()
    assert [p.trigger.code for p in facts.firings()] == ["rescue_drug"]
    assert "critical_inr left out" in caplog.text


def test_a_death_is_credited_to_the_last_operation_before_it_whatever_arrives_first(facts):
    """Two operations in different departments before a death, sent in one batch, the earlier one first."""
    from qcflow.core.time import local

    patient = facts.patient()
    first = facts.operation(facts.stay(patient, admitted_at=T0 - 20 * D), T0 - 15 * D)
    last = facts.operation(facts.stay(patient, admitted_at=T0 - 4 * D, department="ortho"), T0 - 3 * D)
    facts.death(patient, local(T0).date())
    facts.evaluate()
    (firing,) = facts.firings("death_30d_after_operation")
    assert firing.facts[0]["id"] == last.id and firing.department_id == facts.hospital["ortho"].id
    del first


def test_a_rule_that_fails_on_a_fact_is_logged_and_audited_and_the_queue_moves_on(facts, monkeypatch, caplog):
    from qcflow.core.audit import AuditEntry
    from qcflow.extraction import rules

    def broken(*args):
        raise ValueError("unforeseen data")

    monkeypatch.setitem(rules.RULES, "critical_lab", rules.RULES["critical_lab"].__class__(
        **{**rules.RULES["critical_lab"].__dict__, "fire": broken}))
    stay = facts.stay(facts.patient())
    facts.lab(stay, "INR", 9.0)
    facts.drug(stay, "naloxone", T0)
    result = facts.evaluate()
    assert result.facts == 3 and [p.trigger.code for p in facts.firings()] == ["rescue_drug"]
    assert "failed on lab" in caplog.text
    import sqlalchemy as sa

    assert facts.db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry).where(
        AuditEntry.action == "extraction.evaluation_failed")) == 3  # the three lab triggers
