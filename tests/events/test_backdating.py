"""A paper report typed in later: its submission time is when it was handed in (the month it counts in),
the recording time is kept beside it, the triage clock runs from the recording, and who may give the
time and how far back are checked (422 on `submitted_at`)."""
import json
from datetime import date, timedelta, timezone

import pytest
import sqlalchemy as sa
import time_machine

from tests.conftest import sh

#: Thursday 2 April 2026, 10:00 in Shanghai: the paper reports of late March are typed in.
TYPED = sh(2026, 4, 2, 10, 0)
#: The evening of 31 March, when the paper report was handed in.
HANDED_IN = sh(2026, 3, 31, 17, 20)


@pytest.fixture
def typing_day(hospital):
    with time_machine.travel(TYPED, tick=False):
        yield TYPED


@pytest.fixture
def paper(report_body):
    """A report of an event of 31 March, discovered that afternoon."""
    return report_body(occurred_at="2026-03-31T14:00:00+08:00", discovered_at="2026-03-31T15:00:00+08:00")


def utc(at):
    return at.astimezone(timezone.utc).isoformat()


def event(event_id):
    from qcflow.events.models import AdverseEvent
    from qcflow.extensions import db

    db.session.expire_all()
    return db.session.get(AdverseEvent, event_id)


def test_the_reporter_gives_when_their_paper_report_was_handed_in(clients, typing_day, paper):
    from qcflow.core import periods
    from qcflow.core.audit import AuditEntry
    from qcflow.events import deadlines
    from qcflow.extensions import db
    from qcflow.indicators.definitions import reported_events

    doctor = clients("clinician")
    filed = doctor.post("/api/v1/events", headers=doctor.csrf,
                        json={**paper, "mode": "named", "submitted_at": HANDED_IN.isoformat()})
    assert filed.status_code == 201, filed.json
    row = event(filed.json["id"])
    assert (row.submitted_at, row.submitted_recorded_at) == (HANDED_IN, TYPED)
    assert row.reference.startswith("AE-2026-")
    # The office sees the report from when it was typed in: the triage clock starts there, not overdue at birth.
    assert row.triage_due_at == deadlines.triage_due("III", TYPED) > TYPED
    # It counts in March, when it was handed in, not in April, when it was typed.
    ids = lambda month: set(db.session.scalars(  # noqa: E731
        sa.select(reported_events(periods.month_period(month, TYPED)).subquery().c.id)))
    assert row.id in ids(date(2026, 3, 1)) and row.id not in ids(date(2026, 4, 1))
    entry = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "event.submit",
                                                          AuditEntry.object_id == str(row.id)))
    assert json.loads(entry.detail)["happened_at"] == utc(HANDED_IN)
    assert json.loads(entry.detail)["recorded_at"] == utc(TYPED) and entry.at == TYPED


def test_a_report_filed_now_has_one_time_and_no_backdating_in_its_audit(clients, typing_day, paper):
    from qcflow.core.audit import AuditEntry
    from qcflow.extensions import db

    doctor = clients("clinician")
    filed = doctor.post("/api/v1/events", headers=doctor.csrf, json={**paper, "mode": "named"})
    row = event(filed.json["id"])
    assert row.submitted_at == row.submitted_recorded_at == TYPED
    entry = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "event.submit"))
    assert "happened_at" not in json.loads(entry.detail)


@pytest.mark.parametrize("given, message", [
    (TYPED + timedelta(hours=1), "This time is in the future."),
    (sh(2026, 3, 20, 14, 30), "A report cannot be submitted before the event was discovered."),
    (sh(2026, 3, 25, 9, 0), "This time is more than 7 days ago: only the quality office may record it."),
])
def test_bounds_of_a_reporters_submission_time(clients, typing_day, report_body, given, message):
    from qcflow.events.models import AdverseEvent
    from qcflow.extensions import db

    doctor = clients("clinician")
    body = report_body(occurred_at="2026-03-20T14:00:00+08:00", discovered_at="2026-03-20T15:00:00+08:00")
    refused = doctor.post("/api/v1/events?lang=en", headers=doctor.csrf,
                          json={**body, "mode": "named", "submitted_at": given.isoformat()})
    assert refused.status_code == 422 and refused.json["errors"]["submitted_at"] == [message]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AdverseEvent)) == 0
    zh = doctor.post("/api/v1/events?lang=zh", headers=doctor.csrf,
                     json={**body, "mode": "named", "submitted_at": given.isoformat()})
    assert zh.json["errors"]["submitted_at"] != [message]  # said in Chinese


def test_the_quality_office_types_in_an_older_backlog(tokens, client, typing_day, report_body):
    old = report_body(occurred_at="2026-03-10T08:00:00+08:00", discovered_at="2026-03-10T09:00:00+08:00")
    handed_in = sh(2026, 3, 12, 11, 0)
    filed = client.post("/api/v1/events", headers=tokens("quality"),
                        json={**old, "mode": "named", "submitted_at": handed_in.isoformat()})
    assert filed.status_code == 201, filed.json
    assert event(filed.json["id"]).submitted_at == handed_in


