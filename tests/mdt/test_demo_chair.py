"""The demo's grade-4 discussion as the head of surgery finds it: one chair everywhere, under one name."""
import re

import pytest
import sqlalchemy as sa

from tests.conftest import csrf_from, login


@pytest.fixture
def demo_discussion(app):
    from qcflow.clinical.models import Operation
    from qcflow.core.time import now
    from qcflow.demo import load_demo
    from qcflow.extensions import db
    from qcflow.mdt.models import Discussion

    with app.app_context():
        load_demo(now=now())
        db.session.commit()
        operation = db.session.scalar(sa.select(Operation.id).where(Operation.his_id == "DEMO-O4"))
        return db.session.scalar(sa.select(Discussion.id).where(Discussion.operation_id == operation))


def test_the_demo_head_chairs_under_one_name_and_the_form_keeps_the_choice(app, demo_discussion):
    from qcflow.auth.models import User
    from qcflow.extensions import db
    from qcflow.mdt.models import Discussion

    client = app.test_client()
    assert login(client, "head", "demo-head-2025").status_code == 302
    base = f"/mdt/{demo_discussion}"
    csrf = csrf_from(client, base)
    with app.app_context():
        head = db.session.scalar(sa.select(User).where(User.username == "head"))
        head_id, head_name = head.id, head.display_name
        version = db.session.get(Discussion, demo_discussion).version
    saved = client.post(base + "/record", data={"csrf_token": csrf, "version": str(version),
                                                "chair_user_id": str(head_id)})
    assert saved.status_code == 302, saved.get_data(as_text=True)
    html = client.get(base).get_data(as_text=True)
    select = re.search(r'<select name="chair_user_id">.*?</select>', html, re.S).group(0)
    chosen = re.findall(r'<option value="(\d*)" selected>([^<]*)</option>', select)
    assert chosen and chosen[0][0] == str(head_id), select
    rows = re.search(r'id="participant-list".*?</table>', html, re.S).group(0)
    chair_rows = [row for row in re.findall(r"<tr.*?</tr>", rows, re.S) if ">主持人<" in row]
    assert len(chair_rows) == 1 and head_name in chair_rows[0], chair_rows
    assert "刘外科" not in html
