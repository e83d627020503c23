"""flask-smorest Api and Blueprint with qcflow's JSON errors and strict argument parsing."""
import flask_smorest
import marshmallow as ma
from flask_smorest import Api
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import HTTPException


class StrictParser(FlaskParser):
    # Let each schema's Meta.unknown (RAISE) decide, for query strings too: a mistyped
    # filter must be an error, not silently ignored.
    DEFAULT_UNKNOWN_BY_LOCATION: dict = {}


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = StrictParser()


class ErrorSchema(ma.Schema):
    """Every API error body (qcflow.core.errors): a string code, a translated message, field errors."""

    code = ma.fields.String(metadata={"description": "Error code, e.g. not_found, conflict, unprocessable"})
    message = ma.fields.String(metadata={"description": "What went wrong, in the request's language"})
    errors = ma.fields.Dict(metadata={"description": "Field errors: {field: [messages]}"})
    current_version = ma.fields.Integer(metadata={"description": "409 on a stale version: the current one"})
    allowed_actions = ma.fields.List(ma.fields.String(), metadata={"description": "409: steps possible now"})
    state = ma.fields.String(metadata={"description": "409: the record's state"})


class QcApi(Api):
    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error: HTTPException):
        from qcflow.core.errors import http_error_response

        # webargs puts validation details on error.data["messages"].
        data = getattr(error, "data", None) or {}
        errors = data.get("messages") or data.get("errors")
        if isinstance(errors, dict) and set(errors) <= {"json", "query", "form", "headers", "view_args"}:
            errors = {k: v for loc in errors.values() for k, v in (loc or {}).items()} or errors
        return http_error_response(error, errors)


def created_links(**links) -> dict:
    """`@blp.doc(**created_links(...))`: OpenAPI links from a 201 answer to the operations that use it.

    Each link is name=(method, path, {parameter: runtime expression}); clients and Schemathesis'
    stateful tests follow them (create, then read or step the created record).
    """
    def ref(method, path):
        return "#/paths/" + path.replace("~", "~0").replace("/", "~1") + "/" + method

    # The status as an int, like flask-smorest's own keys, so the links join the documented 201 answer.
    return {"responses": {201: {"links": {
        name: {"operationRef": ref(method, path), "parameters": parameters}
        for name, (method, path, parameters) in links.items()}}}}

