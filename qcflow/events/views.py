"""Event pages: the report form, the receipt page, the inbox, the case page, my reports."""
from __future__ import annotations

from datetime import datetime, time

import base64

import segno
import sqlalchemy as sa
from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_login import current_user
from marshmallow import ValidationError
from sqlalchemy.exc import IntegrityError

from qcflow.auth.models import User
from qcflow.auth.permissions import allowed, authenticated, can, current_actor, public
from qcflow.auth.ratelimit import rate_limited
from qcflow.auth.queries import active_departments
from qcflow.core.actors import Actor
from qcflow.core.errors import DomainError, NotFound, TooManyRequests, Unprocessable, page_refusal, translate_errors
from qcflow.core.forms import form_data, load_form
from qcflow.core.i18n import current_language, with_lang
from qcflow.core.security import derived_key, sessionless_token_valid
from qcflow.core.time import hospital_tz, now, today
from qcflow.core.web import SESSIONLESS_FORM_MAX_AGE, accepts_files, file_response, session_free, sessionless_csrf
from qcflow.events import queries, services
from qcflow.events.models import (
    ACTION_CONSEQUENCES,
    PUBLIC_ROLES,
    CARE_STAGES,
    CAUSE_DOMAINS,
    EXTERNAL_SEVERITY,
    GRADE_LABELS,
    HARM,
    IMPROVEMENT_TYPES,
    NCC_MERP,
    AdverseEvent,
    EventCategory,
    Mode,
)
from qcflow.events.lessons.views import lesson_step
from qcflow.events.receipts import find_receipt
from qcflow.events.schemas import (
    ActionIn,
    ActionTransitionIn,
    EventListArgs,
    PublicReportIn,
    ReportIn,
    TransitionIn,
)
from qcflow.events.workflow import ACTION_WORKFLOW, EVENT_WORKFLOW, discussion_guard, plain_status, waiting_for
from qcflow.extensions import db
from qcflow.files import services as files
from qcflow.reports import pdf

bp = Blueprint("events", __name__)
bp.add_app_template_global(queries.category_label, "category_label")
bp.add_app_template_global(queries.department_label, "department_label")

TIME_FIELDS = {"occurred_at", "discovered_at"}


def report_choices() -> dict:
    categories = list(db.session.scalars(sa.select(EventCategory).where(EventCategory.is_active.is_(True))
                                         .order_by(EventCategory.sort_order)))
    departments = active_departments()
    return {
        "categories": [c for c in categories if c.parent_code is None],
        "subcategories": [c for c in categories if c.parent_code],
        "departments": departments,
        "grades": GRADE_LABELS,
        "care_stages": CARE_STAGES,
        "harms": HARM,
        "ncc_merp": NCC_MERP,
        "modes": list(Mode),
    }


def draft_values(event) -> dict:
    """A draft's fields as the form's string values (times in hospital local time)."""
    values = {"mode": event.mode, "draft_id": str(event.id), "version": str(event.version)}
    for name in services.REPORT_FIELDS:
        value = getattr(event, name)
        if value is None:
            continue
        if name in TIME_FIELDS:
            value = value.astimezone(hospital_tz()).strftime("%Y-%m-%dT%H:%M")
        elif isinstance(value, bool):
            value = "1" if value else "0"
        values[name] = str(value)
    return values


#: The forms that open no session: their key is checked as a token of the server's, since it seeds a receipt code.
SESSIONLESS_FORMS = ("events.report", "events.report_public")


def form_key() -> str | None:
    """The posted form's one-time key: the form_key the server issued with it (report.js may bring back
    the key of the same form sent before). A post without one is a new report each time: the CSRF token
    is not a key (it is not kept on Back, and it would be a second secret that gives a receipt back)."""
    key = request.form.get("form_key")
    if key and (request.endpoint not in SESSIONLESS_FORMS  # a named form's key only keys its reporter's own forms
                or sessionless_token_valid(derived_key("csrf"), key, max_age=SESSIONLESS_FORM_MAX_AGE)):  # it seeds a code
        return key
    return None


def form_idempotency_key() -> str | None:
    """One report per rendered form: its one-time form key, hashed, is the Idempotency-Key."""
    import hashlib

    token = form_key()
    return "form:" + hashlib.sha256(token.encode()).hexdigest()[:40] if token else None


