"""The navigation helper: a link shows only for a page that exists and that the user's roles may open."""
from flask_login import login_user

from qcflow.notify.views import may_visit


def test_may_visit_follows_the_routes_access_declarations(app, create_user):
    from qcflow.extensions import db

    nurse, quality = create_user(roles=("nurse",)), create_user(roles=("quality",))
    db.session.commit()
    with app.test_request_context("/"):
        assert may_visit("/report") and may_visit("/receipt")  # public
        assert not may_visit("/events") and not may_visit("/followup/queue")  # not logged in
        login_user(nurse)
        assert may_visit("/followup/queue") and may_visit("/notifications")
        assert not may_visit("/events") and not may_visit("/followup/prompts")
        assert not may_visit("/no/such/page")
    with app.test_request_context("/"):
        login_user(quality)
        assert may_visit("/events") and may_visit("/followup/prompts") and may_visit("/mdt")
        assert not may_visit("/admin/followup/protocols")


def test_a_page_that_is_not_registered_gets_no_link(app, create_user):
    """Pages still being built (or switched off) simply do not appear in the navigation."""
    from qcflow.extensions import db

    quality = create_user(roles=("quality",))
    db.session.commit()
    with app.test_request_context("/"):
        login_user(quality)
        assert not may_visit("/statistics-not-built-yet")
        assert may_visit("/indicators") == ("/indicators" in {r.rule for r in app.url_map.iter_rules()})
