"""Posted HTML forms in the API's JSON shape, so a page and the API load through one schema."""
from __future__ import annotations

from datetime import datetime

from flask import request
from marshmallow import ValidationError, fields as mfields

from qcflow.core.errors import translate_errors

from qcflow.core.time import hospital_tz


def form_data(form, schema, names=None) -> dict:
    """The form's values for the schema's fields, typed by the schema (empty values are left out).

    Lists come from repeated names (checkboxes); a boolean is true when present and not
    "0"/"false"/"off"; a date-time without an offset (``<input type="datetime-local">``) is
    hospital-local time.
    """
    data = {}
    for attribute in names if names is not None else schema.fields:
        field = schema.fields[attribute]
        name = field.data_key or attribute  # the form's name for it (e.g. `from` for a field `start`)
        if isinstance(field, mfields.List):
            values = [v for v in form.getlist(name) if v]
            if values:
                data[name] = values
            continue
        value = (form.get(name) or "").strip()
        if isinstance(field, mfields.Boolean):
            if name in form:
                data[name] = value not in ("", "0", "false", "off")
            continue
        if value == "":
            continue
        if isinstance(field, mfields.DateTime) and "+" not in value and not value.endswith("Z"):
            try:
                value = datetime.fromisoformat(value).replace(tzinfo=hospital_tz()).isoformat()
            except ValueError:
                pass  # the schema reports it
        data[name] = value
    return data


def load_form(schema, names=None) -> dict:
    """Load the posted form through `schema` (a ValidationError becomes a 422 like the API's)."""
    return schema.load(form_data(request.form, schema, names))


def load_args(schema) -> tuple[dict, dict]:
    """A list page's filters: the query string loaded through `schema` (`lang` left out) and the errors,
    translated ({} when valid; the page then shows them beside an empty list, with a 422)."""
    try:
        args = schema.load(form_data(request.args, schema))
    except ValidationError as error:
        return {}, translate_errors(error.messages)
    args.pop("lang", None)
    return args, {}
