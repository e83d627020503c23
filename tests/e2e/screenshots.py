"""Copy a handful of the browser tests' screenshots to docs/screenshots/ as small PNGs (for the README).

    .venv/bin/python -m pytest tests/e2e && .venv/bin/python -m tests.e2e.screenshots
"""
from __future__ import annotations

from pathlib import Path

from PIL import Image

ARTIFACTS = Path(__file__).parent / "artifacts"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
#: artifact name → docs name
CHOSEN = {
    "clinician-01-report-form": "1-report-form-phone",
    "clinician-02-receipt-code": "2-receipt-code-phone",
    "followup-queue-phone-zh": "3-followup-queue-phone",
    "quality-01-inbox": "4-event-inbox",
    "quality-04-mdt-gate": "5-mdt-booking-gate",
    "nurse-04-quality-prompt": "6-possible-event-prompt",
    "events-case-desktop-zh": "7-case-page",
    "followup-completed-call-desktop": "8-completed-call",
    "reports-indicators-desktop-zh": "9-indicators",
}
MAX_WIDTH = 960


def main() -> None:
    DOCS.mkdir(parents=True, exist_ok=True)
    for source, target in CHOSEN.items():
        image = Image.open(ARTIFACTS / f"{source}.png").convert("RGB")
        if image.width > MAX_WIDTH:
            image = image.resize((MAX_WIDTH, round(image.height * MAX_WIDTH / image.width)), Image.LANCZOS)
        image.quantize(colors=256).save(DOCS / f"{target}.png", optimize=True)
        print(DOCS / f"{target}.png", (DOCS / f"{target}.png").stat().st_size)


if __name__ == "__main__":
    main()
