"""The centre's documents and figures: the funnel plot and the regional trend (hand-written SVG, presentation
attributes only, so the pages' CSP holds), the province table (XLSX) and the six-monthly evaluation (PDF, in
Chinese). Published documents hide a rate whose denominator is under REPORT_SMALL_CELL_K."""
from __future__ import annotations

import io
from datetime import date, datetime

from flask import current_app
from flask_babel import force_locale, gettext as _
from markupsafe import Markup, escape

from qcflow.core.i18n import label
from qcflow.core.time import local
from qcflow.indicators.definitions import format_value
from qcflow.indicators.models import HOSPITAL_LEVELS
from qcflow.region import comparisons as cmp
from qcflow.region.charts import chart_frame, polyline, ticks
from qcflow.region.models import RegionHospital

XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
LEVEL_COLOURS = {"tertiary": "#1f5f99", "secondary": "#b35c00"}
#: The evaluation lists the best and the worst LIST_LENGTH hospitals of a level (all of them when 2 × that or fewer).
LIST_LENGTH = 5
#: Funnel dots outside the 99.8 % limits: on the better side by the indicator's direction, or the worse.
BETTER, WORSE = "#1e8e3e", "#b3261e"


def better_side(outside: str | None, direction: str) -> bool | None:
    """Whether a dot outside the limits ("above"/"below") is on the better side by the indicator's direction
    (None inside the limits or without a direction)."""
    if not outside or direction not in cmp.DESCENDING + cmp.ASCENDING:
        return None
    return (outside == "above") == (direction in cmp.DESCENDING)


def funnel_svg(level: cmp.LevelComparison, unit: str, *, title: str = "", language: str = "zh",
               direction: str = "") -> Markup:
    """The funnel plot of one level: x the denominator, y the rate; the pooled rate and its 95 % and 99.8 %
    limits; hospitals outside 99.8 % in green on the better side (by `direction`) and red on the worse (each
    point's title names the hospital). A rate over fewer than k cases is left out."""
    width, height, left, right, top, bottom = 640, 376, 58, 16, 44, 44
    rows = [r for r in level.rows if r.value is not None and r.denominator and not r.small]
    if level.proportion is None or not rows:
        return Markup("")
    largest = max(r.denominator for r in rows) * 1.1 + 1  # where the limits' grid ends (funnel_limits)
    smallest = min(r.denominator for r in rows)
    shown_limits = [lim for lim in level.limits if lim.denominator >= smallest * 0.6]
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
    for tick in ticks(0, largest):
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
        better = better_side(row.outside, direction)
        colour = (LEVEL_COLOURS.get(level.level, "#1f5f99") if not row.outside
                  else BETTER if better else WORSE if better is False else "#555")
        tip = f"{row.hospital.label(language)} {format_value(row.value, unit)} (n={row.denominator})"
        parts.append(f'<circle cx="{x(row.denominator):.1f}" cy="{y(row.value):.1f}" r="4" fill="{colour}" '
                     f'fill-opacity="0.8" data-outside="{row.outside or ""}"><title>{escape(tip)}</title></circle>')
    legend = [(_("Regional value"), "#222", ""), (_("95 per cent limits"), "#2a7a2a", "5 3"),
              (_("99.8 per cent limits"), "#b3261e", "2 2")]
    for i, (text, colour, dash) in enumerate(legend):
        at = left + i * 150
        parts.append(polyline([(at, 14), (at + 22, 14)], colour, dash))
        parts.append(f'<text x="{at + 26}" y="18" fill="#222">{escape(text)}</text>')
    if direction in cmp.DESCENDING + cmp.ASCENDING:
        for i, (text, colour) in enumerate(((_("Better than the limits"), BETTER), (_("Worse than the limits"),
                                                                                  WORSE))):
            at = left + i * 150
            parts.append(f'<circle cx="{at + 11}" cy="30" r="4" fill="{colour}"/>'
                         f'<text x="{at + 26}" y="34" fill="#222" class="legend-{("better", "worse")[i]}">'
                         f'{escape(text)}</text>')
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

def unit_suffix(unit: str) -> str:
    """The unit after an indicator's name in a table header: （%）, （‰）, （分钟）; none for counts and statuses."""
    sign = {"percent": "%", "permille": "‰"}.get(unit)
    if sign is None and unit in ("minutes", "hours", "per100", "ratio"):
        sign = label("ind_unit", unit)
    return f"（{sign}）" if sign else ""


def _published(unit: str, sums: cmp.Sums, value: float | None, k: int):
    """A cell of a published table: the value, "<k" for a rate over fewer than k cases, a status in words."""
    if value is None:
        return None
    if unit in cmp.RATE_UNITS and sums.denominator is not None and sums.denominator < k:
        return f"<{k}"
    if unit == "status":
        return _("Done") if value >= 1 else _("Not done")
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
    sheet.write(1, 0, _("“<%(k)d”: a rate over fewer than %(k)d cases, not shown so that no patient can be "
                        "recognised.", k=k), plain)
    sheet.write_row(header, 0, lead + [e.label(language) + unit_suffix(e.unit) for e in entries], bold)
    row = header + 1
    for level in HOSPITAL_LEVELS:
        targets = catalogue.targets(end.year, level)
        cells = [f"{label('ind_comparison', t.comparison)}{format_value(t.value, e.unit)}" if (t := targets.get(e.code))
                 else ""
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
                sheet.write(row, column, _published(e.unit, cmp.Sums(), value, k))
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
    value, how many hospitals meet the target, the funnel plot and the best and worst five, or the whole ranking
    with ten hospitals or fewer (rates over fewer than k cases are left out of those lists and the funnel)."""
    from qcflow.indicators import catalogue

    start, end = cmp.half_year(year, half)
    months, rows = cmp.completeness(year, local(now).date())
    months = [m for m in months if start <= m <= end]
    completeness = [(row.hospital, sum(1 for m in months if row.cells[m].status == cmp.SENT), row.expected(months),
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
            # Ten hospitals or fewer: one list (the best and the worst five would name the same hospitals).
            whole = len(ranked) <= 2 * LIST_LENGTH
            levels.append({"level": level, "ranking": ranked if whole else [],
                           "best": [] if whole else ranked[:LIST_LENGTH],
                           "worst": [] if whole else list(reversed(ranked[-LIST_LENGTH:])),
                           "funnel": funnel_svg(level, entry.unit, title=entry.label("zh"),
                                                direction=entry.direction)})
        sections.append({"entry": entry, "levels": levels})
    issuer = current_app.config.get("HOSPITAL_NAME") or _("Regional quality-control centre")
    return {"year": year, "half": half, "start": start, "end": end, "months": months, "issuer": issuer,
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
