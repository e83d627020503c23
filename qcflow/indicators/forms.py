"""The forms sent upward: the plan's annual monitoring form (监测指标数据填报表) and the quarterly report to the
quality office, generated from the catalogue's values and archived frozen (docs/indicators.md, Forms sent to the
province).

A form is made in three steps, each a pure function of the one before: the **snapshot** (every annex row in the
annex's order and wording, each of its indicators with value, parts, target, met and status), the **XLSX**
rendered from the snapshot alone, and the **JSON twin**: the snapshot with the XLSX's SHA-256, serialised
canonically. The archive stores the XLSX and the twin's bytes; downloads return them unchanged.

The form is the province's document: its headers and status texts are Chinese whatever the reader's language
(the English wording travels in the JSON twin only).
"""
from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from datetime import date, datetime, timezone

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import defer
from flask_babel import gettext as _

from qcflow.auth.models import Department, Role, User
from qcflow.core import audit
from qcflow.core.actors import Actor
from qcflow.core.canonical import canonical
from qcflow.core.errors import NotFound, Unprocessable
from qcflow.core.i18n import current_language, label_list
from qcflow.core.periods import add_months, month_end
from qcflow.core.time import local, today
from qcflow.extensions import db
from qcflow.indicators import catalogue, queries
from qcflow.indicators.definitions import settled_at
from qcflow.indicators.models import FORM_KINDS, IndicatorForm, IndicatorFormReminder, IndicatorReport
from qcflow.notify.services import notify, users_with_role

SCHEMA = "qcflow.indicator-form/1"
XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
#: What a line's `status` says (docs/indicators.md, Forms sent to the province).
STATUSES = ("ok", "partial", "missing", "no_cases", "not_applicable", "not_available")
#: Decimal places of a value in the snapshot (the XLSX shows two).
DECIMALS = 4

#: The plans' titles as they print them, and in English for the JSON twin.
PLAN_TITLES = {
    "henan": ("河南省全面提升医疗质量行动实施方案（2023-2025年）",
              "Henan plan for comprehensively improving the quality of medical care (2023-2025)"),
    "yubei": ("重庆市渝北区全面提升医疗质量行动实施方案（2023-2025年）",
              "Chongqing Yubei District plan for comprehensively improving the quality of medical care (2023-2025)"),
    "shaoxing": ("绍兴市中医院医疗质量三年提升行动方案（2023-2025年）",
                 "Shaoxing Hospital of TCM three-year plan for improving the quality of medical care (2023-2025)"),
    "guizhou": ("贵州省全面提升医疗质量行动实施方案（2023—2025年）",
                "Guizhou plan for comprehensively improving the quality of medical care (2023-2025)"),
}
LEVELS_ZH = {"tertiary": "三级", "secondary": "二级"}
UNITS_ZH = {"percent": "%", "permille": "‰", "per100": "例次/百出院人次", "count": "例（次）", "minutes": "分钟",
            "hours": "小时", "days": "天", "ratio": "比值", "status": "完成情况（1=已完成）"}
STATUS_ZH = {"ok": "", "partial": "部分月份已审核", "missing": "缺失", "no_cases": "本期无病例（分母为0）",
             "not_applicable": "不适用", "not_available": "本系统暂无数据"}
COMPARISONS_ZH = {"gt": ">", "ge": "≥", "le": "≤", "lt": "<"}


@dataclass(frozen=True)
class FormPeriod:
    """The period of a form: a calendar year, or one quarter of it."""

    kind: str
    year: int
    quarter: int | None
    starts_on: date
    ends_on: date

    @property
    def months(self) -> list[date]:
        count = 12 if self.kind == "annual" else 3
        return [add_months(self.starts_on, n) for n in range(count)]


def form_period(kind: str, year: int, quarter: int | None = None) -> FormPeriod:
    """The period of a kind of form: the year, or the quarter of the year; an unknown kind, a quarter out of
    1..4, a quarterly report without its quarter or an annual form with one is a 422 on that field."""
    if kind not in FORM_KINDS:
        raise Unprocessable(errors={"kind": [_("Choose one of: %(values)s.",
                                               values=label_list("ind_form_kind", FORM_KINDS))]})
    if not 2000 <= year <= 2100:
        raise Unprocessable(errors={"year": [_("Out of range (%(low)s to %(high)s).", low=2000, high=2100)]})
    if kind == "annual":
        if quarter is not None:
            raise Unprocessable(errors={"quarter": [_("An annual form has no quarter: leave it empty.")]})
        return FormPeriod(kind, year, None, date(year, 1, 1), date(year, 12, 31))
    if quarter is None:
        raise Unprocessable(errors={"quarter": [_("Choose the quarter (1 to 4).")]})
    if not 1 <= quarter <= 4:
        raise Unprocessable(errors={"quarter": [_("Out of range (%(low)s to %(high)s).", low=1, high=4)]})
    first = date(year, 3 * quarter - 2, 1)
    return FormPeriod(kind, year, quarter, first, month_end(add_months(first, 2)))


