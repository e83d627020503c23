"""Notify users in the app; the optional webhook and e-mail leave only after the transaction commits."""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from qcflow.auth.models import Role, User, UserRole
from qcflow.core.errors import NotFound
from qcflow.extensions import db
from qcflow.notify.mail import queue_mail
from qcflow.notify.messages import MESSAGES, render
from qcflow.notify.models import Notification
from qcflow.notify.webhook import queue_webhook


def notify(user_ids, kind: str, params: dict | None = None, *, now: datetime, link: str | None = None
           ) -> list[Notification]:
    """Create one in-app notification per user and queue the webhook payload and the e-mails.

    `kind` names a message of qcflow.notify.messages; `params` fill it in (codes, ids, numbers, ISO
    times), so each reader gets it in their own language.
    """
    if kind not in MESSAGES:
        raise ValueError(f"no message for notification kind {kind!r}")
    params = dict(params or {})
    render(kind, params)  # a missing or malformed parameter fails here, not in someone's inbox
    if not user_ids:
        return []
    rows = [Notification(user_id=uid, kind=kind, params=params, title="", body="", link=link, created_at=now)
            for uid in sorted(set(user_ids))]
    db.session.add_all(rows)
    db.session.flush()
    payload = {"kind": kind, "params": params, "link": link, "user_ids": [r.user_id for r in rows],
               "created_at": now.isoformat()}
    # The webhook is one POST for all recipients: its text is in the hospital's language, with the
    # kind and parameters for a receiver that renders its own.
    queue_webhook({**payload, **dict(zip(("title", "body"), rendered(kind, params, default_locale())))})
    queue_mail(payload, payload["user_ids"])
    return rows


def default_locale() -> str:
    from flask import current_app

    return current_app.config["BABEL_DEFAULT_LOCALE"]


def rendered(kind: str, params: dict, locale: str) -> tuple[str, str]:
    """(title, body) in `locale` (an e-mail in its recipient's language, the webhook in the hospital's)."""
    from flask_babel import force_locale

    with force_locale(locale):
        return render(kind, params)


def users_with_role(role: Role, department_id: int | None = None) -> list[int]:
    """Active users holding `role` (optionally in one department)."""
    stmt = sa.select(User.id).join(UserRole).where(UserRole.role == role, User.is_active.is_(True))
    if department_id is not None:
        stmt = stmt.where(User.department_id == department_id)
    return list(db.session.scalars(stmt))


def unread_count(user_id: int) -> int:
    return db.session.scalar(
        sa.select(sa.func.count()).select_from(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
    )


#: Kinds of notification shown together on the inbox page: escalations (a deadline passed, a rule was
#: bypassed) and reminders (something is due or requested); everything else is information.
ESCALATIONS = ("event.deadline_breached", "followup.urgent_missed", "mdt.preop_missing", "mdt.overdue",
               "operation.emergency_override", "operation.performed_without_mdt")
REMINDERS = ("followup.urgent_due", "followup.event_prompt", "mdt.requested", "mdt.invited", "mdt.scheduled", "event.question",
             "action.assigned", "indicators.form_reminder")


def group_of(kind: str) -> str:
    return "escalation" if kind in ESCALATIONS else "reminder" if kind in REMINDERS else "information"


def inbox(user_id: int, *, limit: int = 50, before_id: int | None = None, group: str | None = None,
          unread_only: bool = False) -> list[Notification]:
    """The user's notifications, newest first, keyset-paginated by id (optionally one group, or unread)."""
    stmt = sa.select(Notification).where(Notification.user_id == user_id)
    if group == "escalation":
        stmt = stmt.where(Notification.kind.in_(ESCALATIONS))
    elif group == "reminder":
        stmt = stmt.where(Notification.kind.in_(REMINDERS))
    if unread_only:
        stmt = stmt.where(Notification.read_at.is_(None))
    if before_id is not None:
        stmt = stmt.where(Notification.id < before_id)
    return list(db.session.scalars(stmt.order_by(Notification.id.desc()).limit(limit)))


def mark_read(user_id: int, notification_id: int, *, now: datetime) -> Notification:
    """Mark one of the user's notifications read (another user's is not found)."""
    row = db.session.scalar(sa.select(Notification).where(Notification.id == notification_id, Notification.user_id == user_id))
    if row is None:
        raise NotFound()
    if row.read_at is None:
        row.read_at = now
        db.session.flush()
    return row
