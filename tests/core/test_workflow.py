"""The workflow engine, on a small test-only table."""
from enum import StrEnum

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from qcflow.core.actors import Actor
from qcflow.core.errors import Conflict, Forbidden, GuardFailed, InvalidTransition
from qcflow.core.workflow import WORKFLOWS, Gate, Transition, Workflow


class ScratchBase(DeclarativeBase):
    pass


class Ticket(ScratchBase):
    __tablename__ = "wf_test_ticket"
    id: Mapped[int] = mapped_column(primary_key=True)
    state: Mapped[str] = mapped_column(sa.String(20), default="open")
    owner_id: Mapped[int | None]
    note: Mapped[str | None]
    version: Mapped[int] = mapped_column(default=1)
    __mapper_args__ = {"version_id_col": version}


class S(StrEnum):
    OPEN = "open"
    WORKING = "working"
    DONE = "done"
    CANCELLED = "cancelled"


def needs_note(ticket, data):
    return None if data.get("note") else "请填写处理说明"


TICKETS = Workflow(
    "test_ticket",
    S,
    [
        Transition("start", {S.OPEN}, S.WORKING, {"quality"}),
        Transition("finish", {S.WORKING}, S.DONE, {"quality"}, needs_note),
        Transition("cancel", {S.OPEN, S.WORKING}, S.CANCELLED, {"owner", "quality"}),
    ],
    relations=lambda ticket, actor: {"owner"} if actor.user_id == ticket.owner_id else set(),
    initial=S.OPEN,
    table="wf_test_ticket",
    phases={"live": {S.OPEN, S.WORKING}},
)

#: Finishing needs a note on the ticket itself; a ticket with an owner may be finished without one if the
#: form says it is urgent.
NOTE_GATE = Gate(
    "note gate",
    lambda ticket: [] if ticket.note else ["a note on the ticket"],
    lambda missing: "缺少：" + "；".join(missing),
    may_override=lambda ticket: ticket.owner_id is not None,
    override_field="urgent",
)
GATED = Workflow("test_gated_ticket", S, [Transition("finish", {S.WORKING}, S.DONE, {"quality"}, NOTE_GATE)])

QUALITY = Actor("user:1", 1, 1, frozenset({"quality"}))
NURSE = Actor("user:2", 2, 1, frozenset({"nurse"}))


@pytest.fixture
def ticket(ctx):
    from qcflow.extensions import db

    ScratchBase.metadata.create_all(db.engine)
    ticket = Ticket(owner_id=2)
    db.session.add(ticket)
    db.session.commit()
    yield ticket
    db.session.rollback()
    ScratchBase.metadata.drop_all(db.engine)


def audit_rows():
    from qcflow.core.audit import AuditEntry
    from qcflow.extensions import db

    return db.session.scalars(sa.select(AuditEntry).order_by(AuditEntry.seq)).all()


# Every (state, action, role) combination, against the table.
CASES = [
    (state, action, role)
    for state in S
    for action in ("start", "finish", "cancel")
    for role in ("quality", "nurse", "owner")
]


@pytest.mark.parametrize("state,action,role", CASES)
def test_transition_table_exhaustively(ticket, now, state, action, role):
    from qcflow.extensions import db

    db.session.execute(sa.update(Ticket).values(state=state.value))
    db.session.expire_all()
    actor = {"quality": QUALITY, "nurse": Actor("user:9", 9, 1, frozenset({"nurse"})), "owner": NURSE}[role]
    expected = {
        ("start", S.OPEN, "quality"): S.WORKING,
        ("finish", S.WORKING, "quality"): S.DONE,
        ("cancel", S.OPEN, "quality"): S.CANCELLED,
        ("cancel", S.WORKING, "quality"): S.CANCELLED,
        ("cancel", S.OPEN, "owner"): S.CANCELLED,
        ("cancel", S.WORKING, "owner"): S.CANCELLED,
    }.get((action, state, role))
    permitted_somewhere = any(state in t.from_states for t in TICKETS.transitions if t.action == action)
    if expected is not None:
        TICKETS.apply(ticket, action, actor=actor, now=now, data={"note": "done"})
        assert ticket.state == expected.value
    elif not permitted_somewhere:
        with pytest.raises(InvalidTransition):
            TICKETS.apply(ticket, action, actor=actor, now=now, data={"note": "done"})
    else:
        with pytest.raises(Forbidden):
            TICKETS.apply(ticket, action, actor=actor, now=now, data={"note": "done"})


def test_apply_sets_state_bumps_version_and_audits(ticket, now):
    from qcflow.extensions import db

    TICKETS.apply(ticket, "start", actor=QUALITY, now=now)
    db.session.commit()
    assert (ticket.state, ticket.version) == ("working", 2)
    [entry] = audit_rows()
    assert entry.actor == "user:1" and entry.action == "test_ticket.start"
    assert entry.object_type == "wf_test_ticket" and entry.object_id == str(ticket.id)
    assert '"before":{"state":"open"}' in entry.detail and '"state":"working"' in entry.detail