def final_from(period: FormPeriod) -> datetime:
    """When the period's values are final: its last month is settled (definitions.settled_at)."""
    return settled_at(period.months[-1])


def check_period(period: FormPeriod, now: datetime, *, draft: bool) -> None:
    """A period that has not begun is refused; one not yet final is refused unless for a draft."""
    field = "year" if period.kind == "annual" else "quarter"
    if period.starts_on > today(now):
        raise Unprocessable(_("This period has not begun yet."), errors={field: [_("This period is in the future.")]})
    if not draft and now < final_from(period):
        at = local(final_from(period)).strftime("%Y-%m-%d %H:%M")
        raise Unprocessable(_("This period is not over yet: its values are final from %(at)s.", at=at), errors={
            field: [_("Not over yet: its values are final from %(at)s. Generate a draft to preview it.", at=at)]})


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), DECIMALS)


def approved_months(codes: list[str], first: date, last: date) -> dict[str, set[date]]:
    """The months (first days) of first..last that have an approved report, by code (any department)."""
    if not codes:
        return {}
    found: dict[str, set[date]] = {}
    stmt = sa.select(IndicatorReport.code, IndicatorReport.month_on).where(
        IndicatorReport.code.in_(codes), IndicatorReport.month_on >= first, IndicatorReport.month_on <= last,
        IndicatorReport.state == "approved").distinct()
    for code, month in db.session.execute(stmt):
        found.setdefault(code, set()).add(month)
    return found


def _status(entry: catalogue.Entry | None, value: queries.IndicatorValue | None, approved: int,
            months: int) -> tuple[str, str]:
    """(status, reason in Chinese) of one indicator's value for the form."""
    if entry is None:
        return "not_available", "目录中无此指标"
    if entry.method == "not_applicable":
        return "not_applicable", f"不适用：{entry.reason}" if entry.reason else "不适用"
    if value is None:
        return "not_available", "本系统暂无此指标的计算"
    pending = f"（{value.pending} 条待审核，未计入）" if value.pending else ""
    if entry.method == "reported":
        if approved == 0:
            return "missing", ("缺失：未审核通过" if value.pending else "缺失：未上报") + pending
        if approved < months:
            return "partial", f"部分缺失：已审核 {approved}/{months} 个月" + pending
    if value.value is None:
        return "no_cases", STATUS_ZH["no_cases"] + pending
    return "ok", pending.strip("（）") if pending else ""


def _line(code: str, entry: catalogue.Entry | None, value: queries.IndicatorValue | None,
          target: catalogue.Target | None, target_text: str, approved: set[date], period: FormPeriod,
          by_month: list[dict[str, queries.IndicatorValue]]) -> dict:
    months = len(period.months)
    status, reason = _status(entry, value, len(approved), months)
    has_value = status in ("ok", "partial")
    number = _rounded(value.value) if has_value and value is not None else None
    goal, comparison = (target.value, target.comparison) if target is not None else (None, None)
    return {
        "code": code,
        "name": entry.name if entry else code,
        "name_en": entry.name_en if entry else "",
        "unit": entry.unit if entry else "",
        "method": entry.method if entry else "",
        "value": number,
        "numerator": value.numerator if has_value and value is not None else None,
        "denominator": value.denominator if has_value and value is not None else None,
        "target": {"comparison": comparison, "value": goal, "text": target_text,
                   "source": (target.source or None) if target is not None else None,
                   "set_by": target.set if target is not None else None},
        "met": queries.is_met(value.value, goal, comparison) if has_value and value is not None else None,
        "status": status,
        "reason": reason,
        "pending": value.pending if value is not None else 0,
        "months_approved": len(approved) if entry is not None and entry.method == "reported" else None,
        "months": [_month_cell(month, values.get(code), entry, code in values, month in approved)
                   for month, values in zip(period.months, by_month)],
    }


