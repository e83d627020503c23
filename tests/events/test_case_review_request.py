"""A case that needs a case-review discussion before it closes says where to request one, prefilled; the
discussion form takes the case's reference as people copy it from the case page."""
import pytest
from marshmallow import ValidationError

from tests.events.test_intake import csrf


def test_a_grade_ii_case_links_to_its_prefilled_case_review_request(clients, hospital, report_body, act):
    doctor, quality = clients("clinician"), clients("quality")
    q = {"X-CSRFToken": csrf(quality)}
    filed = doctor.post("/api/v1/events", headers={"X-CSRFToken": csrf(doctor)},
                        json={**report_body(), "mode": "named"}).json
    act(quality, filed["id"], "triage", 2, q, confirmed_grade="II", handling_department_id=hospital["pharmacy"].id,
        external_severity="none")
    page = quality.get(f"/events/{filed['id']}").get_data(as_text=True)
    reference = quality.get(f"/api/v1/events/{filed['id']}").json["reference"]
    assert f'href="/mdt/new?kind=case_review&amp;event_id={reference}"' in page
    form = quality.get(f"/mdt/new?kind=case_review&event_id={reference}").get_data(as_text=True)
    assert f'value="{reference}"' in form


@pytest.mark.parametrize("given, loaded", [("AE-2026-000123", 123), (" ae-2026-2022884182 ", 2022884182),
                                           ("123", 123), (123, 123)])
def test_the_discussion_form_takes_a_case_by_reference_or_id(given, loaded):
    from qcflow.mdt.schemas import DiscussionIn

    assert DiscussionIn().load({"kind": "case_review", "event_id": given})["event_id"] == loaded


@pytest.mark.parametrize("given", ["AE-2026-", "AE-26-000123", "第123号", "0"])
def test_anything_else_is_the_fields_error_not_an_unlinked_discussion(given):
    from qcflow.mdt.schemas import DiscussionIn

    with pytest.raises(ValidationError) as refused:
        DiscussionIn().load({"kind": "case_review", "event_id": given})
    assert "event_id" in refused.value.messages
