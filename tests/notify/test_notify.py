"""In-app notifications, the inbox badge, and the after-commit webhook."""
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from qcflow.notify import services
from tests.conftest import csrf_from, login, make_app


@pytest.fixture
def receiver():
    """A local HTTP endpoint that records what it is sent."""
    received, arrived = [], threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()
            arrived.set()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received, arrived
    server.shutdown()
    server.server_close()


def test_badge_counts_unread_and_reading_clears_it(app, client, create_user, now):
    from qcflow.extensions import db

    user = create_user(username="n")
    services.notify([user.id], "event.submitted", {"ref": "AE-1"}, now=now, link="/notifications")
    services.notify([user.id], "event.submitted", {"ref": "AE-2"}, now=now)
    db.session.commit()
    login(client, "n")
    home = client.get("/").get_data(as_text=True)
    assert '<span class="badge"' in home and ">2</span>" in home
    page = client.get("/notifications").get_data(as_text=True)
    assert "新的不良事件报告 AE-1" in page
    first_id = services.inbox(user.id)[-1].id
    response = client.post(f"/notifications/{first_id}/read", data={"csrf_token": csrf_from(client, "/notifications")})
    assert response.status_code == 302 and response.headers["Location"] == "/notifications"
    assert ">1</span>" in client.get("/").get_data(as_text=True)


def test_api_lists_my_notifications_with_keyset_pages(app, client, create_user, now):
    from qcflow.extensions import db

    me, other = create_user(username="me"), create_user(username="other")
    for i in range(3):
        services.notify([me.id], "event.submitted", {"ref": f"n{i}"}, now=now)
    services.notify([other.id], "event.submitted", {"ref": "not mine"}, now=now)
    db.session.commit()
    login(client, "me")
    page = client.get("/api/v1/notifications?limit=2").json
    assert [n["title"] for n in page["items"]] == ["新的不良事件报告 n2", "新的不良事件报告 n1"] and page["unread"] == 3
    assert page["items"][0]["params"] == {"ref": "n2"}
    rest = client.get(f"/api/v1/notifications?limit=2&cursor={page['next_cursor']}").json
    assert [n["title"] for n in rest["items"]] == ["新的不良事件报告 n0"] and rest["next_cursor"] is None


def test_someone_elses_notification_is_404(app, client, create_user, now):
    from qcflow.extensions import db

    create_user(username="me")
    other = create_user(username="other")
    [theirs] = services.notify([other.id], "mdt.signed", now=now)
    db.session.commit()
    login(client, "me")
    token = csrf_from(client, "/notifications")
    assert client.post(f"/notifications/{theirs.id}/read", data={"csrf_token": token}).status_code == 404


def notify_new_user(now):
    """Create a user and notify them, in the current transaction."""
    from qcflow.auth.models import Department, User
    from qcflow.extensions import db

    dept = Department(code="X", name="科", kind="clinical", created_at=now)
    db.session.add(dept)
    db.session.flush()
    user = User(username="u", display_name="u", password_hash="x", department_id=dept.id,
                created_at=now, password_changed_at=now)
    db.session.add(user)
    db.session.flush()
    services.notify([user.id], "event.deadline_breached", {"deadline": "triage", "ref": "AE-1", "level": 1}, now=now,
                    link="/events/1")
    return user.id


def test_webhook_receives_the_notification_after_commit(database_url, tmp_path, receiver, now):
    from qcflow.extensions import db

    url, received, arrived = receiver
    app = make_app(database_url, str(tmp_path), WEBHOOK_URL=url)
    with app.app_context():
        user_id = notify_new_user(now)
        assert not arrived.wait(0.3)  # nothing leaves before the commit
        db.session.commit()
        assert arrived.wait(5)
    assert received == [{"kind": "event.deadline_breached", "params": {"deadline": "triage", "ref": "AE-1", "level": 1},
                         "title": "AE-1 已超过时限（分级），第 1 级督办", "body": "", "link": "/events/1",
                         "user_ids": [user_id], "created_at": now.isoformat()}]


def test_webhook_is_not_sent_when_the_transaction_rolls_back(database_url, tmp_path, receiver, now):
    from qcflow.extensions import db

    url, received, arrived = receiver
    app = make_app(database_url, str(tmp_path), WEBHOOK_URL=url)
    with app.app_context():
        notify_new_user(now)
        db.session.rollback()
        db.session.commit()
    assert not arrived.wait(0.5) and received == []


def test_inbox_page_groups_escalations_and_reminders(app, client, create_user, now):
    from qcflow.extensions import db

    user = create_user(username="q")
    services.notify([user.id], "event.deadline_breached", {"deadline": "triage", "ref": "AE-1", "level": 1}, now=now,
                    link="/events/1")
    services.notify([user.id], "followup.urgent_due", {"id": 7, "time": "2026-03-02T02:00:00+00:00"}, now=now)
    services.notify([user.id], "mdt.signed", now=now)
    db.session.commit()
    login(client, "q")
    everything = client.get("/notifications?lang=en").get_data(as_text=True)
    assert all(t in everything for t in ("Deadline passed (triage) for AE-1 — escalation level 1",
                                         "24 h follow-up call #7 is due by 2026-03-02 10:00", "MDT record signed"))
    client.get("/notifications?lang=zh")
    assert "Escalation" in everything and "Reminder" in everything and "Information" in everything
    escalations = client.get("/notifications?group=escalation").get_data(as_text=True)
    assert "AE-1 已超过时限（分级）" in escalations and "随访 #7" not in escalations
    reminders = client.get("/notifications?group=reminder").get_data(as_text=True)
    assert "随访 #7" in reminders and "MDT 记录已签署" not in reminders
    first = services.inbox(user.id)[0]
    client.post(f"/notifications/{first.id}/read", data={"csrf_token": csrf_from(client, "/notifications")})
    unread = client.get("/notifications?unread=1").get_data(as_text=True)
    assert "MDT 记录已签署" not in unread and "AE-1 已超过时限（分级）" in unread