def _month_cell(month: date, value: queries.IndicatorValue | None, entry: catalogue.Entry | None, present: bool,
                approved: bool) -> dict:
    usable = present and value is not None and (entry is None or entry.method != "reported" or approved)
    return {"month": f"{month:%Y-%m}", "value": _rounded(value.value) if usable else None,
            "numerator": value.numerator if usable else None, "denominator": value.denominator if usable else None}


def snapshot(plan: str, period: FormPeriod, *, now: datetime, generated_by: str,
             revision: int | None) -> dict:
    """Everything the form shows, as the JSON twin holds it (without the XLSX's digest)."""
    rows = catalogue.annex(plan)
    entries = {e.code: e for e in catalogue.entries(include_local=False)}
    values = queries.catalogue_values(period.starts_on, period.ends_on, now=now)
    by_month = ([queries.catalogue_values(month, month_end(month), now=now) for month in period.months]
                if period.kind == "quarterly" else [])
    codes = sorted({code for row in rows for code in row.codes})
    approved = approved_months(codes, period.starts_on, period.months[-1])
    targets = catalogue.targets(period.year, queries.hospital_level(), plan_key=plan)
    config = current_app.config
    return {
        "schema": SCHEMA,
        "plan": {"key": plan, "title": PLAN_TITLES[plan][0], "title_en": PLAN_TITLES[plan][1]},
        "kind": period.kind,
        "period": {"year": period.year, "quarter": period.quarter, "start": period.starts_on.isoformat(),
                   "end": period.ends_on.isoformat(), "months": [f"{m:%Y-%m}" for m in period.months]},
        "hospital": {"name": config["HOSPITAL_NAME"] or "", "level": queries.hospital_level()},
        "generated_at": now.astimezone(timezone.utc).isoformat(),
        "generated_by": generated_by,
        "revision": revision,
        "draft": revision is None,
        "rows": [{
            "seq": row.seq, "dimension": row.dimension, "dimension_en": row.dimension_en, "wording": row.wording,
            "wording_en": row.wording_en, "target_text": row.target_text, "responsible": row.responsible,
            "codes": [_line(code, entries.get(code), values.get(code), targets.get(code), row.target_text,
                            approved.get(code, set()), period, by_month) for code in row.codes],
        } for row in rows],
    }


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# The XLSX -------------------------------------------------------------------------------------------------------

#: Columns of the table: (header, width). The value columns depend on the kind of form.
LEAD_COLUMNS = [("序号", 6), ("维度", 14), ("指标（方案附件原文）", 34), ("具体指标", 30), ("单位", 10)]
TAIL_COLUMNS = [("分子", 10), ("分母", 10), ("方案目标", 14), ("本院采用目标", 12), ("是否达标", 9),
                ("状态及说明", 30)]


def _value_columns(data: dict) -> list[tuple[str, int]]:
    if data["kind"] == "annual":
        return [("年度值", 11)]
    return [(f"{int(m[5:])}月", 10) for m in data["period"]["months"]] + [("季度值", 11)]


def _target_used(target: dict) -> str:
    if target["comparison"] is None or target["value"] is None:
        return "无目标"
    return f"{COMPARISONS_ZH[target['comparison']]} {target['value']:g}"


def _met_text(line: dict) -> str:
    if line["met"] is None:
        return "无目标" if line["value"] is not None and line["target"]["value"] is None else "—"
    return "达标" if line["met"] else "未达标"


def _status_text(line: dict) -> str:
    if line["status"] == "ok":
        return line["reason"] or "已完成"
    return line["reason"] or STATUS_ZH[line["status"]]


def title_of(data: dict) -> str:
    if data["kind"] == "annual":
        return f"医疗质量监测指标数据填报表（{data['period']['year']}年）"
    return f"医疗质量监测指标季度报告（{data['period']['year']}年第{data['period']['quarter']}季度）"


