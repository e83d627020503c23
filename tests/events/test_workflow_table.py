"""The event and corrective-action transition tables, exhaustively, against DESIGN §4."""
from types import SimpleNamespace

import pytest

from flask_babel import gettext as _

from qcflow.core.actors import Actor
from qcflow.core.errors import Forbidden, GuardFailed, InvalidTransition
from qcflow.events.services import REQUIRED_FIELDS
from qcflow.events.workflow import ACTION_WORKFLOW, EVENT_WORKFLOW, ActionState, EventState

# (action, from state) → (to state, roles allowed), written out from DESIGN §4, not from the code.
EXPECTED = {
    ("submit", "draft"): ("submitted", {"reporter"}),
    ("request_info", "submitted"): ("info_requested", {"quality"}),
    ("provide_info", "info_requested"): ("submitted", {"reporter", "receipt_holder"}),
    ("triage", "submitted"): ("triaged", {"quality"}),
    ("triage", "info_requested"): ("triaged", {"quality"}),
    ("mark_duplicate", "submitted"): ("duplicate", {"quality"}),
    ("mark_duplicate", "info_requested"): ("duplicate", {"quality"}),
    ("reject", "submitted"): ("not_reportable", {"quality"}),
    ("reject", "info_requested"): ("not_reportable", {"quality"}),
    ("withdraw", "draft"): ("withdrawn", {"reporter"}),
    ("withdraw", "submitted"): ("withdrawn", {"reporter"}),
    ("start_investigation", "triaged"): ("investigating", {"quality"}),
    ("plan_actions", "investigating"): ("actions_open", {"quality"}),
    ("close", "triaged"): ("closed", {"quality"}),
    ("verify", "actions_open"): ("verifying", {"quality"}),
    ("close", "verifying"): ("closed", {"quality"}),
    ("reopen", "closed"): ("investigating", {"quality"}),
}
@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    """An app context for translated messages; these checks need no database."""
    from tests.conftest import make_app

    path = tmp_path_factory.mktemp("table")
    with make_app(f"sqlite:///{path}/unused.sqlite3", str(path)).app_context():
        yield


ACTIONS = sorted({a for a, _ in EXPECTED})
ROLES = ["reporter", "receipt_holder", "quality", "dept_head", "nurse", "clinician", "admin"]


def actor_for(role):
    if role == "reporter":
        return Actor("user:7", 7, 1, frozenset({"clinician"}))
    return Actor(f"user:{role}", 99, 1, frozenset({role}))


#: Form data that satisfies every step's own fields.
GOOD = {"message": "请补充经过", "confirmed_grade": "III", "handling_department_id": 2, "external_severity": "none",
        "duplicate_of_id": 1, "reason": "不属于上报范围", "rca_cause_domains": ["process"], "rca_factors": "交接不清",
        "analysis": "流程缺陷", "feedback": "已整改", "improvement_types": ["process"]}


def fake_event(state, *, ready=True):
    """A grade III case; `ready`: its report complete and its corrective actions verified, so only the table
    (state, role) decides; otherwise nothing filled in and no action, so every guard has something to say."""
    from qcflow.events.services import REQUIRED_FIELDS

    filled = {f: "x" for f in REQUIRED_FIELDS} if ready else dict.fromkeys(REQUIRED_FIELDS)
    actions = [SimpleNamespace(state="verified")] if ready else []
    return SimpleNamespace(state=state, version=3, reporter_user_id=7, actions=actions, confirmed_grade="III",
                           is_unplanned_reoperation=False, origin=None, **filled)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("state", [s.value for s in EventState])
def test_event_table(ctx, state, action, role):
    expected = EXPECTED.get((action, state))
    event = fake_event(state)
    if expected is None:
        with pytest.raises(InvalidTransition) as caught:
            EVENT_WORKFLOW.check(event, action, actor=actor_for(role), data=GOOD)
        assert caught.value.status == 409
        assert caught.value.extra["allowed_actions"] == sorted({a for a, s in EXPECTED if s == state})
        return
    to_state, roles = expected
    if role not in roles:
        with pytest.raises(Forbidden):
            EVENT_WORKFLOW.check(event, action, actor=actor_for(role), data=GOOD)
    else:
        assert EVENT_WORKFLOW.check(event, action, actor=actor_for(role), data=GOOD).to_state == to_state


