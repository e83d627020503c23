"""Fixtures of the lesson library: a hospital with two members of the quality office, closed cases, lessons."""
from datetime import datetime, timedelta, timezone
from itertools import count

import pytest

_seq = count(1)

TEXT = {"title": "夜班配药未双人核对", "what_happened": "夜班配药时胰岛素剂量多抽 4 单位，发药前核对发现，未给患者使用。",
        "why": "夜班人手少，双人核对流于形式；系统无剂量上限提醒。",
        "what_changed": "高警示药品配药实行双人签名核对；信息系统增加剂量上限提醒。"}


@pytest.fixture
def hospital_layout(hospital_layout):
    """The events tests' hospital with a second member of the quality office, and names the scrubber knows."""
    departments, people = hospital_layout
    return departments, {**people, "nurse": ("nurse", "nurse", "surgery", "李秀英"),
                         "head": ("head", "dept_head", "surgery", "王主任"),
                         "quality": ("quality", "quality", "qc", "赵质控"),
                         "quality2": ("quality2", "quality", "qc", "钱质控")}


@pytest.fixture
def create_case(ctx, hospital):
    """A case of general surgery in a given state (closed by default), with a patient's record number."""
    from qcflow.events.models import AdverseEvent
    from qcflow.extensions import db

    def create(state="closed", department=None, category="medication", patient_mrn=None, **kwargs):
        n = next(_seq)
        at = datetime(2026, 2, 1, 8, tzinfo=timezone.utc)
        event = AdverseEvent(
            reference=f"AE-2026-{n:06d}", state=state, mode="named", category_code=category, reporter_grade="III",
            confirmed_grade="III", department_id=(department or hospital["surgery"]).id,
            reporter_user_id=hospital["nurse"].id, patient_mrn=patient_mrn, description="配药时发现剂量多了一倍。",
            created_at=at, submitted_at=at, closed_at=at + timedelta(days=10) if state == "closed" else None,
            **kwargs)
        db.session.add(event)
        db.session.commit()
        return event

    return create


@pytest.fixture
def write_lesson(ctx, create_case, actor_of):
    """A lesson of a new closed case, taken as far as `state` by the services (published by quality2)."""
    from qcflow.events.lessons import services
    from qcflow.extensions import db

    def write(state="draft", at=datetime(2026, 3, 1, 2, tzinfo=timezone.utc), **text):
        lesson = services.write(create_case(), {**TEXT, **text}, actor=actor_of("quality"), now=at)
        if state in ("in_review", "published", "withdrawn"):
            services.transition(lesson, "submit_review", {}, actor=actor_of("quality"), now=at)
        if state in ("published", "withdrawn"):
            services.transition(lesson, "publish", {"checked": True}, actor=actor_of("quality2"), now=at)
        if state == "withdrawn":
            services.transition(lesson, "withdraw", {"reason": "内容有误"}, actor=actor_of("quality"), now=at)
        db.session.commit()
        return lesson

    return write
