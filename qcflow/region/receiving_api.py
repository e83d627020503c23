"""JSON API of regional mode (centre side): hospitals' signed submissions, the hospitals registered, and the
received versions for centre staff. Only on a centre installation (404 on a hospital's)."""
from __future__ import annotations

import json
import os

from flask import request
from flask_babel import gettext as _

from qcflow.auth.permissions import PERMISSIONS, allowed, current_actor, public, roles_required
from qcflow.core.api import Blueprint
from qcflow.core.errors import DomainError
from qcflow.core.i18n import client_program
from qcflow.core.time import now
from qcflow.core.web import session_free
from qcflow.extensions import db
from qcflow.region import keys, protocol, receiving, registry
from qcflow.region.installation import is_centre
from qcflow.region.models import RegionHospital, RegionSubmission
from qcflow.region.receiving_schemas import (CentreHospitalArgs, CentreHospitalChangeIn, CentreHospitalIn,
                                             CentreHospitalOut, CentreHospitalPage, ReceivedArgs, ReceivedDetailOut,
                                             ReceivedPage, SubmissionReceiptOut, SubmissionRefusalOut)

blp = Blueprint("centre_intake_api", __name__, url_prefix="/api/v1/centre",
                description="Centre: signed submissions from hospitals, and the hospitals registered")

#: Centre staff read the hospitals and what they sent; administrators keep the hospitals.
READERS = tuple(sorted(PERMISSIONS["centre_compare"] | PERMISSIONS["centre_hospitals"]))
RECEIVE = "centre_intake_api.receive_submission"
NOT_HERE = "Not a centre installation, or no such hospital or submission"


@blp.url_value_preprocessor
def _limit_body(endpoint, _values):
    """Before the app's hooks read the body: a submission may be up to MAX_BODY_BYTES (more than the app's
    MAX_CONTENT_LENGTH), and a larger one is refused with the protocol's own message."""
    if endpoint != RECEIVE:
        return
    request.max_content_length = protocol.MAX_BODY_BYTES
    if request.content_length is not None and request.content_length > protocol.MAX_BODY_BYTES:
        raise receiving.too_large()


@blp.after_app_request
def _sign_early_refusals(response):
    """The refusals of a submission that the app's hooks answer before the view (a body that is not JSON, one
    over the limit) are signed too, like every answer the view gives."""
    if request.endpoint != RECEIVE or protocol.HEADER_SIGNATURE in response.headers or not is_centre() \
            or not os.path.exists(keys.key_path()):
        return response
    try:
        payload = json.loads(response.get_data())
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        response.set_data(protocol.canonical(keys.bound(payload, response.status_code)))
    response.headers[protocol.HEADER_SIGNATURE] = protocol.sign(keys.own_key(), response.get_data())
    return response