def required(*fields):
    return lambda: _("Required for this step: %(fields)s.", fields=", ".join(fields))


#: (action, from state) → what its guard says of an empty case and an empty form, from DESIGN §4.
REFUSALS = {
    ("submit", "draft"): lambda: _("Fill in before submitting: %(fields)s.", fields=", ".join(REQUIRED_FIELDS)),
    ("request_info", "submitted"): required("message"),
    ("provide_info", "info_requested"): required("message"),
    # an empty case has no category (like a patient's or family's report): triage gives it
    ("triage", "submitted"): required("confirmed_grade", "handling_department_id", "external_severity",
                                      "category_code"),
    ("triage", "info_requested"): required("confirmed_grade", "handling_department_id", "external_severity",
                                           "category_code"),
    ("mark_duplicate", "submitted"): required("duplicate_of_id"),
    ("mark_duplicate", "info_requested"): required("duplicate_of_id"),
    ("reject", "submitted"): required("reason"),
    ("reject", "info_requested"): required("reason"),
    ("plan_actions", "investigating"): required("rca_cause_domains", "rca_factors"),
    ("close", "triaged"): required("analysis", "feedback"),
    ("verify", "actions_open"): lambda: _("Every corrective action must be done first."),
    ("close", "verifying"): required("improvement_types", "feedback"),
    ("reopen", "closed"): required("reason"),
}


@pytest.mark.parametrize("action,state", sorted(REFUSALS))
def test_each_guard_refuses_an_empty_case_and_form_saying_what_is_missing(ctx, action, state):
    allowed_role = sorted(EXPECTED[(action, state)][1])[0]
    with pytest.raises(GuardFailed) as caught:
        EVENT_WORKFLOW.check(fake_event(state, ready=False), action, actor=actor_for(allowed_role), data={})
    assert caught.value.status == 422 and str(caught.value.message) == REFUSALS[(action, state)]()


def test_steps_without_a_guard_are_exactly_those_not_listed_as_refused(ctx):
    guarded = {(t.action, s.value) for t in EVENT_WORKFLOW.transitions for s in t.from_states if t.guard}
    assert guarded == set(REFUSALS)


def test_every_state_is_reachable_and_terminal_states_have_no_exit():
    reachable, frontier = {"draft"}, ["draft"]
    while frontier:
        state = frontier.pop()
        for (action, src), (dst, _) in EXPECTED.items():
            if src == state and dst not in reachable:
                reachable.add(dst)
                frontier.append(dst)
    assert reachable == {s.value for s in EventState}
    for terminal in ("duplicate", "not_reportable", "withdrawn"):
        assert EVENT_WORKFLOW.allowed_actions(EventState(terminal)) == []


ACTION_EXPECTED = {
    ("complete", "open"): ("done", {"quality", "owner"}),
    ("verify", "done"): ("verified", {"quality"}),
    ("reopen", "done"): ("open", {"quality"}),
    ("cancel", "open"): ("cancelled", {"quality"}),
    ("cancel", "done"): ("cancelled", {"quality"}),
}


@pytest.mark.parametrize("role", ["quality", "owner", "nurse"])
@pytest.mark.parametrize("action", ["complete", "verify", "reopen", "cancel"])
@pytest.mark.parametrize("state", [s.value for s in ActionState])
def test_corrective_action_table(ctx, state, action, role):
    item = SimpleNamespace(state=state, version=1, owner_user_id=5, owner_department_id=2)
    actor = (Actor("user:5", 5, 2, frozenset({"nurse"})) if role == "owner"
             else Actor("user:9", 9, 3, frozenset({role})))
    expected = ACTION_EXPECTED.get((action, state))
    if expected is None:
        with pytest.raises(InvalidTransition):
            ACTION_WORKFLOW.check(item, action, actor=actor)
    elif role not in expected[1]:
        with pytest.raises(Forbidden):
            ACTION_WORKFLOW.check(item, action, actor=actor)
    else:
        data = {"evidence": "培训签到表", "reason": "不再需要"}
        assert ACTION_WORKFLOW.check(item, action, actor=actor, data=data).to_state == expected[0]
