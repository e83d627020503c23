"""The permission matrix, deny-by-default access declarations and the one department rule.

`PERMISSIONS` says which roles may do what (DESIGN §3); `DISCUSSION_PERMISSIONS` says what each
relation to an MDT discussion allows. Routes declare who may use them with `public`,
`authenticated`, `allowed(capability)` or `roles_required(...)`; pages ask `can(...)`; workflow
tables take their role sets from here. `enforce_access` runs before every request; a route with
no declaration is refused (and a test walks `app.url_map` to catch it earlier).

`department_for` is the one answer to "which department may this actor read": every list filter,
indicator, analysis, export and report asks it.
"""
from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from flask import current_app, g, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from qcflow.auth.models import Department, Role
from qcflow.core.actors import Actor
from qcflow.core.errors import Forbidden, NotAuthenticated, NotFound, Unprocessable, is_api_request
from qcflow.extensions import db

#: Endpoints registered by libraries, not by us.
LIBRARY_ENDPOINTS = {"static": "public", "api-docs.openapi_json": "public"}

R = Role
#: Who may do what, by role (DESIGN §3). Objects add relations (reporter, holder of a call,
#: organiser of a discussion …) in their workflow tables and services; department scoping is
#: `scoped`/`get_scoped_or_404`/`department_for` below.
PERMISSIONS: dict[str, frozenset[str]] = {
    #: Keep a list of one's own named reports (everyone files, also without login).
    "own_reports": frozenset({R.CLINICIAN, R.NURSE, R.DEPT_HEAD, R.QUALITY}),
    #: Read the cases of one's department (reporter de-identified), download exports and analyses.
    "department_cases": frozenset({R.DEPT_HEAD, R.QUALITY}),
    #: Triage, investigate, close and reopen cases; prompts; confidential reporters. Write the lessons of closed
    #: cases and review and publish another member's lessons (events.lessons).
    "handle_cases": frozenset({R.QUALITY}),
    #: Read and search the published lessons of the case-learning library (典型案例库): all staff who file reports.
    "lessons": frozenset({R.CLINICIAN, R.NURSE, R.DEPT_HEAD, R.QUALITY}),
    #: Review the possible adverse events of one's department (follow-up findings, trigger firings): confirm
    #: one into a confidential report or dismiss it. The quality office reviews every department's.
    "review_possible_events": frozenset({R.DEPT_HEAD, R.QUALITY}),
    #: Read the triggers of the automatic extraction; tune them and switch them off.
    "triggers": frozenset({R.ADMIN, R.QUALITY}),
    #: Work the follow-up queue of one's department.
    "followup_queue": frozenset({R.NURSE, R.DEPT_HEAD, R.QUALITY}),
    #: Reassign and reschedule others' calls, pause or withdraw plans, enrol patients.
    "supervise_followup": frozenset({R.DEPT_HEAD, R.QUALITY}),
    #: Request, read and take part in MDT discussions (what each may do in one: DISCUSSION_PERMISSIONS).
    "mdt": frozenset({R.CLINICIAN, R.DEPT_HEAD, R.QUALITY}),
    #: Keep the list of MDT clinics (多学科门诊): add, change and close them.
    "mdt_clinics": frozenset({R.QUALITY}),
    #: Book, perform and cancel operations of one's department.
    "operations": frozenset({R.CLINICIAN, R.DEPT_HEAD, R.QUALITY}),
    #: Find a patient by medical record number (masked phone and ID number).
    "patients": frozenset({R.CLINICIAN, R.NURSE, R.DEPT_HEAD, R.QUALITY}),
    #: Read the follow-up protocols.
    "protocols": frozenset({R.ADMIN, R.QUALITY, R.DEPT_HEAD, R.NURSE}),
    #: Read indicators (own department; the quality office all).
    "indicators": frozenset({R.NURSE, R.DEPT_HEAD, R.QUALITY}),
    #: Read the indicator targets.
    "targets": frozenset({R.ADMIN, R.QUALITY}),
    #: Read the catalogue of every indicator of the plan (how each gets its value, who reports it).
    "indicator_catalogue": frozenset({R.ADMIN, R.QUALITY, R.DEPT_HEAD}),
    #: Choose how an indicator gets its value, why it does not apply, and which department reports it.
    "set_up_indicators": frozenset({R.ADMIN, R.QUALITY}),
    #: Enter a month's value of an indicator one's department reports (the quality office: any department's),
    #: and keep one's department's own key indicators and their yearly targets.
    "report_indicators": frozenset({R.DEPT_HEAD, R.QUALITY}),
    #: Approve, return and re-open reported monthly values; see which department still owes which month.
    "approve_indicators": frozenset({R.QUALITY}),
    #: Generate, archive and download the annual and quarterly indicator forms for the plan.
    "indicator_forms": frozenset({R.QUALITY}),
    #: Event analysis, under-reporting, CSV/XLSX exports (own department; the quality office all).
    "reports": frozenset({R.DEPT_HEAD, R.QUALITY}),
    #: The hospital's monthly bulletin.
    "bulletin": frozenset({R.QUALITY}),
    #: Push HIS facts and reference data through the intake API, and ask whether an operation may be booked.
    #: The HIS's own account holds the interface role, which may do nothing else.
    "his_intake": frozenset({R.ADMIN, R.QUALITY, R.INTERFACE}),
    #: Hospital: see what was sent to the regional centre and its answers; queue a month again or send now;
    #: read where the hospital stands among its peers (the others unnamed).
    "region_submissions": frozenset({R.QUALITY}),
    #: Centre: completeness, comparisons across hospitals, a hospital's profile, the province table and the
    #: six-monthly evaluation.
    "centre_compare": frozenset({R.CENTRE}),
    #: Centre: register hospitals and their public keys, change or retire them.
    "centre_hospitals": frozenset({R.ADMIN}),
    #: Users, departments, catalogues, protocols, targets.
    "administer": frozenset({R.ADMIN}),
    #: Date a fact recorded late (a report, a signature, a call) more than BACKDATE_MAX_DAYS back.
    "backdate_freely": frozenset({R.QUALITY}),
    #: See every department's objects.
    "all_departments": frozenset({R.QUALITY}),
}
ALL_DEPARTMENTS_ROLES = PERMISSIONS["all_departments"]

