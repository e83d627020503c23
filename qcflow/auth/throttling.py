"""Where a login attempt comes from, for the login throttling (N2, docs/decisions.md).

An attempt carries a keyed hash of the client address and, when the browser completed a login of
the same account before, a hash of that browser's mark: a random value in a signed cookie that only
the login pages receive. A known browser is throttled on its own failures only, so guesses from
anywhere else never keep the account's owner out.
"""
from __future__ import annotations

from flask import current_app, request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from qcflow.auth import services
from qcflow.core.security import derived_key, keyed_hash, new_secret

COOKIE = "qcflow_known_browser"
#: Accounts one browser is known to (a shared ward PC); the oldest mark goes first.
MAX_MARKS = 5


def _signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt="qcflow.auth.known-browser")


def _max_age() -> int:
    return int(current_app.config["LOGIN_KNOWN_BROWSER_DAYS"] * 86400)


def _marks() -> list[list[str]]:
    """[username, mark] pairs of the accounts this browser completed a login of, newest first."""
    try:
        pairs = _signer().loads(request.cookies.get(COOKIE) or "", max_age=_max_age())
    except (BadSignature, ValueError, TypeError):
        return []
    if not isinstance(pairs, list):
        return []
    return [p for p in pairs if isinstance(p, list) and len(p) == 2 and all(isinstance(v, str) for v in p)]


def client_address() -> str:
    """The client's address: from LOGIN_ADDRESS_HEADER when the reverse proxy sets it, else the connection's."""
    header = current_app.config["LOGIN_ADDRESS_HEADER"]
    return (request.headers.get(header) if header else None) or request.remote_addr or ""


def attempt_source(username: str) -> dict[str, str | None]:
    """`address_hash` and `browser_hash` of a login attempt on `username` (keyword arguments of
    services.record_login_attempt); no raw address or mark reaches the database."""
    name = services.normalise_username(username)
    mark = next((m for user, m in _marks() if user == name), None)
    return {"address_hash": keyed_hash(derived_key("login-address"), client_address()),
            "browser_hash": keyed_hash(derived_key("login-browser"), mark) if mark else None}


def remember_browser(response, username: str):
    """After a completed login: mark this browser as known to `username` (kept, or new) on `response`."""
    marks = _marks()
    mark = next((m for user, m in marks if user == username), None) or new_secret(16)
    marks = [[username, mark]] + [pair for pair in marks if pair[0] != username][:MAX_MARKS - 1]
    response.set_cookie(COOKIE, _signer().dumps(marks), max_age=_max_age(), path="/login", httponly=True,
                        secure=current_app.config["SESSION_COOKIE_SECURE"], samesite="Lax")
    return response