def _receive_doc() -> dict:
    body = {"type": "object", "description": "The canonical JSON envelope (docs/region.md, The protocol), signed: "
                                             "headers X-Qcflow-Hospital and X-Qcflow-Signature (ed25519=…)"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": body}}}}


@blp.post("/submissions")
@public
@session_free
@client_program
@blp.doc(**_receive_doc())
@blp.response(201, SubmissionReceiptOut, description="Kept: the centre's receipt, signed")
@blp.alt_response(400, schema=SubmissionRefusalOut, description="The body is not JSON")
@blp.alt_response(401, schema=SubmissionRefusalOut,
                  description="Unknown or retired hospital, a wrong or missing signature, or a signing time refused "
                              "(a replay, a wrong clock)")
@blp.alt_response(403, schema=SubmissionRefusalOut, description="Signed by another hospital than the one it names")
@blp.alt_response(404, description="Not a centre installation")
@blp.alt_response(409, schema=SubmissionRefusalOut,
                  description="already_received (with the stored receipt), version_taken or stale_version: nothing "
                              "stored")
@blp.alt_response(413, schema=SubmissionRefusalOut, description="Larger than the protocol's limit")
@blp.alt_response(422, schema=SubmissionRefusalOut,
                  description="A malformed envelope, a period not ended, refused values (errors keyed "
                              "values[i].field): nothing stored")
@blp.alt_response(503, schema=SubmissionRefusalOut, description="The centre has no signing key yet")
def receive_submission():
    """Receive a hospital's signed submission of a month's values or an annual or quarterly form.

    Authenticated by the hospital's signature only (no session, no token). Every answer is signed by the centre
    (X-Qcflow-Signature over the exact body); messages in the language asked (Accept-Language, default zh)."""
    at = now()
    try:
        keys.own_key()
    except (RuntimeError, OSError, ValueError):
        raise receiving.NotReady(_("The centre has no signing key yet; try again later.")) from None
    body = request.get_data(cache=True)
    try:
        if len(body) > protocol.MAX_BODY_BYTES:
            raise receiving.too_large()
        hospital = keys.signer_of(body)
        received = receiving.receive(hospital, body, request.headers.get(protocol.HEADER_SIGNATURE, ""), now=at)
    except DomainError as error:
        db.session.rollback()
        return keys.signed_refusal(error)
    return keys.signed_json(received.receipt, 201)


# Hospitals -------------------------------------------------------------------------------------------------------

def present_hospital(row: RegionHospital, months: int) -> dict:
    return {"code": row.code, "name": row.name, "name_en": row.name_en, "level": row.level,
            "ownership": row.ownership, "region": row.region, "public_key": row.public_key,
            "key_fingerprint": registry.fingerprint(row.public_key), "is_active": row.is_active,
            "months_sent": months, "updated_at": row.updated_at, "version": row.version}


@blp.get("/hospitals")
@roles_required(*READERS)
@blp.arguments(CentreHospitalArgs, location="query")
@blp.response(200, CentreHospitalPage)
@blp.alt_response(404, description=NOT_HERE)
def list_hospitals(args):
    """The registered hospitals by code, filtered by level, region and whether active (keyset: cursor)."""
    limit = args["limit"]
    rows = registry.hospitals(level=args["level"], region=args["region"], active=args["active"],
                              after=args["cursor"], limit=limit + 1)
    page, more = rows[:limit], len(rows) > limit
    sent = registry.months_sent(row.id for row in page)
    return {"items": [present_hospital(row, sent.get(row.id, 0)) for row in page],
            "next_cursor": page[-1].code if more else None}


@blp.post("/hospitals")
@allowed("centre_hospitals")
@blp.arguments(CentreHospitalIn)
@blp.response(201, CentreHospitalOut)
@blp.alt_response(404, description="Not a centre installation")
@blp.alt_response(422, description="A field refused, a code or a key another hospital has")
def add_hospital(data):
    """Register a hospital and its public signing key (audited)."""
    row = registry.add_hospital(data, actor=current_actor(), now=now())
    return present_hospital(row, 0)


@blp.get("/hospitals/<code>")
@roles_required(*READERS)
@blp.response(200, CentreHospitalOut)
@blp.alt_response(404, description=NOT_HERE)
def get_hospital(code):
    """One registered hospital."""
    row = registry.hospital(code)
    return present_hospital(row, registry.months_sent([row.id]).get(row.id, 0))


@blp.patch("/hospitals/<code>")
@allowed("centre_hospitals")
@blp.arguments(CentreHospitalChangeIn)
@blp.response(200, CentreHospitalOut)
@blp.alt_response(404, description=NOT_HERE)
@blp.alt_response(409, description="A newer version exists")
@blp.alt_response(422, description="A field refused, a key another hospital has")
def change_hospital(data, code):
    """Change a hospital, replace its key (audited with both keys' fingerprints), retire it (`is_active`: false)
    or take it back; fields left out stay."""
    row = registry.hospital(code)
    version = data.pop("version")
    row = registry.update_hospital(row, data, version, actor=current_actor(), now=now())
    return present_hospital(row, registry.months_sent([row.id]).get(row.id, 0))


# Received submissions --------------------------------------------------------------------------------------------

def present_submission(row: RegionSubmission, hospital: RegionHospital, values: int) -> dict:
    return {"id": row.id, "hospital": hospital.code, "hospital_name": hospital.name, "kind": row.kind,
            "period": row.period, "version": row.revision, "digest": row.digest, "signed_at": row.signed_at,
            "received_at": row.received_at, "is_current": row.is_current, "values": values}


@blp.get("/submissions")
@roles_required(*READERS)
@blp.arguments(ReceivedArgs, location="query")
@blp.response(200, ReceivedPage)
@blp.alt_response(404, description=NOT_HERE)
def list_submissions(args):
    """Received versions, newest first, filtered by hospital (code), kind, period and current only (keyset)."""
    hospital_id = registry.hospital(args["hospital"]).id if args["hospital"] else None
    limit = args["limit"]
    rows = receiving.submissions(hospital_id=hospital_id, kind=args["kind"], period=args["period"],
                                 current_only=args["current"], before=args["cursor"], limit=limit + 1)
    page, more = rows[:limit], len(rows) > limit
    counts = receiving.value_counts([row.id for row in page])
    hospitals = receiving.hospitals_by_id(row.hospital_id for row in page)
    return {"items": [present_submission(row, hospitals[row.hospital_id], counts.get(row.id, 0)) for row in page],
            "next_cursor": page[-1].id if more else None}


@blp.get("/submissions/<int:submission_id>")
@roles_required(*READERS)
@blp.response(200, ReceivedDetailOut)
@blp.alt_response(404, description=NOT_HERE)
def get_submission(submission_id):
    """One received version with its document and every version of the same period."""
    row = db.get_or_404(RegionSubmission, submission_id)
    hospital = db.session.get(RegionHospital, row.hospital_id)
    return {**present_submission(row, hospital, receiving.value_counts([row.id]).get(row.id, 0)),
            "document": json.loads(row.document),
            "versions": [{"id": v.id, "version": v.revision, "digest": v.digest, "received_at": v.received_at,
                          "is_current": v.is_current} for v in receiving.versions_of(row)]}
