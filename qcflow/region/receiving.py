"""Centre side: receiving a hospital's signed submission (docs/region.md, Receiving (centre side)).

The view checks the size and the signature (keys.signer_of); `receive` checks everything else and keeps the
version: every version stays, the newest of a (hospital, kind, period) is current, and so are its monthly values
(the comparisons read only those). Nothing is stored when anything is refused."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from flask_babel import gettext as _
from marshmallow import ValidationError
from sqlalchemy.exc import IntegrityError

from qcflow.core import audit
from qcflow.core.actors import Actor
from qcflow.core.errors import Conflict, DomainError, Forbidden, NotAuthenticated, Unprocessable
from qcflow.core.time import today
from qcflow.extensions import db
from qcflow.indicators import catalogue
from qcflow.indicators.forms import PLAN_TITLES, SCHEMA as FORM_SCHEMA
from qcflow.region import protocol
from qcflow.region.models import RegionHospital, RegionSubmission, RegionValue
from qcflow.region.receiving_schemas import FormDocument

#: Who the audit trail names for a receipt: the centre's intake (the hospital's code is in the detail).
INTAKE_ACTOR = Actor.system("region-intake")
#: The form kind of the JSON twin (indicators/forms.py) for each envelope kind.
FORM_KINDS = {"annual_form": "annual", "quarterly_form": "quarterly"}


class TooLarge(DomainError):
    status, code = 413, "too_large"


class NotReady(DomainError):
    """The centre cannot answer signed: it has no key yet."""

    status, code = 503, "centre_not_ready"


class AlreadyReceived(Conflict):
    code = "already_received"


class VersionTaken(Conflict):
    code = "version_taken"


class StaleVersion(Conflict):
    code = "stale_version"


def too_large() -> TooLarge:
    return TooLarge(_("The submission is larger than %(mib)d MiB: nothing was stored.",
                      mib=protocol.MAX_BODY_BYTES // (1024 * 1024)))


@dataclass(frozen=True)
class Received:
    submission: RegionSubmission
    receipt: dict


def receipt(submission: RegionSubmission, hospital_code: str, values: int, replaced: int | None) -> dict:
    """What the centre answers for a kept version (and again for a repeat of it)."""
    return {"schema": protocol.RECEIPT_SCHEMA, "submission": submission.id, "hospital": hospital_code,
            "kind": submission.kind, "period": submission.period, "version": submission.revision,
            "digest": submission.digest, "received_at": protocol.utc_text(submission.received_at),
            "values": values, "replaced": replaced}


def stored_receipt(submission: RegionSubmission) -> dict:
    """The receipt of a version already kept, as it was answered when it arrived."""
    code = db.session.scalar(sa.select(RegionHospital.code).where(RegionHospital.id == submission.hospital_id))
    values = db.session.scalar(sa.select(sa.func.count()).select_from(RegionValue)
                               .where(RegionValue.submission_id == submission.id))
    replaced = db.session.scalar(sa.select(sa.func.max(RegionSubmission.revision)).where(
        RegionSubmission.hospital_id == submission.hospital_id, RegionSubmission.kind == submission.kind,
        RegionSubmission.period == submission.period, RegionSubmission.revision < submission.revision))
    return receipt(submission, code, values, replaced)


def _versions(hospital_id: int, kind: str, period: str) -> list[RegionSubmission]:
    return list(db.session.scalars(sa.select(RegionSubmission).where(
        RegionSubmission.hospital_id == hospital_id, RegionSubmission.kind == kind,
        RegionSubmission.period == period).order_by(RegionSubmission.revision)))


def _refuse_repeat(envelope: protocol.Envelope, versions: list[RegionSubmission]) -> None:
    """409 for a version already kept (the same: its receipt; other content: take the next number) or a version
    older than the newest kept."""
    same = next((row for row in versions if row.revision == envelope.version), None)
    if same is not None:
        if same.digest == envelope.digest:
            raise AlreadyReceived(_("Version %(version)d of %(period)s was received already: nothing changed.",
                                    version=envelope.version, period=envelope.period),
                                  receipt=stored_receipt(same))
        raise VersionTaken(_("Version %(version)d of %(period)s was received already with other content: send it "
                             "as version %(next)d.", version=envelope.version, period=envelope.period,
                             next=versions[-1].revision + 1), newest_version=versions[-1].revision)
    newest = versions[-1].revision if versions else 0
    if envelope.version > newest + VERSION_GAP:
        raise Unprocessable(_("Version %(version)d of %(period)s skips too far ahead: send version %(next)d (at "
                              "most %(gap)d after the newest kept, so that a month can always be corrected).",
                              version=envelope.version, period=envelope.period, next=newest + 1, gap=VERSION_GAP),
                            errors={"version": [_("At most %(highest)d.", highest=newest + VERSION_GAP)]})
    if versions and envelope.version < versions[-1].revision:
        raise StaleVersion(_("Version %(newest)d of %(period)s was received already: version %(version)d is older "
                             "and is not kept. Send corrections as version %(next)d.", newest=versions[-1].revision,
                             period=envelope.period, version=envelope.version, next=versions[-1].revision + 1),
                           newest_version=versions[-1].revision)


def units() -> dict[str, str]:
    """The catalogue's indicators (the plans', not a hospital's own) and their units."""
    return {entry.code: entry.unit for entry in catalogue.entries(include_local=False)}


