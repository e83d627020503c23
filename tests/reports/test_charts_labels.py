"""Charts a reader can read (whole-number count axes, month names, hour bands that fit, empty states in
their language), the export period picker, and labels instead of codes on the report pages and exports."""
import base64
import csv
import io
import re

import pytest

from tests.conftest import sh as local
from tests.reports.pdftools import CJK_FONT, embedded_fonts, needs_poppler, pdf_text

IMG = re.compile(r'src="data:image/svg\+xml;base64,([^"]+)"')


def svgs(html: str) -> list[str]:
    return [base64.b64decode(data).decode() for data in IMG.findall(html)]


def axis_labels(svg: str, axis: str) -> list[str]:
    """The tick labels pygal writes on one axis ("x" or "y")."""
    group = re.search(rf'<g class="axis {axis}[^"]*">(.*?)</g>\s*(?:<g class="axis|<g class="series)', svg, re.S)
    return re.findall(r"<text[^>]*>([^<]*)</text>", group.group(1)) if group else []


@pytest.fixture
def three_reports(hospital, create_report):
    from qcflow.extensions import db

    create_report(submitted=local(2026, 2, 10, 9, 0), occurred=local(2026, 2, 10, 2, 30))
    create_report(submitted=local(2026, 2, 11, 9, 0), occurred=local(2026, 2, 11, 14, 0), grade="II",
                  category="fall", care_stage="nursing")
    create_report(submitted=local(2026, 2, 12, 9, 0), occurred=local(2026, 2, 12, 15, 0))
    db.session.commit()


def test_count_axes_are_whole_numbers(app):
    from qcflow.reports import charts

    with app.test_request_context("/?lang=zh"):
        svg = str(charts.bars("类别", [{"label": "用药", "count": 2, "display": "2"},
                                       {"label": "跌倒", "count": 1, "display": "1"}], width=440, height=240))
    ticks = axis_labels(svg, "y")
    assert ticks and all(re.fullmatch(r"\d+", tick) for tick in ticks), ticks


def test_analysis_page_charts_count_in_whole_numbers_and_hour_bands_fit(clients, three_reports):
    html = clients("quality").get("/reports/analysis?from=2026-02-01&to=2026-02-28").get_data(as_text=True)
    charts = svgs(html)
    assert charts
    for svg in charts[1:]:  # the first is the funnel plot (rates); bars count on either axis
        ticks = axis_labels(svg, "x") + axis_labels(svg, "y")
        assert not any(re.fullmatch(r"\d*\.\d+", tick) for tick in ticks), ticks
    weekday = next(svg for svg in charts if "发生星期" in svg)
    assert axis_labels(weekday, "y") == ["0", "1"]
    band = next(svg for svg in charts if "发生时段" in svg)
    assert "0–4时" in band and "00:00–04:00" not in band


def test_trend_charts_name_the_months_and_say_when_there_is_nothing(app):
    from datetime import date

    from qcflow.reports import charts

    months = [date(2025, 4, 1)] + [date(2025, m, 1) for m in range(5, 13)] + [date(2026, m, 1) for m in (1, 2, 3)]
    with app.test_request_context("/?lang=zh"):
        drawn = str(charts.trend("", months, [None] * 11 + [2.4], unit="per100", target=2.5, width=360, height=170,
                                 compact=True))
        empty = str(charts.trend("", months, [None] * 12, unit="percent", width=360, height=170, compact=True))
    labels = axis_labels(drawn, "x")
    assert "2026年3月" in labels and "12月" in labels and not any("…" in label or "-" in label for label in labels)
    assert all(re.fullmatch(r"\d+(\.\d+)?", tick) for tick in axis_labels(drawn, "y"))
    assert "近12个月均无可计算的数值" in empty and "No data" not in empty
    with app.test_request_context("/?lang=en"):
        empty = str(charts.trend("", months, [None] * 12, unit="percent", width=720, height=280))
        drawn = str(charts.trend("", months, [50.0] * 12, unit="percent", width=720, height=280))
    assert "No values in these 12 months" in empty
    assert axis_labels(drawn, "x") == ["May 2025", "Jul", "Sep", "Nov", "Jan 2026", "Mar"]
    assert axis_labels(drawn, "y") == ["0", "25", "50", "75", "100"]


def test_the_month_under_way_is_marked_as_so_far(app):
    """Five days into a month its rate is not a month's rate: the trend's last label says "so far"
    (a new user read a spike in a month-to-date point); a whole month is not marked."""
    from qcflow.core.time import today
    from qcflow.reports import charts
    from qcflow.core.periods import add_months

    this_month = today().replace(day=1)
    months = [add_months(this_month, -n) for n in range(11, -1, -1)]
    with app.test_request_context("/?lang=zh"):
        labels = axis_labels(str(charts.trend("", months, [1.0] * 12, unit="per100", width=720, height=280)), "x")
        settled = axis_labels(str(charts.trend("", months[:-1], [1.0] * 11, unit="per100", width=720,
                                               height=280)), "x")
    assert labels[-1] == f"{this_month.month}月（至今）"
    assert not any("至今" in label for label in settled)


def test_empty_state_is_sized_like_text(app):
    from qcflow.reports import charts

    with app.test_request_context("/?lang=zh"):
        svg = str(charts.bars("类别", [{"label": "用药", "count": 0, "display": "0"}]))
    assert "本期无上报" in svg
    size = re.search(r"\.no_data\s*\{[^}]*font-size:\s*(\d+)", svg)
    assert size and int(size.group(1)) <= 14


