"""The patient's page (/f/<token>): no login, no session; a second factor that is not in the link.

One address does everything, so a plain form works without JavaScript: GET shows the second factor's question,
the questions (with the draft kept so far) or, once answered, the thank-you; POST takes `action` = factor,
draft or answer. The patient stays confirmed for INVITATION_PROOF_MINUTES by a signed proof (services.proof_of)
kept in a cookie limited to the link's own path, repeated in a hidden field of the questions' form for a browser
that refuses the cookie (decisions.md: Follow-up answered online: the patient's page)."""
from __future__ import annotations

import logging
import math
import time
from datetime import date

from flask import Blueprint, current_app, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from marshmallow import ValidationError
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException

from qcflow.auth.permissions import public
from qcflow.core.errors import DomainError, Unprocessable, error_response, page_refusal, translate_errors
from qcflow.core.forms import form_data
from qcflow.core.i18n import with_lang
from qcflow.core.security import MemoryRateLimiter
from qcflow.core.time import now
from qcflow.core.web import known_client_address, session_free, sessionless_csrf
from qcflow.extensions import db
from qcflow.followup.invitations import questions, services
from qcflow.followup.invitations.education import education_for
from qcflow.followup.invitations.workflow import InvitationState
from qcflow.followup.models import Protocol

log = logging.getLogger(__name__)

bp = Blueprint("invitations", __name__)

#: Links that lead nowhere, counted per link prefix (whoever sends them) and per known client address, in memory
#: only (as wrong receipt codes are: qcflow.events.receipts).
link_guesses = MemoryRateLimiter()
link_clients = MemoryRateLimiter()
#: Characters of a token that name its guessing bucket: 64**4 buckets.
LINK_PREFIX_CHARS = 4
#: The proof cookie; its path is the link's own, so it goes nowhere else on the site.
PROOF_COOKIE = "fu_proof"
#: One status for every link that does not lead to questions: nothing tells an unknown link from a used one.
GONE = 404


def _here(token: str, **args) -> str:
    return with_lang(url_for("invitations.page", token=token, **args))


@bp.context_processor
def _hospital():
    """What every patient's page shows: the hospital's name on top, and the follow-up telephone number where the
    pages say to call the department (or None)."""
    config = current_app.config
    return {"hospital": config.get("HOSPITAL_NAME") or "", "contact_phone": config.get("FOLLOWUP_CONTACT_PHONE") or None}


def _gone_page(status: int, *, too_many: bool = False):
    """The one page of every link that does not lead to the questions (same text for all)."""
    return make_response(render_template("followup/invitation/gone.html", too_many=too_many), status)


def _guessing(token: str, *, count: bool) -> bool:
    """Whether this link's prefix, or its known client, has had too many links that lead nowhere (then 429).

    `count`: only an unknown link is counted. A known link that no longer works (used, expired, closed) is checked
    against the buckets but never adds to them: opening the same dead link again and again draws the gone page
    (404) each time and never a 429, while unknown links draw a 429 after INVITATION_UNKNOWN_LINKS_PER_PREFIX_10_MIN
    per prefix (or per known client). That is fine: a dead link opens nothing, whoever repeats it learns only that
    it does not work (the same page as an unknown link), and guessing a live link among 256-bit tokens is hopeless
    however fast; the flood itself is nginx's to limit per address (limit_req on /f/, docs/deploy.md). The buckets
    here only slow a guesser down where nginx cannot tell clients apart."""
    config, at = current_app.config, time.time()
    prefix, address = (token or "")[:LINK_PREFIX_CHARS], known_client_address()
    if link_guesses.exceeded(prefix, config["INVITATION_UNKNOWN_LINKS_PER_PREFIX_10_MIN"], at) or (
            address is not None
            and link_clients.exceeded(address, config["INVITATION_UNKNOWN_LINKS_PER_CLIENT_10_MIN"], at)):
        return True
    if count:
        link_guesses.add(prefix, at)
        if address is not None:
            link_clients.add(address, at)
    return False


def _gone(token: str, invitation):
    if _guessing(token, count=invitation is None):
        response = _gone_page(429, too_many=True)
        response.headers["Retry-After"] = str(link_guesses.window)
        return response
    return _gone_page(GONE)


