"""Centre side: the hospitals that send to this centre (docs/region.md, Hospitals at the centre) and their public
signing keys. Administrators keep the list; centre staff read it."""
from __future__ import annotations

import sys
from datetime import datetime

import click
import sqlalchemy as sa
from flask.cli import AppGroup
from flask_babel import gettext as _
from marshmallow import ValidationError

from qcflow.core import audit
from qcflow.core.actors import Actor
from qcflow.core.errors import Conflict, DomainError, NotFound, Unprocessable
from qcflow.core.schemas import no_control_characters
from qcflow.core.time import now as clock
from qcflow.extensions import db
from qcflow.indicators.models import HOSPITAL_LEVELS
from qcflow.region import protocol
from qcflow.region.models import OWNERSHIPS, RegionHospital, RegionSubmission

#: Fields an administrator sets (code only when the hospital is added).
FIELDS = ("code", "name", "name_en", "level", "ownership", "region", "public_key", "is_active")


fingerprint = protocol.fingerprint


def hospital(code: str) -> RegionHospital:
    """A registered hospital by its code; 404 otherwise."""
    found = db.session.scalar(sa.select(RegionHospital).where(RegionHospital.code == code))
    if found is None:
        raise NotFound(_("No hospital with the code %(code)s is registered here.", code=code[:40]))
    return found


def _text(value, limit: int, *, required: bool) -> tuple[str | None, list[str]]:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, [_("This field is required.")] if required else []
    if not isinstance(value, str):
        return None, [_("Enter text.")]
    value = value.strip()
    try:
        no_control_characters()(value)
    except ValidationError as error:
        return None, error.messages
    if len(value) > limit:
        return None, [_("At most %(n)s characters.", n=limit)]
    return value, []


def _checked(values: dict, *, hospital_id: int | None) -> dict:
    """The values cleaned, or 422 with every field's errors; a duplicate code or key is the field's error."""
    errors: dict[str, list[str]] = {}
    clean = {}
    for name, limit, required in (("name", 100, True), ("name_en", 100, False), ("region", 60, True)):
        clean[name], found = _text(values.get(name), limit, required=required)
        if found:
            errors[name] = found
    code = values.get("code")
    if not isinstance(code, str) or not protocol.HOSPITAL_CODE_PATTERN.match(code.strip()):
        errors["code"] = [_("Letters, digits and _ . - only, at most 40 characters, starting with a letter or a "
                            "digit (the hospital's HOSPITAL_CODE).")]
    else:
        clean["code"] = code.strip()
    for name, choices in (("level", HOSPITAL_LEVELS), ("ownership", OWNERSHIPS)):
        if values.get(name) not in choices:
            errors[name] = [_("Choose one of: %(values)s.", values=", ".join(choices))]
        else:
            clean[name] = values[name]
    key = values.get("public_key")
    if not isinstance(key, str) or not protocol.is_public_key(key):
        errors["public_key"] = [_("Not an Ed25519 public key: paste the 44 characters «region keygen» printed at "
                                  "the hospital.")]
    else:
        # One spelling per key: base64 leaves two bits of the last character unused, so two texts can carry the
        # same key; the uniqueness below compares the key itself.
        clean["public_key"] = protocol.public_key_text(protocol.load_public_key(key))
    clean["is_active"] = values.get("is_active", True)
    if not isinstance(clean["is_active"], bool):
        errors["is_active"] = [_("Enter true or false.")]
    others = sa.select(RegionHospital.id).where(RegionHospital.id != (hospital_id or 0)).limit(1)
    if "code" in clean and db.session.scalar(others.where(
            sa.func.upper(RegionHospital.code) == clean["code"].upper())) is not None:
        # Codes that differ only in case would read as one hospital on the pages and in the audit trail.
        errors["code"] = [_("Another hospital already has this code.")]
    if "public_key" in clean and db.session.scalar(
            others.where(RegionHospital.public_key == clean["public_key"])) is not None:
        errors["public_key"] = [_("Another hospital already holds this key: each hospital makes its own.")]
    if errors:
        raise Unprocessable(errors=errors)
    return clean


def _audited(row: RegionHospital, values: dict) -> dict:
    """The fields as the audit trail keeps them: the key as its fingerprint."""
    shown = {name: values[name] for name in values if name != "public_key"}
    if "public_key" in values:
        shown["key_fingerprint"] = fingerprint(values["public_key"])
    return shown


def add_hospital(data: dict, *, actor: Actor, now: datetime) -> RegionHospital:
    """Register a hospital and the public key its submissions are signed with (audited)."""
    values = _checked({**data, "is_active": data.get("is_active", True)}, hospital_id=None)
    row = RegionHospital(**values, created_at=now, updated_at=now, updated_by=actor.audit_name)
    db.session.add(row)
    db.session.flush()
    audit.record(actor.audit_name, "region_hospital.create", "region_hospital", row.code, now,
                 after=_audited(row, values))
    return row


