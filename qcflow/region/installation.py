"""Which side of regional mode this installation is (INSTALLATION_ROLE): the hospital's pages of regional mode
exist only on a hospital, the centre's only on a centre; elsewhere they answer 404 (one request hook, before the
access check)."""
from __future__ import annotations

from flask import current_app, request

from qcflow.core.errors import NotFound


def is_centre() -> bool:
    return current_app.config["INSTALLATION_ROLE"] == "centre"


#: What a centre serves: its own pages and API, logins and accounts, notifications, the home page and the API's
#: documents. Every other blueprint (reports, cases, follow-up, MDT, the HIS intake, the hospital's indicators)
#: holds or takes patient-level data, which a centre never receives: 404 there.
CENTRE_BLUEPRINTS = frozenset({"home", "auth", "auth_api", "notify", "notify_api", "api-docs", "centre",
                               "centre_api", "centre_intake_api", "centre_registry"})


#: The centre's own blueprints: 404 on a hospital.
CENTRE_ONLY = frozenset({"centre", "centre_api", "centre_intake_api", "centre_registry"})


def refuse_routes_of_the_other_installation() -> None:
    """Before the access check: on a centre the hospital's routes, on a hospital the centre's, answer 404 to
    everyone (a 403 for a logged-in user would tell which side this installation is)."""
    blueprint = request.blueprint
    if blueprint is None:
        return
    if blueprint not in CENTRE_BLUEPRINTS if is_centre() else blueprint in CENTRE_ONLY:
        raise NotFound()
