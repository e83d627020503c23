"""Flask-Login wiring: cookie sessions backed by server-side rows, and bearer tokens."""
from __future__ import annotations

from datetime import timedelta

from flask import Flask, current_app, g

from qcflow.auth import services
from qcflow.core.errors import NotAuthenticated, is_api_request
from qcflow.core.time import now
from qcflow.extensions import db, login_manager


def session_lifetimes() -> tuple[timedelta, timedelta]:
    config = current_app.config
    return timedelta(minutes=config["SESSION_IDLE_MINUTES"]), timedelta(hours=config["SESSION_ABSOLUTE_HOURS"])


def install_login(app: Flask) -> None:
    # Our sessions are revocable server-side rows; Flask-Login's IP/User-Agent
    # fingerprint would add nothing and would process client data we avoid storing.
    login_manager.session_protection = None
    login_manager.login_view = "auth.login"

    @login_manager.user_loader
    def load_user(session_key: str):
        idle, _absolute = session_lifetimes()
        user = services.load_session(session_key, now=now(), idle=idle, touch_every=timedelta(minutes=1))
        db.session.commit()  # keeps the idle-timeout touch; nothing else is pending yet
        return user

    @login_manager.request_loader
    def load_token_user(request):
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer ") or not is_api_request():
            return None  # a token opens the JSON API only; enforce_access refuses it anywhere else
        try:
            user, touched = services.load_token(header[len("Bearer "):].strip(), now=now())
        except NotAuthenticated as refused:
            g.bearer_refusal = refused.message  # enforce_access answers 401 with it
            return None
        if touched:
            db.session.commit()  # last_used_at, at most once a minute per token
        return user

    @login_manager.unauthorized_handler
    def unauthorized():
        raise NotAuthenticated()
