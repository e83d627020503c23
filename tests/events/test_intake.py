"""Filing reports: validation, drafts, idempotency, and anonymity (A1–A5, A8, A9)."""
import logging
import re

import pytest
import sqlalchemy as sa

from tests.conftest import PG_URL

SENTINEL_UA = "SentinelAgent/9.9 (tracking-me)"
SENTINEL_IP = "203.0.113.77"


def rows(model, *where):
    from qcflow.extensions import db

    db.session.expire_all()
    return db.session.scalars(sa.select(model).where(*where)).all()


def all_text_in_database():
    """Every value of every column of every table, as text (to look for leaks)."""
    from qcflow.core.db import Base
    from qcflow.extensions import db

    values = []
    for table in Base.metadata.sorted_tables:
        for row in db.session.execute(sa.select(table)):
            values.extend(str(v) for v in row if v is not None)
    return "\n".join(values)


class CaptureAll(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []

    def emit(self, record):
        self.lines.append(self.format(record) + repr(record.__dict__))


@pytest.fixture
def every_log_line():
    handler, root = CaptureAll(), logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    for name in ("werkzeug", "qcflow", "sqlalchemy.engine", "flask.app"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    yield handler.lines
    root.removeHandler(handler)
    root.setLevel(old_level)
    for name in ("werkzeug", "qcflow", "sqlalchemy.engine", "flask.app"):
        logging.getLogger(name).setLevel(logging.NOTSET)


def test_anonymous_api_report_stores_no_identity_and_returns_a_receipt_once(clients, report_body, every_log_line):
    from qcflow.core.audit import AnonymousAuditEntry, AuditEntry
    from qcflow.events.models import AdverseEvent

    client = clients("anonymous")
    response = client.post("/api/v1/events", json=report_body(),
                           headers={"User-Agent": SENTINEL_UA, "X-Forwarded-For": SENTINEL_IP},
                           environ_base={"REMOTE_ADDR": "198.51.100.23"})
    assert response.status_code == 201, response.json
    assert "Set-Cookie" not in response.headers
    code = response.json["receipt_code"]
    assert len(code.replace("-", "")) == 26  # 26 symbols of 31 ≈ 129 bits
    [event] = rows(AdverseEvent)
    assert event.mode == "anonymous" and event.reporter_user_id is None
    assert event.receipt_hash and code not in event.receipt_hash
    # A5: times coarsened to the hour, everywhere this report touched.
    assert event.created_at.minute == event.created_at.second == event.created_at.microsecond == 0
    assert event.submitted_at.minute == 0
    assert rows(AuditEntry, AuditEntry.object_id == str(event.id)) == []  # its own chain: no position among named ones
    entries = rows(AnonymousAuditEntry, AnonymousAuditEntry.object_id == str(event.id))
    assert entries and all(e.actor == "anonymous" and e.at.minute == e.at.second == 0 for e in entries)
    # A1/A9: nothing identifying and not the code itself, in any table.
    stored = all_text_in_database()
    for secret in (SENTINEL_UA, SENTINEL_IP, "198.51.100.23", code, code.replace("-", "")):
        assert secret not in stored
    # A2: no log line on the submit route holds the client's address or agent.
    logged = "\n".join(every_log_line)
    for secret in (SENTINEL_UA, SENTINEL_IP, "198.51.100.23"):
        assert secret not in logged


def test_anonymous_form_sets_no_cookie_and_shows_the_code_once(clients, hospital, report_body):
    from qcflow.events.models import AdverseEvent

    client = clients("anonymous")
    page = client.get("/report")
    assert page.status_code == 200 and "Set-Cookie" not in page.headers
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    form = {**report_body(occurred_at="2026-03-01T09:30", discovered_at="2026-03-01T10:00"),
            "csrf_token": token, "mode": "anonymous", "wants_feedback": "1"}
    response = client.post("/report", data=form, headers={"User-Agent": SENTINEL_UA})
    assert response.status_code == 200 and "Set-Cookie" not in response.headers
    html = response.get_data(as_text=True)
    code = re.search(r'data-code="([^"]+)"', html).group(1)
    assert "无法替您查到" in html or "can look it up for you" in html
    [event] = rows(AdverseEvent)
    assert event.occurred_at.isoformat() == "2026-03-01T01:30:00+00:00"  # local 09:30 in Shanghai
    lookup = client.post("/api/v1/receipts/lookup", json={"receipt_code": code})
    assert lookup.status_code == 200 and lookup.json["reference"] == event.reference


def test_form_without_a_valid_token_is_refused_and_stores_nothing(clients, report_body):
    from qcflow.events.models import AdverseEvent

    response = clients("anonymous").post("/report", data={**report_body(), "csrf_token": "1.2.forged"})
    assert response.status_code == 400
    assert rows(AdverseEvent) == []


def test_database_refuses_an_anonymous_row_with_a_reporter(ctx, hospital, event_now):
    from qcflow.events.models import AdverseEvent
    from qcflow.extensions import db

    db.session.add(AdverseEvent(mode="anonymous", reporter_user_id=hospital["clinician"].id, created_at=event_now))
    with pytest.raises(sa.exc.IntegrityError):
        db.session.flush()
    db.session.rollback()


def test_missing_and_invalid_fields_are_422_naming_each_field_in_chinese(clients, report_body):
    from qcflow.events.models import AdverseEvent

    body = report_body(reporter_grade="V", occurred_at="yesterday")
    del body["location"]
    response = clients("anonymous").post("/api/v1/events", json={**body, "colour": "red"})
    assert response.status_code == 422
    errors = response.json["errors"]
    assert set(errors) == {"reporter_grade", "occurred_at", "colour"}
    assert errors["reporter_grade"] == ["请选择以下之一：I, II, III, IV。"]
    assert rows(AdverseEvent) == []
    english = clients("anonymous").post("/api/v1/events?lang=en", json={**body})
    assert english.json["errors"]["reporter_grade"] == ["Choose one of: I, II, III, IV."]


def test_missing_required_fields_block_submission(clients, report_body):
    body = report_body()
    del body["location"], body["description"]
    response = clients("anonymous").post("/api/v1/events", json=body)
    assert response.status_code == 422 and response.json["code"] == "guard_failed"
    assert "location" in response.json["message"] and "description" in response.json["message"]


@pytest.mark.parametrize("field,value,message", [
    ("occurred_at", "2099-01-01T00:00:00+08:00", "未来"),
    ("ncc_merp", "C", "用药"),
    ("subcategory_code", "wrong_site", "子类"),
    ("department_id", 9999, "科室"),
])
def test_rules_across_fields_are_422(clients, report_body, field, value, message):
    from qcflow.events.models import AdverseEvent

    body = report_body(**{field: value})
    if field == "ncc_merp":
        body["category_code"], body["subcategory_code"] = "fall", None
    response = clients("anonymous").post("/api/v1/events", json=body)
    assert response.status_code == 422 and field in response.json["errors"]
    assert message in response.json["errors"][field][0]
    assert rows(AdverseEvent) == []


def test_idempotency_key_makes_a_retry_harmless(clients, report_body):
    from qcflow.events.models import AdverseEvent

    client = clients("anonymous")
    first = client.post("/api/v1/events", json=report_body(), headers={"Idempotency-Key": "client-42"})
    again = client.post("/api/v1/events", json=report_body(), headers={"Idempotency-Key": "client-42"})
    assert first.status_code == 201 and again.status_code == 409
    assert "event_id" not in again.json and "receipt_code" not in again.json  # an anonymous sender proves nothing
    assert len(rows(AdverseEvent)) == 1


def test_named_report_needs_a_login(clients, report_body):
    response = clients("anonymous").post("/api/v1/events", json={**report_body(), "mode": "named"})
    assert response.status_code == 422 and "mode" in response.json["errors"]


def test_named_drafts_then_submit_and_my_reports(clients, hospital, report_body, act):
    doctor = clients("clinician")
    draft = doctor.post("/api/v1/events", json={"mode": "named", "submit": False, "category_code": "fall"},
                        headers={"X-CSRFToken": csrf(doctor)})
    assert draft.status_code == 201 and draft.json["state"] == "draft" and draft.json["reference"] is None
    mine = doctor.get("/api/v1/events/mine").json["items"]
    assert [e["state"] for e in mine] == ["draft"]
    incomplete = act(doctor, draft.json["id"], "submit", 1, headers={"X-CSRFToken": csrf(doctor)})
    assert incomplete.status_code == 422
    body = report_body(category_code="fall", subcategory_code=None, ncc_merp=None)
    updated = doctor.patch(f"/api/v1/events/{draft.json['id']}", json={**body, "version": draft.json["version"]},
                           headers={"X-CSRFToken": csrf(doctor)})
    assert updated.status_code == 200 and updated.json["location"] == "5病区护士站"
    assert "5病区护士站" in doctor.get(f"/report/named?draft={draft.json['id']}").get_data(as_text=True)
    submitted = act(doctor, draft.json["id"], "submit", updated.json["version"], headers={"X-CSRFToken": csrf(doctor)})
    assert submitted.status_code == 200 and submitted.json["state"] == "submitted"
    assert submitted.json["reference"].startswith("AE-")
    other = clients("nurse")
    assert other.patch(f"/api/v1/events/{draft.json['id']}", json={**body, "version": updated.json["version"]},
                       headers={"X-CSRFToken": csrf(other)}).status_code == 404


def test_a_stale_or_missing_version_cannot_overwrite_a_draft(clients, report_body):
    """Two tabs on one draft: the second save, from the version it read, must not undo the first."""
    from qcflow.events.models import AdverseEvent

    doctor = clients("clinician")
    headers = {"X-CSRFToken": csrf(doctor)}
    draft = doctor.post("/api/v1/events", json={"mode": "named", "submit": False, "category_code": "fall"},
                        headers=headers).json
    path = f"/api/v1/events/{draft['id']}"
    first = doctor.patch(path, json={"location": "3病区", "version": draft["version"]}, headers=headers)
    assert first.status_code == 200
    stale = doctor.patch(path, json={"location": "急诊", "version": draft["version"]}, headers=headers)
    assert stale.status_code == 409 and stale.json["current_version"] == first.json["version"]
    missing = doctor.patch(path, json={"location": "急诊"}, headers=headers)
    assert missing.status_code == 422 and "version" in missing.json["errors"]
    (row,) = rows(AdverseEvent)
    assert row.location == "3病区"


def test_a_stale_draft_page_is_refused(clients, report_body):
    from qcflow.events.models import AdverseEvent

    doctor = clients("clinician")
    headers = {"X-CSRFToken": csrf(doctor)}
    draft = doctor.post("/api/v1/events", json={"mode": "named", "submit": False, "category_code": "fall"},
                        headers=headers).json
    page = doctor.get(f"/report/named?draft={draft['id']}").get_data(as_text=True)
    form_html = page[:page.index('name="draft_id"')]  # the logged-in form's token
    token = re.findall(r'name="csrf_token" value="([^"]+)"', form_html)[-1]
    version = re.search(r'name="version" value="([^"]+)"', page).group(1)
    form = {"csrf_token": token, "mode": "named", "draft_id": str(draft["id"]), "version": version,
            "category_code": "fall", "save_draft": "1"}
    assert doctor.patch(f"/api/v1/events/{draft['id']}", json={"location": "3病区", "version": draft["version"]},
                        headers=headers).status_code == 200
    stale = doctor.post("/report/named", data={**form, "location": "急诊"})
    assert stale.status_code == 409, stale.get_data(as_text=True)[-3000:]
    (row,) = rows(AdverseEvent)
    assert row.location == "3病区"


def csrf(client):
    from tests.conftest import csrf_from

    return csrf_from(client, "/account")


def test_named_report_is_listed_for_its_reporter_only(clients, hospital, report_body):
    doctor = clients("clinician")
    filed = doctor.post("/api/v1/events", json={**report_body(), "mode": "named"}, headers={"X-CSRFToken": csrf(doctor)})
    assert filed.status_code == 201 and "receipt_code" not in filed.json
    assert "AE-" in doctor.get("/my/reports").get_data(as_text=True)
    assert clients("nurse").get("/api/v1/events/mine").json["items"] == []


def test_no_api_returns_the_reporter_to_anyone(clients, hospital, report_body):
    doctor = clients("clinician")
    for mode in ("named", "confidential"):
        doctor.post("/api/v1/events", json={**report_body(), "mode": mode}, headers={"X-CSRFToken": csrf(doctor)})
    clients("anonymous").post("/api/v1/events", json=report_body())
    for role in ("quality", "head"):
        listing = clients(role).get("/api/v1/events").json["items"]
        assert len(listing) == 3
        for item in listing:
            assert not {k for k in item if "reporter_user" in k or k in ("reporter", "receipt_hash", "ip")}
            assert "张建国" not in str(item)
    assert clients("admin").get("/api/v1/events").status_code == 403


def test_confidential_reporter_is_shown_to_quality_only_and_each_read_is_audited(clients, hospital, report_body):
    from qcflow.core.audit import AuditEntry

    doctor = clients("clinician")
    event_id = doctor.post("/api/v1/events", json={**report_body(), "mode": "confidential"},
                           headers={"X-CSRFToken": csrf(doctor)}).json["id"]
    page = clients("quality").get(f"/events/{event_id}").get_data(as_text=True)
    assert "张建国" not in page  # not without asking
    assert rows(AuditEntry, AuditEntry.action == "event.read_reporter") == []
    shown = clients("quality").get(f"/events/{event_id}?show_reporter=1").get_data(as_text=True)
    assert "张建国" in shown
    [read] = rows(AuditEntry, AuditEntry.action == "event.read_reporter")
    assert read.actor == f"user:{hospital['quality'].id}" and read.object_id == str(event_id)
    head_page = clients("head").get(f"/events/{event_id}?show_reporter=1").get_data(as_text=True)
    assert "张建国" not in head_page
    assert len(rows(AuditEntry, AuditEntry.action == "event.read_reporter")) == 1


def test_department_head_sees_free_text_scrubbed(clients, hospital, report_body):
    clients("anonymous").post("/api/v1/events", json=report_body(
        description="张建国给患者加错剂量，家属电话13812345678，住院号：ZY20260001"))
    [item] = clients("head").get("/api/v1/events").json["items"]
    assert "13812345678" not in item["description"] and "ZY20260001" not in item["description"]
    assert "张建国" not in item["description"]
    [full] = clients("quality").get("/api/v1/events").json["items"]
    assert "13812345678" in full["description"]  # the quality office reads the original
