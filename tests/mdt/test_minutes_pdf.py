"""Signed minutes print as PDF: Chinese text, an embedded CJK font, no missing glyphs, nothing fetched."""
import socket
from datetime import timedelta

import pytest

from qcflow.mdt import services
from tests.mdt.conftest import complete_record
from tests.reports.pdftools import CJK_FONT, embedded_fonts, missing_glyphs, needs_poppler, pdf_text


@pytest.fixture
def listener():
    """A local port that records whether anyone connected."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.setblocking(False)
    yield sock
    sock.close()


@pytest.fixture
def signed_minutes(hospital, held_preop, actor_of, mdt_now, listener):
    from qcflow.extensions import db

    head = actor_of("head")
    at = mdt_now + timedelta(days=1, hours=2)
    complete_record(held_preop, head, at, chair=hospital["head"])
    port = listener.getsockname()[1]
    services.update_discussion(held_preop, {
        "conclusion": "同意按计划行胰十二指肠切除术，术前纠正低蛋白血症。",
        "summary": f'影像科意见见附件 <img src="http://127.0.0.1:{port}/x.png">'}, actor=head, now=at)
    services.transition_discussion(held_preop, "sign", {}, actor=head, now=at)
    services.add_addendum(held_preop, "术后第3天患者出现胆漏，已保守治疗。", actor=actor_of("clinician"),
                          now=at + timedelta(days=10))
    db.session.commit()
    return held_preop


@needs_poppler
def test_signed_minutes_pdf_has_the_chinese_record_and_an_embedded_cjk_font(
        clients, hospital, signed_minutes, listener, tmp_path):
    with missing_glyphs() as missing:
        response = clients("head").get(f"/mdt/{signed_minutes.id}/minutes.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert f'filename="mdt-{signed_minutes.id}.pdf"' in response.headers["Content-Disposition"]
    assert missing == []
    text = pdf_text(response.data, tmp_path)
    flat = "".join(text.split())
    for expected in ("同意按计划行胰十二指肠切除术，术前纠正低蛋白血症。", "术后第3天患者出现胆漏，已保守治疗。",
                     "王小明", "赵麻", "陈主任", "普通外科", "麻醉科", "胰十二指肠切除术"):
        assert expected in flat, expected
    assert "<img" in flat  # the narrative is printed as text, not fetched
    assert any(CJK_FONT.search(name) for name in embedded_fonts(response.data, tmp_path))
    with pytest.raises(BlockingIOError):
        listener.accept()


@needs_poppler
def test_unsigned_minutes_say_so(clients, held_preop, tmp_path):
    response = clients("head").get(f"/mdt/{held_preop.id}/minutes.pdf?lang=en")
    assert response.status_code == 200
    assert "Not signed" in pdf_text(response.data, tmp_path)
