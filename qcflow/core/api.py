"""flask-smorest Api and Blueprint with qcflow's JSON errors and strict argument parsing."""
import flask_smorest
from flask_smorest import Api
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import HTTPException


class StrictParser(FlaskParser):
    # Let each schema's Meta.unknown (RAISE) decide, for query strings too: a mistyped
    # filter must be an error, not silently ignored.
    DEFAULT_UNKNOWN_BY_LOCATION: dict = {}


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = StrictParser()


class QcApi(Api):
    def handle_http_exception(self, error: HTTPException):
        from qcflow.core.errors import http_error_response

        # webargs puts validation details on error.data["messages"].
        data = getattr(error, "data", None) or {}
        errors = data.get("messages") or data.get("errors")
        if isinstance(errors, dict) and set(errors) <= {"json", "query", "form", "headers", "view_args"}:
            errors = {k: v for loc in errors.values() for k, v in (loc or {}).items()} or errors
        return http_error_response(error, errors)
