"""Home page by role, language switch and the user's language setting."""
import pytest

from tests.conftest import csrf_from, login

SECTIONS = {
    "clinician": {"home-reports", "home-mdt"},
    "nurse": {"home-reports", "home-followup"},
    "dept_head": {"home-reports", "home-followup", "home-events", "home-mdt"},
    "quality": {"home-reports", "home-followup", "home-events", "home-mdt", "home-indicators"},
    "admin": {"home-admin"},
}
ALL_SECTIONS = set().union(*SECTIONS.values())


@pytest.mark.parametrize("role", sorted(SECTIONS))
def test_home_shows_the_sections_of_the_role_in_chinese(app, client, create_user, role):
    from qcflow.extensions import db

    create_user(username=role, roles=(role,))
    db.session.commit()
    login(client, role)
    html = client.get("/").get_data(as_text=True)
    shown = {s for s in ALL_SECTIONS if f'id="{s}"' in html}
    assert shown == SECTIONS[role]
    assert "首页" in html and "退出登录" in html


def test_the_administrators_home_links_every_admin_page_it_names(client, create_user):
    """The tokens page exists: the home page no longer sends the administrator to the command line for it."""
    from qcflow.extensions import db

    create_user(username="admin", roles=("admin",))
    db.session.commit()
    login(client, "admin")
    html = client.get("/").get_data(as_text=True)
    assert 'href="/admin/tokens"' in html and "API 令牌" in html and "API 令牌目前通过命令行" not in html


def test_login_page_is_chinese_by_default_and_english_on_request(client):
    assert "<h1>登录</h1>" in client.get("/login").get_data(as_text=True)
    english = client.get("/login?lang=en").get_data(as_text=True)
    assert "<h1>Log in</h1>" in english and 'lang="en"' in english


def test_language_switch_sticks_for_the_session(client, create_user):
    from qcflow.extensions import db

    create_user(username="en1")
    db.session.commit()
    login(client, "en1")
    assert "Home" in client.get("/?lang=en").get_data(as_text=True)
    assert "Welcome" in client.get("/").get_data(as_text=True)


def test_user_language_setting_applies_at_next_login(app, client, create_user):
    from qcflow.extensions import db

    create_user(username="set")
    db.session.commit()
    login(client, "set")
    response = client.post("/account", data={"csrf_token": csrf_from(client, "/account"), "lang-locale": "en"})
    assert response.status_code == 302
    fresh = app.test_client()
    login(fresh, "set")
    assert "Welcome" in fresh.get("/").get_data(as_text=True)


def test_invalid_language_setting_is_refused(client, create_user):
    from qcflow.extensions import db

    create_user(username="bad")
    db.session.commit()
    login(client, "bad")
    response = client.post("/account", data={"csrf_token": csrf_from(client, "/account"), "lang-locale": "fr"})
    assert response.status_code == 400


def test_anonymous_json_routes_set_no_cookie(client):
    response = client.get("/healthz")
    assert "Set-Cookie" not in response.headers


def test_a_page_asked_for_in_english_asks_for_the_login_in_english(client):
    """/?lang=en without a session used to land on a Chinese login page (the choice was only inside next=)."""
    response = client.get("/report/named?lang=en")
    assert response.status_code == 302 and "lang=en" in response.headers["Location"].split("?", 1)[1].split("&")
    assert "<h1>Log in</h1>" in client.get(response.headers["Location"]).get_data(as_text=True)
    assert "lang=" not in client.get("/report/named").headers["Location"].replace("next=", "")
