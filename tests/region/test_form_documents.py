"""The centre keeps a form only in the shape a hospital's qcflow archives it: every form the hospital generates
passes the centre's check of a form document (region.receiving_schemas.FormDocument)."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

NOW = datetime(2026, 4, 12, 1, 30, tzinfo=timezone.utc)


@pytest.fixture
def hospital_layout():
    departments = {"surgery": {"code": "GS", "name": "普通外科"},
                   "qc": {"code": "QC", "name": "质控办", "kind": "functional"}}
    people = {"quality": ("quality", "quality", "qc")}
    return departments, people


@pytest.mark.parametrize("plan", ["henan", "yubei", "shaoxing"])
@pytest.mark.parametrize("kind, year, quarter", [("quarterly", 2026, 1), ("annual", 2025, None)])
def test_every_form_a_hospital_archives_is_one_the_centre_keeps(hospital, plan, kind, year, quarter):
    from qcflow.core.actors import Actor
    from qcflow.indicators import forms
    from qcflow.region.receiving_schemas import FormDocument

    form = forms.generate_form(plan, kind, year, quarter, actor=Actor.for_user(hospital["quality"]), now=NOW)
    document = json.loads(form.snapshot)
    assert document["rows"] and FormDocument().load(document)["plan"]["key"] == plan
