"""Request hooks shared by every page and API call: access, CSRF, JSON bodies, headers."""
from __future__ import annotations

import hashlib
import os

from flask import Flask, current_app, request
from flask_babel import gettext as _
from flask_login import current_user

from qcflow.config import DEFAULT_SECRET_KEY
from qcflow.core.errors import BadRequest, is_api_request
from qcflow.core.security import sessionless_token, sessionless_token_valid

UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def check_production_config(app: Flask) -> None:
    """Refuse to start in production with a default secret key or debug on."""
    if app.config.get("ENV") != "production":
        return
    if not app.config.get("SECRET_KEY") or app.config["SECRET_KEY"] == DEFAULT_SECRET_KEY:
        raise RuntimeError("QCFLOW_SECRET_KEY must be set to a long random value in production")
    if app.debug or app.config.get("DEBUG"):
        raise RuntimeError("DEBUG must be off in production")
    app.config["SESSION_COOKIE_SECURE"] = True


def database_uri(app: Flask) -> str:
    url = app.config.get("DATABASE_URL")
    if url:
        return url
    os.makedirs(app.instance_path, exist_ok=True)
    return "sqlite:///" + os.path.join(app.instance_path, "qcflow.sqlite3")


def sessionless_csrf(view):
    """Mark a form view whose CSRF token is checked without a session (it must set no cookie)."""
    view.qc_sessionless_csrf = True
    return view


def csrf_key() -> str:
    return hashlib.sha256(("csrf:" + current_app.config["SECRET_KEY"]).encode()).hexdigest()


def form_token() -> str:
    """Template helper: a session-less CSRF token."""
    return sessionless_token(csrf_key())


def check_csrf():
    """Form posts need a CSRF token; API calls with a bearer token or without a session need none."""
    if request.method not in UNSAFE_METHODS:
        return
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    if getattr(view, "qc_sessionless_csrf", False):
        if not sessionless_token_valid(csrf_key(), request.form.get("csrf_token"), max_age=4 * 3600):
            raise BadRequest(_("The form has expired. Reload the page and submit again."))
        return
    if is_api_request() and (request.headers.get("Authorization", "").startswith("Bearer ") or not current_user.is_authenticated):
        return
    from qcflow.extensions import csrf

    csrf.protect()


def check_json_body():
    """API bodies must be JSON; say so clearly instead of a confusing field error."""
    if not is_api_request() or request.method not in UNSAFE_METHODS:
        return
    body = request.get_data(cache=True)  # raises 413 beyond MAX_CONTENT_LENGTH
    if not body:
        return
    if not request.is_json:
        raise BadRequest(_("Send the body as JSON with the header Content-Type: application/json."))
    if request.get_json(silent=True) is None:
        raise BadRequest(_("The body is not valid JSON. Check quotes, commas and brackets."))


def security_headers(response):
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'",
    )
    if request.is_secure:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    # Pages and API answers may hold patient data: never cache them.
    if not request.path.startswith("/static/"):
        headers.setdefault("Cache-Control", "no-store")
    return response


def install_request_hooks(app: Flask) -> None:
    from qcflow.auth.permissions import enforce_access

    app.before_request(enforce_access)
    app.before_request(check_csrf)
    app.before_request(check_json_body)
    app.after_request(security_headers)
    app.jinja_env.globals["form_token"] = form_token
