"""Set-based synthetic hospital data for the read-path and intake scenarios (P4–P8).

Every bulk table is one INSERT … SELECT: a numbers series (generate_series on PostgreSQL, a
recursive CTE on SQLite) joined to a small scratch table of *variants* computed in Python (state,
timing, category …), picked by `g % V`. Only the V variants are computed in Python, never the N rows.

- tasks: years of history per plan (occurrence 1 … K), the last one open for a quarter of the plans
  (≈ 1 % open at K = 25), spread around "now" so the queue holds overdue, due and not-yet-open calls,
  some of them 24 h urgent calls;
- encounters (day surgery among them) with an operation each in the real grade mix, cancer diagnoses of
  the five types, adverse events in every state over five years, audit rows.
"""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from bench.seed import series
from qcflow.core.db import UTCDateTime

scratch = sa.MetaData()
task_slot = sa.Table(
    "bench_task_slot", scratch,
    sa.Column("v", sa.Integer), sa.Column("k", sa.Integer), sa.Column("state", sa.String(12)),
    sa.Column("due_at", UTCDateTime()), sa.Column("due_on", sa.Date), sa.Column("opens_at", UTCDateTime()),
    sa.Column("closes_at", UTCDateTime()), sa.Column("closed_at", UTCDateTime()), sa.Column("is_urgent", sa.Boolean),
    sa.Column("is_effective", sa.Boolean), sa.Column("attempts", sa.Integer),
)
event_kind = sa.Table(
    "bench_event_kind", scratch,
    sa.Column("v", sa.Integer, primary_key=True), sa.Column("state", sa.String(20)), sa.Column("mode", sa.String(12)),
    sa.Column("category_code", sa.String(40)), sa.Column("grade", sa.String(3)), sa.Column("confirmed", sa.String(3)),
    sa.Column("care_stage", sa.String(24)), sa.Column("closed", sa.Boolean), sa.Column("triaged", sa.Boolean),
)
day_slot = sa.Table(
    "bench_day", scratch,
    sa.Column("d", sa.Integer, primary_key=True), sa.Column("at", UTCDateTime()), sa.Column("on", sa.Date),
    sa.Column("plus1", UTCDateTime()), sa.Column("plus3", UTCDateTime()), sa.Column("plus30", UTCDateTime()),
)
#: Operation grades in a tertiary hospital's mix (grade 4 ≈ 20 %); a fifth of grade 1–2 are day surgery.
GRADES = (1, 2, 2, 3, 3, 3, 4, 4, 3, 2)
CANCERS = (("lung", "C34.9"), ("gastric", "C16.9"), ("liver", "C22.0"), ("breast", "C50.9"), ("colorectal", "C18.9"))
EVENT_STATES = (("submitted", 20), ("info_requested", 3), ("triaged", 10), ("investigating", 10), ("actions_open", 8),
                ("verifying", 4), ("closed", 40), ("duplicate", 2), ("not_reportable", 2), ("withdrawn", 1))
CARE_STAGES = ("medication", "surgery_anaesthesia", "nursing", "diagnosis", "other")


def _reset(session, *tables):
    for table in tables:
        table.drop(bind=session.connection(), checkfirst=True)
        table.create(bind=session.connection())


def _days(session, start: datetime, days: int) -> None:
    """bench_day: one row per day from `start` (d = 0 … days-1), at a varying hour."""
    _reset(session, day_slot)
    rows = []
    for d in range(days):
        at = start + timedelta(days=d, hours=(d * 7) % 24, minutes=(d * 13) % 60)
        rows.append({"d": d, "at": at, "on": (at + timedelta(hours=8)).date(), "plus1": at + timedelta(days=1),
                     "plus3": at + timedelta(days=3), "plus30": at + timedelta(days=30)})
    session.execute(day_slot.insert(), rows)