def save_report(actor):
    """File a new report, or update (and maybe submit) the reporter's own draft."""
    data = load_form(ReportIn())
    mode = data.pop("mode")
    submit = data.pop("submit") and "save_draft" not in request.form
    missing = [name for name in services.REQUIRED_FIELDS if data.get(name) in (None, "")]
    if submit and missing:  # each missing field marked next to itself, not one list at the top
        raise ValidationError({name: ["Missing data for required field."] for name in missing})
    if not submit:
        data.pop("submitted_at", None)  # a draft's submission time is given when it is submitted
    draft_id = request.form.get("draft_id", type=int)
    if not draft_id:
        seed = form_key() if mode == Mode.ANONYMOUS else None
        event, code = services.file_report(data, mode=mode, actor=actor, now=now(), submit=submit,
                                           idempotency_key=form_idempotency_key(), receipt_seed=seed)
        attach_report_files(event, actor)
        return event, code
    draft = queries.load_own_draft(draft_id, actor)
    submitted_at = data.pop("submitted_at", None)
    services.update_draft(draft, data, actor=actor, now=now(), expected_version=request.form.get("version", type=int))
    if submit:
        services.transition_event(draft, "submit", {"submitted_at": submitted_at}, actor=actor, now=now())
    attach_report_files(draft, actor)
    return draft, None


def attach_report_files(event, actor) -> None:
    """Attach the files sent with a report, as its reporter's, in the report's transaction: a file refused
    files no report (the form comes back with the file marked, named: its name on the named form, "photo 2"
    on the anonymous one). An anonymous report takes photos only and keeps no file name; a confidential one
    keeps no file name either (decisions.md, Attachments)."""
    posted = files.read_uploads(request.files.getlist("files"), anonymous=event.is_anonymous)
    for number, upload in enumerate(posted, 1):
        shown = None if event.is_anonymous else files.clean_name(upload.filename)
        try:
            files.attach("adverse_event", event.id, upload, stage=event.state, actor=actor, now=now(),
                         anonymous=event.is_anonymous, from_reporter=True, keep_name=event.mode == Mode.NAMED,
                         images_only=event.is_anonymous, field="files")
        except Unprocessable as refused:
            which = (_("“%(name)s”", name=shown) if shown else _("Photo %(n)d", n=number) if event.is_anonymous
                     else _("File %(n)d", n=number))
            reasons = [str(m) for messages in (refused.errors or {"files": [refused.message]}).values()
                       for m in messages]
            raise Unprocessable(errors={"files": [_("%(file)s was not accepted: %(reason)s", file=which,
                                                    reason=reason) for reason in reasons]}) from refused


def files_chosen() -> bool:
    """Whether the posted form carried files: a form shown again after an error has lost them (a browser
    never fills a file field), so the page says to choose them again."""
    return any(part.filename for part in request.files.getlist("files"))


def family_photos(event) -> list:
    """Attach the photos a patient, a family or an anonymous receipt holder sent: the reporter's, photos only,
    kept to the hour, unnamed. A refusal says in plain words which photo and what to do with a phone (never
    the staff's advice about PDFs and office documents)."""
    added = []
    for number, upload in enumerate(files.read_uploads(request.files.getlist("files"), anonymous=True), 1):
        try:
            added.append(files.attach("adverse_event", event.id, upload, stage=event.state, actor=Actor.anonymous(),
                                      now=now(), anonymous=True, from_reporter=True, images_only=True,
                                      field="files"))
        except Unprocessable as refused:
            raise Unprocessable(errors={"files": [family_photo_refusal(event, upload, number)]}) from refused
    return added


def family_photo_refusal(event, upload, number: int) -> str:
    """Why a photo sent by a patient, a family or a receipt holder was refused, in plain words."""
    limit = current_app.config["ATTACHMENT_MAX_BYTES"]
    if len(upload.data) > limit:
        return _("Photo %(n)d is too big (more than %(limit)s). Take a screenshot of it and add the screenshot "
                 "instead.", n=number, limit=files.megabytes(limit))
    try:
        files.check_limits("adverse_event", event.id, len(upload.data), field="files")
    except Unprocessable:
        return _("Photo %(n)d could not be added: this report already has as many photos as it can take.",
                 n=number)
    return _("Photo %(n)d could not be added. Choose a photo (JPEG or PNG) from your phone's photo album, or "
             "take a screenshot and add that.", n=number)


