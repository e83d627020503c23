"""Set-based synthetic follow-up data: N patients and N active plans in a few statements.

Plans take their anchor (and their generation cursor) from a small table of distinct anchors,
joined by `patient.id % K`; only those K cursors are computed in Python (with the app's own
schedule functions), the N rows are produced by the database (recursive CTE on SQLite,
generate_series on PostgreSQL). Used by the benchmark and by the crash and concurrency tests.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from qcflow.core.db import UTCDateTime

#: Pathways seeded, with their share of plans (a hospital's mix: day surgery, four-level, cancer).
MIX = (("day_surgery", 3), ("four_level_surgery", 3), ("cancer_lung", 1), ("cancer_gastric", 1),
       ("cancer_liver", 1), ("cancer_breast", 1), ("cancer_colorectal", 1))
DEPARTMENTS = 20
RUN_PREFIX = "bench"

scratch = sa.MetaData()
#: The distinct anchors plans are built from (a scratch table, dropped after seeding).
bench_anchor = sa.Table(
    "bench_anchor", scratch,
    sa.Column("k", sa.Integer, primary_key=True),
    sa.Column("protocol_id", sa.Integer), sa.Column("pathway", sa.String(40)),
    sa.Column("anchor_at", UTCDateTime()), sa.Column("next_occurrence", sa.Integer),
    sa.Column("next_due_at", UTCDateTime()), sa.Column("next_due_on", sa.Date),
    sa.Column("next_opens_at", UTCDateTime()), sa.Column("next_closes_at", UTCDateTime()),
    sa.Column("next_is_urgent", sa.Boolean), sa.Column("next_is_timed", sa.Boolean),
)


@dataclass
class Seeded:
    plans: int
    anchors: int
    seconds: float


def series(dialect: str, n: int) -> str:
    """SQL yielding g = 1..n."""
    if dialect == "postgresql":
        return f"SELECT g FROM generate_series(1, {int(n)}) AS g"
    return f"WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < {int(n)}) SELECT g FROM s"


def departments(session, at: datetime, count: int = DEPARTMENTS) -> list[int]:
    from qcflow.auth.models import Department

    ids = list(session.scalars(sa.select(Department.id).where(Department.code.like("BD%")).order_by(Department.id)))
    for n in range(len(ids), count):
        dept = Department(code=f"BD{n + 1:03d}", name=f"科室{n + 1}", kind="clinical", created_at=at)
        session.add(dept)
        session.flush()
        ids.append(dept.id)
    return ids


def seed_plans(session, n: int, *, anchors_from: datetime | None = None, anchors_to: datetime | None = None,
               due_from: datetime | None = None, due_to: datetime | None = None, anchors: int = 2000,
               tag: str = "a", seed: int = 20260302, department_count: int = DEPARTMENTS) -> Seeded:
    """Insert n patients and n active plans, anchored between two instants, or anchored so that
    their first call falls due between two instants (steady state: the cursor is in the future)."""
    import time

    from qcflow.core.time import hospital_tz
    from qcflow.followup.models import Protocol
    from qcflow.followup.schedule import expand, occurrence

    started = time.perf_counter()
    bind = session.get_bind()
    dialect = bind.dialect.name
    at = datetime(2026, 1, 1, tzinfo=timezone.utc)
    depts = departments(session, at, department_count)[:department_count]
    protocols = {p.code: p for p in session.scalars(sa.select(Protocol).where(Protocol.is_current.is_(True)))}
    rng = random.Random(seed)
    choices = [code for code, weight in MIX for _ in range(weight)]
    tz = hospital_tz()
    rows = []
    anchors = min(anchors, n)
    for k in range(anchors):
        protocol = protocols[choices[k % len(choices)]]
        if due_from is not None:
            due = due_from + timedelta(seconds=int(rng.random() * (due_to - due_from).total_seconds()))
            anchor_at = first_due_to_anchor(protocol, due, tz)
        else:
            anchor_at = anchors_from + timedelta(seconds=int(rng.random() * (anchors_to - anchors_from).total_seconds()))
        if protocol.anchor == "diagnosis_on":
            local = anchor_at.astimezone(tz)
            anchor_at = datetime(local.year, local.month, local.day, tzinfo=tz).astimezone(timezone.utc)
        occ = occurrence(expand(protocol.schedule_phases()), anchor_at, 1, tz)
        rows.append({"k": k, "protocol_id": protocol.id, "pathway": protocol.code, "anchor_at": anchor_at,
                     "next_occurrence": 1, "next_due_at": occ.due_at, "next_due_on": occ.due_on,
                     "next_opens_at": occ.opens_at, "next_closes_at": occ.closes_at,
                     "next_is_urgent": occ.is_urgent, "next_is_timed": occ.is_timed})
    scratch.drop_all(bind=session.connection(), checkfirst=True)
    scratch.create_all(bind=session.connection())
    session.execute(bench_anchor.insert(), rows)
    prefix = f"{RUN_PREFIX}{tag}"
    session.execute(sa.text(
        f"INSERT INTO patient (his_id, mrn, name, sex, created_at, updated_at, version) "
        f"SELECT '{prefix}' || g, '{prefix}' || g, 'P' || g, 'U', :at, :at, 1 FROM ({series(dialect, n)}) AS s"
    ).bindparams(sa.bindparam("at", type_=UTCDateTime())), {"at": at})
    dept_case = " ".join(f"WHEN {i} THEN {d}" for i, d in enumerate(depts))
    dept_case = f"CASE p.id % {len(depts)} {dept_case} END" if len(depts) < 40 else f"{min(depts)} + p.id % {len(depts)}"
    assert len(depts) < 40 or depts == list(range(min(depts), min(depts) + len(depts))), "department ids not contiguous"
    session.execute(sa.text(
        "INSERT INTO followup_plan (patient_id, department_id, protocol_id, pathway, source_type, source_id, "
        "source_key, anchor_at, state, next_occurrence, next_due_at, next_due_on, next_opens_at, next_closes_at, "
        "next_is_urgent, next_is_timed, enrolled_at, enrolled_by, version) "
        f"SELECT p.id, {dept_case}, a.protocol_id, a.pathway, 'manual', NULL, "
        f"'{prefix}:' || p.id, a.anchor_at, 'active', a.next_occurrence, a.next_due_at, a.next_due_on, "
        "a.next_opens_at, a.next_closes_at, a.next_is_urgent, a.next_is_timed, :at, 'system:bench', 1 "
        f"FROM patient p JOIN bench_anchor a ON a.k = p.id % {anchors} WHERE p.his_id LIKE '{prefix}%'"
    ).bindparams(sa.bindparam("at", type_=UTCDateTime())), {"at": at})
    scratch.drop_all(bind=session.connection())
    if dialect == "postgresql":
        session.execute(sa.text("ANALYZE followup_plan"))
    return Seeded(n, anchors, time.perf_counter() - started)


def first_due_to_anchor(protocol, due: datetime, tz) -> datetime:
    """An anchor whose first occurrence of `protocol` falls due at (about) `due`."""
    from qcflow.core.periods import add_months

    phase = protocol.phases[0]
    if phase.unit == "hour":
        return due - timedelta(hours=phase.start_offset)
    day = due.astimezone(tz).date()
    day = day - timedelta(days=phase.start_offset) if phase.unit == "day" else add_months(day, -phase.start_offset)
    return datetime(day.year, day.month, day.day, 10, 0, tzinfo=tz).astimezone(timezone.utc)


def expected_tasks(session, through: datetime) -> set[tuple[int, int, datetime]]:
    """The exact set of tasks (plan_id, occurrence, due_at) the generator must have made by `through`.

    A pure function of the plans (anchor, protocol) and the lookahead, independent of how the
    generator batches, commits or crashes.
    """
    from flask import current_app

    from qcflow.core.time import hospital_tz
    from qcflow.followup.models import Plan, Protocol
    from qcflow.followup.schedule import expand, occurrences

    horizon = through + timedelta(days=current_app.config["FOLLOWUP_LOOKAHEAD_DAYS"])
    tz = hospital_tz()
    slots = {p.id: expand(p.schedule_phases()) for p in session.scalars(sa.select(Protocol))}
    expected = set()
    rows = session.execute(sa.select(Plan.id, Plan.protocol_id, Plan.anchor_at).where(Plan.state == "active"))
    for plan_id, protocol_id, anchor_at in rows:
        for occ in occurrences(slots[protocol_id], anchor_at, tz):
            if occ.due_at > horizon:
                break
            expected.add((plan_id, occ.number, occ.due_at))
    return expected


def actual_tasks(session) -> set[tuple[int, int, datetime]]:
    from qcflow.followup.models import Task

    return set(session.execute(sa.select(Task.plan_id, Task.occurrence, Task.due_at)).all())