#: How far a version may run ahead of the newest kept of its period (versions the hospital queued but the centre
#: refused leave gaps): a far jump would leave no number to correct the period with.
VERSION_GAP = 100
#: The parts of a month's document (protocol.month_document) and of each of its values: nothing else is kept.
MONTH_KEYS = frozenset({"schema", "month", "plan", "values"})
VALUE_KEYS = frozenset({"code", "unit", "numerator", "denominator", "value"})


def _month_shape_errors(document: dict) -> dict[str, list[str]]:
    """A month's document holds what a hospital's qcflow sends and at least one value (an empty month is not a
    month sent: completeness would count it)."""
    errors = {}
    extra = sorted(str(key)[:40] for key in set(document) - MONTH_KEYS)
    if extra:
        errors["document"] = [_("Unknown parts of the month's document: %(keys)s.", keys=", ".join(extra[:10]))]
    if document.get("plan") not in PLAN_TITLES:
        errors["document.plan"] = [_("Choose one of: %(values)s.", values=", ".join(PLAN_TITLES))]
    values = document.get("values")
    if isinstance(values, list):
        if not values:
            errors["document.values"] = [_("The month holds no values: send it once it has some (a month without "
                                           "values is not counted as sent).")]
        for index, item in enumerate(values):
            if isinstance(item, dict) and set(item) - VALUE_KEYS:
                errors[f"values[{index}]"] = [_("Unknown parts of a value: %(keys)s.", keys=", ".join(
                    sorted(str(key)[:40] for key in set(item) - VALUE_KEYS)[:10]))]
    return errors


def _month_values(envelope: protocol.Envelope) -> list[dict]:
    stored, errors = protocol.month_value_errors(envelope.document, units())
    errors = {**_month_shape_errors(envelope.document), **errors}
    if envelope.document.get("month") != envelope.period:
        errors["document.month"] = [_("The document is for the month %(month)s, the envelope for %(period)s.",
                                      month=str(envelope.document.get("month"))[:20], period=envelope.period)]
    if errors:
        raise Unprocessable(_("Some values were refused: nothing was stored. Correct them and send the month "
                              "again."), errors=errors)
    return stored


def _paths(messages, prefix: str) -> dict[str, list[str]]:
    """marshmallow's nested errors as one list per dotted path ("document.rows.3.codes.0.value")."""
    if isinstance(messages, dict):
        found = {}
        for key, inner in messages.items():
            found.update(_paths(inner, f"{prefix}.{key}"))
        return found
    return {prefix: [str(m) for m in messages] if isinstance(messages, list) else [str(messages)]}


