"""Accounts, departments, logins, sessions and API tokens. Services flush, never commit."""
from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from flask_babel import gettext as _

from qcflow.auth.models import (
    ApiToken,
    Department,
    DepartmentKind,
    LoginFailure,
    Role,
    User,
    UserRole,
    UserSession,
)
from qcflow.core import audit
from qcflow.core.actors import Actor
from qcflow.core.errors import Conflict, NotFound, TooManyRequests, Unprocessable
from qcflow.core.security import digest, hash_password, new_secret, password_matches
from qcflow.extensions import db

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 128


def normalise_username(username: str) -> str:
    return (username or "").strip().lower()


def check_password_policy(password: str) -> None:
    if not (MIN_PASSWORD_LENGTH <= len(password or "") <= MAX_PASSWORD_LENGTH):
        raise Unprocessable(
            _("A password needs %(min)d to %(max)d characters.", min=MIN_PASSWORD_LENGTH, max=MAX_PASSWORD_LENGTH),
            errors={"password": [_("Length must be between %(min)d and %(max)d.", min=MIN_PASSWORD_LENGTH, max=MAX_PASSWORD_LENGTH)]},
        )


def find_department(code: str) -> Department:
    department = db.session.scalar(sa.select(Department).where(Department.code == code))
    if department is None:
        raise NotFound(_("No department with code “%(code)s”.", code=code))
    return department


def create_department(code: str, name: str, kind: str, *, actor: Actor, now: datetime, name_en: str | None = None) -> Department:
    """Create a department."""
    if kind not in DepartmentKind.__members__.values():
        raise Unprocessable(errors={"kind": [_("Choose one of: %(kinds)s.", kinds=", ".join(DepartmentKind))]})
    if db.session.scalar(sa.select(Department.id).where(Department.code == code)) is not None:
        raise Conflict(_("A department with code “%(code)s” already exists.", code=code))
    department = Department(code=code, name=name, name_en=name_en, kind=kind, created_at=now)
    db.session.add(department)
    db.session.flush()
    audit.record(actor.audit_name, "department.create", "department", department.id, now,
                 after={"code": code, "name": name, "kind": kind})
    return department


def create_user(
    username: str,
    password: str,
    roles: list[str],
    department: Department,
    *,
    actor: Actor,
    now: datetime,
    display_name: str | None = None,
) -> User:
    """Create an account with roles in a home department."""
    username = normalise_username(username)
    if not username:
        raise Unprocessable(errors={"username": [_("A user name is required.")]})
    unknown = sorted(set(roles) - set(Role))
    if unknown or not roles:
        raise Unprocessable(
            _("Unknown role(s): %(roles)s. Choose from: %(valid)s.", roles=", ".join(unknown) or "-", valid=", ".join(Role)),
            errors={"roles": [_("Choose at least one valid role.")]},
        )
    check_password_policy(password)
    if db.session.scalar(sa.select(User.id).where(User.username == username)) is not None:
        raise Conflict(_("The user name “%(name)s” is taken.", name=username))
    user = User(
        username=username,
        display_name=display_name or username,
        password_hash=hash_password(password),
        department_id=department.id,
        created_at=now,
        password_changed_at=now,
        roles=[UserRole(role=r) for r in sorted(set(roles))],
    )
    db.session.add(user)
    db.session.flush()
    audit.record(actor.audit_name, "user.create", "user_account", user.id, now,
                 after={"username": username, "roles": sorted(set(roles)), "department_id": department.id})
    return user


def find_user(username: str) -> User:
    user = db.session.scalar(sa.select(User).where(User.username == normalise_username(username)))
    if user is None:
        raise NotFound(_("No user “%(name)s”.", name=username))
    return user


def disable_user(user: User, *, actor: Actor, now: datetime) -> None:
    """Disable an account and end every one of its sessions."""
    user.is_active = False
    revoke_sessions(user, now)
    db.session.flush()
    audit.record(actor.audit_name, "user.disable", "user_account", user.id, now, after={"is_active": False})


def change_password(user: User, current: str, new: str, *, actor: Actor, now: datetime) -> None:
    """Change a password after checking the current one; every session of the user ends."""
    if not password_matches(user.password_hash, current):
        raise Unprocessable(errors={"current_password": [_("The current password is not correct.")]})
    check_password_policy(new)
    user.password_hash = hash_password(new)
    user.password_changed_at = now
    revoke_sessions(user, now)
    db.session.flush()
    audit.record(actor.audit_name, "user.change_password", "user_account", user.id, now)


