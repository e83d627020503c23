"""Domain errors and the one place that turns any failure into a 4xx response.

API requests (paths under /api/) get JSON `{"code", "message", "errors"?}`;
pages get a translated error template.
"""
from __future__ import annotations

import json
import logging
import re

from flask import Response, current_app, jsonify, render_template, request
from flask_babel import gettext as _, lazy_gettext as _l
from marshmallow import ValidationError
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class DomainError(Exception):
    """A rule of the domain refused the request; never a 500."""

    status = 400
    code = "bad_request"
    default_message = _l("The request could not be processed.")

    def __init__(self, message=None, *, errors=None, **extra):
        super().__init__(str(message or self.default_message))
        self.message = message or self.default_message
        self.errors = errors
        self.extra = extra


class BadRequest(DomainError):
    status, code = 400, "bad_request"


class NotAuthenticated(DomainError):
    status, code = 401, "not_authenticated"
    default_message = _l("Please log in first.")


class Forbidden(DomainError):
    status, code = 403, "forbidden"
    default_message = _l("Your role does not allow this action.")


class NotFound(DomainError):
    status, code = 404, "not_found"
    default_message = _l("Not found. Check the address or the number you entered.")


class Conflict(DomainError):
    status, code = 409, "conflict"
    default_message = _l(
        "Someone else changed this record in the meantime. Reload the page and try again."
    )


class InvalidTransition(Conflict):
    code = "invalid_transition"


class Unprocessable(DomainError):
    status, code = 422, "unprocessable"
    default_message = _l("Some fields are missing or invalid.")


class GuardFailed(Unprocessable):
    code = "guard_failed"


class TooManyRequests(DomainError):
    status, code = 429, "too_many_requests"
    default_message = _l("Too many attempts. Wait a few minutes and try again.")


#: Friendly messages for HTTP errors raised by Flask/Werkzeug themselves.
HTTP_MESSAGES = {
    400: _l("The request was malformed."),
    401: _l("Please log in first."),
    403: _l("Your role does not allow this action."),
    404: _l("Not found. Check the address or the number you entered."),
    405: _l("This method is not allowed here."),
    409: _l("The request conflicts with the current state of the record."),
    413: _l("The request is too large (limit: 1 MiB)."),
    415: _l("Send the body as JSON (Content-Type: application/json)."),
    422: _l("Some fields are missing or invalid."),
    429: _l("Too many attempts. Wait a few minutes and try again."),
    500: _l("Something went wrong on our side. The request was not saved."),
}


#: Marshmallow's and webargs' English field messages, translated at response time: every message of
#: marshmallow's fields and validators that qcflow's schemas can give (tests/test_error_codes.py lists them).
FIELD_MESSAGES = [
    (re.compile(r"^Missing data for required field\.$"), lambda m: _("This field is required.")),
    (re.compile(r"^Field may not be null\.$"), lambda m: _("This field is required.")),
    (re.compile(r"^Unknown field\.$"), lambda m: _("Unknown field: remove it.")),
    (re.compile(r"^Not a valid integer\.$"), lambda m: _("Enter a whole number.")),
    (re.compile(r"^Not a valid (number|period of time)\.$|^Number too large\.$|^Special numeric values"),
     lambda m: _("Enter a number.")),
    (re.compile(r"^Not a valid boolean\.$"), lambda m: _("Enter true or false.")),
    (re.compile(r"^Not a valid (utf-8 )?string\.$"), lambda m: _("Enter text.")),
    (re.compile(r"^Not a valid (list|tuple)\.$"), lambda m: _("Enter a list.")),
    (re.compile(r"^Not a valid mapping type\.$|^Invalid type\.$"),
     lambda m: _("Enter an object of named fields ({…}).")),
    (re.compile(r"^Not a valid date\.$|^\"?.*\"? cannot be formatted as a date\.$"),
     lambda m: _("Enter a date as YYYY-MM-DD.")),
    (re.compile(r"^Not a valid (aware |naive )?datetime\.$|cannot be formatted as a datetime\.$"),
     lambda m: _("Enter a date and time with its offset, e.g. 2026-03-01T09:30:00+08:00.")),
    (re.compile(r"^Must be one of: (.*)\.$"), lambda m: _("Choose one of: %(values)s.", values=m.group(1))),
    (re.compile(r"^One or more of the choices you made was not in: (.*)\.$"),
     lambda m: _("Choose only among: %(values)s.", values=m.group(1))),
    (re.compile(r"^Longer than maximum length (\d+)\.$"), lambda m: _("At most %(n)s characters.", n=m.group(1))),
    (re.compile(r"^Shorter than minimum length (\d+)\.$"), lambda m: _("At least %(n)s characters.", n=m.group(1))),
    (re.compile(r"^Length must be between (\d+) and (\d+)\.$"),
     lambda m: _("Enter %(low)s to %(high)s characters.", low=m.group(1), high=m.group(2))),
    (re.compile(r"^Length must be (\d+)\.$"), lambda m: _("Enter exactly %(n)s characters.", n=m.group(1))),
    (re.compile(r"^Must be greater than( or equal to)? (\S+)( and less than( or equal to)? (\S+))?\.$"),
     lambda m: _("Out of range (%(low)s to %(high)s).", low=m.group(2), high=m.group(5) or "∞")),
    (re.compile(r"^Must be less than( or equal to)? (\S+)\.$"),
     lambda m: _("Out of range (up to %(high)s).", high=m.group(2))),
    (re.compile(r"^String does not match expected pattern\.$"),
     lambda m: _("Not in the expected format: check the characters and the length.")),
    (re.compile(r"^Not a valid (email address|URL|UUID|IP.*)\.$"), lambda m: _("Not in the expected format.")),
    (re.compile(r"^Invalid (input|value)\.$|^Must be equal to|^One or more of the choices you made was in:"),
     lambda m: _("This value is not accepted here.")),
    (re.compile(r"^Invalid input type\.$"), lambda m: _("Wrong type of value.")),
]