def test_invalid_transition_lists_the_allowed_actions(ticket, now):
    with pytest.raises(InvalidTransition) as caught:
        TICKETS.apply(ticket, "finish", actor=QUALITY, now=now)
    assert caught.value.status == 409
    assert caught.value.extra["allowed_actions"] == ["cancel", "start"]
    assert audit_rows() == []


def test_guard_failure_is_422_with_the_reason_and_changes_nothing(ticket, now):
    TICKETS.apply(ticket, "start", actor=QUALITY, now=now)
    with pytest.raises(GuardFailed) as caught:
        TICKETS.apply(ticket, "finish", actor=QUALITY, now=now, data={})
    assert caught.value.status == 422 and str(caught.value.message) == "请填写处理说明"
    assert ticket.state == "working"


def test_stale_expected_version_is_a_conflict(ticket, now):
    with pytest.raises(Conflict) as caught:
        TICKETS.apply(ticket, "start", actor=QUALITY, now=now, expected_version=7)
    assert caught.value.status == 409 and caught.value.extra["current_version"] == 1


def test_concurrent_writer_loses_with_stale_data(app, ticket, now):
    """Two sessions load version 1; the second to write gets StaleDataError (→ 409), not a lost update."""
    from sqlalchemy.orm import Session
    from sqlalchemy.orm.exc import StaleDataError

    from qcflow.extensions import db

    other = Session(db.engine)
    theirs = other.get(Ticket, ticket.id)
    TICKETS.apply(ticket, "start", actor=QUALITY, now=now)
    db.session.commit()
    theirs.state = "cancelled"  # the other writer, working from version 1
    with pytest.raises(StaleDataError):
        other.flush()
    other.rollback()
    other.close()


def test_available_depends_on_state_and_relation(ticket):
    assert [t.action for t in TICKETS.available(ticket, NURSE)] == ["cancel"]  # the owner
    assert [t.action for t in TICKETS.available(ticket, Actor("user:9", 9, 1, frozenset({"nurse"})))] == []
    assert sorted(t.action for t in TICKETS.available(ticket, QUALITY)) == ["cancel", "start"]


def test_mermaid_diagram_lists_every_edge():
    text = TICKETS.mermaid()
    assert text.startswith("stateDiagram-v2")
    assert "[*] --> open" in text
    assert "working --> done: finish (quality) [guard]" in text
    assert "open --> cancelled: cancel (owner, quality)" in text


def test_cli_prints_the_diagram(runner):
    assert "test_ticket" in WORKFLOWS
    result = runner.invoke(args=["qcflow", "workflow", "diagram", "test_ticket"])
    assert result.exit_code == 0 and "working --> done" in result.output


def test_cli_unknown_workflow_exits_2(runner):
    result = runner.invoke(args=["qcflow", "workflow", "diagram", "nope"])
    assert result.exit_code == 2 and "no workflow named 'nope'" in result.output


def test_a_shut_gate_refuses_with_409_and_what_is_missing_and_is_not_offered(ticket, now):
    ticket.state, ticket.owner_id = "working", None
    assert GATED.available(ticket, QUALITY) == [] and GATED.missing(ticket, "finish") == ["a note on the ticket"]
    with pytest.raises(Conflict) as caught:
        GATED.apply(ticket, "finish", actor=QUALITY, now=now, data={"urgent": True})
    assert caught.value.status == 409 and caught.value.extra["missing"] == ["a note on the ticket"]
    assert str(caught.value.message) == "缺少：a note on the ticket" and ticket.state == "working"


def test_a_gate_the_record_may_override_is_offered_and_passes_only_when_the_form_asks(ticket, now):
    ticket.state = "working"
    assert [t.action for t in GATED.available(ticket, QUALITY)] == ["finish"]
    with pytest.raises(Conflict):
        GATED.apply(ticket, "finish", actor=QUALITY, now=now, data={})
    GATED.apply(ticket, "finish", actor=QUALITY, now=now, data={"urgent": True})
    assert ticket.state == "done"


def test_an_open_gate_lets_the_step_through_and_misses_nothing(ticket, now):
    ticket.state, ticket.owner_id, ticket.note = "working", None, "已处理"
    assert [t.action for t in GATED.available(ticket, QUALITY)] == ["finish"] and GATED.missing(ticket, "finish") == []
    GATED.apply(ticket, "finish", actor=QUALITY, now=now)
    assert ticket.state == "done" and GATED.missing(ticket, "finish") == []  # no step from here


def test_the_diagram_names_the_gate():
    assert "working --> done: finish (quality) [guard: note gate]" in GATED.mermaid()


def test_templates_ask_the_table_about_a_record(app, ticket):
    render = app.jinja_env.from_string("{{ t is in_phase('live') }} {{ t is permitting('start') }}").render
    assert render(t=ticket) == "True True"
    ticket.state = "working"
    assert render(t=ticket) == "True False"
    ticket.state = "done"
    assert render(t=ticket) == "False False"


def test_a_table_with_two_rows_for_one_state_and_action_is_refused():
    with pytest.raises(ValueError):
        Workflow("broken", S, [Transition("x", {S.OPEN}, S.DONE, {"quality"}),
                               Transition("x", {S.OPEN}, S.CANCELLED, {"quality"})])
