"""The HIS guide's worked example runs: each `<!-- run -->` curl block of docs/his-integration.md is run
with real curl against a real server (gunicorn, the shipped settings), and answers the JSON shown after it."""
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.security.conftest import gunicorn

GUIDE = Path(ROOT) / "docs/his-integration.md"
STEP = re.compile(r"<!-- run -->\s*```bash\n(.*?)```.*?```json\n(.*?)```", re.S)


def values(text: str) -> list:
    """The JSON values of a text, one after another (curl prints one body per command)."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while (at := len(text) - len(text[at:].lstrip())) < len(text):
        value, at = decoder.raw_decode(text, at)
        found.append(value)
    return found


def test_the_guide_marks_its_example_and_keeps_the_sections_others_fill():
    text = GUIDE.read_text(encoding="utf-8")
    assert len(STEP.findall(text)) == 8
    for heading in ("## Asking before booking", "## Operation states from the HIS", "## Authentication",
                    "## Idempotency", "## Errors", "## Facts the triggers read"):
        assert heading in text


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_the_guides_curl_example_answers_what_the_guide_shows(app, database_url, tmp_path, runner, create_department,
                                                               create_user):
    from qcflow.extensions import db

    create_department(code="QC", name="质控办", kind="functional")
    create_department(code="GS", name="普通外科")
    create_department(code="ICU", name="重症医学科")
    create_user(username="his", roles=("quality",))
    db.session.commit()
    token = runner.invoke(args=["qcflow", "tokens", "create", "--username", "his"]).output.strip().splitlines()[-1]
    steps = STEP.findall(GUIDE.read_text(encoding="utf-8"))
    with gunicorn(database_url, tmp_path, tmp_path / "gunicorn.log", workers=1) as server:
        env = {**os.environ, "QCFLOW": server.base_url, "TOKEN": token}
        for commands, shown in steps:
            out = subprocess.run(["bash", "-euo", "pipefail", "-c", commands], env=env, capture_output=True,
                                 text=True, timeout=60)
            assert out.returncode == 0, out.stderr
            assert values(out.stdout) == values(shown), commands
    assert "Traceback" not in (tmp_path / "gunicorn.log").read_text()
