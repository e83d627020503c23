"""Who is acting: a user, the anonymous reporter, or a scheduler job."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Actor:
    #: How the actor appears in the audit trail.
    audit_name: str
    user_id: int | None = None
    department_id: int | None = None
    roles: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def for_user(cls, user) -> "Actor":
        return cls(f"user:{user.id}", user.id, user.department_id, frozenset(user.role_names))

    @classmethod
    def anonymous(cls) -> "Actor":
        return cls("anonymous")

    @classmethod
    def system(cls, job: str) -> "Actor":
        return cls(f"system:{job}", roles=frozenset({"system"}))
