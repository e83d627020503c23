"""R11: Hypothesis state machines over the event workflow and follow-up tasks, through the services.

Every step commits (or rolls back on a refusal) like an entrypoint. After every step:
- each case's state is one of the enum's and every accepted step is in the transition table;
- a refused step changes nothing; an accepted one raises the version strictly;
- the audit chain verifies and grew by at least one entry per accepted step;
- a closed case has feedback, and every live corrective action of it is verified;
- an anonymous case has no reporter; another department's head never loads a case (404);
- a task is held by at most one nurse, only while in progress, and the department counts add up.
"""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from tests.conftest import RUN_SLOW

STEPS = 80 if RUN_SLOW else 40
EXAMPLES = 40 if RUN_SLOW else 6

#: Data that satisfies each step's guard (guards that depend on the case itself are left to decide).
STEP_DATA = {
    "request_info": {"message": "请补充批号"}, "provide_info": {"message": "批号 20260301"},
    "triage": {"confirmed_grade": "III", "external_severity": "none"},
    "mark_duplicate": {}, "reject": {"reason": "不属于不良事件"}, "withdraw": {},
    "start_investigation": {}, "plan_actions": {"rca_cause_domains": ["process"], "rca_factors": "核对缺失"},
    "close": {"analysis": "标签相近", "feedback": "已整改，谢谢。", "improvement_types": ["training"]},
    "verify": {}, "reopen": {"reason": "复发"},
}
REPORTER_STEPS = {"withdraw", "provide_info"}


def count_audit():
    from qcflow.core.audit import AuditEntry
    from qcflow.extensions import db

    return db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry))