def seed_tasks(session, *, per_plan: int, now: datetime, tag: str = "q", variants: int = 97) -> int:
    """Tasks 1 … per_plan for every plan whose source key starts with `tag`, history before `now`.

    Occurrences are ≈ 90 days apart, the last one around `now`: open for a quarter of the variants
    (overdue, due today or opening in the next days; an eighth of those are 24 h urgent calls),
    completed otherwise; a few older ones were cancelled or unreachable.
    """
    _reset(session, task_slot)
    rng = random.Random(9)
    rows = []
    for v in range(variants):
        open_last = v % 4 == 0
        shift = timedelta(days=rng.randint(-20, 10), hours=rng.randint(0, 23))
        for k in range(1, per_plan + 1):
            due = now + shift - timedelta(days=90 * (per_plan - k))
            urgent = open_last and k == per_plan and v % 8 == 0
            opens, closes = (due - timedelta(hours=24), due) if urgent else (due - timedelta(days=14), due + timedelta(days=14))
            if k == per_plan and open_last:
                state = "in_progress" if v % 3 == 0 else "pending"
            else:
                state = "cancelled" if (v + k) % 50 == 0 else "unreachable" if (v + k) % 37 == 0 else "completed"
            closed = due + timedelta(hours=rng.randint(-48, 72)) if state != "pending" and state != "in_progress" else None
            if state == "completed" and closed > now:
                closed = now - timedelta(hours=1)
            rows.append({"v": v, "k": k, "state": state, "due_at": due, "due_on": (due + timedelta(hours=8)).date(),
                         "opens_at": opens, "closes_at": closes, "closed_at": closed, "is_urgent": urgent,
                         "is_effective": state == "completed" and (v + k) % 10 != 0, "attempts": 1 + (v + k) % 3})
    session.execute(task_slot.insert(), rows)
    session.execute(sa.text(
        "INSERT INTO followup_task (plan_id, occurrence, protocol_id, patient_id, department_id, pathway, state, "
        "due_at, due_on, opens_at, closes_at, is_urgent, is_timed, breach_level, attempt_count, created_at, closed_at, "
        "is_effective, respondent, vital_status, version) "
        "SELECT p.id, s.k, p.protocol_id, p.patient_id, p.department_id, p.pathway, s.state, s.due_at, s.due_on, "
        "s.opens_at, s.closes_at, s.is_urgent, s.is_urgent, 0, s.attempts, s.opens_at, s.closed_at, "
        "CASE WHEN s.state = 'completed' THEN s.is_effective END, "
        "CASE WHEN s.state = 'completed' THEN 'patient' END, CASE WHEN s.state = 'completed' THEN 'alive' END, 1 "
        f"FROM followup_plan p JOIN bench_task_slot s ON s.v = p.id % {variants} "
        f"WHERE p.source_key LIKE 'bench{tag}:%'"))
    count = session.scalar(sa.text("SELECT count(*) FROM followup_task"))
    task_slot.drop(bind=session.connection())
    return count


def reference_data(session, depts: list[int], at: datetime) -> tuple[list[str], list[int]]:
    """Procedures of every grade and one surgeon per department (a few ORM rows)."""
    from qcflow.clinical.models import Procedure, Staff

    codes = []
    for grade in (1, 2, 3, 4):
        for day in (False, True):
            code = f"BENCH.{grade}{int(day)}"
            if session.get(Procedure, code) is None:
                session.add(Procedure(code=code, name=f"术式{grade}{int(day)}", grade=grade,
                                      is_day_surgery_allowed=day and grade <= 2))
            codes.append(code)
    staff = list(session.scalars(sa.select(Staff.id).where(Staff.his_id.like("BENCHS%")).order_by(Staff.id)))
    for n in range(len(staff), len(depts)):
        person = Staff(his_id=f"BENCHS{n}", name=f"医生{n}", department_id=depts[n])
        session.add(person)
        session.flush()
        staff.append(person.id)
    session.flush()
    return codes, staff


