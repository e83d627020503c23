"""The follow-up task, plan and prompt transition tables, exhaustively, against DESIGN §6."""
from types import SimpleNamespace

import pytest

from qcflow.core.actors import Actor
from qcflow.core.errors import Forbidden, GuardFailed, InvalidTransition
from qcflow.followup.workflow import (
    PLAN_WORKFLOW,
    PROMPT_WORKFLOW,
    TASK_WORKFLOW,
    PlanState,
    PromptState,
    TaskState,
)

QUEUE = {"nurse", "dept_head", "quality"}
SUPERVISORS = {"dept_head", "quality"}
# (action, from state) → (to state, roles allowed), written out from DESIGN §6 and the issue.
TASK_EXPECTED = {
    ("claim", "pending"): ("in_progress", QUEUE),
    ("release", "in_progress"): ("pending", {"assignee"} | SUPERVISORS),
    ("reassign", "pending"): ("in_progress", SUPERVISORS),
    ("reassign", "in_progress"): ("in_progress", SUPERVISORS),
    ("log_attempt", "in_progress"): ("in_progress", {"assignee"}),
    ("reschedule", "pending"): ("pending", SUPERVISORS),
    ("reschedule", "in_progress"): ("in_progress", {"assignee"} | SUPERVISORS),
    ("complete", "in_progress"): ("completed", {"assignee"}),
    ("mark_unreachable", "in_progress"): ("unreachable", {"assignee"} | SUPERVISORS),
    ("cancel", "pending"): ("cancelled", {"assignee", "system"} | SUPERVISORS),
    ("cancel", "in_progress"): ("cancelled", {"assignee", "system"} | SUPERVISORS),
}
PLAN_EXPECTED = {
    ("pause", "active"): ("paused", SUPERVISORS),
    ("resume", "paused"): ("active", SUPERVISORS),
    ("stop", "active"): ("stopped", {"system", "quality"}),
    ("stop", "paused"): ("stopped", {"system", "quality"}),
    ("mark_lost", "active"): ("lost", {"system"}),
    ("withdraw", "active"): ("withdrawn", SUPERVISORS),
    ("withdraw", "paused"): ("withdrawn", SUPERVISORS),
}
#: A possible event is reviewed by the quality office and the heads of its department (department_reviewer).
REVIEWERS = {"quality", "department_reviewer"}
PROMPT_EXPECTED = {
    ("file", "open"): ("filed", REVIEWERS),
    ("link", "open"): ("linked", REVIEWERS),
    ("dismiss", "open"): ("dismissed", REVIEWERS),
}
ROLES = ["assignee", "nurse", "dept_head", "quality", "admin", "clinician", "system"]
#: Data that satisfies every guard.
GOOD = {"reason": "patient asked", "assignee_id": 5, "reason_code": "planned"}


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    """An app context for translated guard messages; these checks need no database."""
    from tests.conftest import make_app

    path = tmp_path_factory.mktemp("table")
    with make_app(f"sqlite:///{path}/unused.sqlite3", str(path)).app_context():
        yield


def actor_for(role):
    if role == "assignee":
        return Actor("user:7", 7, 1, frozenset({"nurse"}))
    if role == "other_dept_head":  # a head of another department than the object's (department 1)
        return Actor("user:8", 8, 2, frozenset({"dept_head"}))
    return Actor(f"user:{role}", 99, 1, frozenset({role}))


def check(workflow, expected, state, action, role, **attrs):
    obj = SimpleNamespace(state=state, version=2, assignee_id=7, attempt_count=1, **attrs)
    want = expected.get((action, state))
    if want is None:
        with pytest.raises(InvalidTransition):
            workflow.check(obj, action, actor=actor_for(role), data=GOOD)
        return
    to_state, roles = want
    allowed = role in roles or (role == "assignee" and "nurse" in roles) or (
        role == "dept_head" and "department_reviewer" in roles)
    if not allowed:
        with pytest.raises(Forbidden):
            workflow.check(obj, action, actor=actor_for(role), data=GOOD)
        return
    assert workflow.check(obj, action, actor=actor_for(role), data=GOOD).to_state.value == to_state


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", sorted({a for a, _ in TASK_EXPECTED}))
@pytest.mark.parametrize("state", [s.value for s in TaskState])
def test_task_table(ctx, state, action, role):
    check(TASK_WORKFLOW, TASK_EXPECTED, state, action, role)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", sorted({a for a, _ in PLAN_EXPECTED}))
@pytest.mark.parametrize("state", [s.value for s in PlanState])
def test_plan_table(ctx, state, action, role):
    check(PLAN_WORKFLOW, PLAN_EXPECTED, state, action, role)


@pytest.mark.parametrize("role", [*ROLES, "other_dept_head"])
@pytest.mark.parametrize("action", sorted({a for a, _ in PROMPT_EXPECTED}))
@pytest.mark.parametrize("state", [s.value for s in PromptState])
def test_prompt_table(ctx, state, action, role):
    check(PROMPT_WORKFLOW, PROMPT_EXPECTED, state, action, role, department_id=1)


def test_the_tables_hold_exactly_the_expected_transitions(ctx):
    for workflow, expected in ((TASK_WORKFLOW, TASK_EXPECTED), (PLAN_WORKFLOW, PLAN_EXPECTED),
                               (PROMPT_WORKFLOW, PROMPT_EXPECTED)):
        actual = {(t.action, s.value): (t.to_state.value, set(t.roles)) for t in workflow.transitions
                  for s in t.from_states}
        assert actual == expected


@pytest.mark.parametrize("action, data", [("cancel", {}), ("reschedule", {}), ("reassign", {})])
def test_guards_name_what_is_missing(ctx, action, data):
    task = SimpleNamespace(state="in_progress", version=1, assignee_id=7, attempt_count=0)
    with pytest.raises(GuardFailed):
        TASK_WORKFLOW.check(task, action, actor=actor_for("quality"), data=data)


def test_unreachable_needs_a_logged_attempt(ctx):
    task = SimpleNamespace(state="in_progress", version=1, assignee_id=7, attempt_count=0)
    with pytest.raises(GuardFailed):
        TASK_WORKFLOW.check(task, "mark_unreachable", actor=actor_for("assignee"), data={})
