"""The task generator: O(due), idempotent, catches up, correct at the clock's edges."""
from datetime import date, timedelta

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.conftest import PG_URL, sh


def generate(now, **kw):
    from qcflow.extensions import db
    from qcflow.followup import services

    result = services.generate_due(now, **kw)
    db.session.commit()
    return result


def keys(plan_tasks):
    return [(t.occurrence, t.due_on) for t in plan_tasks]


def test_enrolment_materialises_what_is_due_within_the_lookahead(enrol, tasks_of):
    discharge = sh(2026, 3, 1, 16, 20)
    plan = enrol("day_surgery", anchor_at=discharge)
    first, check = tasks_of(plan)
    assert (first.occurrence, first.state, first.due_at, first.is_urgent) == (1, "pending", discharge + timedelta(hours=24), True)
    assert (check.occurrence, check.due_on, check.is_urgent) == (2, date(2026, 3, 31), False)
    assert plan.next_occurrence == 3 and plan.next_due_at is None


def test_generation_is_idempotent_and_advances_the_cursor(enrol, tasks_of):
    plan = enrol("four_level_surgery", anchor_at=sh(2025, 3, 10, 9, 0), now=sh(2025, 3, 10, 9, 0))
    assert keys(tasks_of(plan)) == [(1, date(2025, 4, 9))]
    first = generate(sh(2026, 3, 2, 9, 0))
    assert (first.tasks, first.plans) == (1, 1)
    again = generate(sh(2026, 3, 2, 9, 0))
    assert again.tasks == 0 and again.batches == 0
    assert keys(tasks_of(plan)) == [(1, date(2025, 4, 9)), (2, date(2026, 3, 10))]
    assert plan.next_occurrence == 3 and plan.next_due_on == date(2027, 3, 10)


def test_r4_three_days_down_every_missing_task_once_and_overdue_ones_flagged(app, runner, ctx, enrol, tasks_of):
    from qcflow.extensions import db
    from qcflow.followup.models import Plan, Task
    from qcflow.followup.timeliness import of
    from tests.followup.conftest import expected_keys

    stop = sh(2026, 3, 2, 8, 0)
    back = stop + timedelta(days=3)
    # Plans enrolled long ago whose calls enter the generation horizon while the scheduler is down …
    for day in (7, 8, 9, 10):
        enrol("cancer_lung", anchor_at=sh(2026, 1, day, 0, 0), now=sh(2026, 1, day, 0, 0))
    enrol("four_level_surgery", anchor_at=sh(2025, 4, 8, 9, 0), now=sh(2025, 4, 8, 9, 0))
    # … and day-surgery patients discharged just before: their 24 h calls expire during the downtime.
    day_plans = [enrol("day_surgery", anchor_at=stop - timedelta(hours=h), now=stop - timedelta(hours=h))
                 for h in (2, 20)]
    late = enrol("day_surgery", anchor_at=back - timedelta(hours=3), now=back - timedelta(hours=3))
    db.session.commit()
    runner.invoke(args=["qcflow", "scheduler", "tick", "--now", stop.isoformat(), "--job", "followup.generate_tasks"])
    before = db.session.scalar(sa.select(sa.func.count()).select_from(Task))
    result = runner.invoke(args=["qcflow", "scheduler", "tick", "--now", back.isoformat(),
                                 "--job", "followup.generate_tasks"])
    assert result.exit_code == 0, result.output
    runner.invoke(args=["qcflow", "scheduler", "tick", "--now", back.isoformat(), "--job", "followup.generate_tasks"])
    db.session.expire_all()
    plans = list(db.session.scalars(sa.select(Plan)))
    actual = set(db.session.execute(sa.select(Task.plan_id, Task.occurrence, Task.due_at)).all())
    assert actual == expected_keys(plans, back)
    assert len(actual) - before == 4  # cancer calls due 7, 8, 9 April and the yearly call due 8 April
    assert [of(tasks_of(p)[0], back).value for p in day_plans] == ["overdue", "overdue"]
    assert of(tasks_of(late)[0], back).value == "due"


