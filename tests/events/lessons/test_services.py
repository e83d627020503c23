"""Writing and publishing lessons: only from a closed case, scrubbed before review, four eyes to publish."""
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
from flask_babel import force_locale

from qcflow.core.errors import Conflict, Forbidden, GuardFailed
from qcflow.events.lessons import services
from qcflow.events.lessons.workflow import LESSON_WORKFLOW, LessonState
from tests.events.lessons.conftest import TEXT

AT = datetime(2026, 3, 1, 2, tzinfo=timezone.utc)


def test_a_lesson_takes_the_case_category_and_department_and_is_audited(create_case, actor_of, hospital):
    from qcflow.core.audit import AuditEntry
    from qcflow.extensions import db

    event = create_case(category="medication")
    lesson = services.write(event, dict(TEXT), actor=actor_of("quality"), now=AT)
    db.session.commit()
    assert (lesson.state, lesson.category_code, lesson.department_id, lesson.author_user_id) == (
        "draft", "medication", hospital["surgery"].id, hospital["quality"].id)
    assert lesson.scrub_findings == []
    actions = db.session.scalars(sa.select(AuditEntry.action).where(AuditEntry.object_type == "event_lesson"))
    assert list(actions) == ["event_lesson.write"]


@pytest.mark.parametrize("state", ["triaged", "investigating", "verifying", "not_reportable"])
def test_only_a_closed_case_gets_a_lesson(create_case, actor_of, state):
    with pytest.raises(Conflict):
        services.write(create_case(state=state), dict(TEXT), actor=actor_of("quality"), now=AT)


def test_one_lesson_per_case_the_second_names_the_first(create_case, actor_of):
    event = create_case()
    first = services.write(event, dict(TEXT), actor=actor_of("quality"), now=AT)
    with pytest.raises(Conflict) as refused:
        services.write(event, dict(TEXT), actor=actor_of("quality2"), now=AT)
    assert refused.value.extra["lesson_id"] == first.id


@pytest.mark.parametrize("who", ["head", "nurse", "clinician", "admin"])
def test_only_the_quality_office_writes_lessons(create_case, actor_of, who):
    with pytest.raises(Forbidden):
        services.write(create_case(), dict(TEXT), actor=actor_of(who), now=AT)


def test_the_scrubber_blocks_review_until_the_names_and_numbers_are_gone(create_case, create_patient, actor_of):
    patient = create_patient(name="孙丽华", mrn="ZY20260188")
    event = create_case(patient_mrn=patient.mrn, contact_name="周建平")
    text = {**TEXT, "what_happened": "孙丽华（ZY20260188）输注前，李秀英发现剂量错误，联系 13912345678。",
            "why": "周建平说当时很忙。"}
    lesson = services.write(event, text, actor=actor_of("quality"), now=AT)
    found = {(f["field"], f["found"], f["replacement"]) for f in lesson.scrub_findings}
    assert found == {("what_happened", "孙丽华", "[姓名]"), ("what_happened", "ZY20260188", "[编号]"),
                     ("what_happened", "李秀英", "[姓名]"), ("what_happened", "13912345678", "[手机号]"),
                     ("why", "周建平", "[姓名]")}
    assert services.suggestion(lesson, "what_happened") == "[姓名]（[编号]）输注前，[姓名]发现剂量错误，联系 [手机号]。"
    assert not [t for t in LESSON_WORKFLOW.available(lesson, actor_of("quality")) if t.action == "submit_review"]
    with pytest.raises(Conflict) as refused:
        services.transition(lesson, "submit_review", {}, actor=actor_of("quality"), now=AT)
    assert any("孙丽华" in line for line in refused.value.extra["missing"])
    assert lesson.state == "draft"

    services.update(lesson, {"what_happened": "患者输注前，护士发现剂量错误。", "why": "当班人员说当时很忙。"},
                    actor=actor_of("quality"), now=AT, expected_version=lesson.version)
    assert lesson.scrub_findings == []
    services.transition(lesson, "submit_review", {}, actor=actor_of("quality"), now=AT)
    assert lesson.state == "in_review"


def test_the_author_cannot_publish_another_member_of_the_quality_office_can(write_lesson, actor_of, hospital):
    lesson = write_lesson("in_review")
    assert [t.action for t in LESSON_WORKFLOW.available(lesson, actor_of("quality"))] == ["return_draft"]
    with pytest.raises(Forbidden):
        services.transition(lesson, "publish", {"checked": True}, actor=actor_of("quality"), now=AT)
    for who in ("head", "nurse"):
        with pytest.raises(Forbidden):
            services.transition(lesson, "publish", {"checked": True}, actor=actor_of(who), now=AT)
    with pytest.raises(GuardFailed):
        services.transition(lesson, "publish", {}, actor=actor_of("quality2"), now=AT)
    services.transition(lesson, "publish", {"checked": True}, actor=actor_of("quality2"), now=AT)
    assert (lesson.state, lesson.published_at, lesson.reviewer_user_id) == ("published", AT, hospital["quality2"].id)


