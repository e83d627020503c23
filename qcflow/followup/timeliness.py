"""The one rule for a follow-up task's timeliness: not_open, due or overdue.

The window boundaries are computed once, in the hospital's time zone, when a task is generated
(schedule.py: local midnights for calendar occurrences, exact instants for the 24 h call). The rule
then compares instants:

- an open task (pending, in progress) is `not_open` before its window opens, `due` while it is
  open and `overdue` once it has closed;
- a completed task is judged at its completion time (on time = `due`, late = `overdue`), which is
  what the indicators count;
- cancelled and unreachable tasks have no timeliness (None).

`timeliness` answers for one task in Python; `timeliness_sql` is the same rule as a SQL
expression for lists, filters and counts. tests/followup/test_timeliness.py proves they agree.
"""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa

from qcflow.followup.models import OPEN_TASK_STATES
from qcflow.followup.workflow import TaskState


class Timeliness(StrEnum):
    NOT_OPEN = "not_open"
    DUE = "due"
    OVERDUE = "overdue"


def timeliness(state: str, opens_at: datetime, closes_at: datetime, now: datetime,
               closed_at: datetime | None = None) -> Timeliness | None:
    """The timeliness of a task in `state` with this window, at `now`."""
    if state in (TaskState.CANCELLED, TaskState.UNREACHABLE):
        return None
    at = closed_at if state == TaskState.COMPLETED and closed_at is not None else now
    if at < opens_at:
        return Timeliness.NOT_OPEN
    if at < closes_at:
        return Timeliness.DUE
    return Timeliness.OVERDUE


def of(task, now: datetime) -> Timeliness | None:
    """The timeliness of a task row (or anything with its columns) at `now`."""
    return timeliness(task.state, task.opens_at, task.closes_at, now, task.closed_at)


def timeliness_sql(task, now):
    """`timeliness` as a SQL CASE over the task table (or an alias of it); `now` is an instant or a
    bound parameter."""
    if isinstance(now, datetime):
        now = sa.literal(now, task.opens_at.type)
    at = sa.case((task.state == TaskState.COMPLETED.value, task.closed_at), else_=now)
    return sa.case(
        (state_in(task, (TaskState.CANCELLED, TaskState.UNREACHABLE)), sa.null()),
        (at < task.opens_at, sa.literal(Timeliness.NOT_OPEN.value)),
        (at < task.closes_at, sa.literal(Timeliness.DUE.value)),
        else_=sa.literal(Timeliness.OVERDUE.value),
    )


def state_in(task, states):
    """`task.state IN (…)` with the states written into the SQL, not bound. They are constants of the
    workflow. SQLite uses a partial index of open tasks only when it can see that the query implies
    the index's WHERE clause; with bound open states it read the whole task table (the bulletin's
    overdue counts took 90 s at 4M tasks). Literal columns rather than an expanding parameter, which
    SQLAlchemy substitutes into the cached SQL on every execution (0.25 ms per statement)."""
    return task.state.in_([sa.literal_column(f"'{TaskState(state).value}'") for state in states])


def timeliness_label(state: str, timeliness: str | None) -> str:
    """A call's timeliness as its readers say it: an open call is due or overdue, a completed one was
    completed on time or late; a cancelled or unreachable call has none (pages, sheet and export alike)."""
    from qcflow.core.i18n import label

    if not timeliness:
        return ""
    if state in OPEN_TASK_STATES:
        return label("fu_timeliness", timeliness)
    return label("fu_done_timeliness", timeliness) if state == TaskState.COMPLETED else ""


def is_open(task):
    """The task is open (pending or in progress)."""
    return state_in(task, OPEN_TASK_STATES)


def overdue_clause(task, now: datetime):
    """Open tasks whose window has closed (the queue's and the counts' "overdue")."""
    return sa.and_(is_open(task), task.closes_at <= now)