def test_export_period_picker_changes_the_links(clients, hospital):
    html = clients("quality").get("/reports?from=2026-01-01&to=2026-03-31").get_data(as_text=True)
    assert '<form method="get" action="/reports#exports"' in html
    assert 'name="from" value="2026-01-01"' in html and 'name="to" value="2026-03-31"' in html
    links = re.findall(r'href="(/api/v1/exports/[^"]+)"', html)
    assert len(links) == 4 and all("from=2026-01-01" in link and "to=2026-03-31" in link for link in links)
    cardio = clients("quality").get(f"/reports?from=2026-01-01&to=2026-01-31&department={hospital['cardio'].id}")
    assert f"department={hospital['cardio'].id}" in re.findall(r'href="(/api/v1/exports/events.csv[^"]*)"',
                                                               cardio.get_data(as_text=True))[0]


def test_export_period_picker_refuses_in_words(clients):
    response = clients("quality").get("/reports?from=2026-03-31&to=2026-01-01")
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "开始日期晚于结束日期" in html and "(422)" not in html
    bad = clients("quality").get("/reports?from=tomorrow")
    assert bad.status_code == 422 and "(422)" not in bad.get_data(as_text=True)


def test_indicator_filters_refused_on_the_page_not_an_error_page(clients):
    response = clients("quality").get("/indicators?from=2026-13-01")
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and 'role="alert"' in html and "(422)" not in html
    assert "质量指标" in html and 'id="indicators"' in html


def test_event_export_writes_grades_as_labels(clients, three_reports):
    response = clients("quality").get("/api/v1/exports/events.csv", query_string={"from": "2026-02-01",
                                                                              "to": "2026-02-28"})
    rows = list(csv.DictReader(io.StringIO(response.get_data().decode("utf-8-sig"))))
    assert {row["分级"] for row in rows} == {"Ⅲ级 · 未造成后果事件（已发生在患者身上，无后果）",
                                            "Ⅱ级 · 不良后果事件（暂时性损害）"}
    english = clients("quality").get("/api/v1/exports/events.csv", query_string={"from": "2026-02-01",
                                                                             "to": "2026-02-28", "lang": "en"})
    rows = list(csv.DictReader(io.StringIO(english.get_data().decode("utf-8-sig"))))
    assert all(row["Grade"].startswith("Grade ") for row in rows), [row["Grade"] for row in rows]


@needs_poppler
def test_bulletin_charts_in_the_reader_s_language(app, ctx, february, tmp_path):
    """The bulletin's trends name months (no "26-02"), hour bands fit ("20–24时"), count axes are whole
    numbers, an indicator without values says so in the reader's language; the CJK font is embedded."""
    from datetime import date

    from flask_babel import refresh

    from qcflow.reports import bulletin

    with app.test_request_context("/?lang=zh"):
        chinese = bulletin.render(date(2026, 2, 1), local(2026, 3, 5, 9, 0))
    with app.test_request_context("/?lang=en"):
        refresh()  # the locale chosen for the Chinese render is cached in the shared app context
        english = bulletin.render(date(2026, 2, 1), local(2026, 3, 5, 9, 0))
    text = pdf_text(chinese, tmp_path)

    def section(heading, following):  # the body's section, not the cover's list of contents
        start = text.index(heading, text.index(heading) + 1)
        return text[start:text.index(following, start)]

    trends, events = section("2. 近12个月趋势", "3. 不良事件分析"), section("3. 不良事件分析", "4. 漏报监测")
    assert "2026年2月" in trends and not re.search(r"\b\d{2}-\d{2}\b", trends)
    assert "近12个月均无可计算的数值" in trends and "No data" not in text
    assert "20–24时" in events and not re.search(r"(?<![\d.])0\.\d\b", events)  # whole-number count axes
    assert any(CJK_FONT.search(font) for font in embedded_fonts(chinese, tmp_path))
    text = pdf_text(english, tmp_path)
    assert "No values in these 12 months" in text and "Feb 2026" in text and "20–24 h" in text
    start = text.index("2. 12-month trends", text.index("2. 12-month trends") + 1)
    trends = text[start:text.index("3. Adverse", start)]
    assert "Feb 2026" in trends
    assert not re.search(r"[\u4e00-\u9fff]", trends)  # (a department without an English name keeps its own)


def test_indicator_case_list_refuses_in_words(clients):
    response = clients("quality").get("/indicators/ae_per_100_discharges/cases?part=numerator&cursor=x.y")
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and 'role="alert"' in html and "(422)" not in html
    assert "每百出院人次主动报告不良事件例次" in html
    bad = clients("quality").get("/indicators/ae_per_100_discharges/cases?from=2026-03-31&to=2026-03-01")
    assert bad.status_code == 422 and "开始日期晚于结束日期" in bad.get_data(as_text=True)


def test_reports_page_refuses_another_department_as_every_page_does(clients, hospital):
    """A head asking /reports for another department gets a 404 and an unknown department a 422 with its
    reason, as on the analysis and indicator pages; before, the page answered 200 and dropped the choice."""
    head = clients("head")
    assert head.get(f"/reports?department={hospital['cardio'].id}").status_code == 404
    unknown = head.get("/reports?department=99999")
    assert unknown.status_code == 422 and "没有这个科室。" in unknown.get_data(as_text=True)
    assert head.get(f"/reports?department={hospital['surgery'].id}").status_code == 200
    assert clients("quality").get("/reports?department=99999").status_code == 422