class EventMachine(RuleBasedStateMachine):
    events = Bundle("events")

    def __init__(self):
        super().__init__()
        from qcflow.core.actors import Actor

        w = self.world
        self.quality, self.reporter, self.other_head = w["actors"]["quality"], w["actors"]["doctor"], w["actors"]["b_head"]
        self.holder = Actor("anonymous", roles=frozenset({"receipt_holder"}))
        self.dept = w["dept_a"]
        self.now = w["now"]
        self.versions: dict[int, int] = {}
        self.anonymous: set[int] = set()

    def tick(self):
        self.now += timedelta(minutes=7)
        return self.now

    @rule(target=events, mode=st.sampled_from(["anonymous", "named", "confidential"]))
    def file(self, mode):
        from qcflow.events import services
        from qcflow.extensions import db

        at = self.tick()
        event, _code = services.file_report(
            {"category_code": "medication", "subcategory_code": "wrong_dose", "reporter_grade": "III",
             "care_stage": "medication", "occurred_at": at - timedelta(hours=2), "discovered_at": at - timedelta(hours=1),
             "location": "病区", "department_id": self.dept, "description": "剂量错误"},
            mode=mode, actor=self.reporter, now=at)
        db.session.commit()
        self.versions[event.id] = event.version
        if mode == "anonymous":
            self.anonymous.add(event.id)
        return event.id

    @rule(event_id=events, action=st.sampled_from(sorted(STEP_DATA)), stale=st.booleans())
    def any_step(self, event_id, action, stale):
        """Any step, allowed now or not, sometimes with a stale version."""
        self.take(event_id, action, stale)

    @rule(event_id=events, pick=st.integers(0, 10))
    def allowed_step(self, event_id, pick):
        """A step the table allows from the case's state, so that cases travel far."""
        from qcflow.events.models import AdverseEvent
        from qcflow.events.workflow import EVENT_WORKFLOW, EventState
        from qcflow.extensions import db

        allowed = [a for a in EVENT_WORKFLOW.allowed_actions(EventState(db.session.get(AdverseEvent, event_id).state))
                   if a in STEP_DATA]
        if allowed:
            self.take(event_id, allowed[pick % len(allowed)], False)

    def take(self, event_id, action, stale):
        from qcflow.core.errors import DomainError
        from qcflow.events import services
        from qcflow.events.models import AdverseEvent
        from qcflow.events.workflow import EVENT_WORKFLOW, EventState
        from qcflow.extensions import db

        event = db.session.get(AdverseEvent, event_id)
        before_state, before_version, before_audit = event.state, event.version, count_audit()
        data = dict(STEP_DATA[action])
        if action == "triage":
            data["handling_department_id"] = self.dept
        if action == "mark_duplicate":
            data["duplicate_of_id"] = min(self.versions)
        actor = self.quality
        if action in REPORTER_STEPS:
            actor = self.holder if event_id in self.anonymous else self.reporter
        expected = before_version - 1 if stale else before_version
        try:
            services.transition_event(event, action, data, actor=actor, now=self.tick(), expected_version=expected)
            db.session.commit()
        except DomainError:
            db.session.rollback()
            event = db.session.get(AdverseEvent, event_id)
            assert (event.state, event.version) == (before_state, before_version), "a refused step changed the case"
            assert count_audit() == before_audit
            return
        assert not stale, "a stale version was accepted"
        db.session.expire_all()
        event = db.session.get(AdverseEvent, event_id)
        transition = EVENT_WORKFLOW._by_action.get((action, EventState(before_state)))
        assert transition is not None and event.state == transition.to_state.value
        assert event.version > before_version
        assert count_audit() > before_audit
        self.versions[event_id] = event.version
        self.accepted[action] = self.accepted.get(action, 0) + 1

    @rule(event_id=events)
    def add_and_work_an_action(self, event_id):
        from qcflow.core.errors import DomainError
        from qcflow.events import services
        from qcflow.events.models import AdverseEvent
        from qcflow.extensions import db

        event = db.session.get(AdverseEvent, event_id)
        try:
            action = services.add_action(event, {"title": "培训", "improvement_type": "training",
                                                 "owner_department_id": self.dept,
                                                 "due_on": (self.now + timedelta(days=30)).date()},
                                         actor=self.quality, now=self.tick())
            services.transition_action(action, "complete", {"evidence": "签到表"}, actor=self.quality, now=self.tick())
            services.transition_action(action, "verify", {}, actor=self.quality, now=self.tick())
            db.session.commit()
        except DomainError:
            db.session.rollback()

    @invariant()
    def cases_are_consistent(self):
        from qcflow.auth.permissions import get_scoped_or_404
        from qcflow.core import audit
        from qcflow.core.errors import NotFound
        from qcflow.events.models import AdverseEvent
        from qcflow.events.workflow import ActionState, EventState
        from qcflow.extensions import db

        if not self.versions:
            return
        db.session.expire_all()
        for event in db.session.scalars(sa.select(AdverseEvent).where(AdverseEvent.id.in_(list(self.versions)))):
            assert event.state in set(EventState)
            assert event.version >= self.versions[event.id]
            if event.state == EventState.CLOSED:
                assert event.feedback
                assert all(a.state == ActionState.VERIFIED for a in event.actions if a.state != ActionState.CANCELLED)
            if event.id in self.anonymous:
                assert event.reporter_user_id is None
            with pytest.raises(NotFound):
                get_scoped_or_404(AdverseEvent, event.id, self.other_head)
        result = audit.verify()
        assert result.ok, result


class TaskMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        w = self.world
        self.nurses = [w["actors"]["nurse"], w["actors"]["b_nurse"], w["actors"]["nurse2"]]
        self.head = w["actors"]["dept_head"]
        self.task_ids = w["task_ids"]
        self.now = w["now"]

    def tick(self):
        self.now += timedelta(minutes=3)
        return self.now

    def attempt(self, call):
        from qcflow.core.errors import DomainError
        from qcflow.extensions import db

        try:
            call()
            db.session.commit()
            return True
        except DomainError:
            db.session.rollback()
            return False

    def holder(self, index):
        from qcflow.extensions import db
        from qcflow.followup.models import Task

        return db.session.get(Task, self.task_ids[index % len(self.task_ids)]).assignee_id

    def load(self, index, actor):
        """As every view does: through the department scope (another department's task is a 404)."""
        from qcflow.followup import queries

        return queries.load_task(self.task_ids[index % len(self.task_ids)], actor)

    @rule(index=st.integers(0, 5), nurse=st.integers(0, 2))
    def claim(self, index, nurse):
        from qcflow.followup import services

        before = self.holder(index)
        actor = self.nurses[nurse]
        won = self.attempt(lambda: services.claim_task(self.load(index, actor), actor=actor, now=self.tick()))
        if before is not None:
            assert not won, "a held task was claimed by another nurse"

    @rule(index=st.integers(0, 5), nurse=st.integers(0, 2))
    def log_attempt(self, index, nurse):
        from qcflow.followup import services

        before = self.holder(index)
        actor = self.nurses[nurse]
        won = self.attempt(lambda: services.log_attempt(self.load(index, actor), {"channel": "phone", "result": "busy"},
                                                         actor=actor, now=self.tick()))
        if won:
            assert before == actor.user_id, "someone other than the holder logged an attempt"

    @rule(index=st.integers(0, 5))
    def release(self, index):
        from qcflow.followup import services

        self.attempt(lambda: services.release_task(self.load(index, self.head), actor=self.head, now=self.tick()))

    @rule(index=st.integers(0, 5), nurse=st.integers(0, 2))
    def reassign(self, index, nurse):
        from qcflow.followup import services

        self.attempt(lambda: services.reassign_task(self.load(index, self.head),
                                                    {"assignee_id": self.nurses[nurse].user_id},
                                                    actor=self.head, now=self.tick()))

    @invariant()
    def one_holder_and_counts_add_up(self):
        from qcflow.extensions import db
        from qcflow.followup.models import Task
        from qcflow.followup.workflow import TaskState

        db.session.expire_all()
        tasks = list(db.session.scalars(sa.select(Task).where(Task.id.in_(self.task_ids))))
        for task in tasks:
            assert task.state in set(TaskState)
            if task.state == TaskState.IN_PROGRESS:
                assert task.assignee_id is not None
            if task.state == TaskState.PENDING:
                assert task.assignee_id is None
            if task.assignee_id is not None:
                assert task.assignee_id in {n.user_id for n in self.nurses if n.department_id == task.department_id}
        by_state = dict(db.session.execute(sa.select(Task.state, sa.func.count()).where(Task.id.in_(self.task_ids))
                                           .group_by(Task.state)).all())
        assert sum(by_state.values()) == len(self.task_ids)


#: The database outlives one example, so replaying an example (shrinking) would not see the same
#: state: generate only, and report the failing sequence as found.
MACHINE_SETTINGS = settings(max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None, database=None, derandomize=True,
                            phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))


def machine_world(world, **extra):
    """Plain values for the machines (ORM objects would be detached by audit.verify's expunge)."""
    from qcflow.core.actors import Actor

    users, b_users = world["users"], world["b_users"]
    actors = {"quality": Actor.for_user(users["quality"]), "doctor": Actor.for_user(users["doctor"]),
              "nurse": Actor.for_user(users["nurse"]), "dept_head": Actor.for_user(users["dept_head"]),
              "b_head": Actor.for_user(b_users["dept_head"]), "b_nurse": Actor.for_user(b_users["nurse"])}
    return {"actors": actors, "dept_a": world["A"]["department"].id, "now": world["now"], **extra}


def test_event_workflow_state_machine(world):
    EventMachine.world, EventMachine.accepted = machine_world(world), {}
    run_state_machine_as_test(EventMachine, settings=MACHINE_SETTINGS)
    accepted = EventMachine.accepted
    assert {"triage", "close"} <= set(accepted) and sum(accepted.values()) >= 15, accepted  # not vacuous


@pytest.fixture
def task_world(world, create_user):
    """Department A's task plus more tasks of A, and a second nurse in A; department B's nurse tries too."""
    from qcflow.core.actors import Actor
    from qcflow.extensions import db
    from qcflow.followup import services
    from qcflow.followup.models import Task

    nurse2 = create_user(username="nurse2", roles=("nurse",), department=world["A"]["department"])
    extra = []
    for n in range(2):
        plan = services.enrol(world["A"]["patient"], "day_surgery", source_type="manual", source_id=None,
                              source_key=f"manual:stateful{n}", anchor_at=world["now"] - timedelta(hours=2 + n),
                              department_id=world["A"]["department"].id, actor=Actor.system("test"), now=world["now"])
        extra += [t.id for t in db.session.scalars(sa.select(Task).where(Task.plan_id == plan.id))]
    db.session.commit()
    plain = machine_world(world, task_ids=[world["A"]["task"].id, *extra])
    plain["actors"]["nurse2"] = Actor.for_user(nurse2)
    return plain


def test_followup_task_state_machine(task_world):
    TaskMachine.world = task_world
    run_state_machine_as_test(TaskMachine, settings=MACHINE_SETTINGS)
