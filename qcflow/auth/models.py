"""Users, departments, roles, server-side sessions, API tokens, login failures."""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column, relationship

from qcflow.core.db import Base, Versioned, enum_check


class Role(StrEnum):
    CLINICIAN = "clinician"
    NURSE = "nurse"
    DEPT_HEAD = "dept_head"
    QUALITY = "quality"
    ADMIN = "admin"
    #: The hospital information system's account: API tokens for the intake and the booking question only.
    INTERFACE = "interface"
    #: Staff of a regional quality-control centre (an installation with INSTALLATION_ROLE "centre").
    CENTRE = "centre"


ROLE_LABELS = {
    Role.CLINICIAN: _l("Clinician"),
    Role.NURSE: _l("Follow-up nurse"),
    Role.DEPT_HEAD: _l("Department head"),
    Role.QUALITY: _l("Quality office"),
    Role.ADMIN: _l("Administrator"),
    Role.INTERFACE: _l("HIS interface"),
    Role.CENTRE: _l("Quality-control centre"),
}


class DepartmentKind(StrEnum):
    CLINICAL = "clinical"
    NURSING = "nursing"
    FUNCTIONAL = "functional"


class Department(Versioned, Base):
    __tablename__ = "department"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(40), unique=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    name_en: Mapped[str | None] = mapped_column(sa.String(100))
    kind: Mapped[str] = mapped_column(sa.String(20))
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]

    __table_args__ = (enum_check("kind", DepartmentKind),)

    def label(self, language: str) -> str:
        return self.name_en if language == "en" and self.name_en else self.name


class User(UserMixin, Versioned, Base):
    __tablename__ = "user_account"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Stored lower-case; login is case-insensitive.
    username: Mapped[str] = mapped_column(sa.String(64), unique=True)
    display_name: Mapped[str] = mapped_column(sa.String(100))
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    department_id: Mapped[int] = mapped_column(sa.ForeignKey("department.id"), index=True)
    is_active: Mapped[bool] = mapped_column(default=True)
    #: Preferred UI language ("zh" or "en"); None means the hospital default.
    locale: Mapped[str | None] = mapped_column(sa.String(8))
    created_at: Mapped[datetime]
    password_changed_at: Mapped[datetime]
    #: Base32 TOTP secret (RFC 6238) once a second factor is enrolled; None before.
    totp_secret: Mapped[str | None] = mapped_column(sa.String(64))
    #: The last accepted 30-second step: a code is accepted once (no replay).
    totp_last_step: Mapped[int | None] = mapped_column(sa.BigInteger)
    totp_enrolled_at: Mapped[datetime | None]

    department: Mapped[Department] = relationship(lazy="joined")
    roles: Mapped[list["UserRole"]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="UserRole.role"
    )

    __table_args__ = (sa.CheckConstraint("locale IS NULL OR locale IN ('zh', 'en')", name="locale_valid"),)

    #: The server-side session this user object was loaded through (set by the loader).
    session_key = None

    @property
    def role_names(self) -> frozenset[str]:
        return frozenset(r.role for r in self.roles)

    @property
    def sorted_roles(self) -> list[str]:
        return sorted(self.role_names)

    def has_role(self, *roles: str) -> bool:
        return bool(self.role_names & set(roles))

    def get_id(self) -> str | None:
        # Flask-Login keeps this in the signed cookie: the session key, not the user id,
        # so that ending the server-side session ends the login.
        return self.session_key


class UserRole(Base):
    __tablename__ = "user_role"

    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(sa.String(20), primary_key=True)

    __table_args__ = (enum_check("role", Role),)


class UserSession(Base):
    """A login; revocable on the server (logout, password change, disable)."""

    __tablename__ = "user_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: sha256 of the random key held in the signed session cookie.
    key_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    #: Absolute end of the session, whatever the activity.
    expires_at: Mapped[datetime] = mapped_column(index=True)
    revoked_at: Mapped[datetime | None]


class ApiToken(Base):
    """A bearer token for the JSON API (`/api/` only), for machine clients; expires, revocable."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    #: sha256 of the token; the token itself is shown once (TokenReveal holds it until then) and never kept.
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    #: First characters of the token, to tell tokens apart in lists.
    prefix: Mapped[str] = mapped_column(sa.String(12))
    created_at: Mapped[datetime]
    #: The token is refused from this instant on (API_TOKEN_DAYS after creation unless chosen).
    expires_at: Mapped[datetime]
    #: Last accepted use, written at most once a minute (TOKEN_TOUCH_EVERY) to keep API calls cheap.
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship(lazy="joined")

    def status(self, now: datetime) -> str:
        """"revoked", "expired" or "active" (the loader refuses the first two)."""
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expires_at <= now else "active"


class LoginFailure(Base):
    """One login attempt (password or second-factor code), written before it is checked and kept if it
    failed; counted per account, per address and per known browser to slow guessing in every worker."""

    __tablename__ = "login_failure"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(64))
    #: HMAC of the client address under a key derived from SECRET_KEY: no raw address is stored.
    address_hash: Mapped[str | None] = mapped_column(sa.String(64))
    #: HMAC of the browser's known-browser mark for this account (a browser that completed a login of
    #: it before); None for any other browser.
    browser_hash: Mapped[str | None] = mapped_column(sa.String(64))
    failed_at: Mapped[datetime]

    __table_args__ = (
        sa.Index("ix_login_failure_username_failed_at", "username", "failed_at"),
        sa.Index("ix_login_failure_address_hash_failed_at", "address_hash", "failed_at"),
    )


class RateLimitHit(Base):
    """One use of a rate-limited action (exports, PDFs) by a user; rows, so every worker sees them."""

    __tablename__ = "rate_limit_hit"

    id: Mapped[int] = mapped_column(primary_key=True)
    bucket: Mapped[str] = mapped_column(sa.String(40))
    subject: Mapped[str] = mapped_column(sa.String(64))
    at: Mapped[datetime]

    __table_args__ = (sa.Index("ix_rate_limit_hit_bucket_subject_at", "bucket", "subject", "at"),)


class TokenReveal(Base):
    """A token just created, kept until the tokens page shows it once to the browser that created it
    (Post/Redirect/Get: reloading that page neither creates a second token nor shows this one again)."""

    __tablename__ = "api_token_reveal"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_id: Mapped[int] = mapped_column(sa.ForeignKey("api_token.id", ondelete="CASCADE"))
    #: sha256 of the creating login session's key: no other session is shown the token.
    session_hash: Mapped[str] = mapped_column(sa.String(64), index=True)
    #: The token itself, deleted when shown or after REVEAL_MINUTES at the latest.
    secret: Mapped[str] = mapped_column(sa.String(100))
    created_at: Mapped[datetime]

    token: Mapped[ApiToken] = relationship(lazy="joined")

