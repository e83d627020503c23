"""The security document names the tests that prove each property: every name must exist."""
import re
from pathlib import Path

from tests.conftest import ROOT


def test_every_test_named_in_the_security_document_exists():
    text = (Path(ROOT) / "docs" / "security.md").read_text(encoding="utf-8")
    missing = []
    for line in text.splitlines():
        current = None  # `::name` continues the last file named on the line
        for match in re.finditer(r"`(tests/[^`:]+\.py)(?:::(\w+))?`|`::(\w+)`", line):
            path, name = (match.group(1), match.group(2)) if match.group(1) else (current, match.group(3))
            current = path if match.group(1) else current
            source = Path(ROOT) / path if path else None
            if source is None or not source.exists():
                missing.append(path or match.group(0))
            elif name and not re.search(rf"^def {name}\(", source.read_text(encoding="utf-8"), re.M):
                missing.append(f"{path}::{name}")
    assert not missing, missing
