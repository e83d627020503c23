"""Login (password, then a TOTP second factor where required), logout and the account page."""
from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user
from itsdangerous import BadSignature, URLSafeTimedSerializer
from markupsafe import Markup

from qcflow.auth import services, throttling, totp
from qcflow.auth.forms import EnrolForm, LanguageForm, LoginForm, PasswordForm, SecondFactorForm, TokenForm
from qcflow.auth.login import session_lifetimes
from qcflow.auth.models import User
from qcflow.auth.permissions import allowed, authenticated, current_actor, public
from qcflow.core.actors import Actor
from qcflow.core.errors import Conflict, DomainError, TooManyRequests
from qcflow.core.i18n import chosen_language, current_language
from qcflow.core.time import now
from qcflow.extensions import db

bp = Blueprint("auth", __name__)
#: Failed and throttled logins go to the security log (kept ≥ 6 months, docs/deploy.md); the
#: throttling rows themselves are deleted after the window.
log = logging.getLogger(__name__)


def safe_next(target: str | None) -> str:
    """Only same-site relative paths; anything else goes home."""
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("home.index")


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    """Log in with user name and password."""
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        config, at = current_app.config, now()
        attempt = services.record_login_attempt(form.username.data, now=at,
                                                **throttling.attempt_source(form.username.data))
        db.session.commit()  # visible to every worker before the password is checked (N2)
        try:
            user = services.authenticate(form.username.data, form.password.data, attempt_id=attempt, now=at,
                                         **_throttling())
        except TooManyRequests as error:
            log.warning("login refused, too many failures: account %s", form.username.data)
            form.form_errors.append(str(error.message))
            return render_template("auth/login.html", form=form), 429, error.extra.get("headers")
        if user is None:
            log.warning("login failed: account %s", form.username.data)
            form.form_errors.append(_("User name or password is not correct."))
            status = 401
        elif services.needs_second_factor(user, config["MFA_REQUIRED_ROLES"]):
            _fresh_browser_session()
            # Grants nothing: Flask-Login sees no user until the second step starts the session.
            session[PENDING_KEY] = {"user_id": user.id, "at": int(at.timestamp())}
            return redirect(url_for("auth.second_factor", **_carried_args()))
        else:
            return _start_login(user)
    elif request.method == "POST":
        status = 400
    return render_template("auth/login.html", form=form), status


#: Signed-cookie key of a login whose password was right and whose second step is still to come.
PENDING_KEY = "second_factor_pending"


def _fresh_browser_session() -> None:
    """A new login never inherits an earlier session's contents (only the chosen language)."""
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang


def _start_login(user: User):
    """Open the server-side session, set the login cookie and go on to the page asked for.

    A language chosen on the login page (?lang=, carried through the second step) becomes the session's.
    """
    _fresh_browser_session()
    if chosen_language():
        session["lang"] = chosen_language()
    _idle, absolute = session_lifetimes()
    services.start_session(user, now=now(), absolute=absolute)
    login_user(user)
    session.pop("_id", None)  # Flask-Login's IP/User-Agent digest: not needed, not kept
    return throttling.remember_browser(redirect(safe_next(request.args.get("next"))), user.username)


def _pending_user() -> User | None:
    """The active user whose password was right less than MFA_PENDING_MINUTES ago in this browser."""
    marker, at = session.get(PENDING_KEY), now()
    try:
        user_id, typed_at = int(marker["user_id"]), int(marker["at"])
    except (TypeError, KeyError, ValueError):
        return None
    if not 0 <= at.timestamp() - typed_at <= current_app.config["MFA_PENDING_MINUTES"] * 60:
        return None
    user = db.session.get(User, user_id)
    if user is None or not user.is_active:
        return None
    if typed_at < int(user.password_changed_at.timestamp()) and user.password_changed_at <= at:
        return None  # the password changed after it was typed (a change "after now" is a clock set back)
    return user