#: What each relation to an MDT discussion allows (docs/decisions.md, "Who may act on a discussion").
#: organiser: a clinician or head of the organising department, or the quality office;
#: organising_head: a head of the organising department; chair: the appointed chair;
#: participant: anyone on the participant list. "quality" is the role itself.
DISCUSSION_PERMISSIONS: dict[str, frozenset[str]] = {
    "read": frozenset({"organiser", "chair", "participant"}),
    #: Question, summary, conclusion and decision.
    "record": frozenset({"organiser", "chair"}),
    #: Participants, the chair, everyone's attendance, cancelling.
    "manage": frozenset({"organiser"}),
    #: Scheduling the meeting and recording that it was held.
    "conduct": frozenset({"organiser", "chair"}),
    "sign": frozenset({"chair", "organising_head", "quality"}),
    "confirm_own_attendance": frozenset({"participant"}),
    "add_addendum": frozenset({"organiser", "chair", "participant"}),
}


@dataclass(frozen=True)
class Access:
    public: bool = False
    roles: frozenset[str] = frozenset()

    def describe(self) -> str:
        return "public" if self.public else ("roles: " + ", ".join(sorted(self.roles)) if self.roles else "authenticated")


def _declare(access: Access):
    def decorator(view):
        view.qc_access = access
        return view

    return decorator


public = _declare(Access(public=True))
authenticated = _declare(Access())


def roles_required(*roles: str):
    unknown = set(roles) - set(Role)
    if unknown or not roles:
        raise ValueError(f"unknown roles {unknown}")
    return _declare(Access(roles=frozenset(roles)))


def allowed(capability: str):
    """Declare a route open to the roles of one capability of the matrix."""
    return roles_required(*PERMISSIONS[capability])


def can(subject, capability: str) -> bool:
    """Whether a user or an actor holds a role of `capability` (pages show only what they may do)."""
    roles = subject.roles if isinstance(subject, Actor) else (subject.role_names if subject.is_authenticated else ())
    return bool(set(roles) & PERMISSIONS[capability])


def access_of(endpoint: str | None) -> Access | None:
    """The declaration of an endpoint's view (function or MethodView method)."""
    if endpoint in LIBRARY_ENDPOINTS:
        return Access(public=True)
    view = current_app.view_functions.get(endpoint) if endpoint else None
    if view is None:
        return None
    declared = getattr(view, "qc_access", None)
    view_class = getattr(view, "view_class", None)
    if declared is None and view_class is not None:
        method = getattr(view_class, request.method.lower(), None) if request else None
        declared = getattr(method, "qc_access", None) or getattr(view_class, "qc_access", None)
    return declared


