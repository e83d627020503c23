"""The protocol both installations share: keys, signatures, envelopes, periods and the check of a month's values."""
from __future__ import annotations

import json
import os
import stat
from datetime import date, datetime, timedelta, timezone

import pytest

from qcflow.region import protocol

NOW = datetime(2026, 4, 3, 2, 0, tzinfo=timezone.utc)
UNITS = {"cardiac_arrest_rosc_rate": "percent", "emergency_response_time_mean": "minutes",
         "annual_work_plan_status": "status", "periop_mortality_rate": "permille", "visits": "count",
         "ae_per_100_discharges": "per100"}


def test_a_signature_verifies_with_its_public_key_only_and_only_for_its_body():
    key, other = protocol.generate_key(), protocol.generate_key()
    body = protocol.envelope("H001", "month", "2026-03", 1, {"values": []}, NOW)
    signature = protocol.sign(key, body)
    assert protocol.verify(protocol.public_key_text(key), body, signature)
    assert not protocol.verify(protocol.public_key_text(other), body, signature)
    assert not protocol.verify(protocol.public_key_text(key), body.replace(b"2026-03", b"2026-02"), signature)
    assert not protocol.verify(protocol.public_key_text(key), body, None)
    assert not protocol.verify(protocol.public_key_text(key), body, "ed25519=not-base64!")
    assert not protocol.verify("short", body, signature)


def test_the_private_key_file_is_the_owners_alone_and_never_overwritten(tmp_path):
    path = str(tmp_path / "keys" / "region.pem")
    key = protocol.generate_key()
    protocol.write_private_key(path, key)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert protocol.public_key_text(protocol.load_private_key(path)) == protocol.public_key_text(key)
    with pytest.raises(FileExistsError):
        protocol.write_private_key(path, protocol.generate_key())
    assert protocol.public_key_text(protocol.load_private_key(path)) == protocol.public_key_text(key)


def test_public_keys_are_32_bytes_of_base64():
    assert protocol.is_public_key(protocol.public_key_text(protocol.generate_key()))
    assert not protocol.is_public_key("")
    assert not protocol.is_public_key("AAAA")
    assert not protocol.is_public_key("é" * 44)


def test_an_envelope_parses_back_and_its_digest_binds_the_document():
    body = protocol.envelope("H001", "quarterly_form", "2026-Q1", 3, {"a": "肿瘤"}, NOW)
    parsed = protocol.parse_envelope(body)
    assert (parsed.hospital, parsed.kind, parsed.period, parsed.version) == ("H001", "quarterly_form", "2026-Q1", 3)
    assert parsed.document == {"a": "肿瘤"} and parsed.signed_at == NOW
    tampered = json.loads(body)
    tampered["document"]["a"] = "changed"
    with pytest.raises(protocol.ProtocolError) as refused:
        protocol.parse_envelope(protocol.canonical(tampered))
    assert "digest" in refused.value.errors


@pytest.mark.parametrize("change, field", [
    ({"kind": "weekly"}, "kind"), ({"period": "2026-13"}, "period"), ({"period": "2026"}, "period"),
    ({"version": 0}, "version"), ({"version": True}, "version"), ({"hospital": "../x"}, "hospital"),
    ({"signed_at": "2026-04-03 02:00"}, "signed_at"), ({"schema": "other/1"}, "schema"),
])
def test_a_malformed_envelope_names_the_field(change, field):
    data = json.loads(protocol.envelope("H001", "month", "2026-03", 1, {}, NOW))
    data.update(change)
    with pytest.raises(protocol.ProtocolError) as refused:
        protocol.parse_envelope(protocol.canonical(data))
    assert field in refused.value.errors


def test_a_body_that_is_not_a_json_object_is_refused():
    for body in (b"\xff\xfe", b"[1, 2]", b"not json"):
        with pytest.raises(protocol.ProtocolError):
            protocol.parse_envelope(body)


def test_periods_and_when_they_may_be_sent():
    assert protocol.period_months("quarterly_form", "2026-Q2") == (date(2026, 4, 1), date(2026, 6, 1))
    assert protocol.period_months("annual_form", "2025") == (date(2025, 1, 1), date(2025, 12, 1))
    assert protocol.period_text("quarterly_form", date(2026, 7, 1)) == "2026-Q3"
    assert protocol.period_error("month", "2026-03", date(2026, 4, 1)) is None
    assert protocol.period_error("month", "2026-04", date(2026, 4, 30)) is not None
    assert protocol.period_error("annual_form", "2026", date(2026, 12, 31)) is not None


