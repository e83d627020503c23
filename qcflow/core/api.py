"""flask-smorest Api and Blueprint with qcflow's JSON errors and strict argument parsing."""
import threading

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


_describing = threading.Lock()


class QcApi(Api):
    """The API, whose OpenAPI description is written when it is first read (`api.spec`), not as each blueprint
    is registered: writing it is most of what building an app costs, and most apps (a CLI command, each test's)
    never read it. The document is the same either way: the blueprints are described in registration order."""

    ERROR_SCHEMA = ErrorSchema

    def init_app(self, app, *, spec_kwargs=None):
        self._undescribed = []
        super().init_app(app, spec_kwargs=spec_kwargs)

    @property
    def spec(self):
        if getattr(self, "_undescribed", None):
            with _describing:  # two threads of a worker reading it first: one writes, the other waits for it
                for blp, app, name, parameters in self._undescribed:
                    blp.register_views_in_doc(self, app, self._spec, name=name, parameters=parameters)
                    self._spec.tag({"name": name, "description": blp.description})
                self._undescribed = []
        return self._spec

    @spec.setter
    def spec(self, value):
        self._spec = value

    def register_blueprint(self, blp, *, parameters=None, **options):
        """flask-smorest's registration, with the blueprint's description left for the first reading of `spec`."""
        name = options.get("name", blp.name)
        self._app.extensions["flask-smorest"]["blp_name_to_api"][name] = self
        self._app.register_blueprint(blp, **options)
        self._undescribed.append((blp, self._app, name, parameters))

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