#: The patient's words for a failure of this page, by status (the staff's error page is not theirs).
def _trouble_message(status: int) -> str:
    if status == 400:
        return _("The page was open for a long time and the form has expired. Open the page again and send once "
                 "more; answers you saved are kept.")
    if status == 409:
        return _("Your answer arrived twice (the button was pressed twice). Open the page again to see where you "
                 "are.")
    if status == 413:
        return _("Too much text was sent at once. Open the page again and shorten your note.")
    if status == 429:
        return _("Too many tries. Wait a few minutes, then open the page again.")
    if status >= 500:
        return _("Something went wrong on our side and your answers were not sent this time. Wait a moment, then "
                 "open the page again and send once more.")
    return _("This could not be done. Open the page again and try once more.")


def _status_of(error: Exception) -> int:
    if isinstance(error, DomainError):
        return error.status
    if isinstance(error, HTTPException):
        return error.code or 500
    if isinstance(error, (StaleDataError, IntegrityError)):
        return 409
    if isinstance(error, (ValidationError, DataError, OverflowError)):
        return 422
    return 500


@bp.errorhandler(Exception)
def _trouble(error: Exception):
    """Every failure on the patient's page, whatever raised it (the session-free CSRF check before the view, a
    double tap that loses the race for the invitation's version, a limit, a bug), answered on the patient's own
    page: the hospital, a kind message, and a link back to the same page while the link still leads somewhere.

    A double tap on "send" whose first tap went through shows the thank-you: the invitation is read again and shown
    as it now is, for the browser that holds the proof."""
    status = _status_of(error)
    if status >= 500:
        log.exception("the patient's page failed")
    headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"} \
        if isinstance(error, HTTPException) else dict(getattr(error, "extra", {}).get("headers") or {})
    if status == 429 and "Retry-After" not in headers:
        headers["Retry-After"] = str(link_guesses.window)
    back = None
    try:
        db.session.rollback()
        token = (request.view_args or {}).get("token") or ""
        invitation = services.find(token)
        if invitation is not None and invitation.state == InvitationState.ANSWERED \
                and _proof_source(invitation) is not None:
            return _thanks_page(invitation)
        if services.usable(invitation, now()):
            back = _here(token)
        elif status < 500:  # the link leads nowhere now: the gone page, with the failure's own status (the same
            # for every link, so it tells nothing about this one)
            response = _gone_page(status)
            response.headers.update(headers)
            return response
    except Exception:  # the database itself may be what failed: the page below, without the link back
        log.exception("reading the invitation again after a failure failed")
    try:
        response = make_response(render_template("followup/invitation/trouble.html", status=status,
                                                 message=_trouble_message(status), back=back), status)
    except Exception:  # even the patient's page failed: the site's last resort, never a bare 500
        log.exception("the patient's error page failed")
        return error_response(status, "error", _trouble_message(status), headers=headers)
    response.headers.update(headers)
    return response


def _proof_source(invitation) -> str | None:
    """Where this request's proof of the second factor comes from: "cookie", "form" or None."""
    if services.has_proof(invitation, request.cookies.get(PROOF_COOKIE)):
        return "cookie"
    if request.method == "POST" and services.has_proof(invitation, request.form.get("proof")):
        return "form"
    return None


def _with_proof(response, invitation, token: str):
    response.set_cookie(PROOF_COOKIE, services.proof_of(invitation), path=f"/f/{token}", httponly=True,
                        samesite="Strict", secure=request.is_secure,
                        max_age=current_app.config["INVITATION_PROOF_MINUTES"] * 60)
    return response


def _lock_minutes(invitation, at) -> int:
    return max(1, math.ceil((invitation.locked_until - at).total_seconds() / 60))


def _factor_page(token, invitation, at, *, error=None, status=200):
    locked = _lock_minutes(invitation, at) if services.is_locked(invitation, at) else None
    return render_template("followup/invitation/factor.html", invitation=invitation, action=_here(token),
                           error=error, locked=locked), status


def _form_values(stored: dict) -> dict:
    """Stored answers (draft) as the form's string values."""
    values = {}
    for name, value in stored.items():
        if isinstance(value, bool):
            values[name] = "1" if value else "0"
        elif isinstance(value, date):
            values[name] = value.isoformat()
        elif value is not None:
            values[name] = str(value)
    return values


def _questions_page(token, invitation, *, values, errors=None, status=200, proof=None, saved=False):
    protocol = db.session.get(Protocol, invitation.task.protocol_id)
    return render_template("followup/invitation/questions.html", action=_here(token),
                           asked=questions.asked(protocol), values=values, errors=errors or {}, proof=proof,
                           saved=saved, satisfaction=_satisfaction()), status


