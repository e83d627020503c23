"""What a hospital queues for its centre: a month's values (approved reports only, computed and survival values),
a new version when they change, nothing before the deadline, archived forms under their revision."""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from qcflow.core.periods import add_months
from qcflow.region import protocol
from tests.conftest import make_app

#: Shanghai 2026-04-12 09:30: March's deadline (the 10th) has passed.
NOW = datetime(2026, 4, 12, 1, 30, tzinfo=timezone.utc)
JANUARY, FEBRUARY, MARCH = date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1)


@pytest.fixture
def hospital_layout():
    departments = {"surgery": {"code": "GS", "name": "普通外科"},
                   "qc": {"code": "QC", "name": "质控办", "kind": "functional"}}
    people = {"nurse": ("nurse", "nurse", "surgery"), "head": ("head", "dept_head", "surgery"),
              "quality": ("quality", "quality", "qc"), "admin": ("admin", "admin", "qc")}
    return departments, people


def sender_config(tmp_path, centre_key, url="http://127.0.0.1:9") -> dict:
    """A hospital set up to send: its own key on disk, the centre's URL and public key."""
    own = tmp_path / "own-key.pem"
    if not own.exists():
        protocol.write_private_key(str(own), protocol.generate_key())
    return {"HOSPITAL_CODE": "H001", "REGION_CENTRE_URL": url, "REGION_KEY_FILE": str(own),
            "REGION_CENTRE_KEY": protocol.public_key_text(centre_key), "REGION_SEND_FROM": "2026-01",
            "REGION_TIMEOUT_SECONDS": 1}


@pytest.fixture
def centre_key():
    return protocol.generate_key()


@pytest.fixture
def app(database_url, tmp_path, centre_key):
    return make_app(database_url, str(tmp_path), **sender_config(tmp_path, centre_key))


def units() -> dict[str, str]:
    from qcflow.indicators import catalogue

    return {e.code: e.unit for e in catalogue.entries(include_local=False)}


def outbox_rows():
    from qcflow.extensions import db
    from qcflow.region.models import RegionOutbox

    return list(db.session.scalars(sa.select(RegionOutbox).order_by(RegionOutbox.id)))


def report(hospital, code, month, numerator, denominator, *, approve=True, at=None):
    """Surgery reports a value; the quality office approves it unless told not to."""
    from qcflow.core.actors import Actor
    from qcflow.indicators import reporting

    following = add_months(month, 1)
    at = at or datetime(following.year, following.month, 3, 2, tzinfo=timezone.utc)
    value, _status = reporting.submit(code, month, hospital["surgery"].id, actor=Actor.for_user(hospital["head"]),
                                      now=at, numerator=numerator, denominator=denominator)
    if approve:
        reporting.decide(value, "approve", actor=Actor.for_user(hospital["quality"]), now=at,
                         expected_version=value.version)
    return value


@pytest.fixture
def pain_reported(hospital):
    from qcflow.extensions import db
    from qcflow.indicators.models import IndicatorSetup

    db.session.add(IndicatorSetup(code="pain_assessment_rate", method="reported", department_id=hospital["surgery"].id,
                                  updated_at=NOW, updated_by="system:test"))
    db.session.commit()
    return hospital


def sent_value(row, code):
    return next((v for v in json.loads(row.document)["values"] if v["code"] == code), None)


def queue(now=NOW):
    from qcflow.core.actors import Actor
    from qcflow.extensions import db
    from qcflow.region import outbox

    rows = outbox.queue_due(actor=Actor.system("region.queue"), now=now)
    db.session.commit()
    return rows


