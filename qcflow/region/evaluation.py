"""The centre's documents and figures: the funnel plot and the regional trend (hand-written SVG, presentation
attributes only, so the pages' CSP holds), the province table (XLSX) and the six-monthly evaluation (PDF, in
Chinese). Published documents hide a rate whose denominator is under REPORT_SMALL_CELL_K."""
from __future__ import annotations

import io
import math
from datetime import date, datetime

from flask_babel import force_locale, gettext as _
from markupsafe import Markup, escape

from qcflow.core.i18n import label
from qcflow.core.time import local
from qcflow.indicators.models import HOSPITAL_LEVELS
from qcflow.region import comparisons as cmp
from qcflow.region.models import RegionHospital

XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
LEVEL_COLOURS = {"tertiary": "#1f5f99", "secondary": "#b35c00"}
FONT = '"Noto Sans CJK SC", "WenQuanYi Zen Hei", sans-serif'


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit in ("count", "status"):
        return f"{value:.0f}" if unit == "count" else f"{value:g}"
    return f"{value:.2f}" + {"percent": "%", "permille": "‰"}.get(unit, "")


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
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
    for tick in _ticks(low, high):
        if low <= tick <= high:
            parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
                         f'stroke="#eee"/><text x="{left - 5}" y="{y(tick) + 4:.1f}" text-anchor="end" '
                         f'fill="#444">{escape(format_value(tick, unit))}</text>')
    return parts


