"""Accounts, departments, logins, sessions and API tokens. Services flush, never commit."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
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
    TokenReveal,
    User,
    UserRole,
    UserSession,
)
from qcflow.core import audit
from qcflow.core.actors import Actor
from qcflow.core.errors import Conflict, Forbidden, NotAuthenticated, NotFound, TooManyRequests, Unprocessable
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


@dataclass(frozen=True)
class Backoff:
    """One throttling rule: after `free` failures within `window`, each attempt must wait `first`·2^k
    seconds (at most `longest`) after the latest failure, k being the failures beyond the free ones.
    A wait, never a lock: the owner gets in once it has passed."""

    free: int
    first: float
    longest: float
    window: timedelta

    def wait(self, failures: int, latest: datetime | None, now: datetime) -> float:
        """Seconds still to wait after `failures` earlier failures, the latest at `latest`."""
        if failures < self.free or latest is None:
            return 0.0
        gap = min(self.first * 2 ** min(failures - self.free, 32), self.longest)
        return max(0.0, gap - (now - latest).total_seconds())


def login_limits(config: dict) -> dict[str, Backoff]:
    """The rules of LOGIN_THROTTLE ("source", "address", "account") as Backoffs."""
    return {rule: Backoff(int(free), float(first), float(longest), timedelta(minutes=float(minutes)))
            for rule, (free, first, longest, minutes) in config.items()}


def record_login_attempt(username: str, *, now: datetime, address_hash: str | None = None,
                         browser_hash: str | None = None) -> int:
    """Write the attempt down before its password (or code) is checked; the caller commits at once.

    Concurrent guesses in other workers then see it: each attempt is judged on the attempts written
    before it, so of any number arriving at the same moment no more than the free ones are checked.
    `address_hash` and `browser_hash` are keyed hashes (`core.security.keyed_hash`), never the raw values.
    """
    attempt = LoginFailure(username=normalise_username(username)[:64], address_hash=address_hash,
                           browser_hash=browser_hash, failed_at=now)
    db.session.add(attempt)
    db.session.flush()
    return attempt.id


def authenticate(username: str, password: str, *, attempt_id: int, now: datetime,
                 limits: dict[str, Backoff]) -> User | None:
    """Return the user for valid credentials, else keep the attempt as a failure and return None.

    `attempt_id` is the row of `record_login_attempt`, committed before this call. Unknown user and
    wrong password are indistinguishable (same answer, same work). Raises TooManyRequests (with the
    wait) while a rule of `limits` holds the attempt back; a refused or successful attempt is not
    kept as a failure.
    """
    name = normalise_username(username)
    _refuse_when_throttled(attempt_id, now=now, limits=limits)
    user = db.session.scalar(sa.select(User).where(User.username == name)) if name else None
    if password_matches(user.password_hash if user else None, password) and user.is_active:
        _forget_attempt(attempt_id)
        if set(user.role_names) == {Role.INTERFACE}:
            # The HIS's account works with API tokens only: a password on the pages would be a way around them.
            raise Forbidden(_("This is the hospital information system's interface account: it works with API "
                              "tokens only, not on the pages."))
        return user
    return None


def _refuse_when_throttled(attempt_id: int, *, now: datetime, limits: dict[str, Backoff]) -> None:
    """Raise TooManyRequests (dropping the attempt) while the failures written before it call for a
    wait: wrong passwords and wrong codes alike.

    A known browser of the account meets only its own rule, so guesses from elsewhere never keep
    the owner out; any other browser meets the rules of its account and address, its address, and
    its account (gentler, capped: it slows guessing spread over many addresses).
    """
    failure = LoginFailure
    attempt = db.session.get(LoginFailure, attempt_id)
    if attempt.browser_hash is not None:
        rules = {"source": [failure.username == attempt.username, failure.browser_hash == attempt.browser_hash]}
    else:
        unknown = failure.browser_hash.is_(None)
        address = failure.address_hash == attempt.address_hash if attempt.address_hash else failure.address_hash.is_(None)
        rules = {"source": [failure.username == attempt.username, address, unknown],
                 "address": [address, unknown],
                 "account": [failure.username == attempt.username, unknown]}
    wait = 0.0
    for rule, conditions in rules.items():
        backoff = limits[rule]
        failures, latest = db.session.execute(
            sa.select(sa.func.count(), sa.func.max(failure.failed_at))
            .where(*conditions, failure.id < attempt_id, failure.failed_at > now - backoff.window)
        ).one()
        wait = max(wait, backoff.wait(failures, latest, now))
    if wait > 0:
        _forget_attempt(attempt_id)
        seconds = math.ceil(wait)
        if seconds < 120:
            message = _("Too many failed logins. Wait %(seconds)d seconds and try again.", seconds=seconds)
        else:
            message = _("Too many failed logins. Wait %(minutes)d minutes and try again.", minutes=math.ceil(seconds / 60))
        raise TooManyRequests(message, headers={"Retry-After": str(seconds)})


def _forget_attempt(attempt_id: int) -> None:
    db.session.execute(sa.delete(LoginFailure).where(LoginFailure.id == attempt_id))


def needs_second_factor(user: User, required_roles) -> bool:
    """Whether a web login of `user` needs a TOTP code after the password (N3)."""
    return user.has_role(*required_roles) or user.totp_secret is not None


def enrol_second_factor(user: User, secret: str, code: str, *, attempt_id: int, actor: Actor, now: datetime,
                        limits: dict[str, Backoff]) -> bool:
    """Store `secret` as the user's second factor if `code` is its current code; else keep the failure.

    `attempt_id` is the row of `record_login_attempt`, committed before this call: a wrong code
    counts towards the login throttling like a wrong password. The code used here cannot be used
    again. Neither the secret nor the code reaches the audit trail.
    """
    if user.totp_secret is not None:
        _forget_attempt(attempt_id)
        raise Conflict(_("A second factor is already set up for this account."))
    _refuse_when_throttled(attempt_id, now=now, limits=limits)
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


def verify_second_factor(user: User, code: str, *, attempt_id: int, actor: Actor, now: datetime,
                         limits: dict[str, Backoff]) -> bool:
    """Accept a TOTP code once: within ±1 step and later than the last accepted step (no replay).

    `attempt_id` as for `enrol_second_factor`; a wrong or replayed code is kept as a login failure.
    """
    _refuse_when_throttled(attempt_id, now=now, limits=limits)
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


#: Longest lifetime an API token may be given.
MAX_TOKEN_DAYS = 3650
#: A token's `last_used_at` is written at most this often, so API calls stay read-only.
TOKEN_TOUCH_EVERY = timedelta(minutes=1)


def create_token(user: User, name: str, *, days: int, actor: Actor, now: datetime) -> tuple[ApiToken, str]:
    """Issue an API bearer token valid for `days`; return its row and the token (shown once, stored as a digest)."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise Unprocessable(errors={"name": [_("Give the token a name of 1 to 100 characters, e.g. his-interface.")]})
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_TOKEN_DAYS:
        raise Unprocessable(_("A token is valid for 1 to %(max)d days.", max=MAX_TOKEN_DAYS),
                            errors={"days": [_("Enter a whole number of days from 1 to %(max)d.", max=MAX_TOKEN_DAYS)]})
    if not user.is_active:
        raise Conflict(_("The account “%(name)s” is disabled and cannot be given a token.", name=user.username))
    token = "qcf_" + new_secret()
    row = ApiToken(user_id=user.id, name=name, token_hash=digest(token), prefix=token[:12], created_at=now,
                   expires_at=now + timedelta(days=days))
    db.session.add(row)
    db.session.flush()
    audit.record(actor.audit_name, "token.create", "api_token", row.id, now,
                 after={"user_id": user.id, "name": name, "prefix": row.prefix, "expires_at": row.expires_at.isoformat()})
    return row, token