def receipt_page(event, code, *, again=False, public=False):
    """The receipt of an anonymous report; its script moves the code into the address's fragment, so a
    reload shows it again without the server keeping it (decisions.md). `public`: in plain words, for a
    patient or a family."""
    address = with_lang(url_for("events.report_received", public=1 if public else None))
    return render_template("events/receipt_code.html", reference=event.reference if event else None, code=code,
                           again=again, address=address, public=public)


def resent_form(filed, anonymous: bool):
    """The answer to a form sent a second time (Back, reload, a double tap): the first report, not another.

    An anonymous form gets its receipt back only when it is the same report (its key alone proves nothing:
    anyone who saw the form could send it); any other content, or a report filed without a receipt code,
    gets the same page that names no report and files nothing (decisions.md)."""
    if not anonymous:
        event = db.session.get(AdverseEvent, filed.event_id) if filed and filed.event_id else None
        return redirect(url_for("events.my_reports", filed=(event.reference or event.id) if event else None))
    try:
        data = load_form(ReportIn())
    except ValidationError:
        data = None
    found = services.receipt_of_resent_form(form_key() or "", data) if data is not None else None
    if found is None:
        return render_template("events/report_resent.html"), 409
    return receipt_page(*found, again=True)


def post_report(actor, anonymous: bool):
    """Save the posted form: the page to answer with, or (errors, status) to show the form again."""
    scope = services.idempotency_scope(Mode.ANONYMOUS if anonymous else Mode.NAMED, actor)
    filed = services.filed_with_key(form_idempotency_key(), scope=scope)
    if filed is not None:  # the same form sent twice
        return resent_form(filed, anonymous), None
    try:
        event, code = save_report(actor)
        db.session.flush()  # the same form sent twice at once surfaces here, where it is answered as a resend
        reference = event.reference or event.id
    except (ValidationError, DomainError) as error:
        return None, page_refusal(error)
    except IntegrityError:  # the same form sent twice at once: the other request filed it
        db.session.rollback()
        filed = services.filed_with_key(form_idempotency_key(), scope=scope)
        if filed is None:
            raise  # another constraint: an error, never a report said to be filed that was not
        return resent_form(filed, anonymous), None
    if anonymous:
        return receipt_page(event, code), None
    return redirect(url_for("events.my_reports", filed=reference)), None


@bp.route("/report", methods=["GET", "POST"])
@public
@session_free
@sessionless_csrf
@accepts_files
def report():
    """File an anonymous report. The page opens no session: it is the same for everybody, logged in or not."""
    errors, status, values = {}, 200, {}
    if request.method == "GET" and request.args.get("draft", type=int):  # drafts are named: the logged-in form
        return redirect(url_for("events.report_named", draft=request.args.get("draft", type=int)))
    if request.method == "POST":
        values = request.form
        if request.form.get("mode", Mode.ANONYMOUS) != Mode.ANONYMOUS:
            # This form's token is bound to no session: a named report needs the logged-in form's.
            errors, status = {"mode": [_("Named and confidential reports are filed on the form for logged-in "
                                         "staff: follow the link next to your choice.")]}, 400
        else:
            page, failed = post_report(Actor.anonymous(), anonymous=True)
            if page is not None:
                return page
            errors, status = failed
    return render_template("events/report.html", named=False, errors=errors, values=values,
                           files_dropped=bool(errors) and files_chosen(), **report_choices()), status


@bp.route("/report/named", methods=["GET", "POST"])
@authenticated
@accepts_files
def report_named():
    """File a named or confidential report, or continue a draft, as the logged-in user."""
    actor = current_actor()
    errors, status, values = {}, 200, {"mode": Mode.NAMED}
    if request.method == "GET" and request.args.get("draft", type=int):
        values = draft_values(queries.load_own_draft(request.args.get("draft", type=int), actor))
    if request.method == "POST":
        values = request.form
        if request.form.get("mode") not in (Mode.NAMED, Mode.CONFIDENTIAL):
            errors, status = {"mode": [_("Anonymous reports are filed on the anonymous form, which does not use "
                                         "your login: follow the link next to your choice.")]}, 422
        else:
            page, failed = post_report(actor, anonymous=False)
            if page is not None:
                return page
            errors, status = failed
    return render_template("events/report.html", named=True, errors=errors, values=values,
                           files_dropped=bool(errors) and files_chosen(), **report_choices()), status