def _thanks_page(invitation):
    answers = invitation.answers or {}
    return render_template("followup/invitation/thanks.html", education=education_for(invitation.task.pathway),
                           revisit=bool(answers.get("revisit_requested")) and not questions.passed_away(answers),
                           passed_away=questions.passed_away(answers))


#: The five answers of the satisfaction question, in words (1 = very dissatisfied … 5 = very satisfied).
def _satisfaction():
    return [(5, _("Very satisfied")), (4, _("Satisfied")), (3, _("Neither satisfied nor dissatisfied")),
            (2, _("Dissatisfied")), (1, _("Very dissatisfied"))]


def _load_answers() -> dict:
    schema = questions.AnswersIn()
    return schema.load(form_data(request.form, schema))


@bp.route("/f/<token>", methods=["GET", "POST"])
@public
@session_free
@sessionless_csrf
def page(token):
    """The patient's page of one invitation: the second factor, the questions, the thank-you."""
    at = now()
    invitation = services.find(token)
    proof = _proof_source(invitation) if invitation is not None else None
    if invitation is not None and invitation.state == InvitationState.ANSWERED and proof:
        return _thanks_page(invitation)  # a reload after answering, in the browser that answered
    if not services.usable(invitation, at):
        return _gone(token, invitation)
    action = request.form.get("action") if request.method == "POST" else None
    if action == "factor":
        return _post_factor(token, invitation, at)
    if proof is None:
        if action in ("draft", "answer"):  # the proof ran out while the page was open: confirm again
            return _factor_page(token, invitation, at, status=403,
                                error=_("Please confirm who you are again. Answers you saved are kept."))
        return _factor_page(token, invitation, at)
    if action in ("draft", "answer"):
        return _post_answers(token, invitation, at, action, proof)
    values = _form_values(services.saved_answers(invitation.draft))
    return _questions_page(token, invitation, values=values, saved=request.args.get("saved") == "1")


def _post_factor(token, invitation, at):
    if services.is_locked(invitation, at):
        return _factor_page(token, invitation, at, status=429)
    given = (request.form.get("factor") or "")[:20]
    try:
        right = services.check_factor(invitation, given, now=at)
    except Unprocessable as error:  # a typing slip (not four digits…): the field's error, not a try
        errors, status = page_refusal(error)
        return _factor_page(token, invitation, at, status=status, error=" ".join(errors.get("factor") or
                                                                                 errors.get("form") or []))
    if not right:
        db.session.commit()  # the wrong try counts, whatever follows
        if not services.usable(invitation, at):  # too many wrong tries in all: the link is closed for good
            return _gone(token, invitation)
        if services.is_locked(invitation, at):
            return _factor_page(token, invitation, at, status=429)
        return _factor_page(token, invitation, at, status=422,
                            error=_("This does not match our record. Check it and try again."))
    db.session.commit()
    # Shown at once (not redirected): a browser that refuses the cookie still answers, with the hidden proof.
    page, status = _questions_page(token, invitation, values=_form_values(services.saved_answers(invitation.draft)),
                                   proof=services.proof_of(invitation))
    return _with_proof(make_response(page, status), invitation, token)


def _post_answers(token, invitation, at, action, proof):
    hidden = services.proof_of(invitation) if proof == "form" else None
    try:
        data = _load_answers()
    except ValidationError as error:
        return _questions_page(token, invitation, values=request.form, errors=translate_errors(error.messages),
                               status=422, proof=hidden)
    if action == "draft":
        services.save_draft(invitation, data, now=at)
        if request.form.get("autosave"):  # invitation.js keeps the draft as the patient writes
            return "", 204
        if hidden:
            return _questions_page(token, invitation, values=request.form, proof=hidden, saved=True)
        return redirect(_here(token, saved="1"), 303)
    try:
        services.answer(invitation, data, now=at)
    except Unprocessable as error:
        errors, status = page_refusal(error)
        services.save_draft(invitation, data, now=at)  # what was written is kept for a reload
        return _questions_page(token, invitation, values=request.form, errors=errors, status=status, proof=hidden)
    if hidden:  # no cookie: the thank-you now (a reload asks to send the form again, which shows it again)
        db.session.commit()
        return _thanks_page(invitation)
    return redirect(_here(token), 303)
