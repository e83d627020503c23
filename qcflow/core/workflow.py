"""The one workflow engine: transition tables are data, this module applies them.

Nothing else assigns `.state`. Each domain's workflow.py declares a StrEnum of
states and one `Workflow` table; services call `workflow.apply(...)`, pages ask the
table (`is in_phase(...)`, `is permitting(...)`) instead of naming states.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Callable, Iterable

from flask_babel import gettext as _

from qcflow.core import audit
from qcflow.core.actors import Actor
from qcflow.core.errors import Conflict, Forbidden, GuardFailed, InvalidTransition
from qcflow.extensions import db

#: guard(obj, data) -> None when allowed, else the (translated) reason it is blocked.
Guard = Callable[[object, dict], "str | None"]

WORKFLOWS: dict[str, "Workflow"] = {}
#: The workflow of each table's records, for templates that hold a record and ask about it.
WORKFLOW_OF_TABLE: dict[str, "Workflow"] = {}

#: Modules whose import registers a domain workflow table.
WORKFLOW_MODULES: tuple[str, ...] = ("qcflow.events.workflow", "qcflow.clinical.workflow", "qcflow.mdt.workflow",
                                      "qcflow.followup.workflow", "qcflow.indicators.workflow",
                                      "qcflow.region.workflow", "qcflow.followup.invitations.workflow",
                                      "qcflow.events.lessons.workflow")


def import_all_workflows() -> None:
    import importlib

    for module in WORKFLOW_MODULES:
        importlib.import_module(module)


@dataclass(frozen=True)
class Gate:
    """A guard on what the record itself holds, not on the step's form (e.g. the booking gate).

    A shut gate refuses the step with 409 and the list of what is `missing`, and the engine does not
    offer the step, unless the record `may_override` it and the form asks to (`override_field`).
    """

    #: How the diagram names the gate.
    name: str
    #: missing(obj) -> what the record still needs, translated (empty: the gate is open).
    missing: Callable[[object], list[str]]
    #: refusal(missing) -> the (translated) message of the 409.
    refusal: Callable[[list[str]], str]
    may_override: Callable[[object], bool] = lambda obj: False
    override_field: str | None = None

    def what_is_missing(self, obj) -> list[str]:
        """What the record still needs. Asking writes none of the record's pending changes: the step is
        checked again when applied, after its fields are set, and must flush (bump the version) once."""
        with db.session.no_autoflush:
            return self.missing(obj)

    def is_shut(self, obj) -> bool:
        """Whether no form can take the step now (what is missing cannot be overridden)."""
        return bool(self.what_is_missing(obj)) and not self.may_override(obj)

    def enforce(self, obj, data: dict) -> None:
        """Raise 409 with what is missing unless the gate is open or the form overrides it where it may."""
        missing = self.what_is_missing(obj)
        overridden = self.override_field is not None and data.get(self.override_field) and self.may_override(obj)
        if missing and not overridden:
            raise Conflict(self.refusal(missing), missing=missing)


@dataclass(frozen=True)
class Transition:
    action: str
    from_states: frozenset
    to_state: StrEnum
    roles: frozenset[str]
    guard: Guard | Gate | None = None

    def __init__(self, action, from_states, to_state, roles, guard=None):
        object.__setattr__(self, "action", action)
        object.__setattr__(self, "from_states", frozenset(from_states))
        object.__setattr__(self, "to_state", to_state)
        object.__setattr__(self, "roles", frozenset(roles))
        object.__setattr__(self, "guard", guard)


@dataclass
class Workflow:
    name: str
    states: type[StrEnum]
    transitions: list[Transition]
    #: relations(obj, actor) -> extra role names the actor holds for this object (e.g. "reporter").
    relations: Callable[[object, Actor], Iterable[str]] | None = None
    initial: StrEnum | None = None
    #: refusal(action) -> the (translated) reason a refused actor reads: who may take the step.
    refusal: Callable[[str], str] | None = None
    #: The table whose records this workflow drives (templates find the workflow from a record).
    table: str | None = None
    #: Named sets of states the pages ask about ({% if event is in_phase('open') %}), so that the
    #: domain, not each template, says which states a word covers.
    phases: dict[str, Iterable] = field(default_factory=dict)
    _by_action: dict = field(init=False, repr=False)

    def __post_init__(self):
        self._by_action = {}
        for t in self.transitions:
            for state in t.from_states:
                key = (t.action, state)
                if key in self._by_action:
                    raise ValueError(f"{self.name}: two transitions for {key}")
                self._by_action[key] = t
        self.phases = {name: frozenset(states) for name, states in self.phases.items()}
        WORKFLOWS[self.name] = self
        if self.table is not None:
            WORKFLOW_OF_TABLE[self.table] = self

    def roles_of(self, obj, actor: Actor) -> frozenset[str]:
        extra = self.relations(obj, actor) if self.relations else ()
        return actor.roles | frozenset(extra)

    def allowed_actions(self, state) -> list[str]:
        """Actions the table permits from `state`, for anyone."""
        return sorted({t.action for t in self.transitions if state in t.from_states})

    def permits(self, obj, action: str) -> bool:
        """Whether the table has `action` from the record's state, for anyone."""
        return (action, obj.state) in self._by_action

    def in_phase(self, obj, phase: str) -> bool:
        """Whether the record's state is one of the named `phase`."""
        return obj.state in self.phases[phase]

    def available(self, obj, actor: Actor) -> list[Transition]:
        """Transitions this actor may attempt now (role fits, no shut gate); templates show these as buttons."""
        roles = self.roles_of(obj, actor)
        return [t for t in self.transitions if obj.state in t.from_states and t.roles & roles
                and not (isinstance(t.guard, Gate) and t.guard.is_shut(obj))]

    def missing(self, obj, action: str) -> list[str]:
        """What the gate of `action` still needs from the record (empty: no gate, open, or not a step from here)."""
        transition = self._by_action.get((action, obj.state))
        return transition.guard.what_is_missing(obj) if transition and isinstance(transition.guard, Gate) else []

    def check(self, obj, action: str, *, actor: Actor, data: dict | None = None,
              expected_version: int | None = None) -> Transition:
        """Raise unless `actor` may take `action` now (table, role, version, guard); change nothing."""
        data = data or {}
        current = self.states(obj.state)
        transition = self._by_action.get((action, current))
        if transition is None:
            raise InvalidTransition(
                _("This step is not possible at this stage of the record. Reload the page to see what can be done now."),
                allowed_actions=self.allowed_actions(current),
                state=current.value,
            )
        if not transition.roles & self.roles_of(obj, actor):
            raise Forbidden(self.refusal(action) if self.refusal else None)
        if expected_version is not None and expected_version != obj.version:
            raise Conflict(current_version=obj.version)
        if isinstance(transition.guard, Gate):
            transition.guard.enforce(obj, data)
        elif transition.guard is not None:
            reason = transition.guard(obj, data)
            if reason:
                raise GuardFailed(reason)
        return transition

    def apply(
        self,
        obj,
        action: str,
        *,
        actor: Actor,
        now: datetime,
        data: dict | None = None,
        expected_version: int | None = None,
        audit_detail: dict | None = None,
    ) -> Transition:
        """Check, set the state, flush (one version bump with any field changes) and audit."""
        before = obj.state
        transition = self.check(obj, action, actor=actor, data=data, expected_version=expected_version)
        obj.state = transition.to_state.value
        db.session.flush()  # bumps the version; a concurrent writer gets StaleDataError → 409
        audit.record(
            actor.audit_name,
            f"{self.name}.{action}",
            obj.__tablename__,
            obj.id,
            now,
            before={"state": before},
            after={"state": transition.to_state.value, "version": obj.version},
            **(audit_detail or {}),
        )
        return transition

    def mermaid(self) -> str:
        """The table as a Mermaid state diagram (for the docs)."""
        lines = ["stateDiagram-v2"]
        if self.initial is not None:
            lines.append(f"    [*] --> {self.initial.value}")
        for t in self.transitions:
            roles = ", ".join(sorted(t.roles))
            guard = f" [guard: {t.guard.name}]" if isinstance(t.guard, Gate) else " [guard]" if t.guard else ""
            for state in sorted(t.from_states):
                lines.append(f"    {state.value} --> {t.to_state.value}: {t.action} ({roles}){guard}")
        return "\n".join(lines)


def workflow_of(obj) -> Workflow:
    """The workflow that drives this record (found by its table)."""
    return WORKFLOW_OF_TABLE[obj.__tablename__]


def install_template_tests(app) -> None:
    """Pages ask the table: {% if event is in_phase('open') %}, {% if op is permitting('book') %}."""
    app.jinja_env.tests["in_phase"] = lambda obj, phase: workflow_of(obj).in_phase(obj, phase)
    app.jinja_env.tests["permitting"] = lambda obj, action: workflow_of(obj).permits(obj, action)