@bp.get("/report/received")
@public
@session_free
def report_received():
    """The receipt of an anonymous report, read from the address's fragment (#…), which the browser never
    sends: the same page for everybody, which a reload or a bookmark shows again."""
    return receipt_page(None, None, public=request.args.get("public") == "1")


@bp.route("/receipt", methods=["GET", "POST"])
@public
@session_free
@sessionless_csrf
@accepts_files
def receipt():
    """Read a report's status, questions and feedback with the receipt code; reply anonymously, with photos.

    A refused reply or photo shows the page again with the typed reply and the code kept (nothing of the
    attempt is saved); a wrong code shows the look-up form with the code as typed, to correct it."""
    event, errors, status, sent = None, {}, 200, None
    code = (request.form.get("receipt_code") or "").strip()
    reply = request.form.get("message", "")
    if request.method == "POST":
        try:
            event = find_receipt(code, reply if reply.strip() else None, at=now(),
                                 seen=request.form.get("seen", type=int))
            photos = attach_receipt_photos(event)
            sent = "reply" if reply.strip() else "photos" if photos else None
        except DomainError as failure:
            errors, status = page_refusal(failure)
            event = None if isinstance(failure, (NotFound, TooManyRequests)) else receipt_again(code)
    shown = queries.present_receipt(event) if event else {"messages": [], "feedback": None}
    own_files = files.files_of("adverse_event", event.id, from_reporter=True) if event else []
    return render_template("events/receipt.html", event=event, code=code, errors=errors, sent=sent,
                           reply=reply if errors else "", own_files=own_files,
                           files_dropped=bool(errors) and files_chosen(),
                           thumbnails=receipt_thumbnails(own_files),
                           status_label=plain_status(event.state) if event and event.public_role else None,
                           **shown), status


def receipt_again(code: str):
    """The report of a right code, to show its page again after a refused reply or photo (None if wrong)."""
    try:
        return services.find_by_receipt(code)
    except NotFound:
        return None


def receipt_thumbnails(own_files) -> dict:
    """The reporter's own photos as small inline images (data: URIs of the stored thumbnails): the page
    answers a POST carrying the code, so no address could fetch them; each read is audited."""
    shown = {}
    for f in own_files:
        if f.thumbnail_key:
            data = files.read(f, actor=Actor.anonymous(), now=now(), thumbnail=True)
            kind = "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"
            shown[f.id] = f"data:{kind};base64,{base64.b64encode(data).decode()}"
    return shown


def attach_receipt_photos(event) -> list:
    """The receipt holder's photos sent with a reply (family_photos)."""
    if files_chosen() and not EVENT_WORKFLOW.in_phase(event, "open"):
        raise Unprocessable(errors={"files": [_("The case is closed: no more photos can be added.")]})
    return family_photos(event)


@bp.post("/receipt/files/<int:receipt_file_id>")
@public
@session_free
@sessionless_csrf
def receipt_file(receipt_file_id):
    """Download a file the reporter attached, with the receipt code in the body (never in an address); a wrong
    code is answered by the receipt page, which says so."""
    try:
        event = find_receipt((request.form.get("receipt_code") or "").strip(), at=now())
    except DomainError as failure:
        errors, status = page_refusal(failure)
        return render_template("events/receipt.html", event=None, code=request.form.get("receipt_code") or "",
                               errors=errors, sent=None, reply="", own_files=[], files_dropped=False, thumbnails={},
                               status_label=None, messages=[], feedback=None), status
    attachment = files.load_attachment(receipt_file_id, "adverse_event", event.id)
    if not attachment.from_reporter:  # staff files are never the receipt holder's
        raise NotFound()
    return file_response(files.read(attachment, actor=Actor.anonymous(), now=now()), attachment)