def test_signing_times_outside_the_window_are_refused():
    assert protocol.time_error(NOW - timedelta(hours=23), NOW) is None
    assert protocol.time_error(NOW - timedelta(hours=25), NOW) is not None
    assert protocol.time_error(NOW + timedelta(minutes=10), NOW) is not None
    assert protocol.time_error(None, NOW) is not None


def _month(*values):
    return protocol.month_document(date(2026, 3, 1), "henan", list(values))


def test_good_values_are_kept_and_a_rates_value_comes_from_its_parts(app, ctx):
    stored, errors = protocol.month_value_errors(_month(
        {"code": "cardiac_arrest_rosc_rate", "unit": "percent", "numerator": 3, "denominator": 8, "value": 37.5},
        {"code": "emergency_response_time_mean", "unit": "minutes", "numerator": None, "denominator": None,
         "value": 12.5},
        {"code": "annual_work_plan_status", "unit": "status", "numerator": None, "denominator": None, "value": 1},
    ), UNITS)
    assert errors == {}
    assert [(v["code"], v["value"]) for v in stored] == [
        ("annual_work_plan_status", 1.0), ("cardiac_arrest_rosc_rate", 37.5), ("emergency_response_time_mean", 12.5)]


@pytest.mark.parametrize("value, field", [
    ({"code": "nope", "unit": "percent", "numerator": 1, "denominator": 2}, "code"),
    ({"code": "cardiac_arrest_rosc_rate", "unit": "count", "numerator": 1, "denominator": 2}, "unit"),
    ({"code": "cardiac_arrest_rosc_rate", "unit": "percent", "numerator": 9, "denominator": 8}, "numerator"),
    ({"code": "cardiac_arrest_rosc_rate", "unit": "percent", "numerator": 1.5, "denominator": 8}, "numerator"),
    ({"code": "cardiac_arrest_rosc_rate", "unit": "percent", "numerator": 1, "denominator": 0}, "denominator"),
    ({"code": "cardiac_arrest_rosc_rate", "unit": "percent", "numerator": 1, "denominator": 8, "value": 50},
     "value"),
    ({"code": "cardiac_arrest_rosc_rate", "unit": "percent", "value": 101}, "numerator"),
    ({"code": "periop_mortality_rate", "unit": "permille", "numerator": 10 ** 10, "denominator": 10 ** 10},
     "numerator"),
    ({"code": "emergency_response_time_mean", "unit": "minutes", "value": -1}, "value"),
    ({"code": "emergency_response_time_mean", "unit": "minutes", "value": float("inf")}, "value"),
    ({"code": "annual_work_plan_status", "unit": "status", "value": 2}, "value"),
    ({"code": "visits", "unit": "count", "value": 2.5}, "value"),
])
def test_a_bad_value_is_named_with_its_indicator_and_nothing_is_kept_of_it(app, ctx, value, field):
    stored, errors = protocol.month_value_errors(_month(value), UNITS)
    assert stored == []
    assert f"values[0].{field}" in errors and all(key.startswith("values[0].") for key in errors)
    if field != "code":
        assert all(message.startswith(value["code"]) for message in errors[f"values[0].{field}"])


def test_an_indicator_sent_twice_in_a_month_is_refused(app, ctx):
    twice = {"code": "annual_work_plan_status", "unit": "status", "value": 1}
    stored, errors = protocol.month_value_errors(_month(twice, dict(twice)), UNITS)
    assert len(stored) == 1 and list(errors) == ["values[1].code"]


# Found by review: a small-order key signs for anyone; non-finite numbers and year 0 answered 500 -------------

P = 2 ** 255 - 19


def _key_text(y: int, sign: int = 0) -> str:
    import base64

    return base64.b64encode((y | (sign << 255)).to_bytes(32, "little")).decode()


@pytest.mark.parametrize("y", sorted(protocol._SMALL_ORDER_Y))
def test_a_point_of_small_order_is_refused_as_a_key_because_anyone_can_sign_for_it(y):
    import base64

    # The forgery the review showed: R = the neutral point, S = 0 verifies for every body under the neutral key;
    # under any small-order key it verifies for some bodies (which a forger can search for). Proof that each
    # refused point is of small order: the forgery verifies for one of a few dozen bodies.
    forged = protocol.SIGNATURE_PREFIX + base64.b64encode(bytes([1]) + bytes(63)).decode()
    raw = (y).to_bytes(32, "little")
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        key = Ed25519PublicKey.from_public_bytes(raw)
        forgeable = any(_verifies(key, forged, f"body {n}".encode()) for n in range(64))
    except ValueError:  # the library refuses it itself
        forgeable = True
    assert forgeable
    for sign in (0, 1):
        assert not protocol.is_public_key(_key_text(y, sign))


