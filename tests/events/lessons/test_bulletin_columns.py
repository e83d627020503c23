"""The bulletin's lessons table as printed: the short columns (category, department) keep their words on one line
next to a long title and a long account of what changed, instead of breaking one character per line."""
from datetime import date, datetime, timezone

from tests.events.lessons.test_reading import bulletin_html
from tests.reports.pdftools import needs_poppler, pdf_text


@needs_poppler
def test_the_department_and_category_of_a_lesson_stay_on_one_line(app, write_lesson, tmp_path):
    from qcflow.reports.pdf import render_pdf

    feb = datetime(2026, 2, 10, 2, tzinfo=timezone.utc)
    write_lesson("published", at=feb, title="夜班交接时遗漏口服降压药，次日晨间发现并补服的经过与改进" * 2,
                 what_changed="交接班增加口服药核对清单，由两名护士逐项核对并签字；药房每日抽查，护士长每周复盘。" * 3)
    html = bulletin_html(app, date(2026, 2, 1), datetime(2026, 3, 5, tzinfo=timezone.utc))
    with app.test_request_context("/"):
        text = pdf_text(render_pdf(html), tmp_path)
    section = text[text.rindex("9. 本月典型案例"):]
    lines = section.splitlines()
    header = next(line for line in lines if "改进措施" in line)
    assert "类别" in header and "科室" in header  # not 类/别, 科/室 one character per line
    first_row = lines[lines.index(header) + 1:][:3]
    assert any("药品事件" in line and "普通外科" in line for line in first_row), first_row