def test_catch_up_across_several_occurrences_of_one_plan(enrol, tasks_of):
    plan = enrol("cancer_gastric", anchor_at=sh(2025, 1, 15, 0, 0), now=sh(2025, 1, 15, 0, 0))
    result = generate(sh(2026, 3, 2, 9, 0), batch_size=2)
    assert [t.due_on for t in tasks_of(plan)] == [date(2025, 4, 15), date(2025, 7, 15), date(2025, 10, 15),
                                                   date(2026, 1, 15)]
    assert result.tasks == 4 and result.batches == 4
    assert plan.next_due_on == date(2026, 4, 15)


def test_no_task_for_a_plan_stopped_by_death(enrol, tasks_of, create_patient):
    from qcflow.extensions import db
    from qcflow.followup import services

    patient = create_patient()
    plan = enrol("four_level_surgery", patient=patient, anchor_at=sh(2025, 3, 10, 9, 0), now=sh(2025, 3, 10, 9, 0))
    services.on_death(patient, died_on=date(2025, 4, 1), now=sh(2025, 4, 3, 9, 0))
    db.session.commit()
    assert generate(sh(2030, 1, 1, 0, 0)).tasks == 0
    (task,) = tasks_of(plan)
    assert task.state == "cancelled" and plan.state == "stopped" and plan.next_due_at is None


def test_the_plan_ends_after_its_last_occurrence(enrol, tasks_of):
    plan = enrol("four_level_surgery", anchor_at=sh(2020, 1, 5, 10, 0), now=sh(2020, 1, 5, 10, 0))
    generate(sh(2026, 6, 1, 0, 0))
    assert [t.occurrence for t in tasks_of(plan)] == [1, 2, 3, 4, 5, 6]
    assert plan.next_due_at is None and plan.state == "active"
    assert generate(sh(2027, 6, 1, 0, 0)).tasks == 0


def test_a_batch_only_reads_due_plans(enrol, tasks_of):
    """Plans far in the future are not touched: the cursor decides."""
    near = enrol("cancer_liver", anchor_at=sh(2025, 12, 2, 0, 0), now=sh(2025, 12, 2, 0, 0))
    far = enrol("cancer_liver", anchor_at=sh(2026, 3, 1, 0, 0), now=sh(2026, 3, 1, 0, 0))
    result = generate(sh(2026, 3, 2, 9, 0))
    assert (result.tasks, result.plans) == (1, 1)
    assert len(tasks_of(near)) == 1 and tasks_of(far) == []


def explain(stmt) -> str:
    """The database's plan for a select, with its real parameters."""
    from qcflow.extensions import db

    bind = db.session.get_bind()
    compiled = stmt.compile(bind)
    conn = db.session.connection()
    if bind.dialect.name == "postgresql":
        rows = conn.exec_driver_sql("EXPLAIN " + str(compiled), compiled.params).all()
        return "\n".join(r[0] for r in rows)
    params = tuple(str(v) if hasattr(v, "isoformat") else v for v in
                   (compiled.params[name] for name in compiled.positiontup))
    return "\n".join(r[-1] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + str(compiled), params).all())


def test_o_due_the_generator_query_uses_the_partial_index(ctx, enrol, fu_now):
    """EXPLAIN the generator's own batch query: the partial index on next_due_at, never a full scan of plans."""
    from qcflow.extensions import db
    from qcflow.followup.services import due_plans

    horizon = fu_now + timedelta(days=35)
    if PG_URL:
        valid = db.session.execute(sa.text(
            "SELECT i.indisvalid, i.indisready, pg_get_expr(i.indpred, i.indrelid) FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = 'ix_followup_plan_next_due_at_active'")).one()
        assert valid[0] and valid[1] and "'active'" in valid[2]
        # An empty test table makes a sequential scan cheapest; forbid it to see that the index serves.
        db.session.execute(sa.text("SET LOCAL enable_seqscan = off"))
        plan = explain(due_plans(horizon, 1000, lock=True))
        db.session.rollback()
        assert "ix_followup_plan_next_due_at_active" in plan and "Seq Scan" not in plan, plan
        return
    plan = explain(due_plans(horizon, 1000))
    assert "USING INDEX ix_followup_plan_next_due_at_active (next_due_at<?)" in plan, plan
    assert "SCAN followup_plan" not in plan.replace("USING INDEX", ""), plan