def seed_clinical(session, n: int, *, depts: list[int], start: datetime, days: int) -> dict:
    """n discharged encounters of existing bench patients, an operation for each (grade mix, day surgery),
    and a cancer diagnosis of one of the five types for every fourth patient; spread over `days`."""
    dialect = session.get_bind().dialect.name
    at = datetime(2026, 1, 1, tzinfo=timezone.utc)
    codes, staff = reference_data(session, depts, at)
    _days(session, start, days)
    lo = session.scalar(sa.text("SELECT min(id) FROM patient WHERE his_id LIKE 'bench%'"))
    hi = session.scalar(sa.text("SELECT max(id) FROM patient WHERE his_id LIKE 'bench%'"))
    span, dmin, dn = hi - lo + 1, min(depts), len(depts)
    day_surgery = "(g % 10 IN (0, 1))"
    bind = {"at": at}
    typed = [sa.bindparam("at", type_=UTCDateTime())]
    session.execute(sa.text(
        "INSERT INTO encounter (his_id, patient_id, department_id, admitted_at, discharged_at, is_day_surgery, "
        "disposition, created_at, updated_at, version) "
        f"SELECT 'BENCHE' || g, {lo} + g % {span}, {dmin} + g % {dn}, d.at, "
        f"CASE WHEN {day_surgery} THEN d.plus1 ELSE d.plus3 END, {day_surgery}, "
        "CASE WHEN g % 200 = 0 THEN 'death' ELSE 'home' END, :at, :at, 1 "
        f"FROM ({series(dialect, n)}) AS s JOIN bench_day d ON d.d = g % {days}").bindparams(*typed), bind)
    grade_case = " ".join(f"WHEN {i} THEN {g}" for i, g in enumerate(GRADES))
    session.execute(sa.text(
        "INSERT INTO operation (his_id, encounter_id, patient_id, department_id, procedure_code, grade, "
        "is_restricted_technology, surgeon_staff_id, state, planned_at, performed_at, is_unplanned_reoperation, "
        "is_emergency_override, created_at, updated_at, version) "
        "SELECT 'BENCHO' || e.id, e.id, e.patient_id, e.department_id, "
        f"'BENCH.' || (CASE e.id % 10 {grade_case} END) || CASE WHEN e.is_day_surgery THEN '1' ELSE '0' END, "
        f"CASE e.id % 10 {grade_case} END, false, {staff[0]} + e.department_id - {dmin}, "
        "CASE WHEN e.id % 50 = 0 THEN 'cancelled' ELSE 'performed' END, e.admitted_at, "
        "CASE WHEN e.id % 50 = 0 THEN NULL ELSE e.admitted_at END, e.id % 97 = 0, false, :at, :at, 1 "
        "FROM encounter e WHERE e.his_id LIKE 'BENCHE%'").bindparams(*typed), bind)
    cancer_type = " ".join(f"WHEN {i} THEN '{c}'" for i, (c, _icd) in enumerate(CANCERS))
    icd = " ".join(f"WHEN {i} THEN '{code}'" for i, (_c, code) in enumerate(CANCERS))
    session.execute(sa.text(
        "INSERT INTO cancer_diagnosis (his_id, patient_id, cancer_type, icd10, diagnosed_on, stage, department_id, "
        "created_at, updated_at, version) "
        f"SELECT 'BENCHC' || e.id, e.patient_id, CASE e.id % 5 {cancer_type} END, CASE e.id % 5 {icd} END, d.\"on\", "
        f"'II', e.department_id, :at, :at, 1 FROM encounter e JOIN bench_day d ON d.d = e.id % {days} "
        "WHERE e.his_id LIKE 'BENCHE%' AND e.id % 4 = 0").bindparams(*typed), bind)
    day_slot.drop(bind=session.connection())
    return {name: session.scalar(sa.text(f"SELECT count(*) FROM {name}"))
            for name in ("encounter", "operation", "cancer_diagnosis")}


