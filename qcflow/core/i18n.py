"""Language choice: ?lang=, then the session, then the user's setting, then Chinese."""
from __future__ import annotations

from flask import current_app, g, has_request_context, request, session

LANGUAGES = ("zh", "en")


def select_locale() -> str:
    if not has_request_context():  # CLI and scheduler: the hospital default
        return current_app.config["BABEL_DEFAULT_LOCALE"]
    # Only a user already loaded for this request: loading one here could recurse
    # through an error page's translations.
    if _for_client_programs():
        return client_language()
    user = g.get("_login_user")
    logged_in = user is not None and user.is_authenticated
    asked = chosen_language()
    if asked:
        # Remember the switch only where a session exists already: anonymous pages and token-authenticated
        # API requests open none.
        from qcflow.core.web import NoSession

        if logged_in and not isinstance(session, NoSession):
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


def chosen_language() -> str | None:
    """The language this request asks for with ?lang=, if it is one qcflow speaks."""
    asked = request.args.get("lang")
    return asked if asked in LANGUAGES else None


def client_program(view):
    """Mark a route that client programs call, logging in to nothing (a hospital's qcflow sending to its centre, an
    SMS gateway reporting a delivery): every answer of the request, the app's early refusals (not JSON, too large)
    included, is in client_language()."""
    view.qc_client_program = True
    return view


def _for_client_programs() -> bool:
    from qcflow.core.web import view_marker

    return view_marker(current_app, request.endpoint, request.method, "qc_client_program") is True


def client_language() -> str:
    """The language of a client program that logs in to nothing (a hospital's qcflow sending to its centre, an SMS
    gateway reporting a delivery): ?lang=, else its Accept-Language, else Chinese."""
    return chosen_language() or request.accept_languages.best_match(LANGUAGES, default=LANGUAGES[0])


def with_lang(path: str) -> str:
    """A link to a session-free page in the reader's current language, however it was chosen (?lang=, the
    session, the account's setting): those pages read no session, so only the link can carry it."""
    language = chosen_language()
    if language is None:  # the session's or the account's: carried unless it is the default session-free pages use
        language = current_language()
        if language == LANGUAGES[0]:
            return path
    return path + ("&" if "?" in path else "?") + "lang=" + language


def install_template_helpers(app) -> None:
    """The page helpers of the kernel; the auth domain adds its own (`can`, role labels) at app creation."""
    from qcflow.core.time import local

    app.jinja_env.globals.update(
        current_language=current_language,
        lang_url=lang_url,
        with_lang=with_lang,
        role_label=lambda role: label("auth_role", role),
    )
    app.jinja_env.globals["label"] = label
    app.jinja_env.globals["label_list"] = label_list
    from qcflow.core.audit_labels import audit_rows

    app.jinja_env.globals["audit_rows"] = audit_rows
    from qcflow.core.workflow import install_template_tests

    install_template_tests(app)
    app.jinja_env.filters["localtime"] = localtime


def localtime(at) -> str:
    """An instant in the hospital's time zone, to the minute: a datetime, or an ISO 8601 text with its zone (as a
    JSON document carries it; other text is shown as it is)."""
    from qcflow.core.time import local, parse_instant

    if isinstance(at, str):
        try:
            at = parse_instant(at)
        except ValueError:
            return at
    return local(at).strftime("%Y-%m-%d %H:%M") if at else ""


#: Display labels of coded values, {kind: {code: lazy label}}; codes stay English in the API.
#: Each domain's models register their kinds at import.
LABELS: dict[str, dict] = {}


def register_labels(tables: dict, prefix: str = "") -> None:
    for kind, table in tables.items():
        LABELS.setdefault(prefix + kind, {}).update(table)


def label_list(kind: str, codes) -> str:
    """The labels of several codes (a list, or comma-separated as stored) joined as the reader's language
    joins a list: 流程、实践 / Process, Practice."""
    from flask_babel import pgettext

    if isinstance(codes, str):
        codes = codes.split(",")
    return pgettext("list separator", ", ").join(label(kind, code) for code in codes or () if code)


def label(kind: str, value) -> str:
    """The translated display label of a coded value (falls back to the code)."""
    return str(LABELS.get(kind, {}).get(value, value if value is not None else ""))
