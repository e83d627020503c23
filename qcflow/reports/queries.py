"""Read side of reports: the event analysis with its under-reporting detector, the trigger statistics and
the charts."""
from __future__ import annotations

from datetime import datetime

from flask_babel import gettext as _
from markupsafe import Markup

from qcflow.core.actors import Actor
from qcflow.core.periods import Period
from qcflow.reports import trigger_stats
from qcflow.reports import analysis, charts, underreporting

#: Dimensions drawn as horizontal bars (long labels); the others as columns.
HORIZONTAL = {"category", "grade", "care_stage", "location", "department", "clinical_state"}
#: Dimensions whose every value stays on the chart, empty or not.
TIME_AXES = {"month", "weekday", "hour_band"}


def event_analysis(actor: Actor, period: Period, department_id: int | None = None, *, now: datetime) -> dict:
    """The analysis the actor may see (hospital or one department), the under-reporting detector and the
    trigger statistics of the same scope."""
    result = analysis.analyse(actor, period, department_id)
    scope = result["department"]["id"] if result["department"] else None
    result["underreporting"] = underreporting.funnel(period, k=result["k"], now=now, department_id=scope)
    result["triggers"] = trigger_stats.summary(period, result["k"], scope)
    return result


def funnel_chart(result: dict) -> Markup:
    return charts.funnel(_("Reports per 100 discharges by department"), result["underreporting"], labels={
        "x": _("Discharges"), "y": _("Reports per 100 discharges"), "rate": _("Hospital rate"),
        "95": _("%(p)s limits", p="95 %"), "99.8": _("%(p)s limits", p="99.8 %"), "departments": _("Departments"),
        "hidden": _("Fewer than %(k)d reports (drawn at the upper bound)", k=result["k"]),
    })


def dimension_charts(result: dict, names=None, *, width: int = 640) -> dict[str, Markup]:
    """One SVG bar chart per dimension (hidden counts get no bar)."""
    out = {}
    for table in result["dimensions"]:
        if names is not None and table["name"] not in names:
            continue
        rows = table["rows"]
        horizontal = table["name"] in HORIZONTAL
        if table["name"] not in TIME_AXES:  # empty categories make a chart harder to read, not better
            rows = [row for row in rows if row["count"] != 0] or rows
        if table["name"] == "hour_band":  # "08:00–12:00" six times side by side overlap: "8–12时"
            rows = [{**row, "label": _("%(start)d–%(end)d h", start=int(row["code"]) * analysis.HOUR_BAND_HOURS,
                                        end=(int(row["code"]) + 1) * analysis.HOUR_BAND_HOURS)}
                    if row["code"] is not None and row["code"].isdigit() else row for row in rows]
        out[table["name"]] = charts.bars(table["title"], rows, horizontal=horizontal, width=width,
                                         height=max(160, 28 * len(rows) + 80) if horizontal else 240)
    return out
