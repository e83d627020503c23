"""My notifications' pages: a cursor (and an "Older" link) only when a notification follows the page."""
from qcflow.notify import services
from tests.conftest import login


def test_the_last_full_page_has_no_cursor_and_one_more_gets_a_page_of_its_own(client, create_user, now):
    from qcflow.extensions import db

    me = create_user(username="me")
    for i in range(3):
        services.notify([me.id], "event.submitted", {"ref": f"n{i}"}, now=now)
    db.session.commit()
    login(client, "me")
    whole = client.get("/api/v1/notifications?limit=3").json
    assert len(whole["items"]) == 3 and whole["next_cursor"] is None
    first = client.get("/api/v1/notifications?limit=2").json
    rest = client.get(f"/api/v1/notifications?limit=2&cursor={first['next_cursor']}").json
    assert [n["title"] for n in rest["items"]] == ["新的不良事件报告 n0"] and rest["next_cursor"] is None


def test_the_page_offers_older_ones_only_when_there_are_more_than_fifty(client, create_user, now):
    from qcflow.extensions import db

    me = create_user(username="me")
    for i in range(50):
        services.notify([me.id], "event.submitted", {"ref": f"n{i}"}, now=now)
    db.session.commit()
    login(client, "me")
    assert "before=" not in client.get("/notifications").get_data(as_text=True)
    services.notify([me.id], "event.submitted", {"ref": "n50"}, now=now)
    db.session.commit()
    page = client.get("/notifications").get_data(as_text=True)
    fiftieth = services.inbox(me.id, limit=50)[-1].id
    assert f"before={fiftieth}" in page and "新的不良事件报告 n0" not in page
    assert "新的不良事件报告 n0" in client.get(f"/notifications?before={fiftieth}").get_data(as_text=True)
