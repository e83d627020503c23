"""The centre receives hospitals' signed submissions: each refusal a signed 4xx with nothing stored, versions
kept with the newest current, every answer signed by the centre."""
from __future__ import annotations

import hashlib
import json
import threading
from datetime import date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from qcflow.core.actors import Actor
from qcflow.region import protocol

ADMIN = Actor.system("test")
PATH = "/api/v1/centre/submissions"
MONTH = "2026-03"
RATE = "cardiac_arrest_rosc_rate"  # percent
PERMILLE = "unplanned_reoperation_rate"
MINUTES = "emergency_response_time_mean"


@pytest.fixture
def app(centre_app):
    """Every test here runs against a centre installation."""
    return centre_app


@pytest.fixture
def centre_key(app):
    """The centre's own signing key, where keys.own_key() finds it."""
    from qcflow.region import keys

    key = protocol.generate_key()
    with app.app_context():
        protocol.write_private_key(keys.key_path(), key)
    return key


@pytest.fixture
def register(ctx):
    """Register a hospital with a fresh key; returns (code, private key)."""
    from qcflow.extensions import db
    from qcflow.region import registry

    def make(code="H001", level="tertiary", active=True):
        key = protocol.generate_key()
        row = registry.add_hospital({"code": code, "name": f"医院{code}", "level": level, "ownership": "public",
                                     "region": "郑州市", "public_key": protocol.public_key_text(key)},
                                    actor=ADMIN, now=datetime.now(timezone.utc))
        if not active:
            registry.set_active(row, False, row.version, actor=ADMIN, now=datetime.now(timezone.utc))
        db.session.commit()
        return code, key

    return make


def month_values(month=MONTH, **changes):
    values = [
        {"code": RATE, "unit": "percent", "numerator": 3, "denominator": 8, "value": 37.5},
        {"code": PERMILLE, "unit": "permille", "numerator": 2, "denominator": 1000, "value": 2.0},
        {"code": MINUTES, "unit": "minutes", "numerator": None, "denominator": None, "value": 12.5},
    ]
    for value in values:
        value.update(changes.get(value["code"], {}))
    return protocol.month_document(date.fromisoformat(month + "-01"), "henan", values)


def envelope(code, kind="month", period=MONTH, version=1, document=None, signed_at=None):
    document = month_values(period) if document is None else document
    return protocol.envelope(code, kind, period, version, document, signed_at or datetime.now(timezone.utc))


def post(client, body, key, code="H001", headers=None, language=None):
    sent = {"Content-Type": "application/json", protocol.HEADER_HOSPITAL: code,
            protocol.HEADER_SIGNATURE: protocol.sign(key, body) if key is not None else None}
    if language:
        sent["Accept-Language"] = language
    sent.update(headers or {})
    return client.post(PATH, data=body, headers={k: v for k, v in sent.items() if v is not None})


def signed_by(response, key) -> bool:
    return protocol.verify(protocol.public_key_text(key), response.get_data(),
                           response.headers.get(protocol.HEADER_SIGNATURE))


def counts(app) -> tuple[int, int, int]:
    from qcflow.core.audit import AuditEntry
    from qcflow.extensions import db
    from qcflow.region.models import RegionSubmission, RegionValue

    with app.app_context():
        tables = ((RegionSubmission, ()), (RegionValue, ()),
                  (AuditEntry, (AuditEntry.action == "region_submission.receive",)))
        return tuple(db.session.scalar(sa.select(sa.func.count()).select_from(table).where(*where))
                     for table, where in tables)