def _back_to_login():
    if current_user.is_authenticated:
        return redirect(url_for("home.index"))
    session.pop(PENDING_KEY, None)
    flash(_("Log in again with your password: the second step must follow within a few minutes."))
    return redirect(url_for("auth.login", **_carried_args()))


def _carried_args() -> dict:
    """What the login steps pass on to each other: where to go afterwards, and whether a form was
    posted after a session ended (static/js/app.js keeps its text for the way back), and the language
    chosen on the login page (an anonymous page has no session to remember it)."""
    carried = {key: request.args[key] for key in ("next", "expired") if request.args.get(key)}
    if chosen_language():
        carried["lang"] = chosen_language()
    return carried


def _throttling() -> dict:
    config = current_app.config
    return {"limits": services.login_limits(config["LOGIN_THROTTLE"])}


def _enrolment_signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt="qcflow.auth.totp-enrolment")


def _enrolment_secret(token: str | None, user: User) -> str | None:
    """The secret of a signed enrolment field issued to `user` within the pending time, or None."""
    try:
        user_id, secret = _enrolment_signer().loads(token or "", max_age=current_app.config["MFA_PENDING_MINUTES"] * 60)
    except (BadSignature, ValueError, TypeError):
        return None
    return secret if user_id == user.id else None


def _qr_svg(uri: str) -> Markup:
    import segno

    code = segno.make(uri, error="m")
    return Markup(code.svg_inline(scale=4, border=4, dark="#000", light="#fff", svgclass="qr",
                                  title=_("QR code for the authenticator app")))


@bp.route("/login/second-factor", methods=["GET", "POST"])
@public
def second_factor():
    """Second step of the login: the current code of the user's authenticator app."""
    user = _pending_user()
    if user is None:
        return _back_to_login()
    if user.totp_secret is None:
        return redirect(url_for("auth.enrol", **_carried_args()))
    form = SecondFactorForm()
    status = 200
    if form.validate_on_submit():
        at = now()
        attempt = services.record_login_attempt(user.username, now=at, **throttling.attempt_source(user.username))
        db.session.commit()  # counted by every worker before the code is checked, as for passwords (N2)
        try:
            passed = services.verify_second_factor(user, form.code.data, attempt_id=attempt, actor=Actor.for_user(user),
                                                   now=at, **_throttling())
        except TooManyRequests as error:
            log.warning("second factor refused, too many failures: account %s", user.username)
            form.form_errors.append(str(error.message))
            return render_template("auth/second_factor.html", form=form), 429, error.extra.get("headers")
        if passed:
            return _start_login(user)
        log.warning("second factor failed: account %s", user.username)
        form.form_errors.append(_("The code is not correct or has already been used. Enter the current code "
                                  "from your authenticator app."))
        form.code.data = ""
        status = 401
    elif request.method == "POST":
        status = 400
    return render_template("auth/second_factor.html", form=form), status


@bp.route("/login/enrol", methods=["GET", "POST"])
@public
def enrol():
    """First login of a user who needs a second factor: set up an authenticator app, confirm with a code."""
    user = _pending_user()
    if user is None:
        return _back_to_login()
    if user.totp_secret is not None:
        return redirect(url_for("auth.second_factor", **_carried_args()))
    form = EnrolForm()
    status, secret, headers = 200, None, None
    if form.validate_on_submit():
        secret = _enrolment_secret(form.enrolment.data, user)
        if secret is None:
            form.form_errors.append(_("This set-up page has expired. Add the new key below to your app."))
            status = 400
        else:
            at = now()
            attempt = services.record_login_attempt(user.username, now=at, **throttling.attempt_source(user.username))
            db.session.commit()  # counted before the code is checked (N2)
            try:
                enrolled = services.enrol_second_factor(user, secret, form.code.data, attempt_id=attempt,
                                                        actor=Actor.for_user(user), now=at, **_throttling())
            except Conflict:
                return redirect(url_for("auth.second_factor", **_carried_args()))
            except TooManyRequests as error:
                log.warning("second factor refused, too many failures: account %s", user.username)
                form.form_errors.append(str(error.message))
                status, headers = 429, error.extra.get("headers")
            else:
                if enrolled:
                    return _start_login(user)
                log.warning("second factor enrolment failed: account %s", user.username)
                form.form_errors.append(_("The code is not correct. Check that the app shows the account below "
                                          "and enter its current code."))
                status = 401
        form.code.data = ""
    elif request.method == "POST":
        status = 400
    secret = secret or totp.new_secret()
    form.enrolment.data = _enrolment_signer().dumps([user.id, secret])
    uri = totp.provisioning_uri(secret, user.username, current_app.config["TOTP_ISSUER"])
    return render_template("auth/enrol.html", form=form, secret=totp.grouped(secret), qr=_qr_svg(uri),
                           account=user.username, issuer=current_app.config["TOTP_ISSUER"]), status, headers


