"""On a hospital's installation (the default) the centre's routes do not exist, whoever asks."""
from __future__ import annotations

import pytest


@pytest.fixture
def hospital_layout():
    departments = {"qc": {"code": "QC", "name": "质控办", "kind": "functional"}}
    people = {"quality": ("quality", "quality", "qc"), "admin": ("admin", "admin", "qc")}
    return departments, people


@pytest.mark.parametrize("who", ["anonymous", "quality", "admin"])
@pytest.mark.parametrize("path", ["/centre", "/centre/completeness", "/centre/profile/H001", "/centre/province.xlsx",
                                  "/centre/evaluation.pdf", "/centre/hospitals", "/api/v1/centre/completeness",
                                  "/api/v1/centre/indicators/x", "/api/v1/centre/hospitals"])
def test_the_centres_routes_are_404_on_a_hospital_for_every_role(clients, who, path):
    """Not 403 for a logged-in user: that would tell that the route exists, and so which side this is."""
    assert clients(who).get(path).status_code == 404
