"""Login, logout and the account page."""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from qcflow.auth import services
from qcflow.auth.forms import LanguageForm, LoginForm, PasswordForm
from qcflow.auth.login import session_lifetimes
from qcflow.auth.permissions import authenticated, current_actor, public
from qcflow.core.errors import DomainError, TooManyRequests
from qcflow.core.time import now
from qcflow.extensions import db

bp = Blueprint("auth", __name__)


def safe_next(target: str | None) -> str:
    """Only same-site relative paths; anything else goes home."""
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("core.home")


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    """Log in with user name and password."""
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        config, at = current_app.config, now()
        attempt = services.record_login_attempt(form.username.data, now=at)
        db.session.commit()  # visible to every worker before the password is checked (N2)
        try:
            user = services.authenticate(
                form.username.data, form.password.data, attempt_id=attempt, now=at,
                max_failures=config["LOGIN_MAX_FAILURES"], window=timedelta(minutes=config["LOGIN_WINDOW_MINUTES"]),
            )
        except TooManyRequests as error:
            db.session.commit()  # the refused attempt is not kept
            form.form_errors.append(str(error.message))
            return render_template("auth/login.html", form=form), 429
        if user is None:
            db.session.commit()  # keep the failure: it counts towards throttling
            form.form_errors.append(_("User name or password is not correct."))
            status = 401
        else:
            lang = session.get("lang")
            session.clear()  # a new login never inherits an earlier session's contents
            if lang:
                session["lang"] = lang
            _idle, absolute = session_lifetimes()
            services.start_session(user, now=now(), absolute=absolute)
            db.session.commit()
            login_user(user)
            session.pop("_id", None)  # Flask-Login's IP/User-Agent digest: not needed, not kept
            return redirect(safe_next(request.args.get("next")))
    elif request.method == "POST":
        status = 400
    return render_template("auth/login.html", form=form), status


@bp.post("/logout")
@authenticated
def logout():
    """End this session on the server and in the browser."""
    services.end_session(current_user.session_key, now=now())
    db.session.commit()
    logout_user()
    session.clear()
    flash(_("You have logged out."))
    return redirect(url_for("auth.login"))


@bp.route("/account", methods=["GET", "POST"])
@authenticated
def account():
    """Show the account; change the password or the language."""
    password_form = PasswordForm(prefix="pw")
    language_form = LanguageForm(prefix="lang", locale=current_user.locale or "zh")
    status = 200
    if request.method == "POST":
        if "pw-new_password" in request.form and password_form.validate():
            try:
                services.change_password(current_user, password_form.current_password.data,
                                         password_form.new_password.data, actor=current_actor(), now=now())
            except DomainError as error:
                for field, messages in (error.errors or {}).items():
                    getattr(password_form, field).errors = list(messages)
                status = error.status
            else:
                db.session.commit()
                logout_user()
                session.clear()
                flash(_("Password changed. Every session has ended; log in with the new password."))
                return redirect(url_for("auth.login"))
        elif "lang-locale" in request.form and language_form.validate():
            services.set_locale(current_user, language_form.locale.data, actor=current_actor(), now=now())
            db.session.commit()
            session["lang"] = language_form.locale.data
            return redirect(url_for("auth.account"))
        else:
            status = 400
    return render_template("auth/account.html", password_form=password_form, language_form=language_form), status