def undeclared_endpoints(app) -> list[str]:
    """Every (endpoint, method) of the app that has no access declaration."""
    missing = []
    for rule in app.url_map.iter_rules():
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            with app.test_request_context(rule.rule, method=method):
                if access_of(rule.endpoint) is None:
                    missing.append(f"{method} {rule.rule} ({rule.endpoint})")
    return missing


def _chosen_language() -> dict:
    """The language asked for with ?lang=, carried to the login page (no session remembers it yet)."""
    from qcflow.core.i18n import chosen_language

    return {"lang": chosen_language()} if chosen_language() else {}


def enforce_access():
    """before_request: 404 for unknown routes is Flask's; everything else must be declared."""
    if request.endpoint is None:
        return None
    if request.headers.get("Authorization", "").startswith("Bearer "):
        if not is_api_request():
            # Tokens are for machine clients of the JSON API: a page never opens with one (and a
            # token holder never skips the second factor of the web login).
            raise NotAuthenticated(_("API tokens work only for the JSON API under /api/. To use the pages, "
                                     "log in with your user name and password."))
        if not current_user.is_authenticated:
            # A wrong token is an error, even on a public route: never a silent fall-back to anonymous.
            raise NotAuthenticated(g.get("bearer_refusal") or _("The API token is not valid."))
    access = access_of(request.endpoint)
    if access is None:
        current_app.logger.error("route %s has no access declaration; refused", request.endpoint)
        raise Forbidden()
    if access.public:
        return None
    if not current_user.is_authenticated:
        if is_api_request():  # a client program: it sends a token, a browser script its session
            raise NotAuthenticated(_("Send an API token (header “Authorization: Bearer <token>”), or log in first."))
        if request.method != "GET":
            # A page form posted after the session ended: log in, then back to the page it came from
            # (the browser keeps the typed text, see static/js/app.js). Nothing posted is acted on.
            return redirect(url_for("auth.login", next=_referring_path(), expired=1, **_chosen_language()), code=303)
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?"), **_chosen_language()))
    if access.roles and not current_user.has_role(*access.roles):
        raise Forbidden()
    return None


def _referring_path() -> str | None:
    """The same-site page a form was posted from (its path and query), if the browser said."""
    from urllib.parse import urlsplit

    referrer = urlsplit(request.referrer or "")
    if referrer.netloc != request.host or not referrer.path.startswith("/"):
        return None
    return referrer.path + ("?" + referrer.query if referrer.query else "")


def current_actor() -> Actor:
    """The acting user (or the anonymous reporter) for services and the audit trail."""
    if current_user.is_authenticated:
        return Actor.for_user(current_user)
    return Actor.anonymous()


def sees_all_departments(actor: Actor) -> bool:
    return bool(actor.roles & ALL_DEPARTMENTS_ROLES)


def department_for(actor: Actor, requested: int | None, field: str = "department") -> int | None:
    """The department whose objects and figures the actor may read, given the one they asked for.

    The quality office: the one asked for, or None (the whole hospital). Everybody else: their own,
    whatever they ask for; another department is a 404, as for any department-owned object. A
    department that does not exist is a 422 naming the field (departments are not secret: every
    form lists them).
    """
    if requested is not None and db.session.get(Department, requested) is None:
        raise Unprocessable(errors={field: [_("No such department.")]})
    if sees_all_departments(actor):
        return requested
    if requested is not None and requested != actor.department_id:
        raise NotFound()
    return actor.department_id


def scoped(stmt, columns, actor: Actor):
    """Restrict a select to the actor's department (in any of `columns`) unless the actor sees all."""
    if sees_all_departments(actor):
        return stmt
    return scoped_to(stmt, columns, actor.department_id)


def scoped_to(stmt, columns, department):
    """Restrict a select to one department (in any of `columns`): an id, or a bound parameter for a
    statement built once and run for many actors (the caller decides, as `scoped` does, who is scoped)."""
    columns = columns if isinstance(columns, (list, tuple)) else [columns]
    return stmt.where(sa.or_(*(column == department for column in columns)))


def get_scoped_or_404(model, object_id, actor: Actor, columns=None):
    """Load a department-owned object; another department's object is a 404, not a 403."""
    columns = columns if columns is not None else getattr(model, "__scope_columns__", None) or [model.department_id]
    stmt = scoped(sa.select(model).where(model.id == object_id), [getattr(model, c) if isinstance(c, str) else c for c in columns], actor)
    obj = db.session.scalar(stmt)
    if obj is None:
        raise NotFound()
    return obj
