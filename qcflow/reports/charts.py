"""SVG charts rendered on the server with pygal: no script, no external style, no XML declaration,
so the same markup goes inline into a page and into a PDF."""
from __future__ import annotations

import base64
import math
import re
import unicodedata
from datetime import date, datetime
from functools import lru_cache

from flask_babel import gettext as _
from markupsafe import Markup

from qcflow.core.i18n import current_language
from qcflow.core.time import today

FONT = '"Noto Sans CJK SC", "WenQuanYi Zen Hei", sans-serif'


@lru_cache(maxsize=1)
def _pygal():
    """pygal and our style, imported at the first chart: a worker's start-up does not need it (P12)."""
    import pygal
    from pygal.style import Style

    return pygal, Style(
        font_family=FONT, background="white", plot_background="white", foreground="#333", foreground_strong="#111",
        foreground_subtle="#999", colors=("#2f6ea6", "#b3261e", "#e08a00", "#0b6e4f", "#9aa5b1", "#7a4fa0"),
        label_font_size=11, major_label_font_size=11, value_font_size=10, legend_font_size=11, title_font_size=13,
        tooltip_font_size=11, value_label_font_size=10, guide_stroke_color="#e3e3e3", major_guide_stroke_color="#cfcfcf",
        guide_stroke_dasharray="1,0", major_guide_stroke_dasharray="1,0", value_colors=("#222",), opacity=0.85,
        stroke_width=1.6, no_data_font_size=13,
    )


def _config(**options) -> dict:
    return {"style": _pygal()[1], "js": [], "disable_xml_declaration": True, "explicit_size": True,
            "width": 640, "height": 300, "margin": 12, "show_legend": False, "print_values": True,
            "print_values_position": "top", "truncate_label": -1, "truncate_legend": -1,
            "no_data_text": _("No data for this period"), **options}


def nice_step(span: float, ticks: int = 5) -> float:
    """A round step (1, 2 or 5 times a power of ten) that divides `span` into at most `ticks` parts."""
    if span <= 0:
        return 1
    raw = span / ticks
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def count_ticks(top: float) -> list[int]:
    """Whole-number ticks from 0 to at least `top`, for axes that count things (never 0.2, 0.4)."""
    step = max(1, int(nice_step(max(top, 1))))
    return list(range(0, step * math.ceil(max(top, 1) / step) + 1, step))


def value_ticks(top: float) -> list[float]:
    """Round ticks from 0 to at least `top`, for axes of rates."""
    step = nice_step(top if top > 0 else 1, 4)
    return [round(i * step, 6) for i in range(math.ceil((top if top > 0 else 1) / step - 1e-9) + 1)]


def month_labels(months: list[date], every: int = 1, *, now: datetime | None = None) -> tuple[list[str], list[str]]:
    """Readable month labels ("3月", "Mar") with the year on the first one shown and at each new year,
    and the labels to print when only every `every`-th month (counted back from the latest) has room."""
    english = current_language() == "en"
    shown = [i for i in range(len(months)) if (len(months) - 1 - i) % every == 0]
    labels, year = [], None
    for i, month in enumerate(months):
        with_year = i in shown and month.year != year
        if i in shown:
            year = month.year
        if english:
            labels.append(f"{month:%b}" + (f" {month:%Y}" if with_year else ""))
        else:
            labels.append((f"{month.year}年" if with_year else "") + f"{month.month}月")
    if months and months[-1] == today(now).replace(day=1):
        # the month under way: its value is a month so far, not comparable with whole months yet
        labels[-1] = _("%(month)s so far", month=labels[-1])
    return labels, [labels[i] for i in shown]


_SCRIPT = re.compile(r"<script\b.*?</script>|<!--.*?-->", re.S)
#: Ids pygal repeats in every chart (legend toggles for its script); a document needs unique ids.
_REPEATED_IDS = re.compile(r'\s+id="activate-serie-\d+"')


def _svg(chart) -> Markup:
    # pygal writes its tooltip configuration as an inline script even with js=[]; nothing runs it.
    return Markup(_REPEATED_IDS.sub("", _SCRIPT.sub("", chart.render(is_unicode=True))))


