"""An anonymous report's stored times are coarsened to the hour; its facts are checked against the real time."""
from datetime import datetime, timedelta, timezone


def test_an_event_of_a_few_minutes_ago_is_not_in_the_future_of_the_coarsened_hour(hospital, report_body):
    from qcflow.core.actors import Actor
    from qcflow.events.services import file_report

    now = datetime(2026, 3, 2, 2, 50, tzinfo=timezone.utc)  # 10:50 in Shanghai; coarsened: 10:00
    body = report_body(occurred_at=now - timedelta(minutes=20), discovered_at=now - timedelta(minutes=10))
    event, code = file_report(body, mode="anonymous", actor=Actor.anonymous(), now=now)
    assert code and event.state == "submitted" and event.submitted_at == datetime(2026, 3, 2, 2, tzinfo=timezone.utc)