def test_withdrawing_keeps_the_row_with_its_reason(write_lesson, actor_of):
    lesson = write_lesson("published")
    with pytest.raises(GuardFailed):
        services.transition(lesson, "withdraw", {"reason": " "}, actor=actor_of("quality"), now=AT)
    services.transition(lesson, "withdraw", {"reason": "与另一案例重复"}, actor=actor_of("quality"), now=AT)
    assert (lesson.state, lesson.withdrawn_at, lesson.note) == ("withdrawn", AT, "与另一案例重复")


def test_a_stale_version_is_refused(write_lesson, actor_of):
    lesson = write_lesson("draft")
    with pytest.raises(Conflict):
        services.update(lesson, {"title": "新标题"}, actor=actor_of("quality"), now=AT,
                        expected_version=lesson.version - 1)
    with pytest.raises(Conflict):
        services.transition(lesson, "submit_review", {}, actor=actor_of("quality"), now=AT,
                            expected_version=lesson.version + 1)


def test_only_a_draft_is_changed(write_lesson, actor_of):
    lesson = write_lesson("in_review")
    with pytest.raises(Conflict):
        services.update(lesson, {"title": "新标题"}, actor=actor_of("quality"), now=AT, expected_version=lesson.version)


S = LessonState
TABLE = {  # (action, from) → (to, who may, data)
    ("submit_review", S.DRAFT): (S.IN_REVIEW, "quality", {}),
    ("return_draft", S.IN_REVIEW): (S.DRAFT, "quality2", {"reason": "请删去床号"}),
    ("publish", S.IN_REVIEW): (S.PUBLISHED, "quality2", {"checked": True}),
    ("withdraw", S.PUBLISHED): (S.WITHDRAWN, "quality", {"reason": "内容有误"}),
}


@pytest.mark.parametrize("action", ["submit_review", "return_draft", "publish", "withdraw"])
@pytest.mark.parametrize("state", list(S))
def test_transition_table(write_lesson, actor_of, action, state):
    from qcflow.core.audit import AuditEntry
    from qcflow.core.errors import InvalidTransition
    from qcflow.extensions import db

    lesson = write_lesson(state.value)
    row = TABLE.get((action, state))
    if row is None:
        with pytest.raises(InvalidTransition):
            services.transition(lesson, action, {"reason": "x", "checked": True}, actor=actor_of("quality2"), now=AT)
        return
    to, who, data = row
    services.transition(lesson, action, data, actor=actor_of(who), now=AT, expected_version=lesson.version)
    db.session.commit()
    assert lesson.state == to
    last = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.object_type == "event_lesson")
                              .order_by(AuditEntry.seq.desc())).first()
    assert last.action == f"event_lesson.{action}"


def test_a_finding_names_the_whole_word_and_its_whole_replacement(create_case, actor_of):
    """A placeholder sharing a character with what it replaces (床 in 12床 → [床号]) is one finding."""
    text = {**TEXT, "what_happened": "12床患者夜间如厕时跌倒。"}
    lesson = services.write(create_case(), text, actor=actor_of("quality"), now=AT)
    assert [(f["found"], f["replacement"]) for f in lesson.scrub_findings] == [("12床", "[床号]")]


def test_only_the_author_changes_the_text_so_the_publisher_has_written_none_of_it(write_lesson, actor_of):
    lesson = write_lesson("draft")
    with pytest.raises(Forbidden) as refused, force_locale("en"):
        services.update(lesson, {"what_happened": "另一位质控人员改写的经过。"}, actor=actor_of("quality2"), now=AT,
                        expected_version=lesson.version)
    assert "author" in str(refused.value.message)
    assert lesson.what_happened == TEXT["what_happened"]
    services.transition(lesson, "submit_review", {}, actor=actor_of("quality"), now=AT)
    services.transition(lesson, "return_draft", {"reason": "请删去时间"}, actor=actor_of("quality2"), now=AT)
    with pytest.raises(Forbidden):  # the reviewer who sent it back does not rewrite it either
        services.update(lesson, {"why": "审核人自己写的原因。"}, actor=actor_of("quality2"), now=AT,
                        expected_version=lesson.version)
    services.update(lesson, {"why": "人手少。"}, actor=actor_of("quality"), now=AT, expected_version=lesson.version)
    assert lesson.why == "人手少。"
    assert not services.may_edit(lesson, actor_of("quality2")) and services.may_edit(lesson, actor_of("quality"))


def test_only_the_author_says_a_draft_is_ready_for_review(write_lesson, actor_of):
    lesson = write_lesson("draft")
    with pytest.raises(Forbidden):
        services.transition(lesson, "submit_review", {}, actor=actor_of("quality2"), now=AT)
    assert lesson.state == "draft"
    services.transition(lesson, "submit_review", {}, actor=actor_of("quality"), now=AT)
    assert lesson.state == "in_review"
