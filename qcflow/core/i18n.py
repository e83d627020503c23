"""Language choice: ?lang=, then the session, then the user's setting, then Chinese."""
from __future__ import annotations

from flask import current_app, g, has_request_context, request, session

LANGUAGES = ("zh", "en")


def select_locale() -> str:
    if not has_request_context():  # CLI and scheduler: the hospital default
        return current_app.config["BABEL_DEFAULT_LOCALE"]
    # Only a user already loaded for this request: loading one here could recurse
    # through an error page's translations.
    user = g.get("_login_user")
    logged_in = user is not None and user.is_authenticated
    asked = request.args.get("lang")
    if asked in LANGUAGES:
        # Remember the switch only where a session exists already: anonymous pages set no cookie.
        if logged_in:
            session["lang"] = asked
        return asked
    if session.get("lang") in LANGUAGES:
        return session["lang"]
    if logged_in and user.locale in LANGUAGES:
        return user.locale
    return "zh"


def current_language() -> str:
    from flask_babel import get_locale

    locale = get_locale()
    return locale.language if locale else "zh"


def lang_url(code: str) -> str:
    """The current page in another language."""
    from urllib.parse import urlencode

    args = request.args.to_dict(flat=False)
    args["lang"] = [code]
    return request.path + "?" + urlencode(args, doseq=True)


def install_template_helpers(app) -> None:
    from qcflow.auth.models import ROLE_LABELS
    from qcflow.core.time import local

    app.jinja_env.globals.update(
        current_language=current_language,
        lang_url=lang_url,
        role_label=lambda role: ROLE_LABELS.get(role, role),
    )
    app.jinja_env.globals["label"] = label
    app.jinja_env.filters["localtime"] = lambda at: local(at).strftime("%Y-%m-%d %H:%M") if at else ""


#: Display labels of coded values, {kind: {code: lazy label}}; codes stay English in the API.
#: Each domain's models register their kinds at import.
LABELS: dict[str, dict] = {}


def register_labels(tables: dict, prefix: str = "") -> None:
    for kind, table in tables.items():
        LABELS.setdefault(prefix + kind, {}).update(table)


def label(kind: str, value) -> str:
    """The translated display label of a coded value (falls back to the code)."""
    return str(LABELS.get(kind, {}).get(value, value if value is not None else ""))
