"""Reported indicators for the reporting tests: the catalogue's pain_assessment_rate (a percent) reported by
general surgery, and departments' own key indicators in the other units."""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

#: A fixed "now" well after the months the tests report (Shanghai: 2026-04-05 09:30).
NOW = datetime(2026, 4, 5, 1, 30, tzinfo=timezone.utc)
MARCH = date(2026, 3, 1)
FEBRUARY = date(2026, 2, 1)

#: code → (unit, department key)
LOCAL = {
    "local_gs_operations": ("count", "surgery"),
    "local_gs_wait": ("minutes", "surgery"),
    "local_gs_checklist": ("status", "surgery"),
    "local_card_ratio": ("ratio", "cardio"),
    "local_card_rate": ("per100", "cardio"),
}


@pytest.fixture
def reported(hospital):
    """pain_assessment_rate reported by surgery, and the departments' own indicators of LOCAL, committed."""
    from qcflow.extensions import db
    from qcflow.indicators.models import IndicatorSetup, LocalIndicator

    db.session.add(IndicatorSetup(code="pain_assessment_rate", method="reported",
                                  department_id=hospital["surgery"].id, updated_at=NOW, updated_by="system:test"))
    for code, (unit, department) in LOCAL.items():
        db.session.add(LocalIndicator(code=code, name=f"科室指标{code[-4:]}", name_en=f"Own {code}", unit=unit,
                                      direction="higher", definition="科室自定义", department_id=hospital[department].id,
                                      created_at=NOW, updated_at=NOW, updated_by="system:test"))
    db.session.commit()
    return hospital


def narrow_reported(keep: set[str]) -> list[str]:
    """The catalogue narrowed to the indicators a test is about: every other plan indicator the catalogue reports
    by default is set up as not applicable (as a hospital does for what it does not report). Returns their codes."""
    from qcflow.extensions import db
    from qcflow.indicators import catalogue
    from qcflow.indicators.models import IndicatorSetup

    others = [e.code for e in catalogue.entries(include_local=False) if e.method == "reported" and e.code not in keep]
    for code in others:
        db.session.add(IndicatorSetup(code=code, method="not_applicable", reason="本测试不涉及", updated_at=NOW,
                                      updated_by="system:test"))
    db.session.flush()
    return others


def default_reported(app) -> list[str]:
    """The plan indicators the full catalogue reports by default (the quality office reports them until the
    hospital names a department)."""
    from qcflow.indicators import catalogue

    with app.app_context():
        return [e.code for e in catalogue.entries(include_local=False) if e.default_method == "reported"]