def test_a_signed_month_is_kept_with_its_values_audited_and_answered_with_a_signed_receipt(
        app, client, centre_key, register):
    from qcflow.core.audit import AuditEntry
    from qcflow.extensions import db
    from qcflow.region.models import RegionSubmission, RegionValue

    code, key = register()
    body = envelope(code)
    response = post(client, body, key)
    assert response.status_code == 201, response.get_data(as_text=True)
    assert signed_by(response, centre_key)
    receipt = response.json
    assert receipt["schema"] == protocol.RECEIPT_SCHEMA and receipt["hospital"] == code
    assert (receipt["kind"], receipt["period"], receipt["version"], receipt["values"], receipt["replaced"]) == (
        "month", MONTH, 1, 3, None)
    assert receipt["digest"] == json.loads(body)["digest"]
    assert "Set-Cookie" not in response.headers
    with app.app_context():
        row = db.session.get(RegionSubmission, receipt["submission"])
        assert row.is_current and row.starts_on == date(2026, 3, 1) and row.signature.startswith("ed25519=")
        values = {v.code: (v.numerator, v.denominator, v.value, v.is_current, v.month_on)
                  for v in db.session.scalars(sa.select(RegionValue))}
        assert values[RATE] == (3, 8, 37.5, True, date(2026, 3, 1))
        assert values[MINUTES] == (None, None, 12.5, True, date(2026, 3, 1))
        entry = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "region_submission.receive"))
        detail = json.loads(entry.detail)
        assert detail == {"hospital": code, "kind": "month", "period": MONTH, "version": 1,
                          "digest": receipt["digest"], "values": 3, "replaced": None}


def test_version_two_replaces_version_one_for_the_comparisons_and_both_stay(app, client, centre_key, register):
    from qcflow.extensions import db
    from qcflow.region.models import RegionSubmission, RegionValue

    code, key = register()
    assert post(client, envelope(code), key).status_code == 201
    corrected = month_values(**{RATE: {"numerator": 4, "value": 50.0}})
    second = post(client, envelope(code, version=2, document=corrected), key)
    assert second.status_code == 201 and second.json["replaced"] == 1 and signed_by(second, centre_key)
    with app.app_context():
        versions = {s.revision: s.is_current for s in db.session.scalars(sa.select(RegionSubmission))}
        assert versions == {1: False, 2: True}
        current = {v.code: v.numerator for v in db.session.scalars(
            sa.select(RegionValue).where(RegionValue.is_current.is_(True)))}
        assert current[RATE] == 4 and len(current) == 3
        assert db.session.scalar(sa.select(sa.func.count()).select_from(RegionValue)) == 6


def test_a_replay_answers_the_stored_receipt_and_stores_nothing(app, client, centre_key, register):
    code, key = register()
    body = envelope(code)
    first = post(client, body, key)
    receipt = {name: value for name, value in first.json.items() if name not in ("status", "request_digest")}
    before = counts(app)
    again = post(client, body, key)
    assert again.status_code == 409 and signed_by(again, centre_key)
    assert again.json["code"] == "already_received" and again.json["receipt"] == receipt
    # Each answer is bound to its own request and status (a replayed answer fails the hospital's check).
    assert first.json["status"] == 201 and again.json["status"] == 409
    assert first.json["request_digest"] == again.json["request_digest"] == hashlib.sha256(body).hexdigest()
    assert counts(app) == before
    # signed anew (a retry of the same version): still the same receipt
    resent = post(client, envelope(code, signed_at=datetime.now(timezone.utc) - timedelta(minutes=3)), key)
    assert resent.status_code == 409 and resent.json["receipt"] == receipt
    assert counts(app) == before


def test_a_version_taken_with_other_content_and_an_older_version_are_refused(app, client, centre_key, register):
    code, key = register()
    assert post(client, envelope(code), key).status_code == 201
    other = month_values(**{RATE: {"numerator": 5, "value": 62.5}})
    assert post(client, envelope(code, version=2, document=other), key).status_code == 201
    before = counts(app)
    taken = post(client, envelope(code, version=2, document=month_values()), key, language="en")
    assert taken.status_code == 409 and taken.json["code"] == "version_taken" and signed_by(taken, centre_key)
    assert "version 3" in taken.json["message"]
    assert post(client, envelope(code, version=4, document=month_values()), key).status_code == 201
    before = counts(app)
    older = post(client, envelope(code, version=3, document=other), key)
    assert older.status_code == 409 and older.json["code"] == "stale_version" and signed_by(older, centre_key)
    assert counts(app) == before


def refused(app, client, centre_key, response, status, before):
    assert response.status_code == status, response.get_data(as_text=True)
    assert signed_by(response, centre_key)
    body = response.json
    assert body["code"] and body["message"]
    assert counts(app) == before
    return body


def test_unknown_retired_and_wrongly_keyed_hospitals_are_401_with_nothing_stored(app, client, centre_key, register):
    code, key = register()
    retired, retired_key = register("H002", active=False)
    before = counts(app)
    stranger = protocol.generate_key()
    refused(app, client, centre_key, post(client, envelope("H999"), stranger, code="H999"), 401, before)
    refused(app, client, centre_key, post(client, envelope(retired), retired_key, code=retired), 401, before)
    refused(app, client, centre_key, post(client, envelope(code), stranger), 401, before)


