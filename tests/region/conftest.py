"""Regional mode's fixtures: a centre installation beside the hospital one the other tests use."""
from __future__ import annotations

import pytest

from tests.conftest import make_app


@pytest.fixture
def centre_app(database_url, tmp_path):
    """The app installed as a regional quality-control centre (INSTALLATION_ROLE = "centre")."""
    return make_app(database_url, str(tmp_path), INSTALLATION_ROLE="centre")


@pytest.fixture
def centre_ctx(centre_app):
    with centre_app.app_context():
        yield