def test_an_anonymous_paper_report_is_dated_by_the_quality_office_to_its_hour_only(tokens, client, typing_day, paper):
    filed = client.post("/api/v1/events", headers=tokens("quality"),
                        json={**paper, "mode": "anonymous", "submitted_at": HANDED_IN.isoformat()})
    assert filed.status_code == 201, filed.json
    row = event(filed.json["id"])
    assert row.reporter_user_id is None
    assert (row.submitted_at, row.submitted_recorded_at) == (sh(2026, 3, 31, 17, 0), sh(2026, 4, 2, 10, 0))


def test_nobody_else_dates_an_anonymous_report(client, typing_day, paper):
    from qcflow.events.models import AdverseEvent
    from qcflow.extensions import db

    refused = client.post("/api/v1/events?lang=en",
                          json={**paper, "mode": "anonymous", "submitted_at": HANDED_IN.isoformat()})
    assert refused.status_code == 422
    assert refused.json["errors"]["submitted_at"] == [
        "Only the quality office gives the submission time of an anonymous paper report."]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AdverseEvent)) == 0


def test_a_draft_takes_its_submission_time_when_submitted_not_when_saved(clients, typing_day, paper):
    doctor = clients("clinician")
    saved_with_time = doctor.post("/api/v1/events", headers=doctor.csrf,
                                  json={**paper, "mode": "named", "submit": False, "submitted_at": HANDED_IN.isoformat()})
    assert saved_with_time.status_code == 422 and "submitted_at" in saved_with_time.json["errors"]
    draft = doctor.post("/api/v1/events", headers=doctor.csrf, json={**paper, "mode": "named", "submit": False}).json
    submitted = doctor.post(f"/api/v1/events/{draft['id']}/transitions", headers=doctor.csrf,
                            json={"action": "submit", "version": draft["version"], "submitted_at": HANDED_IN.isoformat()})
    assert submitted.status_code == 200, submitted.json
    row = event(draft["id"])
    assert (row.submitted_at, row.submitted_recorded_at, row.state) == (HANDED_IN, TYPED, "submitted")


def test_anonymous_reports_are_announced_after_the_hour_they_were_recorded_in(ctx, hospital, report_body):
    """A backdated anonymous report's hour has long ended; its announcement still waits for the end of
    the hour it was typed in, like every other anonymous report of that hour."""
    from qcflow.core.actors import Actor
    from qcflow.events import services

    data = report_body(occurred_at=sh(2026, 3, 31, 14, 0), discovered_at=sh(2026, 3, 31, 15, 0),
                       submitted_at=HANDED_IN)
    data["department_id"] = hospital["surgery"].id
    quality = Actor.for_user(hospital["quality"])
    event_row, _ = services.file_report(data, mode="anonymous", actor=quality, now=sh(2026, 4, 2, 10, 20))
    assert services.announce_anonymous_reports(sh(2026, 4, 2, 10, 40)) == 0
    assert services.announce_anonymous_reports(sh(2026, 4, 2, 11, 5)) == 1
    assert event(event_row.id).is_announced


def test_the_named_form_takes_the_paper_time_and_the_case_page_shows_when_it_was_typed(clients, hospital, typing_day):
    from qcflow.events.models import AdverseEvent
    from qcflow.extensions import db
    from tests.conftest import csrf_from

    doctor = clients("clinician")
    form = doctor.get("/report/named?lang=en").get_data(as_text=True)
    assert 'name="submitted_at"' in form
    assert 'name="submitted_at"' not in clients("anonymous").get("/report?lang=en").get_data(as_text=True)
    filed = doctor.post("/report/named", data={
        "csrf_token": csrf_from(doctor, "/report/named"), "mode": "named", "category_code": "medication",
        "reporter_grade": "III", "care_stage": "medication", "occurred_at": "2026-03-31T14:00",
        "discovered_at": "2026-03-31T15:00", "location": "5病区", "description": "纸质报告补录。",
        "department_id": str(hospital["surgery"].id), "submitted_at": "2026-03-31T17:20"})
    assert filed.status_code == 302, filed.get_data(as_text=True)
    row = db.session.scalar(sa.select(AdverseEvent))
    assert (row.submitted_at, row.submitted_recorded_at) == (HANDED_IN, TYPED)
    quality = clients("quality")
    for lang, words in (("en", "recorded 2026-04-02 10:00"), ("zh", "录入于 2026-04-02 10:00")):
        page = quality.get(f"/events/{row.id}?lang={lang}").get_data(as_text=True)
        assert "2026-03-31 17:20" in page and words in page