def test_missing_or_malformed_signatures_and_a_body_changed_after_signing_are_401(app, client, centre_key, register):
    code, key = register()
    before = counts(app)
    body = envelope(code)
    refused(app, client, centre_key, post(client, body, None), 401, before)
    refused(app, client, centre_key, post(client, body, key, headers={protocol.HEADER_SIGNATURE: "rsa=abc"}), 401,
            before)
    refused(app, client, centre_key, post(client, body, key, headers={protocol.HEADER_SIGNATURE: "ed25519=!!"}),
            401, before)
    signature = protocol.sign(key, body)
    changed = body.replace(b'"numerator":3', b'"numerator":2')
    assert changed != body
    refused(app, client, centre_key, post(client, changed, key, headers={protocol.HEADER_SIGNATURE: signature}),
            401, before)


def test_an_envelope_for_another_hospital_is_refused(app, client, centre_key, register):
    code, key = register()
    other, _other_key = register("H002")
    before = counts(app)
    refused(app, client, centre_key, post(client, envelope(other), key, code=code), 403, before)


def test_a_stale_signing_time_is_401_in_the_language_asked(app, client, centre_key, register):
    code, key = register()
    before = counts(app)
    old = envelope(code, signed_at=datetime.now(timezone.utc) - timedelta(hours=25))
    body = refused(app, client, centre_key, post(client, old, key, language="en-GB,en;q=0.9"), 401, before)
    assert "replayed" in body["message"]
    chinese = refused(app, client, centre_key, post(client, old, key), 401, before)
    assert chinese["message"] != body["message"]


@pytest.mark.parametrize("content_type, body", [("text/plain", b"{}"), ("application/json", b"{not json")])
def test_the_apps_early_refusals_speak_the_language_the_hospital_asked_too(client, content_type, body):
    """Refused before the view runs (not JSON, the wrong type): still in the client's language, not the default."""
    english = client.post(PATH, data=body, headers={"Content-Type": content_type, "Accept-Language": "en"})
    chinese = client.post(PATH, data=body, headers={"Content-Type": content_type})
    assert english.status_code == chinese.status_code == 400
    assert english.json["message"].isascii() and not chinese.json["message"].isascii()


def test_a_period_in_the_future_is_422(app, client, centre_key, register):
    code, key = register()
    before = counts(app)
    future = (datetime.now(timezone.utc) + timedelta(days=40)).strftime("%Y-%m")
    refused(app, client, centre_key, post(client, envelope(code, period=future), key), 422, before)


@pytest.mark.parametrize("changes, field", [
    ({RATE: {"numerator": 9, "denominator": 8}}, "values[0].numerator"),  # numerator above its denominator
    ({MINUTES: {"value": -3}}, "values[1].value"),  # out of range
    ({RATE: {"value": 101, "numerator": None, "denominator": None}}, "values[0].numerator"),  # a rate's parts
    ({PERMILLE: {"code": "no_such_indicator"}}, "values[2].code"),  # unknown indicator
])
def test_refused_values_are_422_with_every_value_named_and_nothing_stored(
        app, client, centre_key, register, changes, field):
    code, key = register()
    before = counts(app)
    document = month_values(**changes)
    body = refused(app, client, centre_key, post(client, envelope(code, document=document), key, language="en"),
                   422, before)
    assert field in body["errors"]
    assert all(message for messages in body["errors"].values() for message in messages)


def test_a_month_whose_document_names_another_month_is_422(app, client, centre_key, register):
    code, key = register()
    before = counts(app)
    body = refused(app, client, centre_key, post(client, envelope(code, document=month_values("2026-02")), key),
                   422, before)
    assert "document.month" in body["errors"]


def test_a_malformed_envelope_is_422_with_its_fields(app, client, centre_key, register):
    code, key = register()
    before = counts(app)
    data = json.loads(envelope(code))
    data["version"] = 0
    data["digest"] = "0" * 64
    body = refused(app, client, centre_key, post(client, protocol.canonical(data), key), 422, before)
    assert {"version", "digest"} <= set(body["errors"])
    not_json = refused(app, client, centre_key, post(client, b"{not json", key), 400, before)
    assert not_json["code"] == "bad_request"


