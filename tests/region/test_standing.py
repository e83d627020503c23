"""Where a hospital stands: a request the hospital signed, an answer the centre signed, the others unnamed."""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from urllib.parse import urlencode

import pytest

from qcflow.region import protocol
from tests.region.test_comparisons import RATE, TIME  # noqa: F401
from tests.region.test_comparisons import app, factory, fixture, hospital_layout  # noqa: F401


@pytest.fixture
def centre_key(centre_app):
    """The centre's own key (what `region keygen` writes), to sign its answers."""
    from qcflow.region import keys

    key = protocol.generate_key()
    with centre_app.app_context():
        protocol.write_private_key(keys.key_path(), key)
    return key


def signed_get(client, factory, code, query: dict, *, at=None, key=None, path="/api/v1/centre/standing"):
    full = f"{path}?{urlencode(query)}"
    signed_at = protocol.utc_text(at or datetime.now(timezone.utc))
    headers = {protocol.HEADER_HOSPITAL: code, protocol.HEADER_SIGNED_AT: signed_at,
               protocol.HEADER_SIGNATURE: protocol.sign(key or factory.keys[code],
                                                        protocol.request_text("GET", full, signed_at))}
    return client.get(full, headers=headers)


def verified(response, centre_key) -> dict:
    assert protocol.verify(protocol.public_key_text(centre_key), response.data,
                           response.headers.get(protocol.HEADER_SIGNATURE)), response.data[:300]
    return json.loads(response.data)


QUERY = {"indicator": RATE, "from": "2026-01", "to": "2026-06"}


def test_a_signed_request_gets_its_place_among_unnamed_peers(fixture, factory, client, centre_key):
    factory.month(factory.hospital("T3", "tertiary", name="第三医院"), date(2026, 3, 1), {RATE: (2, 3)})
    factory.db.session.commit()
    response = signed_get(client, factory, "T2", QUERY)
    assert response.status_code == 200
    body = verified(response, centre_key)
    assert body["schema"] == "qcflow.region-standing/1" and body["level"] == "tertiary"
    assert body["indicator"] == {"code": RATE, "unit": "percent", "direction": "higher"}
    assert (body["from"], body["to"], body["k"]) == ("2026-01", "2026-06", 5)
    assert body["own"] == {"numerator": 11, "denominator": 20, "value": 55.0, "rank": 2, "suppressed": False,
                           "outside": None}
    # The pooled rate of the level: (17 + 11 + 2) / (20 + 20 + 3).
    assert body["regional"]["numerator"] == 30 and body["regional"]["denominator"] == 43
    assert body["peer_count"] == 2
    # T1 (85 %, 20 cases) shown; T3 (3 cases < k) hidden: no value, no denominator.
    assert body["peers"] == [{"value": 85.0, "denominator": 20, "suppressed": False},
                             {"value": None, "denominator": None, "suppressed": True}]
    text = response.get_data(as_text=True)
    for secret in ('"T1"', '"T3"', "第三医院", "Hospital T1", "郑州", "洛阳", '"numerator":17'):
        assert secret not in text
    assert body["target"] == {"comparison": "ge", "value": 85.0}
    assert body["limits"] and all(set(lim) == {"denominator", "lower95", "upper95", "lower998", "upper998"}
                                  for lim in body["limits"])


def test_peers_are_ordered_by_value_not_by_registration(factory, client, centre_key):
    for code, numerator in (("A", 9), ("B", 2), ("C", 5), ("ME", 7)):
        factory.month(factory.hospital(code, "secondary"), date(2026, 2, 1), {RATE: (numerator, 10)})
    factory.db.session.commit()
    body = verified(signed_get(client, factory, "ME", QUERY), centre_key)
    assert [p["value"] for p in body["peers"]] == [20.0, 50.0, 90.0]
    assert body["own"]["rank"] == 2 and body["level"] == "secondary"


def test_a_wrong_signature_is_refused_with_a_signed_401(fixture, factory, client, centre_key):
    response = signed_get(client, factory, "T2", QUERY, key=protocol.generate_key())
    assert response.status_code == 401
    body = verified(response, centre_key)
    assert body["code"] == "not_authenticated" and body["message"]
    assert signed_get(client, factory, "NOBODY", QUERY, key=factory.keys["T2"]).status_code == 401
    unsigned = client.get("/api/v1/centre/standing?" + urlencode(QUERY))
    assert unsigned.status_code == 401 and verified(unsigned, centre_key)["code"] == "not_authenticated"


def test_a_stale_or_future_signing_time_is_refused(fixture, factory, client, centre_key):
    old = datetime.now(timezone.utc) - timedelta(hours=25)
    response = signed_get(client, factory, "T2", QUERY, at=old)
    assert response.status_code == 401 and verified(response, centre_key)["code"] == "not_authenticated"
    ahead = signed_get(client, factory, "T2", QUERY, at=datetime.now(timezone.utc) + timedelta(hours=1))
    assert ahead.status_code == 401


def test_a_signature_of_another_query_does_not_carry_over(fixture, factory, client, centre_key):
    signed_at = protocol.utc_text(datetime.now(timezone.utc))
    signature = protocol.sign(factory.keys["T2"], protocol.request_text(
        "GET", "/api/v1/centre/standing?" + urlencode(QUERY), signed_at))
    other = "/api/v1/centre/standing?" + urlencode({**QUERY, "indicator": TIME})
    response = client.get(other, headers={protocol.HEADER_HOSPITAL: "T2", protocol.HEADER_SIGNED_AT: signed_at,
                                          protocol.HEADER_SIGNATURE: signature})
    assert response.status_code == 401


def test_refusals_after_the_signature_are_signed_too(fixture, factory, client, centre_key):
    unknown = signed_get(client, factory, "T2", {**QUERY, "indicator": "no_such_code"})
    assert unknown.status_code == 404 and verified(unknown, centre_key)["code"] == "not_found"
    reversed_ = signed_get(client, factory, "T2", {**QUERY, "from": "2026-06", "to": "2026-01"})
    assert reversed_.status_code == 422 and "from" in verified(reversed_, centre_key)["errors"]
    malformed = signed_get(client, factory, "T2", {**QUERY, "from": "2026-13"})
    assert malformed.status_code == 422 and "from" in verified(malformed, centre_key)["errors"]