#: How long a created token waits to be shown (normally the next page load, a second later).
REVEAL_MINUTES = 5


def purge_token_reveals(now: datetime) -> int:
    """Forget every created token left unshown for longer than REVEAL_MINUTES (its only plain copy)."""
    result = db.session.execute(
        sa.delete(TokenReveal).where(TokenReveal.created_at < now - timedelta(minutes=REVEAL_MINUTES)))
    return result.rowcount


def stash_new_token(row: ApiToken, token: str, *, session_key: str, now: datetime) -> None:
    """Keep a just-created token for the tokens page to show once to this login session (and forget
    any other left unshown too long)."""
    purge_token_reveals(now)
    db.session.add(TokenReveal(token_id=row.id, session_hash=digest(session_key), secret=token, created_at=now))
    db.session.flush()


def take_new_tokens(session_key: str | None, *, now: datetime) -> list[tuple[ApiToken, str]]:
    """The tokens this session created and has not been shown yet, removed as they are returned (and
    any left unshown for longer than REVEAL_MINUTES, whoever created them)."""
    purge_token_reveals(now)
    if not session_key:
        return []
    rows = list(db.session.scalars(sa.select(TokenReveal).where(TokenReveal.session_hash == digest(session_key))
                                   .order_by(TokenReveal.id)))
    shown = [(row.token, row.secret) for row in rows]
    for row in rows:
        db.session.delete(row)
    db.session.flush()
    return shown