def test_a_body_over_the_limit_is_413(app, client, centre_key, register):
    code, key = register()
    before = counts(app)
    document = {**month_values(), "padding": "x" * protocol.MAX_BODY_BYTES}
    body = refused(app, client, centre_key, post(client, envelope(code, document=document), key), 413, before)
    assert "2 MiB" in body["message"]
    # the protocol's limit, not the app's 1 MiB: a form of 1.5 MiB is read and kept
    rows = [{"seq": i, "wording": "x" * 2000, "wording_en": "y" * 2000, "codes": []} for i in range(400)]
    kept = envelope(code, "annual_form", "2025", document={**form_document("annual", 2025, None), "rows": rows})
    assert len(kept) > protocol.MAX_BODY_BYTES * 3 // 4
    assert post(client, kept, key).status_code == 201


def form_document(kind="quarterly", year=2026, quarter=1):
    return {"schema": "qcflow.indicator-form/1", "plan": {"key": "henan"}, "kind": kind,
            "period": {"year": year, "quarter": quarter}, "rows": []}


@pytest.mark.parametrize("change, field", [
    ({"rows": 5}, "document.rows"),
    ({"rows": [{"seq": 1, "codes": [{"code": "x", "value": "12"}]}]}, "document.rows.0.codes.0.value"),
    ({"rows": [{"seq": 1, "wording": "<b>\u0000\u001b[31m"}]}, "document.rows.0.wording"),
    ({"title": "<script>alert(1)</script>"}, "document.title"),
    ({"rows": [{"seq": 1, "codes": [{"code": "x", "numerator": True}]}]}, "document.rows.0.codes.0.numerator"),
    ({"draft": True}, "document.draft"),
])
def test_a_form_that_no_hospital_qcflow_archives_is_422_and_kept_nowhere(app, client, centre_key, register,
                                                                        change, field):
    """Only the shape a hospital's qcflow generates is kept: a form the centre would store and later fail to
    show (rows not a list), unknown keys, control characters, strings for numbers, a draft."""
    code, key = register()
    before = counts(app)
    document = {**form_document("annual", 2025, None), **change}
    sent = post(client, envelope(code, "annual_form", "2025", document=document), key, language="en")
    body = refused(app, client, centre_key, sent, 422, before)
    assert field in body["errors"], body["errors"]


@pytest.mark.parametrize("change, field", [
    ({"values": []}, "document.values"),
    ({"note": "<script>"}, "document"),
    ({"plan": "<script>"}, "document.plan"),
])
def test_an_empty_month_or_one_with_unknown_parts_is_422_and_not_counted_as_sent(app, client, centre_key, register,
                                                                                 change, field):
    code, key = register()
    before = counts(app)
    sent = post(client, envelope(code, document={**month_values(), **change}), key, language="en")
    assert field in refused(app, client, centre_key, sent, 422, before)["errors"]


def test_a_value_with_unknown_parts_is_422(app, client, centre_key, register):
    code, key = register()
    before = counts(app)
    document = month_values(**{RATE: {"comment": "患者张三"}})
    sent = post(client, envelope(code, document=document), key, language="en")
    assert "values[0]" in refused(app, client, centre_key, sent, 422, before)["errors"]


def test_a_version_far_ahead_is_refused_so_that_the_month_can_always_be_corrected(app, client, centre_key,
                                                                                  register):
    code, key = register()
    before = counts(app)
    jump = refused(app, client, centre_key, post(client, envelope(code, version=10**6), key, language="en"), 422,
                   before)
    assert "send version 1" in jump["message"]
    assert post(client, envelope(code, version=3), key).status_code == 201  # gaps of refused versions are fine
    changed = envelope(code, version=3, document=month_values(**{RATE: {"numerator": 4, "value": 50.0}}))
    advice = post(client, changed, key, language="en").json["message"]
    assert "version 4" in advice
    corrected = envelope(code, version=4, document=month_values(**{RATE: {"numerator": 4, "value": 50.0}}))
    assert post(client, corrected, key).status_code == 201  # the advice given can be followed


