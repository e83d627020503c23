"""create_* factory fixtures: flush, never commit."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import lru_cache
from itertools import count

import pytest

from tests.conftest import PASSWORD, TOTP_SECRET

_seq = count(1)


def saved(row):
    """Add `row` to the session and flush it (ids filled in); the test commits when it needs to."""
    from qcflow.extensions import db

    db.session.add(row)
    db.session.flush()
    return row


def stamped(kwargs: dict, at: datetime) -> dict:
    """Fill a HIS row's created_at (default `at`) and updated_at (default created_at) unless given."""
    kwargs.setdefault("created_at", at)
    kwargs.setdefault("updated_at", kwargs["created_at"])
    return kwargs


@lru_cache(maxsize=1)
def password_hash() -> str:
    """The shared test password, hashed once per run with a light scrypt (n = 2¹⁰, not the app's 2¹⁵): each login
    checks it at the cost the stored hash names, and the suite logs in thousands of times. Passwords the app
    itself sets (sign-up, a change) still get the app's hash."""
    from werkzeug.security import generate_password_hash

    return generate_password_hash(PASSWORD, method="scrypt:1024:8:1")


@pytest.fixture
def create_department(ctx):
    from qcflow.auth.models import Department

    def create(code=None, name=None, kind="clinical", **kwargs):
        n = next(_seq)
        kwargs.setdefault("created_at", datetime.now(timezone.utc))
        dept = Department(code=code or f"D{n}", name=name or f"科室{n}", kind=kind, **kwargs)
        return saved(dept)

    return create


@pytest.fixture
def create_user(ctx, create_department):
    from qcflow.auth.models import User, UserRole
    from qcflow.config import Config

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
        return saved(user)

    return create


@pytest.fixture
def create_procedure(ctx):
    from qcflow.clinical.models import Procedure

    def create(code=None, name="胰十二指肠切除术", grade=4, **kwargs):
        procedure = Procedure(code=code or f"P{next(_seq)}", name=name, grade=grade, **kwargs)
        return saved(procedure)

    return create


@pytest.fixture
def create_staff(ctx):
    """A clinician as the HIS lists them, linked to `user` (whose name it takes) if given."""
    from qcflow.clinical.models import Staff

    def create(name=None, department=None, specialty=None, user=None, **kwargs):
        n = next(_seq)
        staff = Staff(his_id=kwargs.pop("his_id", f"S{n}"), name=name or (user.display_name if user else f"医生{n}"),
                      department_id=department.id if department else None, specialty=specialty,
                      user_id=user.id if user else None, **kwargs)
        return saved(staff)

    return create


@pytest.fixture
def create_patient(ctx):
    """A patient with a unique name and MRN and a phone to call."""
    from qcflow.clinical.models import Patient

    def create(**kwargs):
        n = next(_seq)
        stamped(kwargs, datetime(2026, 1, 1, tzinfo=timezone.utc))
        kwargs.setdefault("name", f"患者{n}")
        kwargs.setdefault("phone", "13812345678")
        kwargs.setdefault("sex", "F")
        patient = Patient(his_id=kwargs.pop("his_id", f"P{n}"), mrn=kwargs.pop("mrn", None) or f"MRN{n:05d}",
                          **kwargs)
        return saved(patient)

    return create


@pytest.fixture
def create_encounter(ctx):
    """A stay of `patient` in `department` (a clinical record there)."""
    from qcflow.clinical.models import Encounter

    def create(patient, department, admitted_at=datetime(2026, 1, 2, tzinfo=timezone.utc), discharged_at=None,
               **kwargs):
        stamped(kwargs, admitted_at)
        encounter = Encounter(his_id=kwargs.pop("his_id", f"E{next(_seq)}"), patient_id=patient.id,
                              department_id=department.id, admitted_at=admitted_at, discharged_at=discharged_at,
                              **kwargs)
        return saved(encounter)

    return create


@pytest.fixture
def create_operation(ctx, create_procedure, create_patient, create_encounter):
    """An operation as the HIS records it; `performed_at` makes it a performed one."""
    from qcflow.clinical.models import Operation

    def create(department, surgeon, planned_at, *, patient=None, encounter=None, procedure=None,
               performed_at=None, state=None, **kwargs):
        procedure = procedure or create_procedure()
        patient = patient or (encounter.patient if encounter else create_patient())
        encounter = encounter or create_encounter(patient, department, planned_at - timedelta(days=2))
        stamped(kwargs, planned_at)
        operation = Operation(
            his_id=kwargs.pop("his_id", f"O{next(_seq)}"), encounter_id=encounter.id, patient_id=patient.id,
            department_id=department.id, procedure_code=procedure.code, grade=procedure.grade,
            is_restricted_technology=procedure.is_restricted_technology,
            surgeon_staff_id=surgeon.id, planned_at=planned_at, performed_at=performed_at,
            state=state or ("performed" if performed_at else "planned"), **kwargs)
        return saved(operation)

    return create


def discussion_of(effects):
    """The discussion a reaction requested or found (reactions report effects, not records); None if none."""
    from qcflow.extensions import db
    from qcflow.mdt.models import Discussion

    if not effects:
        return None
    [effect] = effects
    return db.session.get(Discussion, effect.id)


@pytest.fixture
def default_trigger(ctx):
    """A default trigger by code, as the migration seeds it (put back from the migration where a test
    database was emptied of it)."""
    import sqlalchemy as sa

    from qcflow.extensions import db
    from qcflow.extraction.models import Trigger
    from tests.conftest import migration_module

    def get(code):
        trigger = db.session.scalar(sa.select(Trigger).where(Trigger.code == code))
        if trigger is None:
            defaults = {row[0]: row for row in migration_module("*_automatic_extraction.py").DEFAULT_TRIGGERS}
            _code, name, name_en, rule, params, window = defaults[code]
            at = datetime(2026, 1, 1, tzinfo=timezone.utc)
            trigger = saved(Trigger(code=code, name=name, name_en=name_en, rule=rule, params=params,
                                    window_hours=window, is_active=True, created_at=at, updated_at=at))
        return trigger

    return get


@pytest.fixture
def create_firing(ctx, create_patient):
    """A trigger's firing (a possible event for review) fired at `at`, in a given review state; a
    reviewed one was handled `review_hours` later."""
    from qcflow.followup.models import EventPrompt

    def create(trigger, department, at, *, state="open", review_hours=None, patient=None, event=None, **kwargs):
        handled_at = at + timedelta(hours=review_hours) if review_hours is not None else None
        if state == "dismissed":
            kwargs.setdefault("dismiss_code", "expected_course")
        prompt = EventPrompt(
            trigger_id=trigger.id, trigger_version=trigger.version, window_key=kwargs.pop("window_key", f"test:{next(_seq)}"),
            facts=kwargs.pop("facts", []), occurred_at=kwargs.pop("occurred_at", at),
            patient_id=(patient or create_patient()).id, department_id=department.id, state=state,
            event_id=event.id if event is not None else None, created_at=at, handled_at=handled_at, **kwargs)
        return saved(prompt)

    return create
