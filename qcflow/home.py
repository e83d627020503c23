"""The home page, the API reference and the health check.

The home page gathers what each of the user's roles has waiting across the domains (reports, cases,
discussions), so it sits beside create_app rather than in the kernel, which imports no domain.
"""
from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, redirect, render_template
from flask_login import current_user

from qcflow.auth.permissions import authenticated, can, current_actor, public
from qcflow.core.time import now
from qcflow.events import queries as events
from qcflow.extensions import api, db
from qcflow.mdt.queries import pending_for, subjects_of

bp = Blueprint("home", __name__)


@bp.get("/")
@authenticated
def index():
    """Show the home page with a section for each of the user's roles."""
    actor = current_actor()
    from qcflow.region.installation import is_centre

    if is_centre():  # a centre's staff start from completeness, its administrators from the hospitals
        return redirect("/centre/completeness" if can(actor, "centre_compare") else "/centre/hospitals")
    pending = pending_for(actor)
    context = {"my_reports": events.my_reports(current_user.id), "mdt_pending": pending,
               "mdt_subjects": subjects_of(pending[:5])}
    if can(actor, "department_cases"):
        context["event_counts"] = events.state_counts(actor, now())
    return render_template("home.html", **context)


@bp.get("/api/v1/docs")
@public
def api_docs():
    """Show the API reference, rendered from the OpenAPI document (no external assets): each endpoint's
    parameters and the fields of its body, as an integrator needs them without a client generator."""
    spec = api.spec.to_dict()
    return render_template("api/docs.html", spec=spec, body_fields=lambda op: _body_fields(spec, op))


def _body_fields(spec: dict, operation: dict) -> list[dict]:
    """The fields of an operation's JSON body: name (rows of an array as `items[].name`), type, whether
    required, allowed values and description."""
    def resolved(schema: dict) -> dict:
        ref = schema.get("$ref", "")
        return spec["components"]["schemas"][ref.rsplit("/", 1)[-1]] if ref else schema

    def walk(schema: dict, prefix: str) -> list[dict]:
        schema, rows = resolved(schema), []
        required = set(schema.get("required", ()))
        for name, field in schema.get("properties", {}).items():
            field = resolved(field) if "$ref" in field else field
            rows.append({"name": prefix + name, "type": field.get("type") or field.get("format") or "object",
                         "required": name in required, "enum": field.get("enum"),
                         "description": field.get("description", "")})
            if field.get("type") == "array" and "$ref" in field.get("items", {}):
                rows += walk(field["items"], f"{prefix}{name}[].")
        return rows

    body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    return walk(body, "") if body else []


@bp.get("/healthz")
@public
def health():
    """Answer whether the app and its database respond (for load balancers)."""
    db.session.execute(sa.text("SELECT 1"))
    return {"status": "ok"}
