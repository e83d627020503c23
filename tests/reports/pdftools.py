"""Reading PDFs in tests with poppler-utils (scripts/setup installs it)."""
from __future__ import annotations

import logging
import re
import shutil
import subprocess
from contextlib import contextmanager

import pytest

needs_poppler = pytest.mark.skipif(
    shutil.which("pdftotext") is None or shutil.which("pdffonts") is None,
    reason="pdftotext/pdffonts missing: install poppler-utils (scripts/setup does)")

CJK_FONT = re.compile(r"Noto-?Sans-?CJK|WenQuanYi|WQY", re.I)


def pdf_text(data: bytes, tmp_path) -> str:
    path = tmp_path / "document.pdf"
    path.write_bytes(data)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True).stdout


def embedded_fonts(data: bytes, tmp_path) -> list[str]:
    """Names of the fonts embedded in the PDF (pdffonts' `emb` column says yes)."""
    path = tmp_path / "fonts.pdf"
    path.write_bytes(data)
    out = subprocess.run(["pdffonts", str(path)], check=True, capture_output=True, text=True).stdout
    rows = [line.split() for line in out.splitlines()[2:] if line.strip()]
    # Columns from the right: emb sub uni object-id generation; the type may contain spaces.
    return [row[0] for row in rows if len(row) >= 6 and row[-5] == "yes"]


@contextmanager
def missing_glyphs():
    """Collect WeasyPrint's '.notdef' warnings (characters no installed font can draw) while rendering."""
    found: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record):
            if ".notdef" in record.getMessage():
                found.append(record.getMessage())

    handler = Collect(level=logging.WARNING)
    logger = logging.getLogger("weasyprint")
    logger.addHandler(handler)
    try:
        yield found
    finally:
        logger.removeHandler(handler)