def seed_events(session, n: int, *, depts: list[int], start: datetime, days: int, tag: str = "a",
                reporter_id: int | None = None) -> int:
    """n adverse events in every state (and every mode), submitted over `days` days from `start`."""
    dialect = session.get_bind().dialect.name
    _days(session, start, days)
    _reset(session, event_kind)
    states = [state for state, weight in EVENT_STATES for _ in range(weight)]
    categories = [c for c in session.scalars(sa.text("SELECT code FROM event_category WHERE parent_code IS NULL "
                                                      "AND code <> 'medication' ORDER BY code"))]
    rows = []
    for v in range(len(states)):
        state = states[v]
        mode = ("anonymous", "named", "confidential")[v % 3] if reporter_id else "anonymous"
        grade = ("I", "II", "III", "IV", "IV", "III", "IV")[v % 7]
        rows.append({"v": v, "state": state, "mode": mode, "category_code": categories[v % len(categories)],
                     "grade": grade, "confirmed": None if state in ("submitted", "info_requested") else grade,
                     "care_stage": CARE_STAGES[v % len(CARE_STAGES)], "closed": state == "closed",
                     "triaged": state not in ("submitted", "info_requested")})
    session.execute(event_kind.insert(), rows)
    offset = session.scalar(sa.text("SELECT coalesce(max(id), 0) FROM adverse_event"))
    dmin, dn, kinds = min(depts), len(depts), len(states)
    reporter = f"CASE WHEN k.mode = 'anonymous' THEN NULL ELSE {int(reporter_id)} END" if reporter_id else "NULL"
    session.execute(sa.text(
        "INSERT INTO adverse_event (reference, state, mode, reporter_user_id, wants_feedback, category_code, "
        "reporter_grade, confirmed_grade, care_stage, occurred_at, discovered_at, location, department_id, "
        "handling_department_id, description, immediate_actions, is_unplanned_reoperation, created_at, submitted_at, "
        "triaged_at, closed_at, triage_due_at, investigation_due_at, is_announced, version) "
        f"SELECT 'AE-B{tag}-' || (g + {offset}), k.state, k.mode, {reporter}, true, k.category_code, k.grade, "
        f"k.confirmed, k.care_stage, d.at, d.at, '病区', {dmin} + g % {dn}, "
        f"CASE WHEN k.triaged THEN {dmin} + (g / 7) % {dn} END, '基准测试事件描述', '', false, d.at, d.at, "
        "CASE WHEN k.triaged THEN d.plus1 END, CASE WHEN k.closed THEN d.plus30 END, d.plus1, "
        "CASE WHEN k.triaged THEN d.plus30 END, true, 1 "
        f"FROM ({series(dialect, n)}) AS s JOIN bench_day d ON d.d = g % {days} "
        f"JOIN bench_event_kind k ON k.v = g % {kinds}"))
    event_kind.drop(bind=session.connection())
    day_slot.drop(bind=session.connection())
    return session.scalar(sa.text("SELECT count(*) FROM adverse_event"))


def seed_audit(session, n: int, at: datetime) -> int:
    """n audit rows (one per event, as intake writes) appended after the chain's tip.

    The bench rows carry placeholder hashes (the chain of a bench database does not verify); the
    tip moves past them so the app's own entries keep a gap-free sequence.
    """
    dialect = session.get_bind().dialect.name
    head = session.execute(sa.text("SELECT seq, hash FROM audit_head WHERE id = 1")).first()
    seq0 = head[0] if head else 0
    session.execute(sa.text(
        "INSERT INTO audit_entry (seq, at, actor, action, object_type, object_id, detail, prev_hash, hash) "
        f"SELECT {seq0} + g, :at, 'anonymous', 'event.create', 'adverse_event', CAST(g AS VARCHAR(20)), "
        "'{\"after\":{\"mode\":\"anonymous\"}}', 'bench', 'bench' "
        f"FROM ({series(dialect, n)}) AS s").bindparams(sa.bindparam("at", type_=UTCDateTime())), {"at": at})
    if head:
        session.execute(sa.text("UPDATE audit_head SET seq = :seq, hash = 'bench' WHERE id = 1"), {"seq": seq0 + n})
    else:
        session.execute(sa.text("INSERT INTO audit_head (id, seq, hash) VALUES (1, :seq, 'bench')"), {"seq": n})
    return seq0 + n


def analyse(session) -> None:
    """Fresh planner statistics after bulk loading (both databases). On PostgreSQL also VACUUM, which
    autovacuum runs after a bulk load in production: until then no page is marked all-visible and
    every index-only scan (the queue's choice of its page and its counts) still reads the table."""
    if session.get_bind().dialect.name != "postgresql":
        session.execute(sa.text("ANALYZE"))
        return
    session.commit()
    with session.get_bind().connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(sa.text("VACUUM ANALYZE"))