def _check_form(envelope: protocol.Envelope) -> None:
    document = envelope.document
    try:
        FormDocument().load(document)
    except ValidationError as error:
        errors = _paths(error.messages, "document")
        raise Unprocessable(_("The form is not one a hospital's qcflow archives: nothing was stored. See the errors "
                              "under document."), errors=dict(list(errors.items())[:50])) from None
    errors = {}
    if document.get("draft"):
        errors["document.draft"] = [_("A draft form is not sent: archive the form first.")]
    if document.get("schema") != FORM_SCHEMA:
        errors["document.schema"] = [_("Expected %(schema)s.", schema=FORM_SCHEMA)]
    if document.get("kind") != FORM_KINDS[envelope.kind]:
        errors["document.kind"] = [_("The document is not the form the envelope names.")]
    first, _last = protocol.period_months(envelope.kind, envelope.period)
    quarter = (first.month - 1) // 3 + 1 if envelope.kind == "quarterly_form" else None
    period = document.get("period")
    if not isinstance(period, dict) or type(period.get("year")) is not int or period.get("year") != first.year \
            or period.get("quarter") != quarter or type(period.get("quarter")) not in (int, type(None)):
        errors["document.period"] = [_("The form's period is not %(period)s, the period of the envelope.",
                                       period=envelope.period)]
    if errors:
        raise Unprocessable(_("The form does not match its envelope: nothing was stored."), errors=errors)


def receive(hospital: RegionHospital, body: bytes, signature: str, *, now: datetime) -> Received:
    """Keep a submission `hospital` signed (the caller checked the signature over `body`): a new version of its
    (kind, period) becomes the current one, with its month's values; audited. DomainError (4xx) otherwise.
    `signature`: the X-Qcflow-Signature header as received, kept with the version."""
    try:
        envelope = protocol.parse_envelope(body)
    except protocol.ProtocolError as error:
        raise Unprocessable(error.message, errors=error.errors) from None
    if envelope.hospital != hospital.code:
        raise Forbidden(_("The submission names the hospital %(named)s but is signed with the key of %(signer)s: "
                          "a hospital sends only its own.", named=envelope.hospital, signer=hospital.code))
    problem = protocol.time_error(envelope.signed_at, now)
    if problem:
        raise NotAuthenticated(problem)
    problem = protocol.period_error(envelope.kind, envelope.period, today(now))
    if problem:
        raise Unprocessable(problem, errors={"period": [problem]})
    hospital_id = hospital.id
    # One receipt at a time per hospital (PostgreSQL; SQLite writes one at a time anyway): the newest version
    # read below is still the newest when this one is kept.
    db.session.execute(sa.select(RegionHospital.id).where(RegionHospital.id == hospital_id).with_for_update())
    _refuse_repeat(envelope, _versions(hospital_id, envelope.kind, envelope.period))
    if envelope.kind == "month":
        values = _month_values(envelope)
    else:
        _check_form(envelope)
        values = []
    try:
        return _keep(hospital, envelope, signature, values, now=now)
    except IntegrityError:
        # The same version delivered twice at once: the other delivery kept it first.
        db.session.rollback()
        _refuse_repeat(envelope, _versions(hospital_id, envelope.kind, envelope.period))
        raise Conflict(_("This version arrived twice at once; send it again to get its receipt.")) from None


