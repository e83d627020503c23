"""The discussion transition table, exhaustively, against DESIGN §3 and §7."""
from types import SimpleNamespace

import pytest

from qcflow.core.actors import Actor
from qcflow.core.errors import Forbidden, InvalidTransition
from qcflow.mdt.workflow import DISCUSSION_WORKFLOW, DiscussionState

RECORDERS = {"clinician", "dept_head", "quality"}
# (action, from state) → (to state, roles allowed), written out from the design, not from the code.
EXPECTED = {
    ("schedule", "requested"): ("scheduled", RECORDERS),
    ("schedule", "scheduled"): ("scheduled", RECORDERS),  # a new date
    ("hold", "scheduled"): ("held", RECORDERS),
    ("sign", "held"): ("signed", {"chair", "dept_head", "quality"}),
    ("cancel", "requested"): ("cancelled", RECORDERS),
    ("cancel", "scheduled"): ("cancelled", RECORDERS),
    ("cancel", "held"): ("cancelled", RECORDERS),
}
ACTIONS = sorted({a for a, _ in EXPECTED})
ROLES = ["chair", "clinician", "dept_head", "quality", "nurse", "admin"]
#: Everything every step needs, so only the table (state, role) decides.
DATA = {"scheduled_at": "2026-03-05T14:00:00+08:00", "reason": "患者转院"}


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    """An app context for configuration and translated messages; these checks need no database."""
    from tests.conftest import make_app

    path = tmp_path_factory.mktemp("table")
    with make_app(f"sqlite:///{path}/unused.sqlite3", str(path)).app_context():
        yield


def actor_for(role):
    if role == "chair":  # the relation alone: no role of their own
        return Actor("user:7", 7, 1, frozenset())
    return Actor(f"user:{role}", 99, 1, frozenset({role}))


def attendee(n, specialty, department_id):
    return SimpleNamespace(id=n, user_id=100 + n, attended=True, specialty=specialty, department_id=department_id)


def fake_discussion(state):
    """A pre-operative record ready to sign: chair 7, conclusion, decision and a full quorum."""
    return SimpleNamespace(
        state=state, version=3, kind="preop_level4", chair_user_id=7, conclusion="同意手术", decision="proceed",
        participants=[attendee(1, "general_surgery", 1), attendee(2, "anaesthesia", 2), attendee(3, "oncology", 3)])


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("state", [s.value for s in DiscussionState])
def test_discussion_table(ctx, state, action, role):
    expected = EXPECTED.get((action, state))
    discussion = fake_discussion(state)
    if expected is None:
        with pytest.raises(InvalidTransition) as caught:
            DISCUSSION_WORKFLOW.check(discussion, action, actor=actor_for(role), data=DATA)
        assert caught.value.status == 409
        assert caught.value.extra["allowed_actions"] == sorted({a for a, s in EXPECTED if s == state})
        return
    to_state, roles = expected
    if role not in roles:
        with pytest.raises(Forbidden):
            DISCUSSION_WORKFLOW.check(discussion, action, actor=actor_for(role), data=DATA)
    else:
        assert DISCUSSION_WORKFLOW.check(discussion, action, actor=actor_for(role), data=DATA).to_state == to_state


def test_every_state_is_reachable_and_final_states_have_no_exit():
    reachable, frontier = {"requested"}, ["requested"]
    while frontier:
        state = frontier.pop()
        for (action, src), (dst, _) in EXPECTED.items():
            if src == state and dst not in reachable:
                reachable.add(dst)
                frontier.append(dst)
    assert reachable == {s.value for s in DiscussionState}
    for final in ("signed", "cancelled"):
        assert DISCUSSION_WORKFLOW.allowed_actions(DiscussionState(final)) == []


@pytest.mark.parametrize("action, data, missing", [
    ("schedule", {}, "scheduled_at"),
    ("cancel", {}, "reason"),
])
def test_steps_name_what_they_need(ctx, action, data, missing):
    from qcflow.core.errors import GuardFailed

    state = "requested"
    with pytest.raises(GuardFailed) as caught:
        DISCUSSION_WORKFLOW.check(fake_discussion(state), action, actor=actor_for("quality"), data=data)
    assert caught.value.status == 422 and missing in str(caught.value.message)


def test_a_clinician_who_chairs_may_sign_and_one_who_does_not_may_not(ctx):
    discussion = fake_discussion("held")
    chairing = Actor("user:7", 7, 1, frozenset({"clinician"}))
    other = Actor("user:8", 8, 1, frozenset({"clinician"}))
    assert DISCUSSION_WORKFLOW.check(discussion, "sign", actor=chairing).to_state == "signed"
    with pytest.raises(Forbidden):
        DISCUSSION_WORKFLOW.check(discussion, "sign", actor=other)
    assert [t.action for t in DISCUSSION_WORKFLOW.available(discussion, other)] == ["cancel"]
