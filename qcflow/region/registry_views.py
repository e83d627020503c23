"""Pages of regional mode (centre side): the hospitals registered at the centre, their keys, and every version
each has sent."""
from __future__ import annotations

import json

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from marshmallow import ValidationError, fields, validate

from qcflow.auth.permissions import allowed, current_actor, roles_required
from qcflow.core.errors import DomainError, NotFound, Unprocessable, page_refusal
from qcflow.core.forms import form_data, load_args
from qcflow.core.schemas import QueryArgs, WholeNumber
from qcflow.core.time import now
from qcflow.extensions import db
from qcflow.indicators import catalogue
from qcflow.indicators.models import HOSPITAL_LEVELS
from qcflow.region import receiving, registry
from qcflow.region.models import OWNERSHIPS, RegionSubmission
from qcflow.region.receiving_api import READERS
from qcflow.region.receiving_schemas import CentreHospitalChangeIn, CentreHospitalIn

bp = Blueprint("centre_registry", __name__, url_prefix="/centre/hospitals")

PAGE = 100
EDITABLE = ("name", "name_en", "level", "ownership", "region", "public_key")


class ListArgs(QueryArgs):
    level = fields.String(load_default=None, validate=validate.OneOf(HOSPITAL_LEVELS))
    region = fields.String(load_default=None, validate=validate.Length(max=60))
    active = fields.String(load_default="yes", validate=validate.OneOf(["yes", "no", "all"]))
    after = fields.String(load_default=None, validate=validate.Length(max=40))


@bp.get("")
@roles_required(*READERS)
def list_hospitals():
    """The registered hospitals, filtered by level, region and whether active, with the months each has sent."""
    args, errors = load_args(ListArgs())
    active = {"yes": True, "no": False, "all": None}[args.get("active", "yes")]
    rows = registry.hospitals(level=args.get("level"), region=args.get("region") or None, active=active,
                              after=args.get("after"), limit=PAGE + 1)
    page, more = rows[:PAGE], len(rows) > PAGE
    filters = {name: args[name] for name in ("level", "region", "active") if args.get(name)}
    return render_template("centre/hospitals.html", hospitals=page,
                           sent=registry.months_sent(row.id for row in page), regions=registry.regions(), levels=HOSPITAL_LEVELS, args=args, errors=errors,
                           filters=filters, next_after=page[-1].code if more else None,
                           fingerprint=registry.fingerprint), 422 if errors else 200


def _posted(schema) -> dict:
    data = form_data(request.form, schema, [name for name in schema.fields if name in request.form])
    if "name_en" in request.form and not request.form["name_en"].strip():
        data["name_en"] = None
    return schema.load(data)


@bp.route("/new", methods=["GET", "POST"])
@allowed("centre_hospitals")
def new_hospital():
    """Register a hospital and its public key."""
    errors, status = {}, 200
    if request.method == "POST":
        try:
            row = registry.add_hospital(_posted(CentreHospitalIn()), actor=current_actor(), now=now())
            flash(_("Hospital %(name)s registered.", name=row.name))
            return redirect(url_for("centre_registry.list_hospitals"))
        except (ValidationError, DomainError) as error:
            errors, status = page_refusal(error)
    return render_template("centre/hospitals_form.html", hospital=None, values=request.form, errors=errors,
                           levels=HOSPITAL_LEVELS, ownerships=OWNERSHIPS), status


@bp.route("/<code>/edit", methods=["GET", "POST"])
@allowed("centre_hospitals")
def edit_hospital(code):
    """Change a hospital or its key (from the version read), retire it or take it back."""
    row = registry.hospital(code)
    errors, status = {}, 200
    if request.method == "POST":
        try:
            action = request.form.get("action", "save")
            if action == "retire" and request.form.get("confirm") != "yes":
                raise Unprocessable(_("Confirm the retirement first."), errors={"confirm": [
                    _("Tick the box to confirm: its signatures will be refused from then on.")]})
            if action in ("retire", "reactivate"):
                version = CentreHospitalChangeIn().load({"version": request.form.get("version", "")})["version"]
                row = registry.set_active(row, action == "reactivate", version, actor=current_actor(), now=now())
                flash(_("Hospital %(name)s taken back.", name=row.name) if row.is_active
                      else _("Hospital %(name)s retired: its signatures are refused from now on.", name=row.name))
            elif action == "save":
                data = _posted(CentreHospitalChangeIn())
                row = registry.update_hospital(row, data, data.pop("version"), actor=current_actor(), now=now())
                flash(_("Hospital %(name)s saved.", name=row.name))
            else:
                raise Unprocessable(_("Choose what to do."))
            return redirect(url_for("centre_registry.list_hospitals", active="all"))
        except (ValidationError, DomainError) as error:
            errors, status = page_refusal(error)
            row = registry.hospital(code)
    values = request.form if request.method == "POST" and request.form.get("action", "save") == "save" else {
        name: getattr(row, name) or "" for name in EDITABLE}
    return render_template("centre/hospitals_form.html", hospital=row, values=values, errors=errors,
                           levels=HOSPITAL_LEVELS, ownerships=OWNERSHIPS,
                           fingerprint=registry.fingerprint(row.public_key)), status


class VersionsArgs(QueryArgs):
    cursor = WholeNumber(load_default=None, validate=validate.Range(min=1, max=2**31 - 1))


@bp.get("/<code>/submissions")
@roles_required(*READERS)
def hospital_submissions(code):
    """Every version the hospital has sent, newest first, and which is current."""
    row = registry.hospital(code)
    args, errors = load_args(VersionsArgs())
    found = receiving.submissions(hospital_id=row.id, before=args.get("cursor"), limit=PAGE + 1)
    page, more = found[:PAGE], len(found) > PAGE
    return render_template("centre/submissions.html", hospital=row, submissions=page,
                           counts=receiving.value_counts([s.id for s in page]), errors=errors,
                           next_cursor=page[-1].id if more else None), 422 if errors else 200


@bp.get("/<code>/submissions/<int:submission_id>")
@roles_required(*READERS)
def submission_detail(code, submission_id):
    """One received version: what was sent (the month's values by indicator, or the form), and the other versions
    of the same period."""
    row = registry.hospital(code)
    submission = db.session.get(RegionSubmission, submission_id)
    if submission is None or submission.hospital_id != row.id:
        raise NotFound()
    document = json.loads(submission.document)
    entries = {entry.code: entry for entry in catalogue.entries(include_local=False)}
    values = receiving.values_of(submission.id)
    return render_template("centre/submission_detail.html", hospital=row, submission=submission,
                           document=document, values=values, entries=entries,
                           versions=receiving.versions_of(submission))
