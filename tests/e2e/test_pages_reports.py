"""The indicators and report pages as users see them, at phone and desktop widths, in both languages:
cards instead of a squeezed table on a phone, readable charts, sources in words, an export period picker
that works without script, and no raw code, `None` or citation token in the visible text."""
from __future__ import annotations

import base64
import re
from datetime import date, timedelta

import pytest

from tests.e2e.conftest import CJK, E2E, check_no_horizontal_scroll, shot

pytestmark = E2E

RAW_CODE = re.compile(r"\b[a-z]+(?:_[a-z0-9.]+)+\b")
CITATION = re.compile(r"\[\d{3}:\d+")
PAGES = ["/indicators", "/indicators/ae_per_100_discharges", "/indicators/followup_rate_level4/cases?part=denominator",
         "/reports", "/reports/analysis"]


def visible_problems(text: str) -> list[str]:
    return RAW_CODE.findall(text) + re.findall(r"\bNone\b", text) + CITATION.findall(text)


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("kind", ["phone", "desktop"])
def test_report_pages_show_words_not_codes_and_fit_the_screen(server, contexts, kind, lang):
    page = contexts(kind, user="quality").new_page()
    for path in PAGES:
        page.goto(path + ("&" if "?" in path else "?") + f"lang={lang}")
        text = page.inner_text("main")
        assert visible_problems(text) == [], (path, visible_problems(text))
        assert check_no_horizontal_scroll(page), path
        if lang == "en":
            assert not CJK.search(page.inner_text("h1")), path
        else:
            assert "No data" not in text and "indicators appear" not in text, path
    page.goto(f"/indicators?lang={lang}")
    shot(page, f"reports-indicators-{kind}-{lang}")


def test_indicators_are_cards_on_a_phone(server, contexts):
    page = contexts("phone", user="quality").new_page()
    page.goto("/indicators")
    row = page.locator("#ind-ae_per_100_discharges")
    name, value, chart = (row.locator("td").nth(i).bounding_box() for i in (0, 1, 6))
    # One card per indicator: its cells stacked, each (and the trend) as wide as the screen allows.
    assert value["y"] > name["y"] and chart["y"] > value["y"]
    assert name["width"] > 300 and chart["width"] > 300
    label = row.locator("td").nth(1).evaluate("td => getComputedStyle(td, '::before').content")
    assert "指标值" in label  # each stacked figure says what it is
    # The funnel's table too: each department a card, its figures labelled.
    page.goto("/reports/analysis")
    first = page.locator("#funnel-table tbody tr").first
    department, discharges = (first.locator("td").nth(i).bounding_box() for i in (0, 1))
    assert discharges["y"] > department["y"] and department["width"] > 300
    label = first.locator("td").nth(1).evaluate("td => getComputedStyle(td, '::before').content")
    assert "出院人次" in label
    desktop = contexts("desktop", user="quality").new_page()
    desktop.goto("/indicators")
    cells = desktop.locator("#ind-ae_per_100_discharges td")
    assert cells.nth(0).bounding_box()["y"] == cells.nth(1).bounding_box()["y"]  # a table row on a desktop


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_trend_charts_label_months_and_count_whole(server, contexts, lang):
    page = contexts("desktop", user="quality").new_page()
    page.goto(f"/indicators/ae_per_100_discharges?lang={lang}")
    svg = base64.b64decode(page.locator("main img.chart").get_attribute("src").split(",", 1)[1]).decode()
    x_labels = re.findall(r"<text[^>]*>([^<]*)</text>", re.search(r'<g class="axis x.*?</g>\s*<g', svg, re.S).group(0))
    assert x_labels and not any("…" in label for label in x_labels)
    if lang == "zh":
        assert all(label.endswith(("月", "月（至今）")) for label in x_labels), x_labels
    else:
        assert re.fullmatch(r"[A-Z][a-z]{2}( \d{4})?( so far)?", x_labels[-1]), x_labels
    shot(page, f"reports-indicator-detail-{lang}")


