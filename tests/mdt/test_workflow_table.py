"""The discussion transition table, exhaustively, against DESIGN §3 and §7 and the authority model
(docs/decisions.md, "Who may act on a discussion"): each relation to the discussion × each step."""
from types import SimpleNamespace

import pytest

from qcflow.core.actors import Actor
from qcflow.core.errors import Forbidden, InvalidTransition
from qcflow.mdt.workflow import DISCUSSION_WORKFLOW, DiscussionState

#: The organising department's clinicians and heads and the quality office run the discussion.
ORGANISERS = {"organising_clinician", "organising_head", "quality"}
# (action, from state) → (to state, who may), written out from the design, not from the code.
EXPECTED = {
    ("schedule", "requested"): ("scheduled", ORGANISERS | {"chair"}),
    ("schedule", "scheduled"): ("scheduled", ORGANISERS | {"chair"}),  # a new date
    ("hold", "scheduled"): ("held", ORGANISERS | {"chair"}),
    ("sign", "held"): ("signed", {"chair", "organising_head", "quality"}),
    ("cancel", "requested"): ("cancelled", ORGANISERS),
    ("cancel", "scheduled"): ("cancelled", ORGANISERS),
    ("cancel", "held"): ("cancelled", ORGANISERS),
    # qcflow itself withdraws a request not yet held when its operation is cancelled; no person may
    ("withdraw", "requested"): ("cancelled", set()),
    ("withdraw", "scheduled"): ("cancelled", set()),
}
ACTIONS = sorted({a for a, _ in EXPECTED})
#: Who tries: relations to a discussion organised by department 1 and chaired by user 7.
ACTORS = {
    "chair": Actor("user:7", 7, 5, frozenset()),  # the relation alone: no role of their own
    "organising_clinician": Actor("user:20", 20, 1, frozenset({"clinician"})),
    "organising_head": Actor("user:21", 21, 1, frozenset({"dept_head"})),
    "quality": Actor("user:22", 22, 9, frozenset({"quality"})),
    # invited from other departments: they read and confirm their own attendance, nothing else
    "outside_participant": Actor("user:102", 102, 2, frozenset({"clinician"})),
    "outside_head_participant": Actor("user:103", 103, 3, frozenset({"dept_head"})),
    "outside_clinician": Actor("user:30", 30, 4, frozenset({"clinician"})),
    "organising_nurse": Actor("user:31", 31, 1, frozenset({"nurse"})),
    "admin": Actor("user:32", 32, 9, frozenset({"admin"})),
}
ROLES = sorted(ACTORS)
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
    return ACTORS[role]


def attendee(n, specialty, department_id):
    from qcflow.mdt.models import Participant

    return Participant(id=n, user_id=100 + n, attended=True, specialty=specialty, department_id=department_id)


def fake_discussion(state):
    """A pre-operative record ready to sign: chair 7, conclusion, decision and a full quorum."""
    return SimpleNamespace(
        state=state, version=3, kind="preop_level4", department_id=1, chair_user_id=7, conclusion="同意手术", decision="proceed",
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


def test_an_invited_head_of_another_department_is_offered_no_step(ctx):
    """A head signs their own department's discussions, not those they are invited to."""
    for state in ("requested", "scheduled", "held"):
        assert DISCUSSION_WORKFLOW.available(fake_discussion(state), ACTORS["outside_head_participant"]) == []
