"""The operation transition table, exhaustively, against DESIGN §5, and its booking gate as the table sees it."""
from types import SimpleNamespace

import pytest

from qcflow.clinical.workflow import OPERATION_WORKFLOW, OperationState
from qcflow.core.actors import Actor
from qcflow.core.errors import Conflict, Forbidden, InvalidTransition

CLINICAL = {"clinician", "dept_head", "quality", "his"}
# (action, from state) → (to state, roles allowed), written out from DESIGN §5, not from the code.
EXPECTED = {
    ("book", "planned"): ("booked", CLINICAL),
    ("perform", "booked"): ("performed", CLINICAL),
    ("cancel", "planned"): ("cancelled", CLINICAL),
    ("cancel", "booked"): ("cancelled", CLINICAL),
    # The HIS reports an operation performed that was never booked in qcflow (granted to intake only).
    ("record_performed", "planned"): ("performed", {"his"}),
}
ROLES = ["clinician", "dept_head", "quality", "nurse", "admin", "his"]
MDT_MISSING = "a signed pre-operative MDT discussion"
AUTHORISATION_MISSING = "an authorisation of the surgeon"


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    """An app context for translated messages; these checks need no database."""
    from tests.conftest import make_app

    path = tmp_path_factory.mktemp("table")
    with make_app(f"sqlite:///{path}/unused.sqlite3", str(path)).app_context():
        yield


@pytest.fixture
def gate(monkeypatch):
    """The gate's rule reads the database; here each fake operation says what it lacks."""
    monkeypatch.setattr("qcflow.clinical.services.booking_missing", lambda operation: operation.lacks)


def fake_operation(state, *, lacks=(), needs_mdt=False):
    return SimpleNamespace(state=state, version=2, lacks=list(lacks), needs_mdt=needs_mdt)


def actor_for(role):
    return Actor(f"user:{role}", 9, 1, frozenset({role}))


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", ["book", "perform", "cancel", "record_performed"])
@pytest.mark.parametrize("state", [s.value for s in OperationState])
def test_operation_table(ctx, gate, state, action, role):
    operation = fake_operation(state)
    expected = EXPECTED.get((action, state))
    if expected is None:
        with pytest.raises(InvalidTransition) as caught:
            OPERATION_WORKFLOW.check(operation, action, actor=actor_for(role))
        assert caught.value.extra["allowed_actions"] == sorted({a for a, s in EXPECTED if s == state})
    elif role not in expected[1]:
        with pytest.raises(Forbidden):
            OPERATION_WORKFLOW.check(operation, action, actor=actor_for(role))
        assert action not in [t.action for t in OPERATION_WORKFLOW.available(operation, actor_for(role))]
    else:
        assert OPERATION_WORKFLOW.check(operation, action, actor=actor_for(role)).to_state == expected[0]
        assert action in [t.action for t in OPERATION_WORKFLOW.available(operation, actor_for(role))]


@pytest.mark.parametrize("needs_mdt, lacks", [
    (False, [AUTHORISATION_MISSING]),
    (True, [MDT_MISSING]),
    (True, [MDT_MISSING, AUTHORISATION_MISSING]),
])
def test_a_shut_gate_refuses_booking_with_409_and_what_is_missing(ctx, gate, needs_mdt, lacks):
    operation = fake_operation("planned", lacks=lacks, needs_mdt=needs_mdt)
    with pytest.raises(Conflict) as caught:
        OPERATION_WORKFLOW.check(operation, "book", actor=actor_for("quality"))
    assert caught.value.status == 409 and caught.value.extra["missing"] == lacks
    assert " ".join(lacks) in str(caught.value.message)
    assert OPERATION_WORKFLOW.missing(operation, "book") == lacks


def test_without_an_mdt_to_override_a_refused_booking_is_not_offered_even_with_the_override(ctx, gate):
    operation = fake_operation("planned", lacks=[AUTHORISATION_MISSING])
    assert [t.action for t in OPERATION_WORKFLOW.available(operation, actor_for("quality"))] == ["cancel"]
    with pytest.raises(Conflict):
        OPERATION_WORKFLOW.check(operation, "book", actor=actor_for("quality"), data={"emergency_override": True})


def test_an_operation_that_needs_the_mdt_offers_booking_by_emergency_override(ctx, gate):
    operation = fake_operation("planned", lacks=[MDT_MISSING, AUTHORISATION_MISSING], needs_mdt=True)
    assert [t.action for t in OPERATION_WORKFLOW.available(operation, actor_for("quality"))] == ["book", "cancel"]
    transition = OPERATION_WORKFLOW.check(operation, "book", actor=actor_for("quality"),
                                          data={"emergency_override": True})
    assert transition.to_state == "booked"


def test_the_gate_is_asked_only_where_booking_is_a_step(ctx, gate):
    assert OPERATION_WORKFLOW.missing(fake_operation("booked", lacks=[MDT_MISSING]), "book") == []


def test_the_diagram_shows_the_gate(ctx):
    assert "planned --> booked: book (clinician, dept_head, his, quality) [guard: booking gate" in OPERATION_WORKFLOW.mermaid()
