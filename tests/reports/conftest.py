"""Fixtures for the report tests: a small hospital, reports as explicit rows, discharges, logged-in clients."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from itertools import count

import pytest
import sqlalchemy as sa

from tests.conftest import sh

_refs = count(1)
#: When the bulletin tests run: early March 2026, February's bulletin is due.
NOW = sh(2026, 3, 5, 9, 0)
#: Two default triggers (the migration seeds them).
RTT = "return_theatre_48h"
INR = "critical_inr"


@pytest.fixture
def hospital_layout():
    """The quality office and three clinical departments with English names; users by role."""
    departments = {
        "qc": {"code": "QC", "name": "质控办", "kind": "functional"},
        "surgery": {"code": "GS", "name": "普通外科", "name_en": "General Surgery"},
        "cardio": {"code": "CARD", "name": "心内科", "name_en": "Cardiology"},
        "ortho": {"code": "ORTH", "name": "骨科", "name_en": "Orthopaedics"},
    }
    people = {
        "quality": ("quality", "quality", "qc", "王质控"),
        "head": ("head", "dept_head", "surgery", "李主任"),
        "cardhead": ("cardhead", "dept_head", "cardio"),
        "doctor": ("doctor", "clinician", "surgery", "张建国"),
        "nurse": ("nurse", "nurse", "surgery"),
    }
    return departments, people


@pytest.fixture
def create_report(ctx, hospital):
    """An adverse event row in a given state; anonymous ones keep no reporter and hour-rounded times."""
    from qcflow.events.models import AdverseEvent
    from qcflow.extensions import db

    def create(*, department=None, state="submitted", mode="named", submitted=None, occurred=None,
               category="medication", grade="III", confirmed_grade=None, care_stage="medication",
               location="5病区护士站", clinical_state=None, harm=None, reporter=None, **kwargs):
        submitted = (submitted or sh(2026, 2, 10, 9, 0)).astimezone(timezone.utc)
        if mode == "anonymous":
            submitted = submitted.replace(minute=0, second=0, microsecond=0)
        occurred = (occurred or submitted - timedelta(hours=3)).astimezone(timezone.utc)
        n = next(_refs)
        event = AdverseEvent(
            reference=f"AE-2026-{n:06d}", state=state, mode=mode,
            reporter_user_id=None if mode == "anonymous" else (reporter or hospital["doctor"]).id,
            receipt_hash=f"{n:064x}" if mode == "anonymous" else None,
            category_code=category, reporter_grade=grade, confirmed_grade=confirmed_grade, care_stage=care_stage,
            occurred_at=occurred, discovered_at=occurred + timedelta(minutes=30), location=location,
            department_id=(department or hospital["surgery"]).id, clinical_state=clinical_state, harm=harm,
            description=kwargs.pop("description", "配药时发现剂量多了一倍，未给患者使用。"),
            created_at=submitted, submitted_at=None if state == "draft" else submitted, **kwargs)
        db.session.add(event)
        db.session.flush()
        return event

    return create


@pytest.fixture
def create_census(ctx):
    """A monthly discharge census row (the indicator's denominator where it exists)."""
    from qcflow.clinical.models import DischargeCensus
    from qcflow.extensions import db

    def create(department, month_on, discharges):
        row = DischargeCensus(department_id=department.id, month_on=month_on, discharges=discharges,
                              updated_at=datetime(2026, 3, 1, tzinfo=timezone.utc))
        db.session.add(row)
        db.session.flush()
        return row

    return create


@pytest.fixture
def february(hospital, create_report, create_census):
    """February 2026: 1,250 discharges and 30 reports (2.40 per 100, below the 2025 target of 2.5)."""
    from qcflow.extensions import db
    from qcflow.indicators.models import IndicatorTarget

    if db.session.scalar(sa.select(IndicatorTarget).where(IndicatorTarget.code == "ae_per_100_discharges",
                                                          IndicatorTarget.hospital_level == "tertiary")) is None:
        db.session.add(IndicatorTarget(code="ae_per_100_discharges", hospital_level="tertiary", year=2025,
                                       comparison="gt", value=2.5, updated_at=NOW, updated_by="test"))
    feb = date(2026, 2, 1)
    create_census(hospital["surgery"], feb, 700)
    create_census(hospital["cardio"], feb, 300)
    create_census(hospital["ortho"], feb, 250)
    plan = ((hospital["surgery"], "medication", 14), (hospital["surgery"], "fall", 6), (hospital["cardio"], "fall", 7),
            (hospital["ortho"], "pressure_injury", 3))
    day = 1
    for department, category, n in plan:
        for i in range(n):
            day = day % 27 + 1
            create_report(department=department, category=category, grade=("II" if i == 0 else "III"),
                          mode="anonymous" if i % 3 == 0 else "named",
                          occurred=sh(2026, 2, day, (i * 5) % 24, 10), submitted=sh(2026, 2, day, 23, 0))
    create_report(state="duplicate", submitted=sh(2026, 2, 3, 9, 0))
    db.session.commit()


@pytest.fixture
def firings(hospital, default_trigger, create_firing, create_report):
    """February 2026: five firings of the 48 h return-to-theatre trigger in general surgery (reviewed after
    2, 4, 10 and 30 hours, one still open), one critical INR firing in cardiology (filed after 3 hours),
    and firings outside February that must not count."""
    from qcflow.extensions import db

    surgery, cardio = hospital["surgery"], hospital["cardio"]
    rtt, inr = default_trigger(RTT), default_trigger(INR)
    found = create_report(department=surgery, found_by="trigger", mode="confidential", submitted=sh(2026, 2, 4, 12, 0))
    reported = create_report(department=surgery, submitted=sh(2026, 2, 5, 9, 0))
    create_firing(rtt, surgery, sh(2026, 2, 3, 8, 0), state="filed", review_hours=2, event=found)
    create_firing(rtt, surgery, sh(2026, 2, 5, 8, 0), state="linked", review_hours=4, event=reported)
    create_firing(rtt, surgery, sh(2026, 2, 7, 8, 0), state="dismissed", review_hours=10)
    create_firing(rtt, surgery, sh(2026, 2, 9, 8, 0), state="dismissed", review_hours=30)
    create_firing(rtt, surgery, sh(2026, 2, 20, 8, 0))
    inr_report = create_report(department=cardio, found_by="trigger", mode="confidential",
                               submitted=sh(2026, 2, 12, 11, 0))
    create_firing(inr, cardio, sh(2026, 2, 12, 8, 0), state="filed", review_hours=3, event=inr_report)
    create_firing(rtt, surgery, sh(2026, 1, 31, 23, 59), state="filed", review_hours=1)  # January, local time
    create_firing(inr, cardio, sh(2026, 3, 1, 0, 0), state="dismissed", review_hours=1)  # March, local time
    db.session.commit()
    return {"rtt": rtt, "inr": inr}
