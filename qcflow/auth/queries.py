"""Read-only queries of the auth domain that pages of other domains list from."""
from __future__ import annotations

import sqlalchemy as sa

from qcflow.auth.models import Department
from qcflow.auth.permissions import sees_all_departments
from qcflow.core.actors import Actor
from qcflow.extensions import db


def active_departments(*, by_kind: bool = True) -> list[Department]:
    """The active departments as pages list them: clinical, nursing, functional, each by code (or all
    by code alone, `by_kind=False`)."""
    order = (Department.kind, Department.code) if by_kind else (Department.code,)
    return list(db.session.scalars(sa.select(Department).where(Department.is_active.is_(True)).order_by(*order)))


def department_choices(actor: Actor, *, by_kind: bool = True) -> list[Department]:
    """The departments a page's filter offers: every active one to whoever sees all departments, none to
    the others (their own department is the only one they read)."""
    return active_departments(by_kind=by_kind) if sees_all_departments(actor) else []


def department_id_by_code(code: str) -> int | None:
    """The id of the department with this code (active or not), or None."""
    return db.session.scalar(sa.select(Department.id).where(Department.code == code))