def render_xlsx(data: dict) -> bytes:
    """The form as an XLSX workbook, from the snapshot alone (the same snapshot gives the same bytes)."""
    import xlsxwriter

    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_formulas": False,
                                            "strings_to_urls": False, "strings_to_numbers": False})
    created = datetime.fromisoformat(data["generated_at"]).replace(tzinfo=None)
    workbook.set_properties({"title": title_of(data), "author": "qcflow", "created": created})
    sheet = workbook.add_worksheet("年度监测指标" if data["kind"] == "annual" else "季度报告")
    base = {"font_name": "SimSun", "font_size": 10, "valign": "vcenter", "text_wrap": True, "border": 1}
    title = workbook.add_format({"bold": True, "font_size": 14, "align": "center", "valign": "vcenter"})
    info = workbook.add_format({"font_size": 10, "valign": "vcenter"})
    head = workbook.add_format({**base, "bold": True, "align": "center", "bg_color": "#E8EDF2"})
    text = workbook.add_format(base)
    centre = workbook.add_format({**base, "align": "center"})
    numbers = {decimals: workbook.add_format({**base, "num_format": "0" if decimals == 0 else "0.00"})
               for decimals in (0, 2)}
    columns = LEAD_COLUMNS + _value_columns(data) + TAIL_COLUMNS
    last = len(columns) - 1
    for index, (_header, width) in enumerate(columns):
        sheet.set_column(index, index, width)

    period = data["period"]
    hospital = data["hospital"]
    sheet.set_row(0, 26)
    sheet.merge_range(0, 0, 0, last, title_of(data), title)
    revision = f"第 {data['revision']} 版" if data["revision"] else "草稿（未存档，数值可能变化）"
    generated = local(datetime.fromisoformat(data["generated_at"])).strftime("%Y-%m-%d %H:%M")
    lines = [
        f"医院名称：{hospital['name'] or '（未设置）'}    医院等级：{LEVELS_ZH.get(hospital['level'], hospital['level'])}",
        f"方案：{data['plan']['title']}",
        f"统计期间：{period['start']} 至 {period['end']}    生成时间：{generated}    生成人：{data['generated_by']}"
        f"    版本：{revision}",
    ]
    for offset, line in enumerate(lines, start=1):
        sheet.merge_range(offset, 0, offset, last, line, info)
    header_row = len(lines) + 2
    sheet.set_row(header_row, 30)
    sheet.write_row(header_row, 0, [header for header, _width in columns], head)
    sheet.freeze_panes(header_row + 1, 0)

    row = header_row + 1
    value_start = len(LEAD_COLUMNS)
    for annex_row in data["rows"]:
        lines_of = annex_row["codes"] or [None]
        span = len(lines_of)
        for column, cell in ((0, annex_row["seq"]), (1, annex_row["dimension"]), (2, annex_row["wording"]),
                             (value_start + len(_value_columns(data)) + 2, annex_row["target_text"] or "—")):
            style = centre if column == 0 else text
            if span > 1:
                sheet.merge_range(row, column, row + span - 1, column, cell, style)
            else:
                sheet.write(row, column, cell, style)
        for line in lines_of:
            _write_line(sheet, row, line, data, value_start, text, centre, numbers)
            row += 1

    sheet.set_landscape()
    sheet.set_paper(9)  # A4
    sheet.set_margins(left=0.4, right=0.4, top=0.5, bottom=0.5)
    sheet.repeat_rows(header_row)
    sheet.fit_to_pages(1, 0)
    sheet.set_footer("&C第 &P 页，共 &N 页")
    workbook.close()
    return buffer.getvalue()


def _write_line(sheet, row: int, line: dict | None, data: dict, start: int, text, centre, numbers) -> None:
    values = len(_value_columns(data))
    if line is None:  # an annex row without an indicator code: the wording alone
        sheet.write(row, 3, "", text)
        sheet.write(row, 4, "", text)
        for column in range(start, start + values + len(TAIL_COLUMNS)):
            if column != start + values + 2:
                sheet.write(row, column, "", text)
        return
    decimals = 0 if line["unit"] in ("count", "status") else 2
    sheet.write(row, 3, line["name"], text)
    sheet.write(row, 4, UNITS_ZH.get(line["unit"], line["unit"]), centre)
    cells = [month["value"] for month in line["months"]] + [line["value"]] if data["kind"] == "quarterly" \
        else [line["value"]]
    for offset, cell in enumerate(cells):
        _number(sheet, row, start + offset, cell, numbers[decimals], centre)
    tail = start + values
    _number(sheet, row, tail, line["numerator"], numbers[0], centre)
    _number(sheet, row, tail + 1, line["denominator"], numbers[0], centre)
    sheet.write(row, tail + 3, _target_used(line["target"]), centre)
    sheet.write(row, tail + 4, _met_text(line), centre)
    sheet.write(row, tail + 5, _status_text(line), text)


def _number(sheet, row: int, column: int, value, style, empty) -> None:
    if value is None:
        sheet.write(row, column, "—", empty)
    else:
        sheet.write_number(row, column, value, style)


# Generating and archiving ---------------------------------------------------------------------------------------

def _name_of(actor: Actor) -> str:
    if actor.user_id is not None:
        user = db.session.get(User, actor.user_id)
        if user is not None:
            return user.display_name or user.username
    return "系统"


