"""The event and corrective-action transition tables, exhaustively, against DESIGN §4."""
from types import SimpleNamespace

import pytest

from qcflow.core.actors import Actor
from qcflow.core.errors import Forbidden, GuardFailed, InvalidTransition
from qcflow.events.workflow import ACTION_WORKFLOW, EVENT_WORKFLOW, ActionState, EventState

# (action, from state) → (to state, roles allowed), written out from DESIGN §4, not from the code.
EXPECTED = {
    ("submit", "draft"): ("submitted", {"reporter"}),
    ("request_info", "submitted"): ("info_requested", {"quality"}),
    ("provide_info", "info_requested"): ("submitted", {"reporter", "receipt_holder"}),
    ("triage", "submitted"): ("triaged", {"quality"}),
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


def fake_event(state):
    from qcflow.events.services import REQUIRED_FIELDS

    return SimpleNamespace(state=state, version=3, reporter_user_id=7, actions=[], confirmed_grade="III",
                           is_unplanned_reoperation=False, **dict.fromkeys(REQUIRED_FIELDS))


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("state", [s.value for s in EventState])
def test_event_table(ctx, state, action, role):
    expected = EXPECTED.get((action, state))
    event = fake_event(state)
    if expected is None:
        with pytest.raises(InvalidTransition) as caught:
            EVENT_WORKFLOW.check(event, action, actor=actor_for(role))
        assert caught.value.status == 409
        assert caught.value.extra["allowed_actions"] == sorted({a for a, s in EXPECTED if s == state})
        return
    to_state, roles = expected
    assert EVENT_WORKFLOW._by_action[(action, EventState(state))].to_state == to_state
    if role not in roles:
        with pytest.raises(Forbidden):
            EVENT_WORKFLOW.check(event, action, actor=actor_for(role))
    else:
        try:  # the table admits it; only the step's own fields (guard) may still be missing
            EVENT_WORKFLOW.check(event, action, actor=actor_for(role))
        except GuardFailed as failure:
            assert failure.status == 422 and str(failure.message)


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
