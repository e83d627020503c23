"""The follow-up task generator (batched INSERT … SELECT with a cursor per plan, SQL for SQLite and
PostgreSQL) and the warnings on urgent calls near or past their deadline.

The generator commits through the caller's `after_batch` callback, once per batch.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

import orjson
import sqlalchemy as sa
from flask import current_app
from sqlalchemy.dialects.postgresql import ARRAY

from qcflow.auth.models import Role
from qcflow.core import audit
from qcflow.core.time import hospital_tz
from qcflow.extensions import db
from qcflow.followup import schedule
from qcflow.followup.models import Plan, Protocol, URGENT_OPEN, Task
from qcflow.followup.services.protocols import lookahead, slots_of
from qcflow.followup.workflow import PlanState, TaskState
from qcflow.notify.services import notify, users_with_role


@dataclass
class Generated:
    batches: int = 0
    tasks: int = 0
    plans: int = 0

    def __str__(self) -> str:
        return f"generated {self.tasks} tasks for {self.plans} plans in {self.batches} batches"


TASK_COPY = ("plan_id", "occurrence", "protocol_id", "patient_id", "department_id", "pathway", "state", "due_at",
             "due_on", "opens_at", "closes_at", "is_urgent", "is_timed", "attempt_count", "created_at", "version")


def _insert(dialect: str):
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def generate_due(now: datetime, *, batch_size: int | None = None, plan_ids: list[int] | None = None,
                 after_batch: Callable[[Generated], None] | None = None) -> Generated:
    """Materialise every task due up to now + lookahead that does not exist yet, in batches.

    Each batch selects due active plans through the partial index on next_due_at (O(due), never
    a scan of all plans), inserts their next occurrence with one INSERT … SELECT … ON CONFLICT DO
    NOTHING on the natural key (plan_id, occurrence), and advances the plans' cursors in the same
    transaction with a compare-and-set on next_occurrence. A plan several occurrences behind
    (downtime) is picked up again by the next batch until it is caught up. `after_batch` (the
    caller's commit) runs after each batch; a crash loses at most the uncommitted batch, and a
    re-run or a second generator only ever finds the remaining work.
    """
    horizon = now + lookahead()
    size = batch_size or current_app.config["GEN_BATCH"]
    result, cache = Generated(), {}
    while True:
        selected, inserted = _generate_batch(now, horizon, size, plan_ids, cache)
        if not selected:
            return result
        result.batches += 1
        result.tasks += inserted
        result.plans += selected
        if after_batch is not None:
            after_batch(result)


def due_clause(horizon: datetime, plan_ids=None):
    plan = Plan.__table__
    due = sa.and_(plan.c.state == PlanState.ACTIVE.value, plan.c.next_due_at <= horizon)
    return due if plan_ids is None else sa.and_(due, plan.c.id.in_(plan_ids))


def due_plans(horizon: datetime, size: int, plan_ids=None, *, lock: bool = False):
    """The batch query: due active plans in cursor order, through the partial index on next_due_at.

    On PostgreSQL the rows are locked and locked ones skipped, so concurrent generators split the work.
    """
    plan = Plan.__table__
    pick = (sa.select(plan.c.id, plan.c.protocol_id, plan.c.anchor_at, plan.c.next_occurrence)
            .where(due_clause(horizon, plan_ids)).order_by(plan.c.next_due_at).limit(size))
    return pick.with_for_update(skip_locked=True) if lock else pick


#: Cursor advance, one statement per batch: arrays unnested (PostgreSQL) or executemany (SQLite),
#: both with a compare-and-set on the occurrence the batch read.
ADVANCE_COLUMNS = ("next_occurrence", "next_due_at", "next_due_on", "next_opens_at", "next_closes_at",
                   "next_is_urgent", "next_is_timed")
PG_ADVANCE = sa.text(
    "UPDATE followup_plan AS p SET next_occurrence = v.next, next_due_at = v.due_at, next_due_on = v.due_on, "
    "next_opens_at = v.opens_at, next_closes_at = v.closes_at, next_is_urgent = v.urgent, "
    "next_is_timed = v.timed, version = p.version + 1 "
    "FROM json_to_recordset(CAST(:batch AS json)) AS v(id integer, old integer, next integer, "
    "due_at timestamptz, due_on date, opens_at timestamptz, closes_at timestamptz, urgent boolean, timed boolean) "
    "WHERE p.id = v.id AND p.next_occurrence = v.old AND p.state = 'active'")
ADVANCE_KEYS = ("id", "old", "next", "due_at", "due_on", "opens_at", "closes_at", "urgent", "timed")
SQLITE_ADVANCE = (
    "UPDATE followup_plan SET next_occurrence = ?, next_due_at = ?, next_due_on = ?, next_opens_at = ?, "
    "next_closes_at = ?, next_is_urgent = ?, next_is_timed = ?, version = version + 1 "
    "WHERE id = ? AND next_occurrence = ? AND state = 'active'")


def _advance(session, dialect: str, updates: list[tuple]) -> None:
    """Move each plan's cursor to its next occurrence (rows: id, old, next, due_at, due_on, opens_at,
    closes_at, urgent, timed), unless another generator has moved it already."""
    if dialect == "postgresql":
        # One JSON document per batch: the server parses it far faster than the driver adapts
        # thousands of typed parameters.
        batch = orjson.dumps([dict(zip(ADVANCE_KEYS, row)) for row in updates]).decode()
        session.execute(PG_ADVANCE, {"batch": batch})
        return
    # The columns' own bind processors keep the stored format identical to ORM writes.
    plan, dialect_ = Plan.__table__, session.get_bind().dialect
    process = [plan.c[name].type.dialect_impl(dialect_).bind_processor(dialect_) or (lambda v: v)
               for name in ADVANCE_COLUMNS]
    rows = [tuple(p(v) if v is not None else None for p, v in zip(process, values[2:])) + values[:2]
            for values in updates]
    session.connection().exec_driver_sql(SQLITE_ADVANCE, rows)


def _generate_batch(now: datetime, horizon: datetime, size: int, plan_ids, cache: dict) -> tuple[int, int]:
    session = db.session
    plan, task = Plan.__table__, Task.__table__
    dialect = session.get_bind().dialect.name
    due = due_clause(horizon, plan_ids)
    rows = session.execute(due_plans(horizon, size, plan_ids, lock=dialect == "postgresql")).all()
    if not rows:
        return 0, 0
    ids = [r.id for r in rows]
    # PostgreSQL gets the batch as one array parameter, SQLite as an IN list (primary-key lookups).
    in_batch = plan.c.id == sa.any_(sa.bindparam("batch_ids", ids, type_=ARRAY(sa.Integer))) \
        if dialect == "postgresql" else plan.c.id.in_(ids)
    source = sa.select(
        plan.c.id, plan.c.next_occurrence, plan.c.protocol_id, plan.c.patient_id, plan.c.department_id,
        plan.c.pathway, sa.literal(TaskState.PENDING.value, sa.String), plan.c.next_due_at, plan.c.next_due_on,
        plan.c.next_opens_at, plan.c.next_closes_at, plan.c.next_is_urgent, plan.c.next_is_timed,
        sa.literal(0, sa.Integer), sa.literal(now, plan.c.enrolled_at.type), sa.literal(1, sa.Integer),
    ).where(due, in_batch)
    insert = _insert(dialect)(task).from_select(list(TASK_COPY), source).on_conflict_do_nothing(
        index_elements=["plan_id", "occurrence"])
    inserted = session.execute(insert, execution_options={"preserve_rowcount": True}).rowcount
    tz = hospital_tz()
    missing = {r.protocol_id for r in rows} - cache.keys()
    if missing:
        for protocol in session.scalars(sa.select(Protocol).where(Protocol.id.in_(missing))):
            cache[protocol.id] = slots_of(protocol)
    updates = []
    for row in rows:
        occ = schedule.occurrence(cache[row.protocol_id], row.anchor_at, row.next_occurrence + 1, tz)
        updates.append((row.id, row.next_occurrence, row.next_occurrence + 1) + (
            (occ.due_at, occ.due_on, occ.opens_at, occ.closes_at, occ.is_urgent, occ.is_timed) if occ
            else (None, None, None, None, False, False)))
    _advance(session, dialect, updates)
    # Plans loaded in this session (enrolment, re-anchoring) must not keep the old cursor or version.
    advanced = set(ids)
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Plan) and obj.id in advanced:
            session.expire(obj)
    return len(rows), max(inserted, 0)


def warn_urgent_deadlines(now: datetime) -> tuple[int, int]:
    """Day-surgery 24 h calls still open near or past their deadline, each reported once per level:
    "deadline near" (FOLLOWUP_URGENT_WARN_HOURS before) to the holder, or to the department's nurses
    and head when nobody holds it; "missed" to the head and the quality office. Reads only open urgent
    calls through their partial index; the level is set with a compare-and-set (no version bump, so a
    nurse working the call never gets a conflict from it). Returns (warned, missed)."""
    warn_before = timedelta(hours=current_app.config["FOLLOWUP_URGENT_WARN_HOURS"])
    task = Task.__table__
    rows = db.session.execute(sa.select(task.c.id, task.c.department_id, task.c.assignee_id, task.c.closes_at,
                                        task.c.breach_level, task.c.patient_id)
                              .where(sa.text(URGENT_OPEN), task.c.closes_at <= now + warn_before)
                              .order_by(task.c.closes_at)).all()
    counts = [0, 0]
    for row in rows:
        level = 2 if row.closes_at <= now else 1
        if level <= row.breach_level:
            continue
        moved = db.session.execute(task.update().where(task.c.id == row.id, task.c.breach_level == row.breach_level)
                                   .values(breach_level=level), execution_options={"preserve_rowcount": True})
        if moved.rowcount != 1:
            continue
        link = f"/followup/tasks/{row.id}"
        if level == 1:
            to = [row.assignee_id] if row.assignee_id else (users_with_role(Role.NURSE, row.department_id)
                                                             + users_with_role(Role.DEPT_HEAD, row.department_id))
            notify(to, "followup.urgent_due", {"id": row.id, "time": row.closes_at.isoformat()}, now=now, link=link)
        else:
            to = users_with_role(Role.DEPT_HEAD, row.department_id) + users_with_role(Role.QUALITY)
            notify(to, "followup.urgent_missed", {"id": row.id, "time": row.closes_at.isoformat()}, now=now, link=link)
        audit.record("system:followup.urgent", "followup_task.urgent_warning", "followup_task", row.id, now,
                     level=level, closes_at=row.closes_at.isoformat(), assignee_id=row.assignee_id)
        counts[level - 1] += 1
    return counts[0], counts[1]