def _verifies(key, header: str, body: bytes) -> bool:
    import base64

    from cryptography.exceptions import InvalidSignature

    try:
        key.verify(base64.b64decode(header[len(protocol.SIGNATURE_PREFIX):]), body)
    except InvalidSignature:
        return False
    return True


def test_a_non_canonical_spelling_of_a_key_is_refused():
    assert not protocol.is_public_key(_key_text(P))      # p is 0 spelt again
    assert not protocol.is_public_key(_key_text(P + 5))  # p + 5 is 5 spelt again
    genuine = protocol.public_key_text(protocol.generate_key())
    assert protocol.is_public_key(genuine)


@pytest.mark.parametrize("number", [b"NaN", b"Infinity", b"-Infinity", b"1e400"])
def test_a_number_json_does_not_allow_or_that_overflows_is_a_protocol_error(number):
    body = b'{"schema":"qcflow.region-submission/1","hospital":"H001","kind":"month","period":"2026-03",' \
           b'"version":1,"signed_at":"2026-04-03T02:00:00Z","digest":"x","document":{"v":' + number + b"}}"
    with pytest.raises(protocol.ProtocolError):
        protocol.parse_envelope(body)


@pytest.mark.parametrize("kind, period", [("month", "0000-01"), ("annual_form", "0000"),
                                          ("quarterly_form", "0000-Q1"), ("month", "1999-12")])
def test_a_year_before_2000_is_a_malformed_period(kind, period):
    data = json.loads(protocol.envelope("H001", kind, "2026-03" if kind == "month" else "2026", 1, {}, NOW))
    data["period"] = period
    with pytest.raises(protocol.ProtocolError) as refused:
        protocol.parse_envelope(protocol.canonical(data))
    assert "period" in refused.value.errors


@pytest.mark.parametrize("value, field", [
    # A rate without its parts: only the survival estimates are sent that way.
    ({"code": "cardiac_arrest_rosc_rate", "unit": "percent", "value": 50}, "numerator"),
    ({"code": "emergency_response_time_mean", "unit": "minutes", "value": 1e9}, "value"),
    ({"code": "emergency_response_time_mean", "unit": "minutes", "value": 7 * 24 * 60 + 1}, "value"),
    ({"code": "visits", "unit": "count", "value": 10 ** 6 + 1}, "value"),
    # Found by review: 10⁹ adverse events over one discharge was stored and made the region's value 2 152 994.
    ({"code": "ae_per_100_discharges", "unit": "per100", "numerator": 10 ** 9, "denominator": 1}, "numerator"),
    ({"code": "ae_per_100_discharges", "unit": "per100", "numerator": 821, "denominator": 820}, "numerator"),
])
def test_an_implausible_value_that_would_move_the_regions_value_is_refused(app, ctx, value, field):
    stored, errors = protocol.month_value_errors(_month(value), UNITS)
    assert stored == [] and f"values[0].{field}" in errors


def test_a_per_100_rate_up_to_100_is_kept_and_the_refusal_names_it(app, ctx):
    from flask_babel import force_locale

    kept, errors = protocol.month_value_errors(_month(
        {"code": "ae_per_100_discharges", "unit": "per100", "numerator": 820, "denominator": 820}), UNITS)
    assert errors == {} and kept[0]["value"] == 100.0
    with force_locale("en"):
        _kept, errors = protocol.month_value_errors(_month(
            {"code": "ae_per_100_discharges", "unit": "per100", "numerator": 10 ** 9, "denominator": 1}), UNITS)
    assert errors["values[0].numerator"][0].startswith("ae_per_100_discharges: The value 1e+11 is out of range")


def test_a_survival_estimate_is_sent_as_a_value_within_0_and_100(app, ctx):
    units = {**UNITS, "cancer_5y_survival": "percent"}
    stored, errors = protocol.month_value_errors(_month(
        {"code": "cancer_5y_survival", "unit": "percent", "value": 58.2}), units)
    assert errors == {} and stored[0]["value"] == 58.2
    _stored, errors = protocol.month_value_errors(_month(
        {"code": "cancer_5y_survival", "unit": "percent", "value": 101}), units)
    assert "values[0].value" in errors


def test_a_signed_answer_belongs_to_one_request_and_one_status():
    answer = {"code": "x", "status": 201, "request_digest": protocol.sha256(b"request one")}
    assert protocol.binding_error(answer, 201, protocol.sha256(b"request one")) is None
    assert protocol.binding_error(answer, 409, protocol.sha256(b"request one")).startswith("unbound: ")
    assert protocol.binding_error(answer, 201, protocol.sha256(b"request two")).startswith("unbound: ")