def next_revision(plan: str, period: FormPeriod) -> int:
    latest = db.session.scalar(sa.select(sa.func.max(IndicatorForm.revision)).where(
        IndicatorForm.plan == plan, IndicatorForm.kind == period.kind, IndicatorForm.starts_on == period.starts_on))
    return (latest or 0) + 1


def generate_form(plan: str, kind: str, year: int, quarter: int | None, *, actor: Actor, now: datetime,
                  draft: bool = False) -> IndicatorForm:
    """Generate a form of the plan for a finished year or quarter and archive it as the next revision (audited);
    a draft may cover a period still running and is returned, not archived."""
    if plan not in PLAN_TITLES:
        raise Unprocessable(errors={"plan": [_("Choose one of: %(values)s.", values=", ".join(PLAN_TITLES))]})
    period = form_period(kind, year, quarter)
    check_period(period, now, draft=draft)
    if not catalogue.annex(plan):
        raise Unprocessable(errors={"plan": [_("This plan's annex has no rows: there is nothing to fill in.")]})
    revision = None if draft else next_revision(plan, period)
    name = _name_of(actor)
    data = snapshot(plan, period, now=now, generated_by=name, revision=revision)
    xlsx = render_xlsx(data)
    twin = canonical({**data, "xlsx_sha256": sha256(xlsx)})
    form = IndicatorForm(plan=plan, kind=kind, starts_on=period.starts_on, ends_on=period.ends_on,
                         revision=revision or 0, generated_at=now, generated_by=actor.audit_name,
                         generator_name=name, snapshot=twin, xlsx=xlsx, xlsx_sha256=sha256(xlsx),
                         json_sha256=sha256(twin.encode()))
    if draft:
        return form
    db.session.add(form)
    db.session.flush()
    audit.record(actor.audit_name, "indicator_form.generate", "indicator_form", form.id, now, after={
        "plan": plan, "kind": kind, "start": period.starts_on.isoformat(), "end": period.ends_on.isoformat(),
        "revision": revision, "xlsx_sha256": form.xlsx_sha256, "json_sha256": form.json_sha256})
    return form


def period_of(form: IndicatorForm) -> FormPeriod:
    quarter = None if form.kind == "annual" else (form.starts_on.month + 2) // 3
    return FormPeriod(form.kind, form.starts_on.year, quarter, form.starts_on, form.ends_on)


def filename(form: IndicatorForm, extension: str) -> str:
    period = period_of(form)
    when = f"{period.year}" if period.quarter is None else f"{period.year}-q{period.quarter}"
    revision = f"r{form.revision}" if form.revision else "draft"
    return f"indicator-form-{form.plan}-{form.kind}-{when}-{revision}.{extension}"


def load_form(form_id: int) -> IndicatorForm:
    form = db.session.get(IndicatorForm, form_id)
    if form is None:
        raise NotFound(_("No form %(id)s.", id=form_id))
    return form


def archived(*, kind: str | None = None, year: int | None = None, before_id: int | None = None,
             limit: int = 50) -> list[IndicatorForm]:
    """The archived forms, newest first, keyset-paginated by id (`limit` + 1 rows read to tell if more follow)."""
    stmt = sa.select(IndicatorForm).options(defer(IndicatorForm.xlsx), defer(IndicatorForm.snapshot))
    if kind is not None:
        stmt = stmt.where(IndicatorForm.kind == kind)
    if year is not None:
        stmt = stmt.where(IndicatorForm.starts_on >= date(year, 1, 1), IndicatorForm.starts_on <= date(year, 12, 31))
    if before_id is not None:
        stmt = stmt.where(IndicatorForm.id < before_id)
    return list(db.session.scalars(stmt.order_by(IndicatorForm.id.desc()).limit(limit)))


# The January reminder ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MissingValue:
    """A reported indicator of the plan's annex with months of the year not approved."""

    code: str
    name: str
    months: tuple[date, ...]
    pending: int
    #: The department that reports it (None: the quality office) and its name, for the page's grouping.
    department_id: int | None = None
    department: str = ""

    @property
    def department_key(self) -> int:
        """The department it is listed under, the quality office (0) first."""
        return self.department_id or 0