@bp.get("/events")
@allowed("department_cases")
def inbox():
    """The case inbox: counts by state, overdue badges, filters, newest first."""
    actor, at = current_actor(), now()
    try:
        args = EventListArgs().load(form_data(request.args, EventListArgs()))
    except ValidationError as error:
        return render_template("events/inbox.html", items=[], counts={"by_state": {}, "overdue": 0},
                               errors=translate_errors(error.messages), args=request.args, now=at,
                               **report_choices()), 422
    args.pop("lang", None)
    items, next_cursor = queries.list_events(actor, now=at, **args)
    overdue = queries.overdue_ids([e.id for e in items], at)
    return render_template("events/inbox.html", items=items, next_cursor=next_cursor, overdue=overdue,
                           counts=queries.state_counts(actor, at), errors={}, args=request.args, now=at,
                           **report_choices())


def review_request(event, actor) -> str | None:
    """Where to request the case-review discussion a case needs before it closes (prefilled), for who may."""
    if can(actor, "mdt") and discussion_guard(event):
        return url_for("mdt.new", kind="case_review", event_id=event.reference or event.id)
    return None


@bp.get("/events/<int:event_id>")
@allowed("department_cases")
def detail(event_id):
    """One case: facts, timeline, messages, corrective actions and the steps available now."""
    actor, at = current_actor(), now()
    event = queries.load_event(event_id, actor)
    reporter = None
    if request.args.get("show_reporter") and can(actor, "handle_cases"):
        reporter = services.reporter_identity(event, actor=actor, now=at)
    return detail_page(event, actor, at, reporter=reporter)


@bp.post("/events/<int:event_id>/contact")
@allowed("handle_cases")
def show_contact(event_id):
    """The case page with the contact a patient or a family left: a POST with the form's CSRF token, since the
    read is recorded (a link or an image elsewhere cannot make the quality office's browser record one)."""
    actor, at = current_actor(), now()
    event = queries.load_event(event_id, actor)
    contact = services.public_contact(event, actor=actor, now=at) if event.public_role else None
    return detail_page(event, actor, at, contact=contact)


def detail_page(event, actor, at, *, reporter=None, contact=None):
    transitions = EVENT_WORKFLOW.available(event, actor)
    return render_template(
        "events/detail.html", event=event, view=queries.present(event, actor), reporter=reporter, contact=contact,
        transitions=transitions, waiting={t.action: waiting_for(event, t.action) for t in transitions},
        consequences=ACTION_CONSEQUENCES, timeline=queries.timeline(event),
        messages=queries.dialogue(event) if can(actor, "handle_cases") else [], action_transitions=lambda a: ACTION_WORKFLOW.available(a, actor),
        overdue=bool(queries.overdue_ids([event.id], at)), severities=EXTERNAL_SEVERITY, cause_domains=CAUSE_DOMAINS,
        improvement_types=IMPROVEMENT_TYPES, duplicate_reference=queries.reference_of(event.duplicate_of_id),
        lesson_link=lesson_step(event, actor), review_request=review_request(event, actor), errors={},
        **report_choices(), **case_files(event, actor),
    )


def case_files(event, actor) -> dict:
    """The case page's files: the case's own, those of each corrective action, who added them, who may add."""
    shown = files.files_of("adverse_event", event.id)
    ids = {f.uploaded_by_user_id for f in shown if f.uploaded_by_user_id and not f.from_reporter}
    uploaders = {u.id: u for u in db.session.scalars(sa.select(User).where(User.id.in_(ids)))} if ids else {}
    return {"attachments": [f for f in shown if f.action_id is None],
            "action_files": {a.id: [f for f in shown if f.action_id == a.id] for a in event.actions},
            "uploaders": uploaders, "file_names": queries.file_names(event, shown, actor),
            "may_add_files": files.may_act_on_case(event, actor) and files.case_takes_files(event),
            "may_remove_file": lambda f: files.case_takes_files(event) and files.may_remove(f, actor)}


@bp.get("/events/<int:event_id>/case.pdf")
@allowed("department_cases")
@rate_limited("pdf")
def case_pdf(event_id):
    """The case as PDF: facts, timeline, corrective actions and the list of its files (with SHA-256)."""
    actor = current_actor()
    event = queries.load_event(event_id, actor)
    context = case_files(event, actor)
    data = pdf.render_template_pdf(
        "reports/case.html", event=event, view=queries.present(event, actor), timeline=queries.timeline(event),
        files=files.files_of("adverse_event", event.id), uploaders=context["uploaders"],
        file_names=context["file_names"],
        actions={a.id: a for a in event.actions}, printed_at=now(),
        messages=queries.dialogue(event) if can(actor, "handle_cases") else [])
    return pdf.pdf_response(data, f"case-{event.reference or event.id}.pdf")


