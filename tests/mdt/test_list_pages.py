"""The discussion list's pages: a cursor only when a discussion follows the page."""
URL = "/api/v1/mdt/discussions"


def test_the_last_full_page_has_no_cursor_and_one_more_discussion_gets_a_page_of_its_own(clients, held_preop,
                                                                                        operated_death):
    quality = clients("quality")
    whole = quality.get(URL + "?limit=2").json
    assert [d["id"] for d in whole["items"]] == [operated_death.id, held_preop.id] and whole["next_cursor"] is None
    first = quality.get(URL + "?limit=1").json
    rest = quality.get(f"{URL}?limit=1&cursor={first['next_cursor']}").json
    assert [d["id"] for d in rest["items"]] == [held_preop.id] and rest["next_cursor"] is None