def missing_values(plan: str, year: int) -> list[MissingValue]:
    """The plan's reported indicators whose months of `year` are not all approved, in the annex's order
    (computed ones are always there; those that do not apply are skipped)."""
    entries = {e.code: e for e in catalogue.entries(include_local=False)}
    codes = list(dict.fromkeys(code for row in catalogue.annex(plan) for code in row.codes
                               if code in entries and entries[code].method == "reported"))
    first, last = date(year, 1, 1), date(year, 12, 1)
    approved = approved_months(codes, first, last)
    pending: dict[str, int] = {}
    if codes:
        stmt = sa.select(IndicatorReport.code, sa.func.count()).where(
            IndicatorReport.code.in_(codes), IndicatorReport.month_on >= first, IndicatorReport.month_on <= last,
            IndicatorReport.state != "approved").group_by(IndicatorReport.code)
        pending = {code: int(n) for code, n in db.session.execute(stmt)}
    months = [add_months(first, n) for n in range(12)]
    ids = {entries[code].department_id for code in codes} - {None}
    names = {d.id: d.label(current_language()) for d in db.session.scalars(
        sa.select(Department).where(Department.id.in_(ids)))} if ids else {}
    found = []
    for code in codes:
        owed = tuple(m for m in months if m not in approved.get(code, set()))
        if owed:
            department_id = entries[code].department_id
            found.append(MissingValue(code, entries[code].label(), owed, pending.get(code, 0), department_id,
                                      names.get(department_id) or _("Quality office")))
    return found


def _month_day(text: str, year: int, setting: str) -> date:
    try:
        month, day = (int(part) for part in text.split("-"))
        return date(year, month, day)
    except (ValueError, AttributeError) as error:
        raise ValueError(f"{setting}: {text!r} is not a day of the year as MM-DD") from error


def reminder_due(at: date) -> date | None:
    """The reminder date (of INDICATOR_FORM_REMINDER_DATES) that stands for `at`: the latest one reached, up to
    the due day (INDICATOR_FORM_DUE) of last year's form; None outside that stretch."""
    config = current_app.config
    due = _month_day(config["INDICATOR_FORM_DUE"], at.year, "INDICATOR_FORM_DUE")
    given = config["INDICATOR_FORM_REMINDER_DATES"]
    if isinstance(given, str):  # QCFLOW_INDICATOR_FORM_REMINDER_DATES=01-05,01-20 (not JSON)
        given = [text.strip() for text in given.split(",") if text.strip()]
    dates = [_month_day(text, at.year, "INDICATOR_FORM_REMINDER_DATES") for text in given]
    reached = [day for day in dates if day <= at <= due]
    return max(reached) if reached else None


def remind_annual_form(*, actor: Actor, now: datetime) -> str:
    """On the reminder dates, tell the quality office which of last year's values are still missing and whether
    the annual form was generated (once per plan, year and reminder date; a later run the same stretch finds it)."""
    plan = catalogue.plan()
    at = today(now)
    on = reminder_due(at)
    if on is None:
        return "no reminder due"
    year = at.year - 1
    done = db.session.scalar(sa.select(IndicatorFormReminder.id).where(
        IndicatorFormReminder.plan == plan, IndicatorFormReminder.year == year,
        IndicatorFormReminder.reminder_on == on))
    if done is not None:
        return f"{year}: reminder of {on.isoformat()} already sent"
    missing = missing_values(plan, year)
    generated = db.session.scalar(sa.select(sa.func.max(IndicatorForm.revision)).where(
        IndicatorForm.plan == plan, IndicatorForm.kind == "annual", IndicatorForm.starts_on == date(year, 1, 1)))
    recipients = users_with_role(Role.QUALITY) if missing or not generated else []
    row = IndicatorFormReminder(plan=plan, year=year, reminder_on=on, sent_at=now, missing=len(missing),
                                recipients=len(recipients))
    db.session.add(row)
    db.session.flush()
    audit.record(actor.audit_name, "indicator_form.remind", "indicator_form_reminder", row.id, now, after={
        "plan": plan, "year": year, "reminder_on": on.isoformat(), "missing": [m.code for m in missing],
        "generated_revision": generated, "recipients": sorted(recipients)})
    due = _month_day(current_app.config["INDICATOR_FORM_DUE"], at.year, "INDICATOR_FORM_DUE")
    notify(recipients, "indicators.form_reminder",
           {"year": year, "due": due.isoformat(), "missing": len(missing), "form": "yes" if generated else "no"},
           now=now, link=f"/indicators/forms?year={year}")
    return f"{year}: reminder of {on.isoformat()}: {len(missing)} values missing, form " + (
        f"revision {generated}" if generated else "not generated") + f", {len(recipients)} told"
