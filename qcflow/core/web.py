"""Request hooks shared by every page and API call: access, CSRF, JSON bodies, headers."""
from __future__ import annotations

import os
import re
from typing import Callable
from urllib.parse import quote

import orjson
from flask import Flask, Response, current_app, request, session
from flask.json.provider import DefaultJSONProvider
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter, Rule, RoutingException

from qcflow.config import DEFAULT_SECRET_KEY
from qcflow.core.errors import BadRequest, is_api_request
from qcflow.core.security import derived_key, keyed_hash, sessionless_token, sessionless_token_valid

UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}

#: JSON bodies nest at most this deep: no form of ours needs more than a few levels, and a parser or
#: schema walking 100 000 levels runs out of stack (RecursionError) before any rule could refuse it.
MAX_JSON_DEPTH = 64

#: A lone UTF-16 surrogate (JSON's "\ud800" escape): a Python string may hold one, but it is no
#: character, cannot be encoded as UTF-8 and so can be neither stored nor sent back.
SURROGATE = re.compile("[\ud800-\udfff]")


def check_production_config(app: Flask) -> None:
    """Refuse to start in production with a default secret key or debug on."""
    if app.config.get("ENV") != "production":
        return
    if not app.config.get("SECRET_KEY") or app.config["SECRET_KEY"] == DEFAULT_SECRET_KEY:
        raise RuntimeError("QCFLOW_SECRET_KEY must be set to a long random value in production")
    if not app.config.get("AUDIT_KEY") or len(str(app.config["AUDIT_KEY"])) < 32:
        raise RuntimeError("QCFLOW_AUDIT_KEY must be set to a random value of at least 32 characters in production")
    if app.debug or app.config.get("DEBUG"):
        raise RuntimeError("DEBUG must be off in production")
    app.config["SESSION_COOKIE_SECURE"] = True
    # __Host-: the browser accepts the cookie only over HTTPS, for this host and path "/" (no
    # Domain attribute), so neither plain HTTP nor a sibling subdomain can plant or read it.
    if not app.config["SESSION_COOKIE_NAME"].startswith("__Host-"):
        app.config["SESSION_COOKIE_NAME"] = "__Host-" + app.config["SESSION_COOKIE_NAME"]
    app.config["SESSION_COOKIE_DOMAIN"] = None
    app.config["SESSION_COOKIE_PATH"] = "/"


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


def accepts_files(view):
    """Mark a route that takes uploaded files: its body may be up to UPLOAD_MAX_CONTENT_LENGTH (every other
    route keeps MAX_CONTENT_LENGTH), and its API body is multipart, not JSON."""
    view.qc_accepts_files = True
    return view


def _view_of_request():
    return current_app.view_functions.get(request.endpoint) if request.endpoint else None


def allow_file_uploads():
    """Raise the body limit for the multipart bodies of the routes that take files, before anything reads it."""
    if (request.method in UNSAFE_METHODS and request.mimetype == "multipart/form-data"
            and getattr(_view_of_request(), "qc_accepts_files", False)):
        # Only a multipart body carries files; its text fields stay within MAX_FORM_MEMORY_SIZE.
        request.max_content_length = current_app.config["UPLOAD_MAX_CONTENT_LENGTH"]


def session_free(view=None, *, unless=None):
    """Mark an anonymous route that never opens the browser's session (A2, decisions.md).

    Its request neither reads the session cookie nor loads the logged-in user, so the login's
    `last_seen_at` is not touched, no Set-Cookie is sent and the answer is the same for everybody.
    `unless(request)`, read before the session would be opened, names the requests of that route that
    need the login after all (a named report over the API).
    """
    def mark(view):
        view.qc_session_free = unless or True
        return view

    return mark(view) if view is not None else mark


class NoSession(SecureCookieSession):
    """The empty session of a session-free request: it is never saved, and writing to it is a bug."""

    def __init__(self):
        super().__init__()

        def refuse(_session):
            raise RuntimeError("this route uses no session")

        self.on_update = refuse


def view_marker(app: Flask, endpoint: str | None, method: str, name: str):
    """A marker a decorator set on a route's view (session_free, i18n.client_program), or on the method of a
    method view; None without one."""
    view = app.view_functions.get(endpoint) if endpoint else None
    marker = getattr(view, name, None)
    if marker is None and getattr(view, "view_class", None) is not None:
        marker = getattr(getattr(view.view_class, method.lower(), None), name, None)
    return marker


def opens_no_session(app: Flask, request) -> bool:
    """Whether the request goes to a route marked `session_free` (matched before the session opens)."""
    try:
        endpoint, _args = app.create_url_adapter(request).match()
    except (HTTPException, RoutingException):
        return False
    marker = view_marker(app, endpoint, request.method, "qc_session_free")
    if marker is None:
        return False
    return marker is True or not marker(request)


