"""Z6: exports and PDFs are limited per user, in the database, so the limit holds across workers."""
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
import time_machine

from tests.conftest import login, make_app

FEB = {"from": "2026-02-01", "to": "2026-02-28", "lang": "en"}


@pytest.fixture
def limits(app):
    app.config["RATE_LIMITS"] = {"export": (3, 60), "pdf": (1, 60)}


def get(client, path, **query) -> int:
    """The status of a download, read to its end (exports stream)."""
    response = client.get(path, query_string=query or FEB)
    response.get_data()
    response.close()
    return response.status_code


def hits(app) -> int:
    from qcflow.auth.models import RateLimitHit
    from qcflow.extensions import db

    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(RateLimitHit))


def test_a_user_gets_429_after_the_hourly_export_limit_and_refusals_are_not_counted(app, clients, limits):
    quality = clients("quality")
    statuses = [get(quality, f"/api/v1/exports/events.{fmt}") for fmt in ("csv", "xlsx", "csv", "xlsx", "csv")]
    assert statuses == [200, 200, 200, 429, 429]
    refused = quality.get("/api/v1/exports/followup.csv", query_string=FEB)
    assert refused.status_code == 429
    body = refused.get_json()
    assert body["code"] == "too_many_requests"
    assert "limit of 3 downloads" in body["message"] and "60 minutes" in body["message"]
    assert hits(app) == 3  # refused attempts are not kept: waiting an hour is enough


def test_the_limit_is_per_user_and_per_kind(app, clients, limits):
    quality = clients("quality")
    for _ in range(3):
        assert get(quality, "/api/v1/exports/events.csv") == 200
    assert get(quality, "/api/v1/exports/events.csv") == 429
    assert get(clients("head"), "/api/v1/exports/events.csv") == 200
    assert get(quality, "/api/v1/reports/monthly.pdf", month="2026-02") == 200
    assert get(quality, "/api/v1/reports/monthly.pdf", month="2026-02") == 429


def test_invalid_requests_use_up_nothing(app, clients, limits):
    quality = clients("quality")
    for _ in range(5):
        assert get(quality, "/api/v1/exports/events.csv", **{"from": "2026-02-30"}) == 422
    assert hits(app) == 0
    assert get(quality, "/api/v1/exports/events.csv") == 200


def test_the_limit_holds_across_workers(app, clients, limits, database_url, tmp_path):
    """A second app on the same database stands for another gunicorn worker or host."""
    for _ in range(3):
        assert get(clients("quality"), "/api/v1/exports/events.csv") == 200
    other_worker = make_app(database_url, str(tmp_path / "worker2"), RATE_LIMITS={"export": (3, 60), "pdf": (1, 60)})
    client = other_worker.test_client()
    login(client, "quality")
    assert get(client, "/api/v1/exports/events.csv") == 429


def test_uses_older_than_the_window_no_longer_count_and_are_purged(app, clients, hospital, limits):
    for _ in range(3):
        assert get(clients("quality"), "/api/v1/exports/events.csv") == 200
    later = datetime.now(timezone.utc) + timedelta(minutes=61)
    with time_machine.travel(later, tick=False):
        client = app.test_client()
        login(client, "quality")
        assert get(client, "/api/v1/exports/events.csv") == 200
    from qcflow.auth.jobs import purge_expired_sessions
    from qcflow.extensions import db

    with app.app_context():
        purge_expired_sessions(later + timedelta(days=1, minutes=-30))
        db.session.commit()
    assert hits(app) == 1  # the three old uses are gone, the recent one is kept


def test_every_download_route_is_limited(app):
    """Every PDF and export route carries a limit: a new one that forgets it fails here. The CSV templates of
    the intake hold no record (a header and an example row), so nothing is to be limited there."""
    holds_no_record = {"/admin/reference/<kind>/template.csv"}
    downloads = {rule.rule: getattr(app.view_functions[rule.endpoint], "rate_limit_bucket", None)
                 for rule in app.url_map.iter_rules()
                 if rule.rule.endswith((".pdf", ".csv", ".xlsx")) and rule.rule not in holds_no_record}
    assert len(downloads) >= 7
    assert {rule: bucket for rule, bucket in downloads.items() if bucket not in ("pdf", "export")} == {}
