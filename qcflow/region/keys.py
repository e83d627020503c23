"""This installation's own Ed25519 key (a hospital signs its submissions, a centre its answers) and, at a centre,
the check of what a hospital signed. The private key lives in a file (REGION_KEY_FILE), never in the database and
never in a response."""
from __future__ import annotations

import os
from datetime import datetime

import sqlalchemy as sa
from flask import Response, current_app, request
from flask_babel import gettext as _
from werkzeug.exceptions import RequestEntityTooLarge

from qcflow.core.errors import DomainError, NotAuthenticated, translate_errors
from qcflow.extensions import db
from qcflow.region import protocol
from qcflow.region.models import RegionHospital


def key_path() -> str:
    return current_app.config.get("REGION_KEY_FILE") or os.path.join(current_app.instance_path, "region-ed25519.pem")


def own_key():
    """This installation's private key; RuntimeError naming the command that makes it when there is none."""
    path = key_path()
    if not os.path.exists(path):
        raise RuntimeError(f"no regional signing key at {path}: run `flask --app wsgi qcflow region keygen`")
    return protocol.load_private_key(path)


def _signed_path() -> str:
    """The path and query a signed GET signed (as the hospital wrote them)."""
    return request.full_path.rstrip("?") if request.query_string else request.path


def request_digest() -> str | None:
    """The SHA-256 of what the hospital signed: a submission's body, or a signed GET's method, path and time (None
    for a body over the limit, which is never read)."""
    if request.method == "POST":
        try:
            return protocol.sha256(request.get_data(cache=True))
        except RequestEntityTooLarge:
            return None
    return protocol.sha256(protocol.request_text(request.method, _signed_path(),
                                                 request.headers.get(protocol.HEADER_SIGNED_AT, "")))


def bound(payload: dict, status: int) -> dict:
    """The answer with what ties it to this request: its HTTP status (the signature does not cover the status line)
    and the request's digest. A signed answer replayed to another request, or under another status, fails the
    hospital's check (protocol.binding_error)."""
    return {**payload, "status": status, "request_digest": request_digest()}


def signed_json(payload: dict, status: int = 200) -> Response:
    """A JSON answer to a hospital's signed request, bound to it (bound()) and signed by this installation's key
    (X-Qcflow-Signature over the exact body)."""
    body = protocol.canonical(bound(payload, status))
    response = Response(body, status=status, mimetype="application/json")
    response.headers[protocol.HEADER_SIGNATURE] = protocol.sign(own_key(), body)
    return response


def signed_refusal(error: DomainError) -> Response:
    """A refusal of a hospital's signed request, in the app's error shape ({"code", "message", "errors"?, ...}),
    bound and signed like any answer to it."""
    payload = {"code": error.code, "message": str(error.message), **error.extra}
    if error.errors:
        payload["errors"] = translate_errors(error.errors)
    return signed_json(payload, error.status)


def hospital_by_code(code: str | None) -> RegionHospital | None:
    if not code:
        return None
    return db.session.scalar(sa.select(RegionHospital).where(RegionHospital.code == code))


def _refuse() -> NotAuthenticated:
    # One answer for an unknown hospital, a retired one and a wrong signature: a caller learns nothing about
    # which codes are registered.
    return NotAuthenticated(_("The hospital is not registered here or the signature does not match its key. "
                              "Check HOSPITAL_CODE and that the centre holds the public key `region keygen` "
                              "printed."))


def signer_of(body: bytes) -> RegionHospital:
    """The registered, active hospital whose key signed `body` (the request's X-Qcflow-Hospital and
    X-Qcflow-Signature headers); 401 otherwise."""
    hospital = hospital_by_code(request.headers.get(protocol.HEADER_HOSPITAL))
    if hospital is None or not hospital.is_active or not protocol.verify(
            hospital.public_key, body, request.headers.get(protocol.HEADER_SIGNATURE)):
        raise _refuse()
    return hospital


def signed_request_hospital(now: datetime) -> RegionHospital:
    """The hospital that signed this GET (method, path with query, X-Qcflow-Signed-At); 401 when the signature is
    wrong or its time is refused (protocol.time_error: a replay or a wrong clock)."""
    signed_at_text = request.headers.get(protocol.HEADER_SIGNED_AT, "")
    hospital = signer_of(protocol.request_text(request.method, _signed_path(), signed_at_text))
    problem = protocol.time_error(protocol.parse_time(signed_at_text), now)
    if problem:
        raise NotAuthenticated(problem)
    return hospital


def signed_request_headers(method: str, path_and_query: str, now: datetime) -> dict[str, str]:
    """The headers a hospital sends with a signed request to its centre."""
    signed_at = protocol.utc_text(now)
    return {protocol.HEADER_HOSPITAL: current_app.config["HOSPITAL_CODE"] or "",
            protocol.HEADER_SIGNED_AT: signed_at,
            protocol.HEADER_SIGNATURE: protocol.sign(own_key(), protocol.request_text(method, path_and_query,
                                                                                         signed_at))}


def verify_centre_answer(body: bytes, signature: str | None) -> bool:
    """Whether an answer came from the registered centre (REGION_CENTRE_KEY)."""
    return protocol.verify(current_app.config.get("REGION_CENTRE_KEY") or "", body, signature)
