"""The SVG charts' common parts, drawn by hand (presentation attributes only, so the pages' CSP holds): the frame
with its y axis and lines (values in their unit: indicators.definitions.format_value). The centre's funnel and trend
(region.evaluation) and the hospital's standing (region.views) draw with them."""
from __future__ import annotations

import math

from markupsafe import escape

from qcflow.indicators.definitions import format_value

FONT = '"Noto Sans CJK SC", "WenQuanYi Zen Hei", sans-serif'


def ticks(low: float, high: float, count: int = 5) -> list[float]:
    span = high - low or 1.0
    raw = span / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10, 20, 50) if m * magnitude >= raw)
    first = (low // step) * step
    return [round(first + i * step, 10) for i in range(count + 3) if first + i * step <= high + 1e-9]


def polyline(points, colour: str, dash: str = "") -> str:
    if len(points) < 2:
        return ""
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    dashed = f' stroke-dasharray="{dash}"' if dash else ""
    return f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.4"{dashed}/>'


def chart_frame(box: tuple[int, int, int, int, int, int], title: str, kind: str, low: float, high: float, y,
           unit: str) -> list[str]:
    """The opening of a chart: the SVG element, its title, the plot's frame and the y axis's ticks and grid.
    box: width, height and the left, right, top and bottom margins."""
    width, height, left, right, top, bottom = box
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
             f'role="img" class="chart {kind}" font-family=\'{FONT}\' font-size="11">',
             f"<title>{escape(title)}</title>",
             f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{height - top - bottom}" '
             f'fill="#fff" stroke="#999" stroke-width="0.6"/>']
    for tick in ticks(low, high):
        if low <= tick <= high:
            parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
                         f'stroke="#eee"/><text x="{left - 5}" y="{y(tick) + 4:.1f}" text-anchor="end" '
                         f'fill="#444">{escape(format_value(tick, unit))}</text>')
    return parts