@bp.post("/logout")
@authenticated
def logout():
    """End this session on the server and in the browser."""
    services.end_session(current_user.session_key, now=now())
    logout_user()
    session.clear()
    flash(_("You have logged out."))
    return redirect(url_for("auth.login"))


@bp.route("/account", methods=["GET", "POST"])
@authenticated
def account():
    """Show the account; change the password or the language."""
    password_form = PasswordForm(prefix="pw")
    # No setting yet: the language the pages are shown in now is the one marked.
    language_form = LanguageForm(prefix="lang", locale=current_user.locale or current_language())
    status = 200
    if request.method == "POST":
        if "pw-new_password" in request.form and password_form.validate():
            try:
                services.change_password(current_user, password_form.current_password.data,
                                         password_form.new_password.data, actor=current_actor(), now=now())
            except DomainError as error:
                db.session.rollback()
                for field, messages in (error.errors or {}).items():
                    getattr(password_form, field).errors = list(messages)
                status = error.status
            else:
                logout_user()
                session.clear()
                flash(_("Password changed. Every session has ended; log in with the new password."))
                return redirect(url_for("auth.login"))
        elif "lang-locale" in request.form and language_form.validate():
            services.set_locale(current_user, language_form.locale.data, actor=current_actor(), now=now())
            session["lang"] = language_form.locale.data
            return redirect(url_for("auth.account"))
        else:
            status = 400
    return render_template("auth/account.html", password_form=password_form, language_form=language_form), status


def _tokens_page(form: TokenForm, status: int = 200, new_tokens=()):
    return render_template("auth/tokens.html", form=form, tokens=services.list_tokens(), at=now(),
                           new_tokens=new_tokens), status


@bp.get("/admin/tokens")
@allowed("administer")
def tokens():
    """API tokens: who holds which, until when, last used; create and revoke. A token just created is
    shown here once."""
    new_tokens = services.take_new_tokens(current_user.session_key, now=now())
    return _tokens_page(TokenForm(days=current_app.config["API_TOKEN_DAYS"]), new_tokens=new_tokens)


@bp.post("/admin/tokens")
@allowed("administer")
def create_token():
    """Issue a token, then show it once on the tokens page (it is stored as a digest)."""
    form = TokenForm()
    if not form.validate():
        return _tokens_page(form, 400)
    try:
        user = services.find_user(form.username.data)
        row, token = services.create_token(user, form.name.data, days=form.days.data, actor=current_actor(),
                                           now=now())
    except DomainError as error:
        db.session.rollback()
        form.form_errors.append(str(error.message))
        for field, messages in (error.errors or {}).items():
            form.form_errors.extend(str(m) for m in messages)
        return _tokens_page(form, error.status)
    services.stash_new_token(row, token, session_key=current_user.session_key, now=now())
    return redirect(url_for("auth.tokens"), code=303)


@bp.post("/admin/tokens/<int:token_id>/revoke")
@allowed("administer")
def revoke_token(token_id):
    """Revoke a token: the next API call with it is refused."""
    token = services.get_token(token_id)
    services.revoke_token(token, actor=current_actor(), now=now())
    flash(_("Token “%(name)s” of %(user)s has been revoked.", name=token.name, user=token.user.display_name))
    return redirect(url_for("auth.tokens"))