def list_tokens(username: str | None = None) -> list[ApiToken]:
    """Every token (of one user if `username` is given), newest first."""
    stmt = sa.select(ApiToken).join(User, User.id == ApiToken.user_id).order_by(ApiToken.id.desc())
    if username is not None:
        stmt = stmt.where(User.username == find_user(username).username)
    return list(db.session.scalars(stmt))


def get_token(token_id: int) -> ApiToken:
    token = db.session.get(ApiToken, token_id)
    if token is None:
        raise NotFound(_("No API token with id %(id)s.", id=token_id))
    return token


def revoke_token(token: ApiToken, *, actor: Actor, now: datetime) -> None:
    """Revoke a token: refused from the next request on, in every worker."""
    if token.revoked_at is not None:
        raise Conflict(_("Token %(id)d was already revoked.", id=token.id))
    token.revoked_at = now
    db.session.flush()
    audit.record(actor.audit_name, "token.revoke", "api_token", token.id, now, before={"revoked": False},
                 after={"revoked": True, "user_id": token.user_id, "name": token.name, "prefix": token.prefix})


@lru_cache(maxsize=None)
def _token_user():
    """One round trip on every API call: the token's dates, its user and the user's roles (the
    department only if it is used). Built once: building it cost more than running it."""
    return (sa.select(ApiToken.id, ApiToken.expires_at, ApiToken.revoked_at, ApiToken.last_used_at, User)
            .join(User, User.id == ApiToken.user_id)
            .where(ApiToken.token_hash == sa.bindparam("token_hash"))
            .options(joinedload(User.roles), lazyload(User.department)))


def load_token(token: str, *, now: datetime) -> tuple[User, bool]:
    """The active user of a live bearer token, and whether its use was noted (`last_used_at`, at most
    once a minute; the caller commits it). NotAuthenticated, saying why, for any other token."""
    found = db.session.execute(_token_user(), {"token_hash": digest(token)}).unique().one_or_none()
    if found is None:
        raise NotAuthenticated(_("The API token is not valid: check that it was copied whole."))
    token_id, expires_at, revoked_at, last_used_at, user = found
    if revoked_at is not None:
        raise NotAuthenticated(_("This API token has been revoked. Ask an administrator for a new one."))
    if expires_at <= now:
        raise NotAuthenticated(_("This API token has expired. Ask an administrator for a new one."))
    if not user.is_active:
        raise NotAuthenticated(_("The account this API token belongs to is disabled."))
    touched = last_used_at is None or now - last_used_at >= TOKEN_TOUCH_EVERY
    if touched:
        # Conditional, so workers serving the same token at the same moment write it once.
        touched = db.session.execute(
            sa.update(ApiToken).where(ApiToken.id == token_id, sa.or_(
                ApiToken.last_used_at.is_(None), ApiToken.last_used_at <= now - TOKEN_TOUCH_EVERY))
            .values(last_used_at=now)
        ).rowcount > 0
    return user, touched


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
