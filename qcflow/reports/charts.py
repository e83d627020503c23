"""SVG charts rendered on the server with pygal: no script, no external style, no XML declaration,
so the same markup goes inline into a page and into a PDF."""
from __future__ import annotations

import base64
import re
import unicodedata
from functools import lru_cache

from markupsafe import Markup

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
        stroke_width=1.6,
    )


def _config(**options) -> dict:
    return {"style": _pygal()[1], "js": [], "disable_xml_declaration": True, "explicit_size": True,
            "width": 640, "height": 300, "margin": 12, "show_legend": False, "print_values": True,
            "print_values_position": "top", "truncate_label": -1, "truncate_legend": -1, **options}


_SCRIPT = re.compile(r"<script\b.*?</script>|<!--.*?-->", re.S)
#: Ids pygal repeats in every chart (legend toggles for its script); a document needs unique ids.
_REPEATED_IDS = re.compile(r'\s+id="activate-serie-\d+"')


def _svg(chart) -> Markup:
    # pygal writes its tooltip configuration as an inline script even with js=[]; nothing runs it.
    return Markup(_REPEATED_IDS.sub("", _SCRIPT.sub("", chart.render(is_unicode=True))))


def as_image(svg: Markup, alt: str) -> Markup:
    """The chart as an <img> with a data: URL, for pages: the page's Content-Security-Policy refuses the
    <style> element of an inline SVG, but not the SVG document of an image."""
    data = base64.b64encode(str(svg).encode()).decode()
    return Markup('<img class="chart" src="data:image/svg+xml;base64,{}" alt="{}" width="640">').format(
        Markup(data), alt)


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
    pygal = _pygal()[0]
    chart = (pygal.HorizontalBar if horizontal else pygal.Bar)(**_config(title=title, **options))
    chart.x_labels = labels
    chart.add("", [{"value": row["count"], "label": row["display"]} if row["count"] is not None
                   else {"value": None, "label": row["display"]} for row in rows],
              formatter=lambda value: "" if value is None else f"{value:g}")
    return _svg(chart)


def line(title: str, labels: list[str], series: dict[str, list[float | None]], *, target: float | None = None,
         target_label: str = "", **options) -> Markup:
    """Trend lines over `labels` (months), with an optional target as a dashed red line."""
    chart = _pygal()[0].Line(**_config(title=title, show_legend=len(series) > 1, legend_at_bottom=True,
                                 x_label_rotation=0, print_values=False, dots_size=2.5, **options))
    chart.x_labels = labels
    for name, values in series.items():
        chart.add(name, values)
    if target is not None:
        chart.add(target_label, [target] * len(labels), stroke_style={"dasharray": "4, 3"}, show_dots=False)
    return _svg(chart)


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
