"""Trigger statistics (自动提取的效果): how well each trigger finds harm, and what the triggers find that
nobody reported.

A firing belongs to the period in which it fired (`EventPrompt.created_at`, hospital time) and to the
department where the harm happened (`EventPrompt.department_id`); every count here is the length of the list
its drill-down link opens (the period, state and trigger are in the link). Per trigger: firings,
reviewed (filed, linked or dismissed), confirmed (filed or linked), the positive predictive value
confirmed / reviewed, and the median time from firing to review over the reviewed ones. Per department:
firings confirmed by filing a new report (harm nobody had reported), firings linked to a report already
filed, and the department's actively reported events of the period beside them.

Firings are not reports: they name no reporter, so their counts are shown as they are. The voluntary
reports of a department are reports, and below the hospital level go through `suppression.suppress`
as on the funnel plot.
"""
from __future__ import annotations

from urllib.parse import urlencode

import sqlalchemy as sa

from qcflow.auth.models import Department
from qcflow.core.i18n import current_language
from qcflow.core.periods import Period
from qcflow.events.models import AdverseEvent
from qcflow.extensions import db
from qcflow.extraction.models import Trigger
from qcflow.followup.models import EventPrompt
from qcflow.followup.workflow import PromptState
from qcflow.indicators.definitions import actively_reported, days_between
from qcflow.reports.analysis import reports_clause
from qcflow.reports.suppression import SHOWN, suppress

#: A reviewer decided: a report was filed, the firing was linked to one, or it was dismissed.
REVIEWED = (PromptState.FILED.value, PromptState.LINKED.value, PromptState.DISMISSED.value)
#: A reviewer confirmed harm: a report was filed from the firing, or it was linked to one already filed.
CONFIRMED = (PromptState.FILED.value, PromptState.LINKED.value)
#: The page that lists firings; its filters are `source`, `trigger` (code), `state`, `department` (id), `from`, `to`.
PROMPTS_URL = "/followup/prompts"


def firings_clause(period: Period, department_id: int | None = None):
    """Trigger firings (not follow-up findings) that fired in the period, in one department or all."""
    clause = sa.and_(EventPrompt.trigger_id.is_not(None), EventPrompt.created_at >= period.start_at,
                     EventPrompt.created_at < period.end_at)
    if department_id is not None:
        clause = sa.and_(clause, EventPrompt.department_id == department_id)
    return clause


def _state_count(*states: str):
    return sa.func.count().filter(EventPrompt.state.in_(states))


def _medians(where, group=None) -> dict:
    """The median hours from firing to review of the reviewed firings, per value of `group` (None: all of
    them, under the key None).

    Window functions rank each group's durations on both SQLite and PostgreSQL; the middle one (or the
    mean of the middle two) is kept, so no list of durations is read into Python.
    """
    hours = (days_between(EventPrompt.created_at, EventPrompt.handled_at) * 24).label("hours")
    partition = {"partition_by": group} if group is not None else {}
    keys = [group.label("key")] if group is not None else []
    ranked = sa.select(*keys, hours,
                       sa.func.row_number().over(order_by=hours, **partition).label("rn"),
                       sa.func.count().over(**partition).label("n")).where(
        where, EventPrompt.state.in_(REVIEWED), EventPrompt.handled_at.is_not(None)).subquery()
    middle = sa.and_(ranked.c.rn * 2 >= ranked.c.n, ranked.c.rn * 2 <= ranked.c.n + 2)
    if group is None:
        value = db.session.scalar(sa.select(sa.func.avg(ranked.c.hours)).where(middle))
        return {None: round(float(value), 1)} if value is not None else {}
    stmt = sa.select(ranked.c.key, sa.func.avg(ranked.c.hours)).where(middle).group_by(ranked.c.key)
    return {key: round(float(value), 1) for key, value in db.session.execute(stmt) if value is not None}


def ppv(confirmed: int, reviewed: int) -> float | None:
    """Positive predictive value in percent: confirmed / reviewed; None when nothing was reviewed."""
    return round(100 * confirmed / reviewed, 1) if reviewed else None


def _link(period: Period, department_id: int | None = None, *, state: str = "", **filters) -> str:
    """The prompts page filtered to the firings behind a count: fired in the period's days, in a state ("":
    every state)."""
    params = {"source": "trigger", "state": state, "from": period.start.isoformat(), "to": period.end.isoformat(),
              **{key: str(value) for key, value in filters.items() if value is not None}}
    if department_id is not None:
        params["department"] = department_id
    return PROMPTS_URL + "?" + urlencode(params)


def _state_links(period: Period, department_id: int | None, trigger: str | None = None) -> dict[str, str]:
    """Links to a trigger's firings: all of them ("firings") and those in each state."""
    links = {"firings": _link(period, department_id, trigger=trigger)}
    links.update({s.value: _link(period, department_id, trigger=trigger, state=s.value) for s in PromptState})
    return links