def set_locale(user: User, locale: str | None, *, actor: Actor, now: datetime) -> None:
    """Store the user's preferred language."""
    if locale not in (None, "zh", "en"):
        raise Unprocessable(errors={"locale": [_("Choose Chinese or English.")]})
    user.locale = locale
    db.session.flush()
    audit.record(actor.audit_name, "user.set_locale", "user_account", user.id, now, after={"locale": locale})


def authenticate(username: str, password: str, *, now: datetime, max_failures: int, window: timedelta) -> User | None:
    """Return the user for valid credentials, else record the failure and return None.

    Unknown user and wrong password are indistinguishable (same answer, same work).
    Raises TooManyRequests once the account has `max_failures` failures within `window`.
    """
    name = normalise_username(username)
    failures = db.session.scalar(
        sa.select(sa.func.count()).select_from(LoginFailure)
        .where(LoginFailure.username == name, LoginFailure.failed_at > now - window)
    )
    if failures >= max_failures:
        raise TooManyRequests(
            _("Too many failed logins for this account. Wait %(minutes)d minutes and try again.",
              minutes=int(window.total_seconds() // 60))
        )
    user = db.session.scalar(sa.select(User).where(User.username == name)) if name else None
    if password_matches(user.password_hash if user else None, password) and user.is_active:
        return user
    db.session.add(LoginFailure(username=name[:64], failed_at=now))
    db.session.flush()
    return None


def start_session(user: User, *, now: datetime, absolute: timedelta) -> str:
    """Open a server-side session and return its key (kept only in the signed cookie)."""
    key = new_secret()
    db.session.add(UserSession(key_hash=digest(key), user_id=user.id, created_at=now, last_seen_at=now,
                               expires_at=now + absolute))
    db.session.flush()
    audit.record(f"user:{user.id}", "user.login", "user_account", user.id, now)
    user.session_key = key
    return key


def load_session(key: str, *, now: datetime, idle: timedelta, touch_every: timedelta) -> User | None:
    """The user of a live session, or None if it is unknown, revoked, idle too long or expired."""
    row = db.session.scalar(sa.select(UserSession).where(UserSession.key_hash == digest(key)))
    if row is None or row.revoked_at is not None or row.expires_at <= now or row.last_seen_at <= now - idle:
        return None
    user = db.session.get(User, row.user_id)
    if user is None or not user.is_active:
        return None
    if now - row.last_seen_at >= touch_every:
        row.last_seen_at = now
        db.session.flush()
    user.session_key = key
    return user


def end_session(key: str, *, now: datetime) -> None:
    """Revoke one session (logout)."""
    db.session.execute(
        sa.update(UserSession).where(UserSession.key_hash == digest(key), UserSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )


def revoke_sessions(user: User, now: datetime) -> int:
    """End every session of `user`."""
    result = db.session.execute(
        sa.update(UserSession).where(UserSession.user_id == user.id, UserSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return result.rowcount


def create_token(user: User, name: str, *, actor: Actor, now: datetime) -> str:
    """Issue an API bearer token; only its digest is stored."""
    token = "qcf_" + new_secret()
    db.session.add(ApiToken(user_id=user.id, name=name, token_hash=digest(token), prefix=token[:12], created_at=now))
    db.session.flush()
    audit.record(actor.audit_name, "token.create", "user_account", user.id, now, after={"name": name, "prefix": token[:12]})
    return token


def load_token(token: str, *, now: datetime) -> User | None:
    """The active user a bearer token belongs to, or None."""
    row = db.session.scalar(sa.select(ApiToken).where(ApiToken.token_hash == digest(token)))
    if row is None or row.revoked_at is not None or not row.user.is_active:
        return None
    return row.user


def purge_expired(now: datetime, *, idle: timedelta, failure_window: timedelta) -> int:
    """Delete dead sessions and stale login failures (housekeeping)."""
    sessions = db.session.execute(
        sa.delete(UserSession).where(
            sa.or_(UserSession.expires_at <= now, UserSession.revoked_at.is_not(None),
                   UserSession.last_seen_at <= now - idle)
        )
    ).rowcount
    failures = db.session.execute(sa.delete(LoginFailure).where(LoginFailure.failed_at <= now - failure_window)).rowcount
    return sessions + failures