def as_image(svg: Markup, alt: str) -> Markup:
    """The chart as an <img> with a data: URL, for pages: the page's Content-Security-Policy refuses the
    <style> element of an inline SVG, but not the SVG document of an image."""
    return Markup('<img class="chart" src="{}" alt="{}" width="640">').format(Markup(data_url(svg)), alt)


def _short(text: str) -> str:
    """A label without its explanation in brackets (the table next to the chart keeps it)."""
    return re.split(r"\s*[（(]", text, maxsplit=1)[0] or text


def bars(title: str, rows: list[dict], *, horizontal: bool = False, **options) -> Markup:
    """A bar per row; hidden counts (`<k`) get no bar, only their label."""
    labels = [_short(row["label"]) for row in rows]
    if horizontal:
        # pygal sizes the label column for Latin letters; a Chinese character is about twice as wide.
        wide = max((sum(unicodedata.east_asian_width(c) in "WF" for c in label) for label in labels), default=0)
        options = {"margin_left": 12 + 6 * wide, "margin_right": 34, **options}
    else:
        # Labels that do not fit side by side under their columns are turned, not overlapped.
        width = options.get("width", 640)
        longest = max((sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in label) for label in labels),
                      default=0)
        if labels and longest * 6.5 > (width - 60) / len(labels):
            options = {"x_label_rotation": 30, **options}
    counts = [row["count"] for row in rows]
    drawn = any(c for c in counts) or any(c is None for c in counts)  # all zero: say so instead of empty axes
    ticks = count_ticks(max([c for c in counts if c is not None] + [0]))
    if drawn:  # (pygal cannot place axis labels on a chart without a series)
        options = {"y_labels": ticks, "range": (0, ticks[-1]), **options}
    pygal = _pygal()[0]
    chart = (pygal.HorizontalBar if horizontal else pygal.Bar)(**_config(
        title=title, value_formatter=lambda value: f"{value:g}",
        no_data_text=_("Every count is too small to show") if counts and all(c is None for c in counts)
        else _("No reports in this period"),
        **options))
    chart.x_labels = labels
    if drawn:
        chart.add("", [{"value": row["count"], "label": row["display"]} if row["count"] is not None
                       else {"value": None, "label": row["display"]} for row in rows],
                  formatter=lambda value: "" if value is None else f"{value:g}")
    return _svg(chart)


def trend(title: str, months: list[date], values: list[float | None], *, unit: str, target: float | None = None,
          width: int = 640, height: int = 260, compact: bool = False, now: datetime | None = None) -> Markup:
    """A 12-month trend: the monthly values as a line, the target as a dashed red line, months labelled
    "3月"/"Mar" (every second or third one where the chart is narrow), a y axis with round ticks (0–100 for a
    percentage) and, when no month has a value, the empty state in the reader's language."""
    known = [v for v in values if v is not None]
    top = 100.0 if unit == "percent" else max(known + ([target] if target is not None else []) + [0]) * 1.2
    ticks = [0, 25, 50, 75, 100] if unit == "percent" else value_ticks(top)
    # About 60 px per printed label: "2026年1月" side by side with "2月" must not touch.
    labels, shown = month_labels(months, every=max(1, math.ceil(len(months) * 60 / max(width - 60, 60))), now=now)
    size = 9 if compact else 11
    style = _pygal()[1].__class__(**{**_pygal()[1].to_dict(), "label_font_size": size,
                                     "major_label_font_size": size, "legend_font_size": size})
    chart = _pygal()[0].Line(**_config(
        title=title or None, style=style, width=width, height=height, show_legend=target is not None and not compact,
        legend_at_bottom=True, x_label_rotation=0, print_values=False, dots_size=2 if compact else 2.5,
        allow_interruptions=True, include_x_axis=True,
        # Without a value: no invented 0–1 scale, only the empty state.
        **({"y_labels": ticks, "range": (0, ticks[-1])} if known else {"show_y_labels": False, "show_y_guides": False}),
        value_formatter=lambda v: "" if v is None else f"{v:g}", x_labels_major=shown, show_minor_x_labels=False,
        no_data_text=_("No values in these 12 months"), margin=8 if compact else 12,
        margin_right=24))  # the latest month's label is centred on the last point, at the edge
    chart.x_labels = labels
    if known:
        chart.add(_("Value"), [None if v is None else round(v, 2) for v in values])
        if target is not None:
            chart.add(_("Target"), [target] * len(months), stroke_style={"dasharray": "4, 3"}, show_dots=False)
    return _svg(chart)


