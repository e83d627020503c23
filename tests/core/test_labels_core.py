"""Audit actions and actors as people read them: every action written has a label; timelines show names."""
import re
from datetime import datetime, timezone
from pathlib import Path


ROOT = Path(__file__).resolve().parents[2] / "qcflow"
#: audit.record(actor, "action", …) and audit.note_read(actor, "action", …): the action argument.
CALL = re.compile(r"(?:audit\.record|audit\.note_read|\brecord)\(\s*(?:[^,()]|\([^()]*\))+,\s*(f?)\"([^\"]+)\"", re.S)


def written_actions():
    """Every audit action the code writes, with the dynamic ones expanded."""
    from qcflow.clinical.services import KINDS
    import importlib

    from qcflow.core.workflow import Workflow

    workflows = [value for path in ROOT.glob("*/workflow.py")
                 for value in vars(importlib.import_module(f"qcflow.{path.parent.name}.workflow")).values()
                 if isinstance(value, Workflow)]

    actions, dynamic = set(), set()
    for path in ROOT.rglob("*.py"):
        for is_f, action in CALL.findall(path.read_text(encoding="utf-8")):
            (dynamic if is_f else actions).add(action)
    expanded = {
        "{self.name}.{action}": {f"{w.name}.{t.action}" for w in workflows for t in w.transitions},
        "intake.{kind.name}.{result.status}": {f"intake.{name}.{status}" for name in KINDS
                                               for status in ("created", "updated")},
        "event.message_{direction}": {"event.message_to_reporter", "event.message_from_reporter"},
    }
    unknown = dynamic - set(expanded)
    assert not unknown, f"audit actions built at run time that this test cannot list: {unknown}"
    for pattern in dynamic:
        actions |= expanded[pattern]
    return actions


def test_every_audit_action_the_code_writes_has_a_label(app):
    from qcflow.core.audit_labels import AUDIT_ACTIONS

    actions = written_actions()
    assert {"event.triage", "mdt_participant.add", "user.login", "intake.staff.created"} <= actions
    assert sorted(actions - set(AUDIT_ACTIONS)) == []


def test_action_labels_are_chinese_and_english(app):
    from flask_babel import force_locale

    from qcflow.core.audit_labels import AUDIT_ACTIONS
    from qcflow.core.i18n import label

    with app.test_request_context("/"):
        with force_locale("zh"):
            untranslated = [code for code, text in AUDIT_ACTIONS.items()
                            if not re.search(r"[\u4e00-\u9fff]", str(text))]
            assert untranslated == []
            assert label("audit_action", "event.triage") == "完成分级分派"
        with force_locale("en"):
            assert label("audit_action", "mdt_participant.add") == "Participant added"


def test_event_timeline_shows_labels_and_names_to_handlers_only(app, client, create_user, create_department):
    from qcflow.core import audit
    from qcflow.core.audit import AuditEntry
    from qcflow.core.audit_labels import audit_rows
    from qcflow.extensions import db

    dept = create_department(name="骨科", name_en="Orthopaedics")
    quality = create_user(username="q1", roles=("quality",), display_name="王质控", department=dept)
    at = datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc)
    audit.record(f"user:{quality.id}", "event.triage", "adverse_event", 1, at)
    audit.record("system:events.escalate", "event.deadline_breached", "adverse_event", 1, at)
    db.session.commit()
    entries = list(db.session.scalars(db.select(AuditEntry).order_by(AuditEntry.seq)))
    with app.test_request_context("/?lang=zh"):
        rows = audit_rows(entries)
        assert [(r.action, r.actor) for r in rows] == [("完成分级分派", "王质控 · 骨科"),
                                                       ("超过时限，已升级", "系统（定时任务）")]
        hidden = audit_rows(entries, show_users=False)
        assert [r.actor for r in hidden] == ["", "系统（定时任务）"]
    from flask_babel import force_locale

    with app.test_request_context("/"), force_locale("en"):
        rows = audit_rows(entries)
        assert [(r.action, r.actor) for r in rows] == [("Case triaged", "王质控 · Orthopaedics"),
                                                       ("Deadline passed, escalated", "System (scheduler)")]


def test_anonymous_and_his_actors_read_as_words(app):
    from qcflow.core.audit_labels import actor_key
    from qcflow.core.i18n import label

    with app.test_request_context("/"):
        assert label("audit_actor", actor_key("anonymous")) == "匿名报告人"
        assert label("audit_actor", actor_key("his")) == "医院信息系统"
        assert label("audit_actor", actor_key("system:cli")) == "系统（命令行）"
        assert label("audit_actor", actor_key("system:mdt")) == "系统（自动）"