def authenticated_by_token(request) -> bool:
    """An API request with a bearer token is authenticated by the token alone: its session is not
    opened, so a browser cookie riding along neither supplies the user nor spares the CSRF check."""
    return request.path.startswith("/api/") and request.headers.get("Authorization", "").startswith("Bearer ")


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, except that session-free routes and token-authenticated API
    requests neither read nor write it."""

    def open_session(self, app, request):
        if authenticated_by_token(request) or opens_no_session(app, request):
            return NoSession()
        return super().open_session(app, request)

    def save_session(self, app, session, response):
        if isinstance(session, NoSession):
            return None
        return super().save_session(app, session, response)


def known_client_address() -> str | None:
    """The client's address where it is known, for in-memory rate limits only (never stored or logged):
    the peer itself, or behind a trusted proxy the last X-Forwarded-For hop that proxy added."""
    peer = request.remote_addr
    if peer not in current_app.config["TRUSTED_PROXIES"]:
        return peer
    hops = [hop.strip() for hop in request.headers.get("X-Forwarded-For", "").split(",") if hop.strip()]
    return hops[-1] if hops else None


def form_token() -> str:
    """Template helper: a session-less CSRF token."""
    return sessionless_token(derived_key("csrf"))


#: How long a session-free form (and its one-time key) stays valid: a report typed slowly still goes.
SESSIONLESS_FORM_MAX_AGE = 4 * 3600


def check_csrf():
    """Form posts need a CSRF token; API calls with a bearer token or without a session need none."""
    if request.method not in UNSAFE_METHODS or request.routing_exception is not None:
        return  # a method the route does not take is a 405 (an unknown address a 404), not a CSRF failure
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    if getattr(view, "qc_sessionless_csrf", False):
        if not sessionless_token_valid(derived_key("csrf"), request.form.get("csrf_token"),
                                       max_age=SESSIONLESS_FORM_MAX_AGE):
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
    if getattr(_view_of_request(), "qc_accepts_files", False):
        return  # multipart: the view reads the form and its files
    body = request.get_data(cache=True)  # raises 413 beyond MAX_CONTENT_LENGTH
    if not body:
        return
    if not request.is_json:
        raise BadRequest(_("Send the body as JSON with the header Content-Type: application/json."))
    try:
        data = request.get_json(silent=True)  # cached: the view's get_json() gets this value
    except RecursionError:  # deeper than the parser's own stack allows
        raise _too_deep() from None
    if data is None:
        raise BadRequest(_("The body is not valid JSON. Check quotes, commas and brackets."))
    check_json_value(data)


def _too_deep():
    return BadRequest(_("The body is nested too deeply (at most %(n)d levels of objects and lists).", n=MAX_JSON_DEPTH))


def _surrogate():
    return BadRequest(_("The request contains an invalid character (a lone UTF-16 surrogate). "
                        "Remove it and send again."))


def check_json_value(data) -> None:
    """Refuse JSON nested deeper than MAX_JSON_DEPTH or holding a lone surrogate, keys included (400)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if not value.isascii() and SURROGATE.search(value):
                raise _surrogate()
        elif isinstance(value, (dict, list)):
            if depth > MAX_JSON_DEPTH:
                raise _too_deep()
            if isinstance(value, dict):
                stack.extend((key, depth) for key in value)
                value = value.values()
            stack.extend((item, depth + 1) for item in value)


def check_text_input():
    """Refuse a query string that is not UTF-8, and a lone surrogate in the query string or a page's posted
    form (400), before any view reads it. (API bodies are JSON only: check_json_body.)"""
    try:
        request.query_string.decode()
    except UnicodeDecodeError:
        request.query_string = b""  # the error page reads the query string (its language, its links) too
        raise BadRequest(_("The address contains bytes that are not UTF-8 text. Check the link.")) from None
    has_form = request.method in UNSAFE_METHODS and not is_api_request()
    sources = [request.args, request.form] if has_form else [request.args]
    for source in sources:
        for key, value in source.items(multi=True):
            if (not key.isascii() and SURROGATE.search(key)) or (not value.isascii() and SURROGATE.search(value)):
                raise _surrogate()


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


class SharedBuilderRule(Rule):
    """A URL rule whose URL builder (Python code werkzeug writes and compiles for each rule) is compiled once per
    process for all apps with the same rule: the compiling was most of what building an app cost once its API
    description was deferred, and the tests build thousands of apps. The builder is the same function for the
    same rule: it reads the converters through the rule it is bound to (werkzeug 3.1's `_compile_builder`)."""

    _builders: dict = {}

    def _compile_builder(self, append_unknown: bool = True):
        key = (self.rule, self.subdomain, self.host, tuple(self._trace), repr(sorted((self.defaults or {}).items())),
               append_unknown)
        builder = self._builders.get(key)
        if builder is None:
            builder = self._builders[key] = super()._compile_builder(append_unknown)
        return builder