def update_hospital(row: RegionHospital, data: dict, version: int | None, *, actor: Actor,
                    now: datetime) -> RegionHospital:
    """Change a hospital (fields not given stay), retire it or take it back (`is_active`); 409 when it changed
    since `version` was read. A new key is audited with the old and the new key's fingerprints."""
    if version != row.version:
        raise Conflict(_("Someone changed this hospital since you opened it; reload it and try again."),
                       current_version=row.version)
    if "code" in data and data["code"] != row.code:
        raise Unprocessable(errors={"code": [_("A hospital's code cannot change: its submissions are kept under "
                                               "it. Retire it and add the hospital again.")]})
    merged = {name: data[name] if name in data else getattr(row, name) for name in FIELDS}
    values = _checked(merged, hospital_id=row.id)
    changed = [name for name in FIELDS if values[name] != getattr(row, name)]
    if not changed:
        return row
    before = {name: getattr(row, name) for name in changed}
    for name in changed:
        setattr(row, name, values[name])
    row.updated_at, row.updated_by = now, actor.audit_name
    db.session.flush()
    if "public_key" in changed:
        action = "region_hospital.change_key"
    elif changed == ["is_active"]:
        action = "region_hospital.reactivate" if row.is_active else "region_hospital.retire"
    else:
        action = "region_hospital.update"
    audit.record(actor.audit_name, action, "region_hospital", row.code, now, before=_audited(row, before),
                 after=_audited(row, {name: values[name] for name in changed}))
    return row


def set_active(row: RegionHospital, active: bool, version: int | None, *, actor: Actor,
               now: datetime) -> RegionHospital:
    """Retire a hospital (its signatures are refused from now on; what it sent stays) or take it back."""
    return update_hospital(row, {"is_active": active}, version, actor=actor, now=now)


def months_sent(hospital_ids) -> dict[int, int]:
    """Per hospital id of these: how many distinct months it has sent (kind month)."""
    rows = db.session.execute(
        sa.select(RegionSubmission.hospital_id, sa.func.count(sa.distinct(RegionSubmission.period)))
        .where(RegionSubmission.kind == "month", RegionSubmission.hospital_id.in_(list(hospital_ids)))
        .group_by(RegionSubmission.hospital_id))
    return {hospital_id: count for hospital_id, count in rows}


def hospitals(*, level: str | None = None, region: str | None = None, active: bool | None = None,
              after: str | None = None, limit: int | None = None) -> list[RegionHospital]:
    """Registered hospitals by code, filtered; `after`: the previous page's last code (keyset)."""
    stmt = sa.select(RegionHospital).order_by(RegionHospital.code)
    if level is not None:
        stmt = stmt.where(RegionHospital.level == level)
    if region:
        stmt = stmt.where(RegionHospital.region == region)
    if active is not None:
        stmt = stmt.where(RegionHospital.is_active.is_(active))
    if after is not None:
        stmt = stmt.where(RegionHospital.code > after)
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(db.session.scalars(stmt))


def regions() -> list[str]:
    """The regions hospitals are registered in (the list page's filter)."""
    return list(db.session.scalars(sa.select(RegionHospital.region).distinct().order_by(RegionHospital.region)))


# `flask --app wsgi qcflow region hospitals …` --------------------------------------------------------------------

hospitals_cli = AppGroup("hospitals", help="Centre: the hospitals that send to this centre and their keys.")
CLI_ACTOR = Actor.system("cli")


@hospitals_cli.command("add")
@click.option("--code", required=True, help="The hospital's HOSPITAL_CODE.")
@click.option("--name", required=True, help="Name in Chinese.")
@click.option("--name-en", help="Name in English.")
@click.option("--level", required=True, type=click.Choice(HOSPITAL_LEVELS))
@click.option("--ownership", required=True, type=click.Choice(OWNERSHIPS))
@click.option("--region", required=True, help="City or county.")
@click.option("--key", required=True, help="The public key `region keygen` printed at the hospital.")
def hospitals_add(code, name, name_en, level, ownership, region, key):
    """Register a hospital and its public signing key."""
    try:
        row = add_hospital({"code": code, "name": name, "name_en": name_en, "level": level, "ownership": ownership,
                            "region": region, "public_key": key}, actor=CLI_ACTOR, now=clock())
    except DomainError as error:
        db.session.rollback()
        details = "; ".join(f"{k}: {' '.join(map(str, v))}" for k, v in (error.errors or {}).items())
        click.echo(f"Error: {error.message}" + (f" ({details})" if details else ""), err=True)
        sys.exit(2)
    db.session.commit()
    click.echo(f"registered {row.code} {row.name} (key {fingerprint(row.public_key)})")


@hospitals_cli.command("list")
def hospitals_list():
    """List the registered hospitals: code, level, ownership, region, active, months sent, key, name."""
    rows = hospitals()
    sent = months_sent(row.id for row in rows)
    click.echo(f"{'code':<20} {'level':<10} {'ownership':<10} {'region':<12} {'active':<6} {'months':>6}  "
               f"{'key':<16}  name")
    for row in rows:
        click.echo(f"{row.code:<20} {row.level:<10} {row.ownership:<10} {row.region:<12} "
                   f"{'yes' if row.is_active else 'no':<6} {sent.get(row.id, 0):>6}  {fingerprint(row.public_key)}  "
                   f"{row.name}")