def test_error_pages_say_what_happened_without_status_codes_in_the_prose(app, client, create_user):
    """The heading and message read as sentences; the status is a small support line, not "(404)" in the title."""
    import re as _re

    from qcflow.extensions import db
    from tests.conftest import login

    create_user(username="c1", roles=("clinician",))
    db.session.commit()
    login(client, "c1")
    html = client.get("/no-such-page").get_data(as_text=True)
    heading = _re.search(r'<h1 id="error-title">(.*?)</h1>', html, _re.S).group(1)
    assert heading.strip() == "未找到" and "(404)" not in html
    assert "如需技术支持，请提供错误代码 404" in html


def test_a_refused_step_explains_itself_without_codes(app):
    from qcflow.core.errors import InvalidTransition
    from qcflow.events.workflow import EVENT_WORKFLOW, EventState
    from qcflow.core.actors import Actor

    class Case:
        state, version, __tablename__, id = EventState.CLOSED.value, 1, "adverse_event", 1

    with app.test_request_context("/"):
        try:
            EVENT_WORKFLOW.check(Case(), "triage", actor=Actor("user:1", 1, 1, frozenset({"quality"})))
        except InvalidTransition as refused:
            assert "triage" not in str(refused.message) and "closed" not in str(refused.message)
            assert "不能执行此步骤" in str(refused.message)
        else:
            raise AssertionError("a closed case cannot be triaged")


def test_home_names_the_department_once_and_mdt_states_as_labels(app, client, create_user, create_department, now):
    from qcflow.extensions import db
    from qcflow.mdt.models import Discussion
    from tests.conftest import csrf_from, login

    office = create_department(code="QC", name="质控办", name_en="Quality Control Office", kind="functional")
    quality = create_user(username="q9", roles=("quality",), department=office)
    surgery = create_department(code="GS", name="普通外科", name_en="General Surgery")
    head = create_user(username="h9", roles=("clinician", "dept_head"), department=surgery)
    db.session.add(Discussion(kind="case_review", state="requested", department_id=surgery.id,
                              chair_user_id=head.id, created_at=now, updated_at=now))
    db.session.commit()
    login(client, "q9")
    html = client.get("/?lang=zh").get_data(as_text=True)
    assert "质控办 · 质控办" not in html and '<p class="hint" id="home-who">质控办</p>' in html
    # No cases and no follow-ups yet: the indicators card says why it is empty.
    assert "有了事件和随访记录后，这里会显示指标。" in html
    client.post("/logout", data={"csrf_token": csrf_from(client, "/")})
    login(client, "h9")
    head_home = client.get("/?lang=zh").get_data(as_text=True)
    assert '<p class="hint" id="home-who">普通外科 · 临床医务人员、科室主任</p>' in head_home
    mdt = head_home[head_home.index('id="home-mdt"'):]
    assert "requested" not in mdt and "已申请" in mdt


def test_home_points_to_the_indicators_once_cases_exist(app, client, create_user, create_department, now):
    from unittest import mock

    from qcflow.extensions import db
    from tests.conftest import login

    create_user(username="q8", roles=("quality",))
    db.session.commit()
    login(client, "q8")
    with mock.patch("qcflow.events.queries.state_counts", return_value={"by_state": {"submitted": 4}, "overdue": 0}):
        html = client.get("/?lang=zh").get_data(as_text=True)
    assert "有了事件和随访记录后" not in html and "查看本月医疗质量指标" in html


def test_the_account_page_marks_the_language_in_use_and_names_the_person(app, client, create_user):
    from qcflow.extensions import db
    from tests.conftest import login

    create_user(username="acc", display_name="周医生", roles=("clinician", "dept_head"))
    db.session.commit()
    login(client, "acc")
    english = client.get("/account?lang=en").get_data(as_text=True)
    assert 'value="en" checked' in english and 'value="zh" checked' not in english
    chinese = client.get("/account?lang=zh").get_data(as_text=True)
    assert "<dt>姓名</dt><dd>周医生</dd>" in chinese and "临床医务人员、科室主任" in chinese


def test_a_case_reporter_reads_as_reporter_until_the_page_asks_to_show_who(app, create_user):
    from qcflow.core import audit
    from qcflow.core.audit import AuditEntry
    from qcflow.core.audit_labels import audit_rows
    from qcflow.extensions import db

    reporter = create_user(username="r7", display_name="张建国")
    handler = create_user(username="q7", roles=("quality",), display_name="王质控")
    at = datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc)
    audit.record(f"user:{reporter.id}", "event.submit", "adverse_event", 7, at)
    audit.record(f"user:{handler.id}", "event.triage", "adverse_event", 7, at)
    db.session.commit()
    entries = list(db.session.scalars(db.select(AuditEntry).order_by(AuditEntry.seq)))
    with app.test_request_context("/"):
        masked = [r.actor for r in audit_rows(entries, True, f"user:{reporter.id}")]
        assert masked[0] == "报告人" and masked[1].startswith("王质控")
        assert audit_rows(entries, True)[0].actor.startswith("张建国")
        assert [r.actor for r in audit_rows(entries, False, f"user:{reporter.id}")] == ["", ""]
