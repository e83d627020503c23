"""The bulletin's cancer-survival section: Kaplan–Meier curves as SVG and the 1-, 3- and 5-year survival, with
groups of fewer than k patients shown as such."""
from datetime import date

from tests.indicators.conftest import Builder
from tests.indicators.survival_data import five_lung_cancers
from tests.reports.pdftools import missing_glyphs, needs_poppler, pdf_text

#: The bulletin of December 2025 is judged on 1 January 2026 (AS_OF), the survival as known on 31 December.
MONTH = date(2025, 12, 1)


def render(app, month=MONTH):
    from qcflow.reports import bulletin
    from tests.conftest import sh

    with app.test_request_context("/"):
        return bulletin.render(month, sh(2026, 1, 2, 9))


def section(app, as_of=date(2025, 12, 31)):
    from qcflow.reports import bulletin

    with app.test_request_context("/"):
        return bulletin.survival_section(as_of)


def test_section_draws_the_curves_of_groups_of_k_or_more(app, hospital):
    five_lung_cancers(Builder(hospital, reference_data=False))
    survival = section(app)
    assert survival["k"] == 5 and survival["chart"] is not None
    svg = str(survival["chart"])
    assert svg.startswith("<svg") and "<script" not in svg and "肺癌" in svg
    groups = {g["name"]: g for g in survival["groups"]}
    lung = groups["肺癌"]
    assert (lung["n"], lung["events"], lung["suppressed"]) == (5, 2, False)
    assert [e["text"].split(" (")[0] for e in lung["estimates"]] == ["80.0 %", "53.3 %", "53.3 %"]
    assert groups["乳腺癌"]["suppressed"] and groups["五种重点癌症"]["n"] == 5


def test_small_groups_get_no_curve(app, hospital):
    app.config["REPORT_SMALL_CELL_K"] = 6
    five_lung_cancers(Builder(hospital, reference_data=False))
    survival = section(app)
    assert survival["chart"] is None and all(g["suppressed"] for g in survival["groups"])


@needs_poppler
def test_bulletin_prints_the_survival_section(app, ctx, hospital, tmp_path):
    five_lung_cancers(Builder(hospital, reference_data=False))
    with missing_glyphs() as missing:
        data = render(app)
    assert missing == []
    text = pdf_text(data, tmp_path)
    assert "8. 恶性肿瘤患者生存" in text
    survival = text[text.index("8. 恶性肿瘤患者生存"):]
    lung = next(line for line in survival.splitlines() if line.strip().startswith("肺癌 "))
    assert "80.0 %" in lung and "53.3 %" in lung
    breast = next(line for line in survival.splitlines() if line.strip().startswith("乳腺癌 "))
    assert "少于 5 例" in breast
    assert "确诊后年数" in survival  # the chart's axis, drawn into the PDF
