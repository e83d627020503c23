"""The PDF module: Chinese text with embedded CJK fonts, no missing glyphs, nothing fetched from the network."""
import os
import socket

import pytest

from tests.reports.pdftools import CJK_FONT, embedded_fonts, missing_glyphs, needs_poppler, pdf_text


@pytest.fixture
def pdf(app):
    from qcflow.reports import pdf

    with app.test_request_context("/"):
        yield pdf


@needs_poppler
def test_chinese_text_renders_with_an_embedded_cjk_font(pdf, tmp_path):
    with missing_glyphs() as missing:
        data = pdf.render_pdf("<h1>围手术期死亡病例讨论</h1><p>结论：可避免的死亡，需改进术后观察。</p>")
    assert data.startswith(b"%PDF")
    assert missing == []
    assert "结论：可避免的死亡，需改进术后观察。" in pdf_text(data, tmp_path)
    assert any(CJK_FONT.search(name) for name in embedded_fonts(data, tmp_path))


def test_the_missing_glyph_guard_does_see_missing_glyphs(pdf):
    with missing_glyphs() as missing:
        pdf.render_pdf("<p>\ue000</p>")  # a private-use character no font draws
    assert missing and ".notdef" in missing[0]


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:9/x.png", "https://example.org/logo.png", "ftp://example.org/x", "file:///etc/passwd",
    "file:///work/../etc/passwd", "//example.org/x.png", "file://example.org/static/css/app.css",
])
def test_the_fetcher_refuses_everything_not_local(pdf, url):
    with pytest.raises(pdf.RefusedURL):
        pdf.fetcher().fetch(url)


def test_the_fetcher_serves_data_urls_and_static_files(app, pdf):
    assert pdf.fetcher().fetch("data:text/plain,ok").read() == b"ok"
    css = os.path.join(app.static_folder, "css", "app.css")
    served = pdf.fetcher().fetch("file://" + css)
    try:
        with open(css, "rb") as on_disk:
            assert served.read() == on_disk.read()
    finally:
        served.close()


def test_rendering_never_connects_to_a_url_in_the_document(pdf):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    try:
        data = pdf.render_pdf(
            f'<link rel="stylesheet" href="http://127.0.0.1:{port}/x.css">'
            f'<p>叙述 <img src="http://127.0.0.1:{port}/x.png"> <img src="/etc/hostname"></p>'
            f'<style>@import url("http://127.0.0.1:{port}/y.css");</style>')
        assert data.startswith(b"%PDF")
        with pytest.raises(BlockingIOError):  # nobody knocked
            listener.accept()
    finally:
        listener.close()
