"""The annual XLSX opens in LibreOffice (issue 21, "Done when"): converted headless, every annex row is there."""
from __future__ import annotations

import csv
import shutil
import subprocess

import pytest

from tests.conftest import sh

OFFICE = shutil.which("libreoffice") or shutil.which("soffice")


@pytest.mark.skipif(OFFICE is None, reason="LibreOffice is not installed (Debian: libreoffice-calc-nogui; "
                                           "scripts/setup installs it)")
def test_the_annual_xlsx_opens_in_libreoffice_with_every_annex_row(app, hospital, actor_of, tmp_path):
    from qcflow.extensions import db
    from qcflow.indicators import catalogue, forms

    form = forms.generate_form(catalogue.plan(), "annual", 2026, None, actor=actor_of("quality"),
                               now=sh(2027, 1, 5, 10, 0))
    db.session.commit()
    source = tmp_path / "form.xlsx"
    source.write_bytes(form.xlsx)
    # A private profile: parallel runs (and a desktop LibreOffice of the same user) never share one.
    profile = f"-env:UserInstallation=file://{tmp_path / 'profile'}"
    # 44: comma, 34: double quote, 76: UTF-8.
    result = subprocess.run([OFFICE, profile, "--headless", "--norestore", "--convert-to",
                             "csv:Text - txt - csv (StarCalc):44,34,76", "--outdir", str(tmp_path), str(source)],
                            capture_output=True, text=True, timeout=120)
    converted = tmp_path / "form.csv"
    assert converted.exists(), result.stdout + result.stderr
    with converted.open(encoding="utf-8", newline="") as file:
        rows = list(csv.reader(file))
    text = "\n".join(",".join(row) for row in rows)
    assert "医疗质量监测指标数据填报表（2026年）" in rows[0][0]
    wordings = [row[2] for row in rows if len(row) > 2]
    annex = catalogue.annex()
    assert annex and [w for w in wordings if w in {r.wording for r in annex}] == [r.wording for r in annex]
    assert "四级手术患者有效随访率" in text and "序号" in text
