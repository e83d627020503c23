"""The patient's page (/f/<token>): no login, no session; a second factor that is not in the link.

One address does everything, so a plain form works without JavaScript: GET shows the second factor's question,
the questions (with the draft kept so far) or, once answered, the thank-you; POST takes `action` = factor,
draft or answer. The patient stays confirmed for INVITATION_PROOF_MINUTES by a signed proof (services.proof_of)
kept in a cookie limited to the link's own path, repeated in a hidden field of the questions' form for a browser
that refuses the cookie (decisions.md: Follow-up answered online: the patient's page)."""
from __future__ import annotations

import math
import time
from datetime import date

from flask import Blueprint, current_app, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from marshmallow import ValidationError

from qcflow.auth.permissions import public
from qcflow.core.errors import Unprocessable, page_refusal, translate_errors
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


def _hospital() -> str:
    return current_app.config.get("HOSPITAL_NAME") or ""


def _here(token: str, **args) -> str:
    return with_lang(url_for("invitations.page", token=token, **args))


def _guessing(token: str, *, count: bool) -> bool:
    """Whether this link's prefix, or its known client, has had too many links that lead nowhere (then 429).
    `count`: an unknown link is counted; a known one that no longer works is only checked (so a flood's answer
    does not tell whether a dead link exists)."""
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
        response = make_response(render_template("followup/invitation/gone.html", hospital=_hospital(),
                                                 too_many=True), 429)
        response.headers["Retry-After"] = str(link_guesses.window)
        return response
    return render_template("followup/invitation/gone.html", hospital=_hospital(), too_many=False), GONE


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
    return render_template("followup/invitation/factor.html", hospital=_hospital(), invitation=invitation,
                           action=_here(token), error=error, locked=locked), status


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
    return render_template("followup/invitation/questions.html", hospital=_hospital(), action=_here(token),
                           asked=questions.asked(protocol), values=values, errors=errors or {}, proof=proof,
                           saved=saved, satisfaction=_satisfaction()), status


def _thanks_page(invitation):
    return render_template("followup/invitation/thanks.html", hospital=_hospital(),
                           education=education_for(invitation.task.pathway),
                           revisit=bool((invitation.answers or {}).get("revisit_requested")))


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
    if not services.check_factor(invitation, given, now=at):
        db.session.commit()  # the wrong try counts, whatever follows
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
