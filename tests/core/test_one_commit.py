"""A request commits once, in the app, right after its view returns; views and API handlers never commit."""
import re
from pathlib import Path

import sqlalchemy as sa

from tests.conftest import csrf_from, login

ROOT = Path(__file__).resolve().parents[2]
#: Commits an entry point makes on purpose before its work (docs/decisions.md, issue 18): the login
#: attempt is counted by every worker before the password or code is checked (N2).
EARLY_COMMITS = {"qcflow/auth/views.py": 3}


def test_no_view_or_api_module_commits_but_the_counted_login_attempts():
    found = {}
    for path in sorted([*ROOT.glob("qcflow/*/views.py"), *ROOT.glob("qcflow/*/api.py")]):
        commits = re.findall(r"\.commit\(\)", path.read_text(encoding="utf-8"))
        if commits:
            found[str(path.relative_to(ROOT))] = len(commits)
    assert found == EARLY_COMMITS
    early = [line for line in (ROOT / "qcflow/auth/views.py").read_text(encoding="utf-8").splitlines()
             if ".commit()" in line]
    assert all("(N2)" in line for line in early)


def stored_locale(app, username):
    """The user's language as another connection reads it: only what was committed."""
    from qcflow.extensions import db

    with db.engine.connect() as connection:
        return connection.execute(sa.text("SELECT locale FROM user_account WHERE username = :u"), {"u": username}).scalar()


def test_a_page_that_redirects_after_a_post_has_committed_before_the_browser_follows(app, client, create_user):
    from qcflow.extensions import db

    create_user(username="lang")
    db.session.commit()
    login(client, "lang")
    response = client.post("/account", data={"csrf_token": csrf_from(client, "/account"), "lang-locale": "en"})
    assert response.status_code == 302
    assert stored_locale(app, "lang") == "en"


def test_a_refused_form_keeps_nothing_its_attempt_wrote(ctx, create_department):
    from marshmallow import ValidationError

    from qcflow.auth.models import Department
    from qcflow.core.errors import Conflict, page_refusal
    from qcflow.extensions import db

    create_department(code="KEEP")
    db.session.commit()
    create_department(code="GONE")  # flushed by the attempt, then refused
    errors, status = page_refusal(Conflict())
    db.session.commit()  # the request's one commit
    assert db.session.scalars(sa.select(Department.code)).all() == ["KEEP"]
    assert status == 409 and list(errors) == ["form"]
    errors, status = page_refusal(ValidationError({"code": ["Missing data for required field."]}))
    assert status == 422 and list(errors) == ["code"]
