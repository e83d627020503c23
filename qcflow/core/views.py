"""The home page and the health check."""
from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, render_template

from qcflow.auth.permissions import authenticated, public
from qcflow.extensions import db

bp = Blueprint("core", __name__)


@bp.get("/")
@authenticated
def home():
    """Show the home page with a section for each of the user's roles."""
    from flask_login import current_user

    from qcflow.auth.permissions import can, current_actor
    from qcflow.core.time import now
    from qcflow.events import queries as events

    actor = current_actor()
    from qcflow.mdt.queries import pending_for, subjects_of

    pending = pending_for(actor)
    context = {"my_reports": events.my_reports(current_user.id), "mdt_pending": pending,
               "mdt_subjects": subjects_of(pending[:5])}
    if can(actor, "department_cases"):
        context["event_counts"] = events.state_counts(actor, now())
    return render_template("home.html", **context)


@bp.get("/api/v1/docs")
@public
def api_docs():
    """Show the API reference, rendered from the OpenAPI document (no external assets)."""
    from qcflow.extensions import api

    spec = api.spec.to_dict()
    return render_template("api/docs.html", spec=spec)


@bp.get("/healthz")
@public
def health():
    """Answer whether the app and its database respond (for load balancers)."""
    db.session.execute(sa.text("SELECT 1"))
    return {"status": "ok"}