@bp.post("/events/<int:event_id>/transitions")
@authenticated
def transition(event_id):
    """Take a workflow step from the case page."""
    actor = current_actor()
    event = queries.load_event(event_id, actor)
    data = load_form(TransitionIn())
    action, version = data.pop("action"), data.pop("version")
    services.transition_event(event, action, data, actor=actor, now=now(), expected_version=version)
    if event.reporter_user_id == actor.user_id and not can(actor, "handle_cases"):
        return redirect(url_for("events.my_reports"))
    return redirect(url_for("events.detail", event_id=event.id))


@bp.post("/events/<int:event_id>/actions")
@allowed("handle_cases")
def add_action(event_id):
    """Add a corrective action from the case page."""
    actor = current_actor()
    data = load_form(ActionIn())
    services.add_action(queries.load_event(event_id, actor), data, actor=actor, now=now())
    return redirect(url_for("events.detail", event_id=event_id) + "#actions")


@bp.post("/events/<int:event_id>/actions/<int:action_id>/transitions")
@authenticated
def transition_action(event_id, action_id):
    """Complete, verify, reopen or cancel a corrective action."""
    actor = current_actor()
    action = queries.load_action(event_id, action_id, actor)
    data = load_form(ActionTransitionIn())
    name, version = data.pop("action"), data.pop("version")
    services.transition_action(action, name, data, actor=actor, now=now(), expected_version=version)
    return redirect(url_for("events.detail", event_id=event_id) + "#actions")


@bp.post("/events/<int:event_id>/messages")
@allowed("handle_cases")
def post_message(event_id):
    """Send a question to the reporter from the case page."""
    actor = current_actor()
    services.add_message(queries.load_event(event_id, actor), "to_reporter", request.form.get("message", ""),
                         actor=actor, now=now())
    return redirect(url_for("events.detail", event_id=event_id) + "#messages")


@bp.get("/my/reports")
@authenticated
def my_reports():
    """My named and confidential reports: state, questions, feedback."""
    reports = queries.my_reports(current_user.id)
    shown = {e.id: queries.present_receipt(e) for e in reports}
    return render_template("events/my_reports.html", reports=reports, shown=shown, consequences=ACTION_CONSEQUENCES,
                           transitions={e.id: EVENT_WORKFLOW.available(e, current_actor()) for e in reports},
                           filed=request.args.get("filed"), categories=report_choices()["categories"],
                           own_files={e.id: files.files_of("adverse_event", e.id, from_reporter=True) for e in reports})



# Reports from patients and families: the public form a ward poster's QR code opens, and the posters.

#: What the public form says under a field the schema refused, in plain words (never a code or a format).
PUBLIC_FIELD_ERRORS = {
    "public_role": _l("Please tell us who you are."),
    "department_id": _l("Choose a ward or department from the list."),
    "occurred_on": _l("Give the day it happened (year, month, day)."),
    "occurred_time": _l("Give the time as hours and minutes, or leave it empty."),
    "harm": _l("Choose an answer from the list."),
    "wants_feedback": _l("Choose an answer from the list."),
}


def public_form_errors(error: ValidationError) -> dict:
    """The schema's refusals as the public form shows them: plain words, each next to its field."""
    db.session.rollback()
    shown = {}
    for name, messages in error.messages.items():
        if name == "description" and any("length" in str(m) for m in messages):
            shown[name] = [_("Tell us what happened in 5 to 3000 characters.")]
        elif name in PUBLIC_FIELD_ERRORS and not any("maximum length" in str(m) for m in messages):
            shown[name] = [str(PUBLIC_FIELD_ERRORS[name])]
        else:
            shown[name] = translate_errors(messages)
    return shown


def public_report_data() -> dict:
    """The posted public form as the service takes it: the day and the optional time are when it happened
    (hospital time; a day without a time is that day's start), "I don't know" is no harm recorded."""
    data = load_form(PublicReportIn())
    day, at = data.pop("occurred_on"), data.pop("occurred_time", None)
    data["occurred_at"] = datetime.combine(day, at or time(0), tzinfo=hospital_tz()).astimezone(
        now().tzinfo)
    if data.get("harm") == "unknown":
        data["harm"] = None
    return data