def data_url(svg: Markup) -> str:
    """The chart as a data: URL for an <img> (see as_image)."""
    return "data:image/svg+xml;base64," + base64.b64encode(str(svg).encode()).decode()


def funnel(title: str, result: dict, *, labels: dict[str, str]) -> Markup:
    """The funnel plot: departments (rate vs discharges), the hospital rate and the control limits."""
    from qcflow.reports.underreporting import control_limits

    points = result["points"]
    rate = result["hospital_rate"] / 100
    largest = max([p["discharges"] for p in points] + [10]) * 1.05
    smallest = min([p["discharges"] for p in points] + [largest / 20])
    xs = sorted({max(1, round(largest * i / 80)) for i in range(1, 81)} | {p["discharges"] for p in points})
    limits = {x: control_limits(rate, x) for x in xs}
    top = max([p["plot_rate"] * 1.25 for p in points]
              + [control_limits(rate, max(1, round(smallest * 0.6)))["99.8"][1], result["hospital_rate"] * 2, 1])
    chart = _pygal()[0].XY(**_config(title=title, show_legend=True, legend_at_bottom=True, legend_at_bottom_columns=3,
                               print_values=False, dots_size=3, stroke=True, allow_interruptions=True,
                               range=(0, top), xrange=(0, largest), x_title=labels["x"], y_title=labels["y"],
                               height=400, margin_bottom=30))

    def band(name):
        """Lower and upper limit as one series (same colour), broken between the two."""
        inside = [x for x in xs if limits[x][name][1] <= top] or xs[-1:]
        lower = [(x, limits[x][name][0]) for x in xs]
        upper = [(x, limits[x][name][1]) for x in inside]
        return lower + [(None, None)] + upper

    chart.add(labels["rate"], [(0, result["hospital_rate"]), (largest, result["hospital_rate"])],
              show_dots=False, stroke_style={"width": 2.2})
    chart.add(labels["95"], band("95"), show_dots=False, stroke_style={"dasharray": "6, 3", "width": 1.4})
    chart.add(labels["99.8"], band("99.8"), show_dots=False, stroke_style={"dasharray": "2, 2", "width": 1.4})
    shown = [{"value": (p["discharges"], p["plot_rate"]), "label": p["department"]["name"]}
             for p in points if not p["suppressed"]]
    hidden = [{"value": (p["discharges"], p["plot_rate"]), "label": p["department"]["name"]}
              for p in points if p["suppressed"]]
    chart.add(labels["departments"], shown, stroke=False, dots_size=4.5)
    chart.add(labels["hidden"], hidden, stroke=False, dots_size=4.5)
    return _svg(chart)


def kaplan_meier(title: str, series: list[tuple[str, list[float], list[float]]], *, years: int = 5,
                 width: int = 640, height: int = 300) -> Markup:
    """Kaplan–Meier survival curves as steps: each series is (name, days after diagnosis, survival 0..1) as
    lifelines gives them; the x axis is years after diagnosis, the y axis percent surviving."""
    pygal = _pygal()[0]
    chart = pygal.XY(**_config(
        title=title, width=width, height=height, print_values=False, show_legend=len(series) > 1,
        legend_at_bottom=True, legend_at_bottom_columns=3, dots_size=0, stroke=True, show_dots=False,
        range=(0, 100), xrange=(0, years), y_labels=[0, 25, 50, 75, 100], x_labels=list(range(years + 1)),
        x_title=_("Years after diagnosis"), y_title=_("Surviving (%)"),
        value_formatter=lambda value: f"{value:.0f}", no_data_text=_("Too few patients to draw a curve")))
    horizon = years * 365.25
    for name, times, survival in series:
        points, previous = [], None
        for time, value in zip(times, survival):
            if time > horizon:
                break
            if previous is not None:
                points.append((time / 365.25, previous * 100))
            points.append((time / 365.25, value * 100))
            previous = value
        if points and points[-1][0] < years and times and times[-1] >= horizon:
            points.append((years, points[-1][1]))  # followed past the horizon: the last step runs to the edge
        chart.add(name, points)
    return _svg(chart)