def test_each_due_month_is_queued_once_as_version_one_and_its_values_pass_the_centres_check(pain_reported):
    from qcflow.core.audit import AuditEntry
    from qcflow.extensions import db

    report(pain_reported, "pain_assessment_rate", FEBRUARY, 171, 180)
    rows = queue()
    assert [(r.kind, r.period, r.revision, r.state) for r in rows] == [
        ("month", "2026-01", 1, "queued"), ("month", "2026-02", 1, "queued"), ("month", "2026-03", 1, "queued")]
    february = rows[1]
    document = json.loads(february.document)
    assert document["schema"] == protocol.MONTH_SCHEMA and document["month"] == "2026-02"
    assert february.digest == protocol.digest(document)
    stored, errors = protocol.month_value_errors(document, units())
    assert errors == {} and len(stored) == len(document["values"]) > 1
    assert sent_value(february, "pain_assessment_rate") == {
        "code": "pain_assessment_rate", "unit": "percent", "numerator": 171, "denominator": 180,
        "value": pytest.approx(95.0)}
    # A month without the report sends no value for it (not a zero).
    assert sent_value(rows[0], "pain_assessment_rate") is None
    # Every value of a unit that is not a rate goes without parts.
    assert all(v["numerator"] is None and v["denominator"] is None for v in document["values"]
               if v["unit"] not in ("percent", "permille", "per100"))
    actions = db.session.scalars(sa.select(AuditEntry.action).where(AuditEntry.object_type == "region_outbox"))
    assert list(actions).count("region_outbox.queue") == 3
    assert queue() == []
    assert len(outbox_rows()) == 3


def test_values_awaiting_approval_are_not_sent_and_approving_one_later_queues_version_two(pain_reported):
    from qcflow.core.actors import Actor
    from qcflow.indicators import reporting

    waiting = report(pain_reported, "pain_assessment_rate", MARCH, 90, 100, approve=False)
    first = {r.period: r for r in queue()}
    assert sent_value(first["2026-03"], "pain_assessment_rate") is None
    reporting.decide(waiting, "approve", actor=Actor.for_user(pain_reported["quality"]), now=NOW,
                     expected_version=waiting.version)
    later = queue(NOW.replace(hour=5))
    assert [(r.period, r.revision) for r in later] == [("2026-03", 2)]
    assert sent_value(later[0], "pain_assessment_rate")["numerator"] == 90
    # Version 1 stays as it was queued.
    assert sent_value(first["2026-03"], "pain_assessment_rate") is None


def test_a_correction_after_approval_queues_the_next_version(pain_reported):
    from qcflow.core.actors import Actor
    from qcflow.extensions import db
    from qcflow.indicators import reporting

    value = report(pain_reported, "pain_assessment_rate", FEBRUARY, 150, 160)
    queue()
    reporting.decide(value, "reopen", actor=Actor.for_user(pain_reported["quality"]), now=NOW,
                     expected_version=value.version, reason="分母有误")
    db.session.commit()
    reopened = queue(NOW.replace(hour=3))
    # Re-opened: the value is no longer approved, so the month's next version leaves it out.
    assert [(r.period, r.revision) for r in reopened] == [("2026-02", 2)]
    assert sent_value(reopened[0], "pain_assessment_rate") is None
    corrected, _status = reporting.submit("pain_assessment_rate", FEBRUARY, pain_reported["surgery"].id,
                                          numerator=150, denominator=170, actor=Actor.for_user(pain_reported["head"]),
                                          now=NOW.replace(hour=4), expected_version=value.version)
    reporting.decide(corrected, "approve", actor=Actor.for_user(pain_reported["quality"]), now=NOW.replace(hour=4),
                     expected_version=corrected.version)
    db.session.commit()
    third = queue(NOW.replace(hour=5))
    assert [(r.period, r.revision) for r in third] == [("2026-02", 3)]
    assert sent_value(third[0], "pain_assessment_rate")["denominator"] == 170


def test_a_month_is_not_queued_before_its_reporting_deadline_has_passed(hospital):
    on_deadline = datetime(2026, 4, 10, 8, tzinfo=timezone.utc)
    assert [r.period for r in queue(on_deadline)] == ["2026-01", "2026-02"]
    assert [r.period for r in queue(datetime(2026, 4, 10, 17, tzinfo=timezone.utc))] == ["2026-03"]


