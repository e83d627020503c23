"""create_* factory fixtures: flush, never commit."""
from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache
from itertools import count

import pytest

from tests.conftest import PASSWORD, TOTP_SECRET

_seq = count(1)


@lru_cache(maxsize=1)
def password_hash() -> str:
    # scrypt takes ~0.1 s; hash the shared test password once per run.
    from qcflow.core.security import hash_password

    return hash_password(PASSWORD)


@pytest.fixture
def create_department(ctx):
    from qcflow.auth.models import Department
    from qcflow.extensions import db

    def create(code=None, name=None, kind="clinical", **kwargs):
        n = next(_seq)
        kwargs.setdefault("created_at", datetime.now(timezone.utc))
        dept = Department(code=code or f"D{n}", name=name or f"科室{n}", kind=kind, **kwargs)
        db.session.add(dept)
        db.session.flush()
        return dept

    return create


@pytest.fixture
def create_user(ctx, create_department):
    from qcflow.auth.models import User, UserRole
    from qcflow.config import Config
    from qcflow.extensions import db

    def create(username=None, roles=("clinician",), department=None, **kwargs):
        """A user; those of MFA_REQUIRED_ROLES come with TOTP_SECRET enrolled (pass totp_secret=None for none)."""
        n = next(_seq)
        department = department or create_department()
        at = datetime.now(timezone.utc)
        if set(roles) & set(Config.MFA_REQUIRED_ROLES):
            kwargs.setdefault("totp_secret", TOTP_SECRET)
        if kwargs.get("totp_secret"):
            kwargs.setdefault("totp_enrolled_at", at)
        kwargs.setdefault("display_name", f"用户{n}")
        kwargs.setdefault("created_at", at)
        kwargs.setdefault("password_changed_at", at)
        user = User(username=username or f"user{n}", password_hash=password_hash(), department_id=department.id,
                    roles=[UserRole(role=r) for r in roles], **kwargs)
        db.session.add(user)
        db.session.flush()
        return user

    return create
