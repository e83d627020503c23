"""The triggers page: every trigger with its rule, parameters and window; tune one or switch it off."""
from __future__ import annotations

import math

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from marshmallow import ValidationError

from qcflow.auth.permissions import allowed, current_actor
from qcflow.auth.queries import active_departments
from qcflow.clinical.models import LISTED_DRUGS
from qcflow.core.errors import DomainError, Unprocessable, page_refusal, translate_errors
from qcflow.core.time import now
from qcflow.extraction import queries, services
from qcflow.extraction.rules import PARAM_KINDS, RULES
from qcflow.extraction.schemas import TriggerNamesIn

bp = Blueprint("extraction", __name__)


@bp.get("/admin/triggers")
@allowed("triggers")
def triggers():
    return render_template("extraction/triggers.html", triggers=queries.triggers(), rules=RULES)


def load_errors(schema, data: dict) -> dict:
    try:
        schema.load(data)
    except ValidationError as error:
        return translate_errors(error.messages)
    return {}


def _form_params(rule: str) -> dict:
    """The rule's parameters as the form sent them (a number that is not one is passed on as text: the
    rule's check names it)."""
    params = {}
    for name in RULES[rule].params:
        kind, raw = PARAM_KINDS[name], request.form.get(f"param_{name}", "").strip()
        if kind == "flag":
            params[name] = f"param_{name}" in request.form
        elif kind == "drugs":
            params[name] = request.form.getlist(f"param_{name}")
        elif kind == "number" and raw:
            try:
                value = float(raw)
                params[name] = value if math.isfinite(value) else raw
            except ValueError:
                params[name] = raw
        elif raw:
            params[name] = raw
    return params


def _whole(text: str) -> int | str | None:
    """A whole number as typed (ASCII digits), the text itself when it is not one, None when empty."""
    return int(text) if text.isascii() and text.isdigit() else (text or None)


def _form_data(rule: str) -> dict:
    return {"name": request.form.get("name", "").strip(), "name_en": request.form.get("name_en", "").strip(),
            "params": _form_params(rule), "window_hours": _whole(request.form.get("window_hours", "").strip()),
            "reviewer_department_id": _whole(request.form.get("reviewer_department_id", "").strip()),
            "is_active": "is_active" in request.form}


@bp.route("/admin/triggers/<code>", methods=["GET", "POST"])
@allowed("triggers")
def trigger(code):
    """One trigger's form: names, parameters, window, reviewers, on or off."""
    item = queries.load_trigger(code)
    errors, status = {}, 200
    if request.method == "POST":
        data = _form_data(item.rule)
        try:
            names = {k: data[k] for k in ("name", "name_en")}
            errors = load_errors(TriggerNamesIn(), names)
            if isinstance(data["window_hours"], str):
                errors["window_hours"] = [_("Give a whole number of hours.")]
            if isinstance(data["reviewer_department_id"], str):
                errors["reviewer_department_id"] = [_("Unknown department.")]
            if errors:
                raise Unprocessable(errors=errors)
            version = _whole(request.form.get("version", "").strip())
            services.update_trigger(item, data, actor=current_actor(), now=now(),
                                    expected_version=version if isinstance(version, int) else -1)
            flash(_("Trigger saved (version %(v)d). It applies to facts that arrive from now on.", v=item.version))
            return redirect(url_for("extraction.triggers"))
        except DomainError as error:
            errors, status = page_refusal(error)
            item = queries.load_trigger(code)
    return render_template("extraction/trigger.html", trigger=item, rule=RULES[item.rule], kinds=PARAM_KINDS,
                           params=[name for name in PARAM_KINDS if name in RULES[item.rule].params],
                           drugs=LISTED_DRUGS, departments=active_departments(by_kind=False), errors=errors,
                           values=request.form if request.method == "POST" else None), status
