"""The case list's pages: a cursor only when a case follows the page, through either scope's query."""
import pytest


@pytest.mark.parametrize("role", ["quality", "head"])  # every department / reported-or-handled union
def test_the_last_full_page_has_no_cursor_and_one_more_case_gets_a_page_of_its_own(clients, hospital, report_body,
                                                                                   role):
    for grade in ("I", "III", "III"):
        posted = clients("anonymous").post("/api/v1/events", json=report_body(reporter_grade=grade))
        assert posted.status_code == 201, posted.json
    reader = clients(role)
    whole = reader.get("/api/v1/events?limit=3").json
    assert len(whole["items"]) == 3 and whole["next_cursor"] is None
    first = reader.get("/api/v1/events?limit=2").json
    assert [e["id"] for e in first["items"]] == [e["id"] for e in whole["items"][:2]]
    rest = reader.get(f"/api/v1/events?limit=2&cursor={first['next_cursor']}").json
    assert [e["id"] for e in rest["items"]] == [whole["items"][2]["id"]] and rest["next_cursor"] is None