def test_a_form_is_kept_and_one_whose_period_does_not_match_is_422(app, client, centre_key, register):
    code, key = register()
    before = counts(app)
    wrong = envelope(code, "quarterly_form", "2026-Q1", document=form_document(quarter=2))
    body = refused(app, client, centre_key, post(client, wrong, key), 422, before)
    assert "document.period" in body["errors"]
    annual_as_quarterly = envelope(code, "quarterly_form", "2026-Q1", document=form_document("annual", 2026, None))
    assert "document.kind" in refused(app, client, centre_key, post(client, annual_as_quarterly, key), 422,
                                      before)["errors"]
    kept = post(client, envelope(code, "quarterly_form", "2026-Q1", document=form_document()), key)
    assert kept.status_code == 201 and kept.json["values"] == 0 and signed_by(kept, centre_key)
    annual = post(client, envelope(code, "annual_form", "2025", document=form_document("annual", 2025, None)), key)
    assert annual.status_code == 201


def test_the_route_is_404_on_a_hospital_installation(database_url, tmp_path):
    from tests.conftest import make_app

    hospital_app = make_app(database_url, str(tmp_path / "hospital"))
    key = protocol.generate_key()
    response = post(hospital_app.test_client(), envelope("H001"), key)
    assert response.status_code == 404


def test_without_its_own_key_the_centre_answers_503_and_stores_nothing(app, client, register):
    code, key = register()
    before = counts(app)
    response = post(client, envelope(code), key)
    assert response.status_code == 503 and counts(app) == before


def test_two_deliveries_of_the_same_version_at_once_keep_one(app, centre_key, register):
    code, key = register()
    body = envelope(code)
    barrier, statuses = threading.Barrier(4), []

    def deliver():
        client = app.test_client()
        barrier.wait()
        statuses.append(post(client, body, key))

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(r.status_code for r in statuses) == [201, 409, 409, 409]
    assert all(signed_by(r, centre_key) for r in statuses)
    assert counts(app) == (1, 3, 1)


@pytest.fixture
def hospital_layout():
    departments = {"office": {"code": "QCC", "name": "质控中心办公室"}}
    people = {"admin": ("admin", "admin", "office"), "staff": ("staff", "centre", "office"),
              "quality": ("quality", "quality", "office")}
    return departments, people


def test_centre_staff_read_every_version_and_its_document(app, client, centre_key, register, tokens):
    code, key = register()
    other, other_key = register("H002")
    first = post(client, envelope(code), key).json
    second = post(client, envelope(code, version=2, document=month_values(**{RATE: {"numerator": 4,
                                                                                    "value": 50.0}})), key).json
    assert post(client, envelope(other, document=month_values()), other_key, code=other).status_code == 201
    staff = tokens("staff")
    listed = client.get(PATH, headers=staff)
    assert listed.status_code == 200
    assert [(s["hospital"], s["version"], s["is_current"]) for s in listed.json["items"]] == [
        ("H002", 1, True), (code, 2, True), (code, 1, False)]
    current = client.get(f"{PATH}?hospital={code}&current=true", headers=staff).json["items"]
    assert [s["id"] for s in current] == [second["submission"]]
    page = client.get(f"{PATH}?limit=2", headers=staff).json
    rest = client.get(f"{PATH}?limit=2&cursor={page['next_cursor']}", headers=staff).json
    assert len(page["items"]) == 2 and [s["id"] for s in rest["items"]] == [first["submission"]]
    assert rest["next_cursor"] is None
    detail = client.get(f"{PATH}/{first['submission']}", headers=staff)
    assert detail.status_code == 200 and detail.json["values"] == 3 and detail.json["is_current"] is False
    assert detail.json["document"] == month_values()
    assert [(v["version"], v["is_current"]) for v in detail.json["versions"]] == [(2, True), (1, False)]
    assert client.get(PATH, headers=tokens("admin")).status_code == 200
    assert client.get(PATH, headers=tokens("quality")).status_code == 403
    assert client.get(f"{PATH}/{first['submission']}", headers=tokens("quality")).status_code == 403
    assert client.get(f"{PATH}?hospital=H404", headers=staff).status_code == 404


def test_a_logged_in_browser_posting_gets_no_session_and_no_cookie(app, clients, centre_key, register):
    code, key = register()
    browser = clients("staff")
    response = post(browser, envelope(code), key)
    assert response.status_code == 201 and "Set-Cookie" not in response.headers
    refused_without_signature = post(browser, envelope(code, version=2), None)
    assert refused_without_signature.status_code == 401 and "Set-Cookie" not in refused_without_signature.headers