def _counts(where, group=None):
    """Firings by state, per value of `group` (None: all of them in one row)."""
    keys = [group.label("key")] if group is not None else []
    stmt = sa.select(*keys, sa.func.count().label("firings"), _state_count(*REVIEWED).label("reviewed"),
                     _state_count(*CONFIRMED).label("confirmed"), _state_count(PromptState.FILED.value).label("filed"),
                     _state_count(PromptState.LINKED.value).label("linked"),
                     _state_count(PromptState.DISMISSED.value).label("dismissed"),
                     _state_count(PromptState.OPEN.value).label("open")).where(where)
    return stmt.group_by(group) if group is not None else stmt


def _figures(row, median) -> dict:
    figures = {name: int(getattr(row, name, 0) or 0) if row is not None else 0
               for name in ("firings", "reviewed", "confirmed", "filed", "linked", "dismissed", "open")}
    figures["ppv"] = ppv(figures["confirmed"], figures["reviewed"])
    figures["median_review_hours"] = median
    return figures


def by_trigger(period: Period, department_id: int | None = None) -> dict:
    """Each trigger's firings in the period and how they were reviewed, with the totals.

    Every active trigger is listed (a trigger that never fires is worth knowing about), and an inactive
    one that fired in the period.
    """
    where = firings_clause(period, department_id)
    counts = {row.key: row for row in db.session.execute(_counts(where, EventPrompt.trigger_id))}
    medians = _medians(where, EventPrompt.trigger_id)
    triggers = db.session.scalars(sa.select(Trigger).where(
        sa.or_(Trigger.is_active.is_(True), Trigger.id.in_(list(counts)))).order_by(Trigger.id))
    language = current_language()
    rows = []
    for trigger in triggers:
        figures = _figures(counts.get(trigger.id), medians.get(trigger.id))
        rows.append({"id": trigger.id, "code": trigger.code, "name": trigger.label(language),
                     "is_active": trigger.is_active, **figures,
                     "links": _state_links(period, department_id, trigger=trigger.code)})
    totals = _figures(db.session.execute(_counts(where)).first(), _medians(where).get(None))
    totals["links"] = _state_links(period, department_id)
    return {"rows": rows, "total": totals}


def by_department(period: Period, k: int, department_id: int | None = None) -> dict:
    """Per department: harm the triggers found that nobody had reported (a report was filed from the
    firing), firings linked to a report already filed, and the department's voluntary reports.

    `unreported_share` = filed / (filed + linked): of the confirmed harm the triggers found, the part
    staff had not reported. Only departments with a firing in the period are listed.
    """
    where = firings_clause(period, department_id)
    counts = {row.key: row for row in db.session.execute(_counts(where, EventPrompt.department_id))}
    reports_stmt = (sa.select(AdverseEvent.department_id, sa.func.count())
                    .where(reports_clause(period, department_id), actively_reported())
                    .group_by(AdverseEvent.department_id))
    reports = dict(db.session.execute(reports_stmt).all())
    language = current_language()
    departments = {d.id: d for d in db.session.scalars(sa.select(Department).where(Department.id.in_(list(counts))))}
    rows = []
    for dept_id, row in counts.items():
        figures = _figures(row, None)
        n = int(reports.get(dept_id, 0))
        shown = suppress([n], k=k).total == SHOWN
        department = departments.get(dept_id)
        confirmed = figures["filed"] + figures["linked"]
        rows.append({
            "department": {"id": dept_id, "code": department.code if department else None,
                           "name": department.label(language) if department else None},
            "firings": figures["firings"], "filed": figures["filed"], "linked": figures["linked"],
            "reports": n if shown else None, "reports_display": str(n) if shown else f"<{k}",
            "unreported_share": round(100 * figures["filed"] / confirmed, 1) if confirmed else None,
            "links": {"firings": _link(period, dept_id), "filed": _link(period, dept_id, state=PromptState.FILED.value),
                      "linked": _link(period, dept_id, state=PromptState.LINKED.value)},
        })
    rows.sort(key=lambda r: (-r["filed"], r["department"]["code"] or ""))
    filed = sum(r["filed"] for r in rows)
    linked = sum(r["linked"] for r in rows)
    return {"rows": rows, "total": {"firings": sum(r["firings"] for r in rows), "filed": filed, "linked": linked,
                                    "unreported_share": round(100 * filed / (filed + linked), 1)
                                    if filed + linked else None}}


def summary(period: Period, k: int, department_id: int | None = None) -> dict:
    """Both tables for the hospital (department None) or one department."""
    return {"triggers": by_trigger(period, department_id), "departments": by_department(period, k, department_id)}