def test_overdue_counts_read_the_index_of_open_tasks(ctx, fu_now):
    """The overdue rule (the bulletin's counts, the queue's order) names the open states in its SQL, so
    SQLite sees that it implies the partial queue index and reads the open tasks only; with bound
    states it read every task (90 s for the bulletin's two counts at 4M tasks)."""
    from qcflow.extensions import db
    from qcflow.followup.models import Task
    from qcflow.followup.timeliness import overdue_clause

    stmt = sa.select(Task.department_id, sa.func.count()).where(overdue_clause(Task, fu_now)).group_by(Task.department_id)
    if PG_URL:
        db.session.execute(sa.text("SET LOCAL enable_seqscan = off"))
        plan = explain(stmt)
        db.session.rollback()
        assert "ix_followup_task_queue" in plan and "Seq Scan" not in plan, plan
        return
    plan = explain(stmt)
    assert "USING COVERING INDEX ix_followup_task_queue" in plan, plan


def test_the_partial_index_is_on_active_plans_only(ctx):
    from qcflow.extensions import db

    if PG_URL:
        definition = db.session.scalar(sa.text(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_followup_plan_next_due_at_active'"))
        assert "(next_due_at)" in definition and "'active'" in definition
    else:
        sql = db.session.scalar(sa.text(
            "SELECT sql FROM sqlite_master WHERE name = 'ix_followup_plan_next_due_at_active'"))
        assert "next_due_at" in sql and "WHERE state = 'active'" in sql


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(discharge=st.builds(
    lambda day, minutes: sh(day.year, day.month, day.day, 0, 0) + timedelta(minutes=minutes),
    st.sampled_from([date(2024, 2, 29), date(2025, 2, 28), date(2026, 1, 31), date(2026, 4, 30),
                     date(2026, 12, 31)]),
    st.integers(min_value=-120, max_value=120)),
    pathway=st.sampled_from(["day_surgery", "four_level_surgery"]),
    died_after_hours=st.integers(min_value=1, max_value=24 * 800))
def test_r5_generated_calls_and_closed_plans(enrol, tasks_of, create_patient, discharge, pathway, died_after_hours):
    """Through the database: the 24 h call is due at discharge + 24 h; after death nothing new, and
    nothing open whose window had not closed at the death (a call missed before it keeps its outcome)."""
    from qcflow.extensions import db
    from qcflow.followup import services

    patient = create_patient()
    plan = enrol(pathway, patient=patient, anchor_at=discharge, now=discharge)
    if pathway == "day_surgery":
        assert tasks_of(plan)[0].due_at == discharge + timedelta(hours=24)
    died_at = discharge + timedelta(hours=died_after_hours)
    generate(died_at)
    services.on_death(patient, died_on=died_at.date(), died_at=died_at, now=died_at)
    db.session.commit()
    generate(discharge + timedelta(days=2000))
    tasks = tasks_of(plan)
    assert all(t.created_at <= died_at for t in tasks)
    assert all(t.state == ("pending" if t.closes_at <= died_at else "cancelled") for t in tasks)
    assert plan.state == "stopped" and plan.ended_on == died_at.date()


def test_the_advanced_cursor_is_stored_like_any_other_write(ctx, enrol):
    """The generator's fast path writes instants exactly as the ORM does (text order is time order on SQLite)."""
    from qcflow.extensions import db

    plan = enrol("four_level_surgery", anchor_at=sh(2025, 3, 10, 9, 0), now=sh(2025, 3, 10, 9, 0))
    db.session.commit()
    stored = db.session.execute(sa.text("SELECT next_due_at, next_opens_at FROM followup_plan WHERE id = :id"),
                                {"id": plan.id}).one()
    if PG_URL:
        assert stored[0] == sh(2026, 3, 10, 0, 0)
    else:
        assert stored == ("2026-03-09 16:00:00.000000", "2026-02-07 16:00:00.000000")
