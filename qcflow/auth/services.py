"""Accounts, departments, logins, sessions and API tokens. Services flush, never commit."""
from __future__ import annotations

import os
from datetime import datetime, timedelta
from functools import lru_cache

import sqlalchemy as sa
from sqlalchemy.orm import joinedload, lazyload
from flask_babel import gettext as _

from qcflow.auth import totp
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
COMMON_PASSWORDS_FILE = os.path.join(os.path.dirname(__file__), "common_passwords.txt")


def normalise_username(username: str) -> str:
    return (username or "").strip().lower()


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The shipped list of common passwords, lower-case (a local file; nothing is fetched)."""
    with open(COMMON_PASSWORDS_FILE, encoding="utf-8") as lines:
        return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def check_password_policy(password: str, field: str = "password") -> None:
    """8–128 characters and not on the list of common (breached) passwords."""
    if not (MIN_PASSWORD_LENGTH <= len(password or "") <= MAX_PASSWORD_LENGTH):
        raise Unprocessable(
            _("A password needs %(min)d to %(max)d characters.", min=MIN_PASSWORD_LENGTH, max=MAX_PASSWORD_LENGTH),
            errors={field: [_("Length must be between %(min)d and %(max)d.", min=MIN_PASSWORD_LENGTH, max=MAX_PASSWORD_LENGTH)]},
        )
    if password.strip().lower() in common_passwords():
        message = _("This password is one of the most common passwords and is easy to guess. Choose another one, "
                    "for example a short sentence.")
        raise Unprocessable(message, errors={field: [message]})


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
    check_password_policy(new, field="new_password")
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


def record_login_attempt(username: str, *, now: datetime) -> int:
    """Write the attempt down before its password is checked; the caller commits at once.

    Concurrent guesses in other workers then see it: the n-th attempt to be written counts at least
    n, so no more than the limit are ever checked, however many arrive at the same moment.
    """
    attempt = LoginFailure(username=normalise_username(username)[:64], failed_at=now)
    db.session.add(attempt)
    db.session.flush()
    return attempt.id


def authenticate(username: str, password: str, *, attempt_id: int, now: datetime, max_failures: int,
                 window: timedelta) -> User | None:
    """Return the user for valid credentials, else keep the attempt as a failure and return None.

    `attempt_id` is the row of `record_login_attempt`, committed before this call. Unknown user and
    wrong password are indistinguishable (same answer, same work). Raises TooManyRequests when more
    than `max_failures` attempts (this one included) fall within `window`; a refused or successful
    attempt is not kept as a failure.
    """
    name = normalise_username(username)
    _refuse_when_throttled(name, attempt_id=attempt_id, now=now, max_failures=max_failures, window=window)
    user = db.session.scalar(sa.select(User).where(User.username == name)) if name else None
    if password_matches(user.password_hash if user else None, password) and user.is_active:
        _forget_attempt(attempt_id)
        return user
    return None


def _refuse_when_throttled(name: str, *, attempt_id: int, now: datetime, max_failures: int, window: timedelta) -> None:
    """Raise TooManyRequests (dropping the attempt) when more than `max_failures` attempts on the
    account, this one included, fall within `window`: wrong passwords and wrong codes alike."""
    attempts = db.session.scalar(
        sa.select(sa.func.count()).select_from(LoginFailure)
        .where(LoginFailure.username == name[:64], LoginFailure.failed_at > now - window)
    )
    if attempts > max_failures:
        _forget_attempt(attempt_id)
        raise TooManyRequests(
            _("Too many failed logins for this account. Wait %(minutes)d minutes and try again.",
              minutes=int(window.total_seconds() // 60))
        )


def _forget_attempt(attempt_id: int) -> None:
    db.session.execute(sa.delete(LoginFailure).where(LoginFailure.id == attempt_id))


def needs_second_factor(user: User, required_roles) -> bool:
    """Whether a web login of `user` needs a TOTP code after the password (N3)."""
    return user.has_role(*required_roles) or user.totp_secret is not None


def enrol_second_factor(user: User, secret: str, code: str, *, attempt_id: int, actor: Actor, now: datetime,
                        max_failures: int, window: timedelta) -> bool:
    """Store `secret` as the user's second factor if `code` is its current code; else keep the failure.

    `attempt_id` is the row of `record_login_attempt`, committed before this call: a wrong code
    counts towards the login throttling like a wrong password. The code used here cannot be used
    again. Neither the secret nor the code reaches the audit trail.
    """
    if user.totp_secret is not None:
        _forget_attempt(attempt_id)
        raise Conflict(_("A second factor is already set up for this account."))
    _refuse_when_throttled(user.username, attempt_id=attempt_id, now=now, max_failures=max_failures, window=window)
    step = totp.matching_step(secret, code, now)
    if step is None:
        audit.record(actor.audit_name, "user.second_factor_failed", "user_account", user.id, now, stage="enrol")
        return False
    _forget_attempt(attempt_id)
    user.totp_secret = secret
    user.totp_last_step = step
    user.totp_enrolled_at = now
    db.session.flush()
    audit.record(actor.audit_name, "user.second_factor_enrol", "user_account", user.id, now, after={"enrolled": True})
    return True


def verify_second_factor(user: User, code: str, *, attempt_id: int, actor: Actor, now: datetime, max_failures: int,
                         window: timedelta) -> bool:
    """Accept a TOTP code once: within ±1 step and later than the last accepted step (no replay).

    `attempt_id` as for `enrol_second_factor`; a wrong or replayed code is kept as a login failure.
    """
    _refuse_when_throttled(user.username, attempt_id=attempt_id, now=now, max_failures=max_failures, window=window)
    step = totp.matching_step(user.totp_secret, code, now) if user.totp_secret else None
    replayed = step is not None and user.totp_last_step is not None and step <= user.totp_last_step
    if step is None or replayed:
        audit.record(actor.audit_name, "user.second_factor_failed", "user_account", user.id, now,
                     stage="verify", reason="replayed" if replayed else "wrong_code")
        return False
    _forget_attempt(attempt_id)
    user.totp_last_step = step
    db.session.flush()
    audit.record(actor.audit_name, "user.second_factor_passed", "user_account", user.id, now)
    return True


def reset_second_factor(user: User, *, actor: Actor, now: datetime) -> int:
    """Clear the user's second factor (they enrol again at the next login) and end their sessions."""
    was_enrolled = user.totp_secret is not None
    user.totp_secret = None
    user.totp_last_step = None
    user.totp_enrolled_at = None
    ended = revoke_sessions(user, now)
    db.session.flush()
    audit.record(actor.audit_name, "user.second_factor_reset", "user_account", user.id, now,
                 before={"enrolled": was_enrolled}, after={"enrolled": False}, sessions_ended=ended)
    return ended


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
    # One round trip on every page: the session, its user, the user's department and roles.
    found = db.session.execute(
        sa.select(UserSession, User).join(User, User.id == UserSession.user_id)
        .where(UserSession.key_hash == digest(key)).options(joinedload(User.roles))
    ).unique().one_or_none()
    if found is None:
        return None
    row, user = found
    if row.revoked_at is not None or row.expires_at <= now or row.last_seen_at <= now - idle:
        return None
    if not user.is_active:
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


@lru_cache(maxsize=None)
def _token_user():
    """One round trip on every API call: the user and its roles (the department only if it is used).
    Built once: building it cost more than running it."""
    return (sa.select(User).join(ApiToken, ApiToken.user_id == User.id)
            .where(ApiToken.token_hash == sa.bindparam("token_hash"), ApiToken.revoked_at.is_(None),
                   User.is_active.is_(True))
            .options(joinedload(User.roles), lazyload(User.department)))


def load_token(token: str, *, now: datetime) -> User | None:
    """The active user a bearer token belongs to, or None."""
    return db.session.scalars(_token_user(), {"token_hash": digest(token)}).unique().one_or_none()


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
