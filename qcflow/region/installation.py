"""Which side of regional mode this installation is (INSTALLATION_ROLE): the hospital's pages of regional mode
exist only on a hospital, the centre's only on a centre; elsewhere they answer 404."""
from __future__ import annotations

from flask import current_app

from qcflow.core.errors import NotFound


def is_centre() -> bool:
    return current_app.config["INSTALLATION_ROLE"] == "centre"


def only_on(role: str):
    """A blueprint's before_request: 404 unless this installation is `role` ("hospital" or "centre")."""
    def check():
        if current_app.config["INSTALLATION_ROLE"] != role:
            raise NotFound()
    return check