def test_a_phone_draws_the_narrow_trend_chart(server, contexts):
    """Scaled down from 720 px, the desktop chart's labels were a few pixels high on a phone."""
    phone = contexts("phone", user="quality").new_page()
    phone.goto("/indicators/ae_per_100_discharges")
    drawn = phone.evaluate("() => { const i = document.querySelector('main img.chart'); "
                           "return {src: i.currentSrc, width: i.getBoundingClientRect().width}; }")
    svg = base64.b64decode(drawn["src"].split(",", 1)[1]).decode()
    assert 'width="360"' in svg[:2000] and drawn["width"] >= 300
    desktop = contexts("desktop", user="quality").new_page()
    desktop.goto("/indicators/ae_per_100_discharges")
    assert 'width="720"' in base64.b64decode(desktop.evaluate(
        "() => document.querySelector('main img.chart').currentSrc").split(",", 1)[1]).decode()[:2000]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_indicator_source_is_a_help_line_in_the_reader_s_language(server, contexts, lang):
    page = contexts("phone", user="quality").new_page()
    page.goto(f"/indicators/ae_per_100_discharges?lang={lang}")
    basis = page.inner_text("#basis")
    if lang == "zh":
        assert "河南省实施方案" in basis and basis.startswith("依据：")
    else:
        assert "Henan provincial implementation plan" in basis and not CJK.search(basis)
    assert not CITATION.search(page.inner_text("main"))
    page.click("#basis-detail summary")
    titles = page.inner_text("#basis-detail")
    assert ("《河南省全面提升医疗质量行动实施方案（2023-2025年）》" in titles if lang == "zh"
            else "Henan Province implementation plan" in titles)


@pytest.mark.parametrize("kind", ["phone", "desktop"])
def test_export_period_picker_works_without_script(server, browser, contexts, kind):
    contexts(kind, user="quality").new_page().goto("/reports")  # logs in once (and checks the requests)
    from tests.e2e.conftest import DESKTOP, PHONE

    context = browser.new_context(base_url=server.url, java_script_enabled=False, storage_state=server.states["quality"],
                                  **(PHONE if kind == "phone" else DESKTOP))
    try:
        page = context.new_page()
        page.goto("/reports")
        start = date.today().replace(month=1, day=1)
        end = start + timedelta(days=58)
        page.fill("#export-period input[name=from]", start.isoformat())
        page.fill("#export-period input[name=to]", end.isoformat())
        with page.expect_navigation():
            page.click("#export-period button[type=submit]")
        assert f"{start.isoformat()} 至 {end.isoformat()}" in page.inner_text("#export-period-shown")
        link = page.locator("#exports a", has_text="CSV").first
        href = link.get_attribute("href")
        assert f"from={start.isoformat()}" in href and f"to={end.isoformat()}" in href
        answer = context.request.get(href)
        assert answer.status == 200 and answer.headers["content-type"].startswith("text/csv")
        assert check_no_horizontal_scroll(page)
        shot(page, f"reports-export-period-{kind}")
        # A reversed period is refused on the page, in words.
        page.goto(f"/reports?from={end.isoformat()}&to={start.isoformat()}")
        alert = page.inner_text("#exports [role=alert]")
        assert "开始日期晚于结束日期" in alert and "422" not in page.inner_text("main")
    finally:
        context.close()


@pytest.mark.parametrize("username, paths", [
    ("head", ["/indicators", "/indicators/preop_mdt_rate_level4", "/reports", "/reports/analysis"]),
    ("nurse", ["/indicators", "/indicators/followup_rate_level4"]),
])
def test_department_roles_see_words_not_codes_on_a_phone(server, contexts, username, paths):
    page = contexts("phone", user=username).new_page()
    for path in paths:
        for lang in ("zh", "en"):
            answer = page.goto(f"{path}?lang={lang}")
            assert answer.status == 200, path
            text = page.inner_text("main")
            assert visible_problems(text) == [], (username, path, lang, visible_problems(text))
            assert check_no_horizontal_scroll(page), (username, path)