def funnel_svg(level: cmp.LevelComparison, unit: str, *, title: str = "", language: str = "zh") -> Markup:
    """The funnel plot of one level: x the denominator, y the rate; the pooled rate and its 95 % and 99.8 %
    limits; hospitals outside 99.8 % in red (each point's title names the hospital)."""
    width, height, left, right, top, bottom = 640, 360, 58, 16, 28, 44
    rows = [r for r in level.rows if r.value is not None and r.denominator]
    if level.proportion is None or not rows:
        return Markup("")
    largest = max(r.denominator for r in rows) * 1.1 + 1  # where the limits' grid ends (funnel_limits)
    shown_limits = [lim for lim in level.limits if lim.denominator >= min(r.denominator for r in rows) * 0.6]
    values = [r.value for r in rows] + [lim.upper95 for lim in shown_limits] + [lim.lower95 for lim in shown_limits]
    centre = level.regional_value or 0.0
    low, high = min(values + [centre]), max(values + [centre])
    pad = (high - low) * 0.08 or max(abs(high) * 0.1, 1.0)
    low, high = max(low - pad, 0.0), high + pad

    def x(n: float) -> float:
        return left + (width - left - right) * n / largest

    def y(v: float) -> float:
        v = min(max(v, low), high)
        return top + (height - top - bottom) * (1 - (v - low) / (high - low))

    x_name = _("Denominator (cases)")
    parts = chart_frame((width, height, left, right, top, bottom), title or _("Funnel plot"), "funnel", low, high, y,
                        unit)
    for tick in _ticks(0, largest):
        if 0 <= tick <= largest:
            parts.append(f'<text x="{x(tick):.1f}" y="{height - bottom + 16}" text-anchor="middle" '
                         f'fill="#444">{tick:g}</text>')
    parts.append(f'<text x="{(left + width - right) / 2:.0f}" y="{height - 6}" text-anchor="middle" '
                 f'fill="#222">{escape(x_name)}</text>')
    limits = [lim for lim in level.limits if lim.denominator <= largest + 1]

    def inside(points):
        # A limit is drawn where it lies within the plotted range (not pressed flat against its edge).
        return [(x(n), y(v)) for n, v in points if low <= v <= high]

    parts.append(polyline([(x(0), y(centre)), (x(largest), y(centre))], "#222"))
    for attribute, colour, dash in (("upper95", "#2a7a2a", "5 3"), ("lower95", "#2a7a2a", "5 3"),
                                    ("upper998", "#b3261e", "2 2"), ("lower998", "#b3261e", "2 2")):
        parts.append(polyline(inside((lim.denominator, getattr(lim, attribute)) for lim in limits), colour, dash))
    for row in rows:
        colour = "#b3261e" if row.outside else LEVEL_COLOURS.get(level.level, "#1f5f99")
        tip = f"{row.hospital.label(language)} {format_value(row.value, unit)} (n={row.denominator})"
        parts.append(f'<circle cx="{x(row.denominator):.1f}" cy="{y(row.value):.1f}" r="4" fill="{colour}" '
                     f'fill-opacity="0.8" data-outside="{row.outside or ""}"><title>{escape(tip)}</title></circle>')
    legend = [(_("Regional value"), "#222", ""), (_("95 per cent limits"), "#2a7a2a", "5 3"),
              (_("99.8 per cent limits"), "#b3261e", "2 2")]
    for i, (text, colour, dash) in enumerate(legend):
        at = left + i * 150
        parts.append(polyline([(at, 14), (at + 22, 14)], colour, dash))
        parts.append(f'<text x="{at + 26}" y="18" fill="#222">{escape(text)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def trend_svg(trend: dict[str, list[tuple[date, float | None]]], unit: str, *, title: str = "") -> Markup:
    """The regional value of each month, one line per level."""
    width, height, left, right, top, bottom = 640, 260, 58, 30, 28, 40
    values = [v for points in trend.values() for _m, v in points if v is not None]
    months = next(iter(trend.values()), [])
    if not values or not months:
        return Markup("")
    low, high = min(values), max(values)
    pad = (high - low) * 0.1 or max(abs(high) * 0.1, 1.0)
    low, high = max(low - pad, 0.0) if low >= 0 else low - pad, high + pad
    step = (width - left - right) / max(len(months) - 1, 1)
    trend_name = _("Regional value by month")

    def y(v: float) -> float:
        return top + (height - top - bottom) * (1 - (v - low) / (high - low))

    parts = chart_frame((width, height, left, right, top, bottom), title or trend_name, "trend", low, high, y, unit)
    every = max(1, len(months) // 8)
    for i, (month, _v) in enumerate(months):
        if i % every == 0:
            parts.append(f'<text x="{left + i * step:.1f}" y="{height - bottom + 16}" text-anchor="middle" '
                         f'fill="#444">{month:%Y-%m}</text>')
    for n, (level, points) in enumerate(trend.items()):
        colour = LEVEL_COLOURS.get(level, "#555")
        segment = []
        for i, (_month, value) in enumerate(points):
            if value is None:
                parts.append(polyline(segment, colour))
                segment = []
                continue
            segment.append((left + i * step, y(value)))
            parts.append(f'<circle cx="{left + i * step:.1f}" cy="{y(value):.1f}" r="2.5" fill="{colour}"/>')
        parts.append(polyline(segment, colour))
        at = left + n * 170
        parts.append(polyline([(at, 14), (at + 22, 14)], colour))
        parts.append(f'<text x="{at + 26}" y="18" fill="#222">{escape(label("ind_level", level))}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


# The province table -----------------------------------------------------------------------------------------

def _published(unit: str, sums: cmp.Sums, value: float | None, k: int):
    """A cell of a published table: the value, or "<k" for a rate over fewer than k cases."""
    if value is None:
        return None
    if unit in cmp.RATE_UNITS and sums.denominator is not None and sums.denominator < k:
        return f"<{k}"
    return round(value, 4)


def province_xlsx(start: date, end: date, hospitals: list[RegionHospital], language: str, now: datetime) -> bytes:
    """One row per hospital and one column per indicator sent in the period; targets per level in header rows,
    the regional value of each level in rows at the end; small cells shown as "<k"."""
    import xlsxwriter

    from qcflow.indicators import catalogue

    k = cmp.small_cell_k()
    sums = cmp.sums_by_code(start, end)
    entries = [e for e in catalogue.entries(include_local=False) if e.code in sums]
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_formulas": False,
                                            "strings_to_urls": False, "strings_to_numbers": False})
    workbook.set_properties({"title": _("Province table"), "author": "qcflow",
                             "created": local(now).replace(tzinfo=None)})
    sheet = workbook.add_worksheet(_("Province table")[:31])
    bold = workbook.add_format({"bold": True, "text_wrap": True, "valign": "top", "bg_color": "#E8EDF2"})
    plain = workbook.add_format({})
    sheet.write(0, 0, _("Province table, %(start)s to %(end)s", start=cmp.month_text(start),
                        end=cmp.month_text(end)), workbook.add_format({"bold": True, "font_size": 13}))
    lead = [_("Hospital code"), _("Hospital"), _("Level"), _("Ownership"), _("Region")]
    header = 2
    sheet.write_row(header, 0, lead + [e.label(language) for e in entries], bold)
    sheet.write_row(header + 1, 0, [_("Indicator code"), "", "", "", ""] + [e.code for e in entries], plain)
    row = header + 2
    for level in HOSPITAL_LEVELS:
        targets = catalogue.targets(end.year, level)
        cells = [f"{label('ind_comparison', t.comparison)}{t.value:g}" if (t := targets.get(e.code)) else ""
                 for e in entries]
        sheet.write_row(row, 0, [_("Target: %(level)s", level=label("ind_level", level)), "", "", "", ""] + cells,
                        plain)
        row += 1
    sheet.freeze_panes(row, 2)
    for hospital in hospitals:
        values = []
        for e in entries:
            found = sums[e.code].get(hospital.id)
            values.append(_published(e.unit, found, found.value(e.unit), k) if found else None)
        sheet.write_row(row, 0, [hospital.code, hospital.label(language), label("ind_level", hospital.level),
                                 label("region_ownership", hospital.ownership), hospital.region], plain)
        for column, value in enumerate(values, start=len(lead)):
            if value is not None:
                sheet.write(row, column, value)
        row += 1
    for level in HOSPITAL_LEVELS:
        ids = {h.id for h in hospitals if h.level == level}
        sheet.write_row(row, 0, [_("Regional value: %(level)s", level=label("ind_level", level)), "", "", "", ""],
                        bold)
        for column, e in enumerate(entries, start=len(lead)):
            group = [s for hid, s in sums[e.code].items() if hid in ids]
            value = cmp.regional_value(e.unit, cmp.pooled(e.unit, group)) if group else None
            if value is not None:
                sheet.write(row, column, round(value, 4))
        row += 1
    sheet.set_column(0, 0, 16)
    sheet.set_column(1, 1, 24)
    sheet.set_column(2, 4, 10)
    sheet.set_column(len(lead), len(lead) + max(len(entries) - 1, 0), 14)
    workbook.close()
    return buffer.getvalue()


# The six-monthly evaluation -----------------------------------------------------------------------------------

def evaluation_context(year: int, half: int, now: datetime) -> dict:
    """What the evaluation shows: the half-year's completeness and, per indicator sent, each level's regional
    value, how many hospitals meet the target, the funnel plot and the best and worst five (rates over fewer
    than k cases are left out of those lists)."""
    from qcflow.indicators import catalogue

    start, end = cmp.half_year(year, half)
    months, rows = cmp.completeness(year, local(now).date())
    months = [m for m in months if start <= m <= end]
    completeness = [(row.hospital, sum(1 for m in months if row.cells[m].status == cmp.SENT),
                     sum(1 for m in months if row.cells[m].status == cmp.OVERDUE)) for row in rows]
    sent_codes = set(cmp.sums_by_code(start, end))
    sections = []
    for entry in catalogue.entries(include_local=False):
        if entry.code not in sent_codes:
            continue
        comparison = cmp.compare(entry.code, start, end)
        levels = []
        for level in comparison.levels:
            ranked = [r for r in level.rows if r.rank is not None and not r.small]
            levels.append({"level": level, "best": ranked[:5], "worst": list(reversed(ranked[-5:])) if ranked else [],
                           "funnel": funnel_svg(level, entry.unit, title=entry.label("zh"))})
        sections.append({"entry": entry, "levels": levels})
    return {"year": year, "half": half, "start": start, "end": end, "months": months,
            "completeness": completeness, "sections": sections, "printed_at": now, "k": cmp.small_cell_k()}


def evaluation_pdf(year: int, half: int, now: datetime) -> bytes:
    """The six-monthly evaluation as PDF, in Chinese whatever the reader's language."""
    from qcflow.reports import charts, pdf

    with force_locale("zh"):
        context = evaluation_context(year, half, now)
        for section in context["sections"]:
            for level in section["levels"]:
                level["image"] = charts.data_url(level["funnel"]) if level["funnel"] else None
        return pdf.render_template_pdf("centre/evaluation_pdf.html", **context)
