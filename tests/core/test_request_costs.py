"""What the per-request shortcuts keep: a request that did not commit leaves nothing, a read keeps
PostgreSQL's prepared statements, the orjson answers are the JSON Flask's encoder gave (with dates as
the schemas write them), and what the fast paths read and dump is what the slow ones gave."""
import json
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa
from flask_babel import lazy_gettext

from qcflow.core import audit
from qcflow.core.db import end_read_only_transaction
from qcflow.extensions import db


def departments(app) -> int:
    with app.app_context():
        return db.session.scalar(sa.text("SELECT count(*) FROM department"))


def test_a_request_that_only_read_ends_its_transaction_with_commit(app):
    with app.app_context():
        db.session.execute(sa.text("SELECT count(*) FROM department")).all()
        assert db.session().in_transaction()
        end_read_only_transaction()
        assert not db.session().in_transaction()


@pytest.mark.parametrize("how", ["executed", "added, not flushed", "flushed", "audited"])
def test_a_request_that_wrote_but_did_not_commit_leaves_nothing(app, how):
    """The teardown commits only what read nothing but reads: written, pending or flushed rows are
    rolled back when the session is removed, as for a failed request."""
    before = departments(app)
    from qcflow.auth.models import Department

    with app.app_context():
        db.session.execute(sa.text("SELECT 1")).all()
        at = datetime(2026, 3, 2, tzinfo=timezone.utc)
        if how == "audited":
            audit.record("user:1", "test.not_committed", "thing", 1, at)
        elif how == "executed":
            db.session.execute(sa.insert(Department).values(code="X1", name="甲", kind="clinical", created_at=at,
                                                            version=1))
        else:
            db.session.add(Department(code="X1", name="甲", kind="clinical", created_at=at))
            if how == "flushed":
                db.session.flush()
        end_read_only_transaction()
    assert departments(app) == before
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(audit.AuditEntry)) == 0


def test_an_error_ends_the_transaction_with_rollback(app):
    from qcflow.auth.models import Department

    before = departments(app)
    with app.app_context():
        db.session.add(Department(code="X2", name="乙", kind="clinical", created_at=datetime.now(timezone.utc)))
        db.session.flush()
        end_read_only_transaction(RuntimeError("the view failed"))
    assert departments(app) == before


def test_reads_keep_postgresqls_prepared_statements(app, client, is_postgres):
    """psycopg forgets its prepared statements on every ROLLBACK; a GET used to end with one, so
    PostgreSQL planned the same statements afresh on every request."""
    if not is_postgres:
        pytest.skip("PostgreSQL only: SQLite has no prepared statements across requests")
    for _ in range(7):
        assert client.get("/healthz").status_code == 200
    with app.app_context():
        prepared = db.session.scalars(sa.text("SELECT statement FROM pg_prepared_statements")).all()
    assert "SELECT 1" in prepared


@dataclass
class Point:
    x: int
    label: str


def test_api_answers_are_the_json_flasks_encoder_gave_with_dates_as_the_schemas_write_them(app):
    from marshmallow import fields

    when = datetime(2026, 3, 2, 1, 30, 5, 120, tzinfo=timezone.utc)
    value = {"b": 1, "a": "中文 ✓", "amount": Decimal("1.50"), "point": Point(1, "p"),
             "text": lazy_gettext("Not found"), "nested": [{"z": None, "y": True, "x": 1.5}]}
    dates = {"when": when, "whole_second": when.replace(microsecond=0), "day": date(2026, 3, 2)}
    with app.test_request_context():
        fast = json.loads(app.json.response({**value, **dates}).get_data())
        standard = json.loads(app.json.dumps(value, separators=(",", ":")))
    assert {k: fast[k] for k in value} == standard
    assert list(fast) == sorted({**value, **dates})
    assert fast["when"] == fields.DateTime().serialize("v", {"v": when}) == "2026-03-02T01:30:05.000120+00:00"
    assert fast["whole_second"] == "2026-03-02T01:30:05+00:00"
    assert fast["day"] == fields.Date().serialize("day", dates) == "2026-03-02"
    with app.test_request_context():
        assert "中文 ✓".encode() in app.json.response(value).get_data()


def test_a_body_built_in_its_schemas_form_is_not_dumped_again():
    from marshmallow import fields

    from qcflow.core.schemas import BaseSchema, Dumped

    class Out(BaseSchema):
        n = fields.Integer()

    body = Dumped(n=1)
    assert Out().dump(body) is body
    assert Out().dump({"n": "1", "extra": "dropped"}) == {"n": 1}


def test_what_orjson_refuses_is_still_encoded(app):
    value = {"big": 2 ** 70, "small": 1}
    with app.test_request_context():
        body = app.json.response(value).get_data()
    assert json.loads(body) == value

