"""An indicator's source reads as the plans' names in the reader's language; line citations stay with
the auditors (the API's `source`, docs/indicators.md), never in the page's visible text."""
import re

CITATION = re.compile(r"\[\d{3}:\d+|Guizhou \[|Henan \[|Yubei \[|Shaoxing \[")
CJK = re.compile(r"[\u4e00-\u9fff]")


def visible(html: str) -> str:
    """The page's text as a reader sees it: no tags, attributes, closed <details> or scripts."""
    html = re.sub(r"<details\b.*?</details>|<script\b.*?</script>|<style\b.*?</style>|<title>.*?</title>", "", html,
                  flags=re.S)
    return re.sub(r"<[^>]+>", " ", html)


def test_source_is_a_help_line_of_plan_names_in_chinese(clients, reference_month):
    html = clients("quality").get("/indicators/ae_per_100_discharges?month=2026-03").get_data(as_text=True)
    text = visible(html)
    assert "依据：每百出院人次主动报告不良事件例次 > 2.5（贵州省实施方案、重庆市渝北区实施方案、河南省实施方案）" in text
    assert not CITATION.search(html), CITATION.search(html)
    assert "ae_per_100_discharges" not in text  # the code is in the detail for API users, not under the title
    detail = re.search(r"<details[^>]*id=\"basis-detail\".*?</details>", html, re.S).group(0)
    assert "《河南省全面提升医疗质量行动实施方案（2023-2025年）》" in detail


def test_source_in_english_mode_has_no_chinese(clients, reference_month):
    html = clients("quality").get("/indicators/unplanned_reoperation_rate?month=2026-03&lang=en").get_data(as_text=True)
    line = re.search(r'<p class="hint" id="basis">(.*?)</p>', html, re.S).group(1)
    assert "Required by: At most 1.8 ‰ unplanned return-to-theatre reoperations" in line
    assert "Henan provincial implementation plan" in line and not CJK.search(line)
    assert not CITATION.search(html)


def test_internal_indicator_says_it_is_the_hospital_s_own(clients, reference_month):
    text = visible(clients("quality").get("/indicators/ae_closure_on_time_rate?month=2026-03").get_data(as_text=True))
    assert "本院内部指标：不良事件按期结案率" in text and "DESIGN" not in text


def test_api_keeps_the_precise_citation_for_auditors(clients, reference_month):
    body = clients("quality").get("/api/v1/indicators/ae_per_100_discharges?month=2026-03").get_json()
    assert "[003:1196-1200]" in body["source"]


def test_indicator_table_shows_names_not_codes(clients, reference_month):
    text = visible(clients("quality").get("/indicators?from=2026-03-01&to=2026-03-31").get_data(as_text=True))
    assert "四级手术患者有效随访率" in text
    assert not re.search(r"\b[a-z]+(_[a-z0-9]+)+\b", text), re.search(r"\b[a-z]+(_[a-z0-9]+)+\b", text)


def test_targets_page_shows_plan_names_and_who_set_them(clients, reference_month):
    text = visible(clients("admin").get("/admin/indicators/targets").get_data(as_text=True))
    assert "贵州省实施方案" in text and "系统" in text and "每百出院人次主动报告不良事件例次" in text
    assert not CITATION.search(text) and "system:migration" not in text
    assert "ae_per_100_discharges" not in text