class App(Flask):
    """Flask, with one commit per request: the view's, right after it returns (commit_request)."""

    url_rule_class = SharedBuilderRule

    def dispatch_request(self):
        response = self.make_response(super().dispatch_request())
        commit_request(response)
        return response


def commit_request(response) -> None:
    """End a request whose view returned: audit the sensitive reads it noted (qcflow.core.audit.note_read)
    if it succeeded, then commit everything once.

    Inside the dispatch, so a commit that fails is answered like any failure of the view (409 on a
    stale version or a duplicate) and a page that redirects after a POST has committed before the
    browser follows. A view that raised was rolled back by its error handler; a page that refuses a
    form rolls back itself (qcflow.core.errors.page_refusal). Mails and webhooks queued on the
    transaction leave after this commit (qcflow.notify.mail, qcflow.notify.webhook).
    """
    from flask import g

    from qcflow.core import audit
    from qcflow.core.time import now
    from qcflow.extensions import db

    reads = g.pop("audited_reads", None)
    if reads and response.status_code < 400:
        at = now()
        for actor, action, object_type, object_id, detail in reads:
            audit.record(actor, action, object_type, object_id, at, **detail)
    if db.session.registry.has():
        db.session.commit()


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON provider, with the compact answers (every API answer outside debug mode) encoded
    by orjson: a 50-task queue page took 0.25 ms in the standard library, a tenth of that here.
    Keys sorted as Flask sorts them; decimals, dataclasses and lazy translations by Flask's rules.
    Dates and datetimes are written in ISO 8601 (`2026-03-02T01:30:00+00:00`), exactly as the
    schemas' Date and DateTime fields write them, so a body built in that form (schemas.Dumped)
    needs no dump. Non-ASCII text is sent as UTF-8 rather than as \\u escapes. Anything orjson
    refuses (an integer beyond 64 bits, a key that is not a string) goes the standard library's way."""

    OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_APPEND_NEWLINE

    def response(self, *args, **kwargs):
        if (self.compact is None and self._app.debug) or self.compact is False:
            return super().response(*args, **kwargs)
        try:
            body = orjson.dumps(self._prepare_response_obj(args, kwargs), default=self.default, option=self.OPTIONS)
        except orjson.JSONEncodeError:
            return super().response(*args, **kwargs)
        return self._app.response_class(body, mimetype=self.mimetype)


class IdConverter(IntegerConverter):
    """`<int:…>` in routes: ids are 32-bit database keys, so a larger number is an unknown id (404),
    never an overflow in the database driver."""

    def __init__(self, map, fixed_digits=0, min=None, max=2**31 - 1, signed=False):
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def form_owner() -> str:
    """Who a form typed on this page belongs to, for the browser to put it back only for the same
    user after a new login: a keyed hash of the user id (names nobody), empty on anonymous pages."""
    if isinstance(session, NoSession) or not current_user.is_authenticated:
        return ""
    return keyed_hash(derived_key("pending-form"), str(current_user.id))[:32]


def install_request_hooks(app: Flask, enforce_access: Callable[[], object]) -> None:
    """The kernel's hooks around every request; `enforce_access` is auth's check of the route's
    declaration, run second (the kernel imports no domain, so create_app hands it in)."""
    app.url_map.converters["int"] = IdConverter  # before any blueprint adds its rules
    app.session_interface = SessionInterface()
    # The top bar of a session-free page cannot know who is logged in: it offers the staff pages to all.
    app.jinja_env.globals["session_free_page"] = lambda: isinstance(session, NoSession)
    app.jinja_env.globals["form_owner"] = form_owner
    app.json = JSONProvider(app)
    app.before_request(allow_file_uploads)  # before any hook reads the body
    app.before_request(check_text_input)  # first: the other hooks and the error pages read the query string
    app.before_request(enforce_access)
    app.before_request(check_csrf)
    app.before_request(check_json_body)
    app.after_request(security_headers)
    app.jinja_env.globals["form_token"] = form_token


#: What a served file may do in the browser: nothing (no script, no form, no frame), images shown.
SERVED_CSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox; frame-ancestors 'none'"


def file_response(data: bytes, attachment, *, thumbnail: bool = False) -> Response:
    """Send an attachment's stored bytes (qcflow.files): shown inline only for images, downloaded otherwise, under
    its name in any language (RFC 6266 with an ASCII fallback); never sniffed, never cached."""
    inline = attachment.kind == "image"
    name = f"thumbnail-{attachment.id}.jpg" if thumbnail else attachment.name
    fallback = f"attachment-{attachment.id}.{'jpg' if thumbnail else attachment.extension}"
    disposition = f"{'inline' if inline else 'attachment'}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name)}"
    return Response(data, mimetype="image/jpeg" if thumbnail else attachment.content_type, headers={
        "Content-Disposition": disposition, "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, no-store", "Content-Security-Policy": SERVED_CSP})