def _keep(hospital: RegionHospital, envelope: protocol.Envelope, signature: str, values: list[dict], *,
          now: datetime) -> Received:
    starts_on, ends_on = protocol.period_months(envelope.kind, envelope.period)
    previous = db.session.scalar(sa.select(sa.func.max(RegionSubmission.revision)).where(
        RegionSubmission.hospital_id == hospital.id, RegionSubmission.kind == envelope.kind,
        RegionSubmission.period == envelope.period))
    submission = RegionSubmission(
        hospital_id=hospital.id, kind=envelope.kind, period=envelope.period, revision=envelope.version,
        starts_on=starts_on, ends_on=ends_on, document=protocol.canonical(envelope.document).decode(),
        digest=envelope.digest, signature=signature, signed_at=envelope.signed_at, received_at=now,
        is_current=True)
    db.session.add(submission)
    db.session.flush()
    if previous is not None:
        db.session.execute(
            sa.update(RegionSubmission).where(
                RegionSubmission.hospital_id == hospital.id, RegionSubmission.kind == envelope.kind,
                RegionSubmission.period == envelope.period, RegionSubmission.id != submission.id,
                RegionSubmission.is_current.is_(True)).values(is_current=False),
            execution_options={"synchronize_session": False})
        if envelope.kind == "month":
            db.session.execute(
                sa.update(RegionValue).where(
                    RegionValue.hospital_id == hospital.id, RegionValue.month_on == starts_on,
                    RegionValue.is_current.is_(True)).values(is_current=False),
                execution_options={"synchronize_session": False})
    if values:
        db.session.execute(RegionValue.__table__.insert(), [
            {"submission_id": submission.id, "hospital_id": hospital.id, "code": value["code"],
             "month_on": starts_on, "numerator": value["numerator"], "denominator": value["denominator"],
             "value": value["value"], "is_current": True} for value in values])
    audit.record(INTAKE_ACTOR.audit_name, "region_submission.receive", "region_submission", submission.id, now,
                 hospital=hospital.code, kind=envelope.kind, period=envelope.period, version=envelope.version,
                 digest=envelope.digest, values=len(values), replaced=previous)
    return Received(submission, receipt(submission, hospital.code, len(values), previous))



# What centre staff read ----------------------------------------------------------------------------------------

def submissions(*, hospital_id: int | None = None, kind: str | None = None, period: str | None = None,
                current_only: bool = False, before: int | None = None, limit: int = 50) -> list[RegionSubmission]:
    """Received versions, newest first (by id); `before`: the previous page's last id (keyset)."""
    stmt = sa.select(RegionSubmission).order_by(RegionSubmission.id.desc()).limit(limit)
    if hospital_id is not None:
        stmt = stmt.where(RegionSubmission.hospital_id == hospital_id)
    if kind is not None:
        stmt = stmt.where(RegionSubmission.kind == kind)
    if period is not None:
        stmt = stmt.where(RegionSubmission.period == period)
    if current_only:
        stmt = stmt.where(RegionSubmission.is_current.is_(True))
    if before is not None:
        stmt = stmt.where(RegionSubmission.id < before)
    return list(db.session.scalars(stmt))


def value_counts(ids: list[int]) -> dict[int, int]:
    """How many monthly values each of these submissions holds."""
    if not ids:
        return {}
    rows = db.session.execute(sa.select(RegionValue.submission_id, sa.func.count()).where(
        RegionValue.submission_id.in_(ids)).group_by(RegionValue.submission_id))
    return dict(rows.all())


def versions_of(submission: RegionSubmission) -> list[RegionSubmission]:
    """Every version of the submission's (hospital, kind, period), newest first."""
    return list(reversed(_versions(submission.hospital_id, submission.kind, submission.period)))


def hospitals_by_id(ids) -> dict[int, RegionHospital]:
    ids = set(ids)
    if not ids:
        return {}
    return {row.id: row for row in db.session.scalars(sa.select(RegionHospital).where(RegionHospital.id.in_(ids)))}


def values_of(submission_id: int) -> list[RegionValue]:
    """The monthly values kept with a version, by indicator code."""
    return list(db.session.scalars(sa.select(RegionValue).where(RegionValue.submission_id == submission_id)
                                   .order_by(RegionValue.code)))