def test_an_archived_form_is_queued_under_its_own_revision_with_its_json_twin(hospital):
    from qcflow.core.actors import Actor
    from qcflow.extensions import db
    from qcflow.indicators import forms

    quality = Actor.for_user(hospital["quality"])
    form = forms.generate_form("henan", "quarterly", 2026, 1, actor=quality, now=NOW)
    db.session.commit()
    rows = [r for r in queue() if r.kind != "month"]
    assert [(r.kind, r.period, r.revision) for r in rows] == [("quarterly_form", "2026-Q1", 1)]
    assert json.loads(rows[0].document) == json.loads(form.snapshot)
    forms.generate_form("henan", "quarterly", 2026, 1, actor=quality, now=NOW.replace(hour=2))
    db.session.commit()
    assert [(r.kind, r.period, r.revision) for r in queue(NOW.replace(hour=3))] == [("quarterly_form", "2026-Q1", 2)]


def test_nothing_is_queued_without_the_centres_address_or_the_hospitals_code(app, hospital):
    from qcflow.region import jobs

    app.config["HOSPITAL_CODE"] = None
    assert "HOSPITAL_CODE" in jobs.queue_submissions(NOW)
    assert outbox_rows() == []
    app.config["HOSPITAL_CODE"], app.config["REGION_CENTRE_URL"] = "H001", None
    assert "REGION_CENTRE_URL" in jobs.queue_submissions(NOW)
    assert outbox_rows() == []
    app.config["REGION_CENTRE_URL"] = "http://127.0.0.1:9"
    assert "queued month 2026-01 v1" in jobs.queue_submissions(NOW)


def test_the_jobs_do_nothing_on_a_centre(centre_app):
    from qcflow.region import jobs

    with centre_app.app_context():
        assert "centre" in jobs.queue_submissions(NOW)
        assert "centre" in jobs.send_submissions(NOW)


def test_the_jobs_are_scheduled():
    from qcflow.scheduling.jobs import find_job

    assert find_job("region.queue_submissions").trigger_args == {"hour": 3, "minute": 30}
    assert find_job("region.send_submissions").trigger_args == {"minutes": 1}


def test_a_real_month_of_the_demo_data_is_accepted_by_the_centres_check(ctx):
    from qcflow.core.periods import add_months, month_start
    from qcflow.core.time import now, today
    from qcflow.demo import load_demo
    from qcflow.extensions import db
    from qcflow.region import outbox

    at = now()
    load_demo(now=at)
    db.session.commit()
    month = add_months(month_start(today(at)), -2)
    document = outbox.month_document(month, now=at)
    stored, errors = protocol.month_value_errors(document, units())
    assert errors == {}
    with_parts = [v for v in document["values"] if v["denominator"]]
    assert with_parts and len(stored) == len(document["values"])
    assert "pain_assessment_rate" in {v["code"] for v in with_parts}


def test_a_month_without_any_value_is_never_queued(hospital, monkeypatch):
    """Found by review: an empty month counted as sent at the centre and stopped its reminders."""
    from qcflow.core.actors import Actor
    from qcflow.core.errors import Unprocessable
    from qcflow.region import outbox

    monkeypatch.setattr(outbox, "month_values", lambda month, *, now: [])
    assert queue() == [] and outbox_rows() == []
    with pytest.raises(Unprocessable):
        outbox.check_month(FEBRUARY, actor=Actor.system("region.queue"), now=NOW)


def test_a_value_the_centre_would_refuse_is_held_back_with_its_reason_not_sent(hospital, monkeypatch):
    """A per-100 rate over 100 (more adverse events than discharges: a broken count) is refused by the centre; the
    hospital holds its month back, named on its submissions, instead of sending it or losing it."""
    from qcflow.region import outbox

    absurd = {"code": "ae_per_100_discharges", "unit": "per100", "numerator": 900, "denominator": 3, "value": 30000.0}
    monkeypatch.setattr(outbox, "month_values", lambda month, *, now: [absurd])
    rows = queue()
    assert rows and all(r.state == "queued" and r.next_attempt_at is None for r in rows)
    assert all(r.last_error.startswith("held: ae_per_100_discharges:") for r in rows)
    assert outbox.due_rows(NOW + timedelta(days=1)) == []
    assert outbox.error_parts(rows[0].last_error)[0] == "held"
    assert queue() == []  # unchanged: not queued again every night
    from tests.region.test_sending import office_told

    assert office_told() == [("region.held", f"/region/submissions/{r.id}") for r in rows]  # told once each