def translate_errors(errors):
    """Field errors in the request's language (messages we wrote are already translated)."""
    if isinstance(errors, dict):
        return {key: translate_errors(value) for key, value in errors.items()}
    if isinstance(errors, (list, tuple)):
        return [translate_errors(value) for value in errors]
    text = str(errors)
    for pattern, render in FIELD_MESSAGES:
        match = pattern.match(text)
        if match:
            return render(match)
    return text


def is_api_request() -> bool:
    return request.path.startswith("/api/")


def snake(name: str) -> str:
    """An exception's class name as an error code: CSRFError → csrf_error, NotFound → not_found."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


#: One code per status where Werkzeug's name differs from qcflow's own errors (a 422 is `unprocessable`
#: whether a rule, a schema or the argument parser refused the request).
HTTP_CODES = {422: Unprocessable.code}


def error_response(status: int, code: str, message, errors=None, headers=None, **extra):
    """Render one error for the API (JSON) or for a page (template); if even that fails, a plain answer
    in the same shape (never the server's bare English page)."""
    try:
        response = _rendered_error(status, code, message, errors, **extra)
    except Exception:
        log.exception("rendering the error response failed")
        response = _plain_error(status, code)
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


#: The last resort when the translated error cannot be rendered (no translation, no template).
PLAIN_MESSAGE = "请求未能处理，未保存任何内容。 The request could not be completed; nothing was saved."


def _plain_error(status: int, code: str) -> Response:
    if is_api_request():
        return Response(json.dumps({"code": code, "message": PLAIN_MESSAGE}), mimetype="application/json")
    return Response(f"<!doctype html><meta charset=utf-8><title>{status}</title><p>{PLAIN_MESSAGE}</p>",
                    mimetype="text/html")


def _rendered_error(status: int, code: str, message, errors=None, **extra):
    if is_api_request():
        body = {"code": code, "message": str(message), **extra}
        if errors:
            body["errors"] = translate_errors(errors)
        response = jsonify(body)
    else:
        response = current_app.make_response(
            render_template("errors/error.html", status=status, message=str(message),
                            errors=translate_errors(errors) if errors else None, **extra)
        )
    return response


def page_refusal(error: ValidationError | DomainError) -> tuple[dict, int]:
    """A page's form refused by its schema or by a rule: roll back what the attempt wrote (the request
    still commits once, qcflow.core.web.commit_request), then its errors under the fields' names
    (`form` for the form as a whole) and the status to show the form again with."""
    from qcflow.extensions import db

    db.session.rollback()
    if isinstance(error, ValidationError):
        return translate_errors(error.messages), 422
    return translate_errors(error.errors or {"form": [str(error.message)]}), error.status


def http_error_response(error: HTTPException, errors=None):
    """Turn a Werkzeug HTTP error into our error format, keeping its headers (G9: Allow)."""
    status = error.code or 500
    headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
    message = HTTP_MESSAGES.get(status, error.description)
    limit = request.max_content_length if status == 413 else None
    if limit and limit != current_app.config.get("MAX_CONTENT_LENGTH"):  # a route that takes files
        message = _("The request is too large (limit: %(limit)s). Send fewer or smaller files, or make the "
                    "photos smaller, and try again.", limit=f"{limit / (1024 * 1024):g} MiB")
    return error_response(status, HTTP_CODES.get(status, snake(type(error).__name__)), message, errors, headers)


def register_error_handlers(app):
    """Install the handlers that keep every failure a clear 4xx."""
    from qcflow.extensions import db

    @app.errorhandler(DomainError)
    def domain_error(error: DomainError):
        db.session.rollback()
        return error_response(error.status, error.code, error.message, error.errors, **error.extra)

    @app.errorhandler(StaleDataError)
    def stale(error):
        db.session.rollback()
        return error_response(409, "conflict", Conflict.default_message)

    @app.errorhandler(IntegrityError)
    def integrity(error):
        # G10: a unique or foreign-key violation is the client's conflict, not our crash.
        db.session.rollback()
        log.info("integrity error: %s", error.orig)
        return error_response(
            409, "conflict", _("This record conflicts with an existing one (duplicate or missing reference).")
        )

    @app.errorhandler(OverflowError)
    @app.errorhandler(DataError)
    def data_error(error):
        # The database refuses a value (PostgreSQL: an integer beyond 32 bits, a NUL character;
        # SQLite: beyond 64 bits): the client's data, so 422 like any other invalid value, never a 500.
        db.session.rollback()
        log.info("data error: %s", getattr(error, "orig", error))
        return error_response(422, "unprocessable", _("A value is out of range or contains characters that "
                                                       "cannot be stored."))

    @app.errorhandler(ValidationError)
    def invalid(error: ValidationError):
        db.session.rollback()
        return error_response(422, "unprocessable", HTTP_MESSAGES[422], error.messages)

    @app.errorhandler(Exception)
    def unexpected(error):
        if isinstance(error, HTTPException):
            return http_error_response(error)
        db.session.rollback()
        log.exception("unhandled error")
        return error_response(500, "internal_error", HTTP_MESSAGES[500])