def resent_public_form():
    """A public form sent a second time: its receipt again when it is the same report, else the page that
    names no report (as resent_form does for the staff form)."""
    try:
        data = public_report_data()
    except ValidationError:
        data = None
    found = services.receipt_of_resent_public_form(form_key() or "", data, now()) if data is not None else None
    if found is None:
        return render_template("events/report_resent.html"), 409
    return receipt_page(*found, again=True, public=True)


def post_public_report():
    """File the posted public form: the page to answer with, or (errors, status) to show the form again."""
    if form_key() is None:
        # The form is always served with its one-time key: without it a post is not tied to one form, and one
        # CSRF token could file report after report (decisions.md). Sent back filled in, with a fresh key.
        return None, ({"form": [_("This form was not sent as it was opened (its one-time key is missing or "
                                  "too old). Your answers are kept below: check them and send it again.")]}, 400)
    scope = services.idempotency_scope(Mode.ANONYMOUS, Actor.anonymous())
    key = form_idempotency_key()
    if services.filed_with_key(key, scope=scope) is not None:  # the same form sent twice
        return resent_public_form(), None
    try:
        event, code = services.file_public_report(public_report_data(), now=now(), receipt_seed=form_key(),
                                                  idempotency_key=key)
        family_photos(event)  # in the report's transaction: a refused photo files no report
        db.session.flush()  # the same form sent twice at once surfaces here
    except ValidationError as error:
        return None, (public_form_errors(error), 422)
    except DomainError as error:
        return None, page_refusal(error)
    except IntegrityError:
        db.session.rollback()
        if services.filed_with_key(key, scope=scope) is None:
            raise
        return resent_public_form(), None
    return receipt_page(event, code, public=True), None


@bp.route("/report/patient", methods=["GET", "POST"])
@public
@session_free
@sessionless_csrf
@accepts_files
def report_public():
    """A patient or a family tells the hospital about a safety problem, in plain words, without logging in.

    Reached from a ward poster's QR code (`?d=<department code>` preselects the ward; an unknown code
    preselects nothing). Like /report it opens no session and answers everybody alike.
    """
    departments = services.patient_departments()
    errors, status, values = {}, 200, {"wants_feedback": "1"}
    if request.method == "GET":
        code = (request.args.get("d") or "").strip().upper()
        chosen = next((d for d in departments if d.code.upper() == code), None) if code else None
        if chosen is not None:
            values["department_id"] = str(chosen.id)
    else:
        values = request.form
        page, failed = post_public_report()
        if page is not None:
            return page
        errors, status = failed
    return render_template("events/report_public.html", errors=errors, values=values, departments=departments,
                           roles=PUBLIC_ROLES, harms=(*HARM, "unknown"), today=today(now()).isoformat(),
                           files_dropped=bool(errors) and files_chosen()), status


def public_report_link(department, lang: str | None = None) -> str:
    """The public form's address for a department, as its poster's QR code carries it: under
    PUBLIC_REPORT_LINK_BASE (the address patients reach qcflow at), else this request's host. `lang`: the
    language the form opens in (an English poster's code opens the English form)."""
    base = (current_app.config.get("PUBLIC_REPORT_LINK_BASE") or request.host_url).rstrip("/")
    return f"{base}{url_for('events.report_public')}?d={department.code}" + (f"&lang={lang}" if lang else "")


@bp.get("/events/posters")
@allowed("handle_cases")
def posters():
    """The wards' posters: one printable PDF per department, with the QR code of its public form."""
    return render_template("events/posters.html", departments=services.patient_departments(),
                           link=public_report_link)


@bp.get("/events/posters/<code>.pdf")
@allowed("handle_cases")
@rate_limited("pdf")
def poster(code):
    """A department's ward poster (A4 PDF): the hospital's and the department's names, a QR code of the
    department's public form and how it works, in plain words."""
    department = next((d for d in services.patient_departments() if d.code == code), None)
    if department is None:
        raise NotFound()
    link = public_report_link(department, lang="en" if current_language() == "en" else None)
    qr = segno.make(link, error="m").svg_data_uri(scale=10, border=2)
    data = pdf.render_template_pdf("events/poster.html", department=department, link=link, qr=qr,
                                   hospital=current_app.config.get("HOSPITAL_NAME") or "", printed_at=now())
    return pdf.pdf_response(data, f"poster-{department.code}.pdf")
