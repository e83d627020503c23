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


def signed_get(client, factory, code, query: dict, *, at=None, key=None, path="/api/v1/centre/standing",
               headers=None):
    full = f"{path}?{urlencode(query)}"
    signed_at = protocol.utc_text(at or datetime.now(timezone.utc))
    signature = protocol.sign(key or factory.keys[code], protocol.request_text("GET", full, signed_at))
    return client.get(full, headers={protocol.HEADER_HOSPITAL: code, protocol.HEADER_SIGNED_AT: signed_at,
                                     protocol.HEADER_SIGNATURE: signature, **(headers or {})})


def verified(response, centre_key) -> dict:
    assert protocol.verify(protocol.public_key_text(centre_key), response.data,
                           response.headers.get(protocol.HEADER_SIGNATURE)), response.data[:300]
    return json.loads(response.data)


QUERY = {"indicator": RATE, "from": "2026-01", "to": "2026-03"}


def test_a_signed_request_gets_its_place_among_unnamed_peers(fixture, factory, client, centre_key):
    factory.month(factory.hospital("T3", "tertiary", name="第三医院"), date(2026, 3, 1), {RATE: (2, 3)})
    factory.month(factory.hospital("T4", "tertiary"), date(2026, 3, 1), {RATE: (707, 1010)})
    factory.db.session.commit()
    response = signed_get(client, factory, "T2", QUERY)
    assert response.status_code == 200
    body = verified(response, centre_key)
    assert body["schema"] == "qcflow.region-standing/1" and body["level"] == "tertiary"
    assert body["indicator"] == {"code": RATE, "unit": "percent", "direction": "higher"}
    assert (body["from"], body["to"], body["k"]) == ("2026-01", "2026-03", 5)
    assert body["too_few_hospitals"] is False
    # Its own figures exact; ranked 3rd of the three hospitals with at least k cases (T1 85 %, T4 70 %, T2 55 %).
    assert body["own"] == {"numerator": 11, "denominator": 20, "value": 55.0, "rank": 3, "small": False,
                           "outside": None}
    assert body["ranked"] == 3
    # The regional value only, pooled over the figures shown and its own: (0.9 × 20 + 0.7 × 1000 + 11) /
    # (20 + 1000 + 20) = 70.1 %, to 1 decimal at about 1000 cases.
    assert body["regional"] == {"value": 70.1}
    # T4 (70 %, 1010 cases → 1000, to 1 decimal), T1 (85 %, 20 cases → 20, to tens: 90 %) shown; T3 (3 cases < k)
    # hidden: no value, no denominator.
    assert body["peers"] == [{"value": 70.0, "denominator": 1000, "suppressed": False},
                             {"value": 90.0, "denominator": 20, "suppressed": False},
                             {"value": None, "denominator": None, "suppressed": True}]
    text = response.get_data(as_text=True)
    for secret in ('"T1"', '"T3"', "第三医院", "Hospital T1", "郑州", "洛阳", '"numerator":17', "1010", "peer_count"):
        assert secret not in text
    assert body["target"] == {"comparison": "ge", "value": 85.0}
    assert body["limits"] and all(set(lim) == {"denominator", "lower95", "upper95", "lower998", "upper998"}
                                  and all(round(v, 2) == v for v in lim.values()) for lim in body["limits"])


def test_peers_are_ordered_by_value_not_by_registration(factory, client, centre_key):
    for code, numerator in (("A", 18), ("B", 5), ("C", 10), ("ME", 14)):  # of 20, 25, 20 and 20
        factory.month(factory.hospital(code, "secondary"), date(2026, 2, 1),
                      {RATE: (numerator, 25 if code == "B" else 20)})
    factory.db.session.commit()
    body = verified(signed_get(client, factory, "ME", QUERY), centre_key)
    assert [p["value"] for p in body["peers"]] == [20.0, 50.0, 90.0]
    assert body["own"]["rank"] == 2 and body["ranked"] == 4 and body["level"] == "secondary"


def test_equal_values_are_ordered_by_rounded_denominator_and_denominators_keep_two_figures(factory, client,
                                                                                       centre_key):
    from qcflow.region.comparisons import two_figures

    assert [two_figures(n) for n in (2540, 707, 12, 15, 99, 100, 1050, 0)] == [2500, 710, 10, 20, 100, 100, 1100, 0]
    for code, parts in (("A", (300, 600)), ("B", (20, 40)), ("ME", (5, 10))):
        factory.month(factory.hospital(code, "secondary"), date(2026, 2, 1), {RATE: parts})
    factory.db.session.commit()
    body = verified(signed_get(client, factory, "ME", QUERY), centre_key)
    assert [(p["value"], p["denominator"]) for p in body["peers"]] == [(50.0, 40), (50.0, 600)]


# What an attacker holding a hospital's key could work out, and no longer can --------------------------------------

def test_a_hidden_peer_is_not_the_regional_figures_less_the_others(factory, client, centre_key):
    """(a) Before: regional numerator and denominator less the visible peers and its own gave the hidden one."""
    hidden = (2, 3)
    for code, parts in (("ME", (11, 20)), ("A", (17, 20)), ("B", (30, 40)), ("H", hidden)):
        factory.month(factory.hospital(code, "tertiary"), date(2026, 2, 1), {RATE: parts})
    factory.db.session.commit()
    body = verified(signed_get(client, factory, "ME", QUERY), centre_key)
    assert set(body["regional"]) == {"value"}
    own = body["own"]
    known = [(own["numerator"], own["denominator"])] + [
        (round(p["value"] * p["denominator"] / 100), p["denominator"]) for p in body["peers"] if not p["suppressed"]]
    known_n, known_d = sum(n for n, _d in known), sum(d for _n, d in known)
    # Every small cell (d < k) the regional value would allow: none, since the hidden hospital is not pooled.
    candidates = [(n, d) for d in range(1, body["k"]) for n in range(d + 1)
                  if round((known_n + n) * 100 / (known_d + d), 2) == body["regional"]["value"]]
    assert hidden not in candidates
    # From what is shown (A 90 % of 20, B 80 % of 40) and its own 11/20: 61 / 80 = 76.25 %, to tens: 80 %.
    assert body["regional"]["value"] == 80.0


def test_only_one_quarter_that_has_ended_is_answered(fixture, factory, client, centre_key):
    """(b) Before: a half-year less one of its quarters gave the other quarter's hidden cells; and the current
    quarter was answered while its figures still grew month by month. Today is after 2026-09."""
    english = {"Accept-Language": "en"}
    for period in ({"from": "2026-01", "to": "2026-06"}, {"from": "2025-01", "to": "2025-12"},
                   {"from": "2026-09", "to": "2026-10"}, {"from": "2026-01", "to": "2026-01"},
                   {"from": "2026-02", "to": "2026-04"}):
        response = signed_get(client, factory, "T2", {**QUERY, **period}, headers=english)
        assert response.status_code == 422, period
        body = verified(response, centre_key)
        assert "Choose one quarter that has ended" in body["message"] and set(body["errors"]) & {"from", "to"}
    today = date.today()
    current = date(today.year, (today.month - 1) // 3 * 3 + 1, 1)
    unfinished = signed_get(client, factory, "T2", {**QUERY, "from": f"{current:%Y-%m}",
                                                    "to": f"{protocol.add_months(current, 2):%Y-%m}"}, headers=english)
    assert unfinished.status_code == 422
    latest = protocol.last_quarter(today)
    assert protocol.quarter_name(latest) in verified(unfinished, centre_key)["message"]
    for period in ({"from": "2026-01", "to": "2026-03"}, {"from": "2025-10", "to": "2025-12"}, {"from": "2026-04"}):
        assert signed_get(client, factory, "T2", {"indicator": RATE, **period}).status_code == 200
    assert verified(signed_get(client, factory, "T2", {"indicator": RATE}), centre_key)["from"] == f"{latest:%Y-%m}"


def test_a_quarters_hidden_cell_cannot_be_recovered_by_asking_another_period(factory, client, centre_key):
    """(c) Before: H1 gave 11 deaths, Q3 gave 7, so Q2's hidden 4 followed. Now Q2 and Q3 are answered apart, H's
    Q2 is hidden, and no period that holds Q2 with another quarter is answered."""
    me, a, b, h = (factory.hospital(code, "tertiary") for code in ("ME", "A", "B", "H"))
    for month, parts in ((date(2026, 5, 1), {"ME": (30, 40), "A": (60, 100), "B": (70, 100), "H": (4, 100)}),
                         (date(2026, 8, 1), {"ME": (30, 40), "A": (60, 100), "B": (70, 100), "H": (7, 100)})):
        for hospital in (me, a, b, h):
            factory.month(hospital, month, {RATE: parts[hospital.code]})
    factory.db.session.commit()
    q2 = verified(signed_get(client, factory, "ME", {"indicator": RATE, "from": "2026-04", "to": "2026-06"}),
                  centre_key)
    assert [p["suppressed"] for p in q2["peers"]] == [False, False, True]
    q3 = verified(signed_get(client, factory, "ME", {"indicator": RATE, "from": "2026-07", "to": "2026-09"}),
                  centre_key)
    assert [p["suppressed"] for p in q3["peers"]] == [False, False, False]
    for period in ({"from": "2026-04", "to": "2026-09"}, {"from": "2026-01", "to": "2026-06"},
                   {"from": "2026-04", "to": "2026-08"}, {"from": "2026-05", "to": "2026-07"}):
        assert signed_get(client, factory, "ME", {"indicator": RATE, **period}).status_code == 422, period


def fitting_pairs(unit: str, peer: dict) -> list[tuple[int, int]]:
    """What an attacker solves from a peer's value and rounded denominator: every denominator that rounds to the
    one shown, every numerator whose value rounds (as documented) to the one shown."""
    from qcflow.indicators.definitions import UNIT_FACTORS
    from qcflow.region.comparisons import shown_value, two_figures, value_places

    factor, shown = UNIT_FACTORS[unit], peer["denominator"]
    places = value_places(unit, shown)
    step = 10.0 ** -places
    return [(n, d) for d in range(max(1, shown // 2), shown * 2) if two_figures(d) == shown
            for n in range(max(0, int((peer["value"] - step) * d / factor) - 1),
                           min(d, int((peer["value"] + step) * d / factor) + 1) + 1)
            if shown_value(n * factor / d, places) == peer["value"]]


@pytest.mark.parametrize("unit_code, peers", [
    (RATE, [(139, 183), (242, 268), (546, 618), (1378, 5088), (838, 886), (12, 20), (6, 12)]),
    ("periop_mortality_rate", [(11, 12350), (18, 8665), (7, 6672), (10, 4627)]),
])
def test_no_peer_is_one_numerator_and_denominator_that_fit_its_value_and_rounded_volume(factory, client, centre_key,
                                                                                      unit_code, peers):
    """(b) Before: a 2-decimal value within a 2-figure denominator fitted one (numerator, denominator) only: the
    review solved 139/183, 242/268, … and 7 deaths of 6672 from the answers."""
    from qcflow.region.comparisons import indicator_entry

    unit = indicator_entry(unit_code).unit
    factory.month(factory.hospital("ME", "tertiary"), date(2026, 8, 1), {unit_code: (30, 5000)})
    for index, parts in enumerate(peers):
        factory.month(factory.hospital(f"P{index}", "tertiary"), date(2026, 8, 1), {unit_code: parts})
    factory.db.session.commit()
    body = verified(signed_get(client, factory, "ME", {"indicator": unit_code, "from": "2026-07", "to": "2026-09"}),
                    centre_key)
    shown = [p for p in body["peers"] if not p["suppressed"]]
    assert len(shown) == len(peers)
    for peer in shown:
        pairs = fitting_pairs(unit, peer)
        assert len(pairs) > 1, (peer, pairs)
    # Every true figure is among the pairs that fit (the solve is the attacker's, done right), never alone.
    assert all(any(parts in fitting_pairs(unit, p) for p in shown) for parts in peers)


def test_the_funnel_grid_ends_where_the_shown_volumes_put_it_not_at_an_exact_or_hidden_one(factory, client,
                                                                                          centre_key):
    """(a) Before: the grid ended at round(largest × 1.1 + 1) of the largest exact denominator, hidden hospitals'
    too: 296 gave 268 back. Now the exact 268 or 272 (both shown as 270), and a hidden peer of 50 000 cases, end the
    grid at the same round number."""
    ends = []
    for exact in (268, 272):
        for code, parts in (("ME", (30, 40)), ("A", (242 if exact == 268 else 245, exact)), ("B", (50, 100)),
                            ("H", (2, 50000))):
            factory.month(factory.hospital(f"{code}{exact}", "secondary" if exact == 268 else "tertiary"),
                          date(2026, 8, 1), {RATE: parts})
        factory.db.session.commit()
        body = verified(signed_get(client, factory, f"ME{exact}", {"indicator": RATE, "from": "2026-07",
                                                                  "to": "2026-09"}), centre_key)
        assert [p["denominator"] for p in body["peers"]] == [100, 270, None]
        ends.append([lim["denominator"] for lim in body["limits"]])
    assert ends[0] == ends[1] and ends[0][-1] == 300


def test_a_peers_numerator_is_not_its_value_times_its_denominator(factory, client, centre_key):
    """(c) Before: value (6 decimals) × exact denominator gave each peer's numerator."""
    for code, parts in (("ME", (30, 40)), ("A", (37, 2540)), ("B", (50, 100))):
        factory.month(factory.hospital(code, "tertiary"), date(2026, 2, 1), {RATE: parts})
    factory.db.session.commit()
    body = verified(signed_get(client, factory, "ME", QUERY), centre_key)
    peer = body["peers"][0]
    assert peer == {"value": 1.5, "denominator": 2500, "suppressed": False}
    assert peer["value"] * peer["denominator"] / 100 != 37
    assert all("numerator" not in p for p in body["peers"])


def test_a_peer_with_one_to_k_minus_one_events_is_hidden_like_a_small_volume(factory, client, centre_key):
    """Found by review: a peer's 1–2 deaths were value × volume, exactly for volumes under 100. A peer with fewer
    than k events shows nothing, and its events are not in the regional value given either."""
    for code, parts in (("ME", (30, 40)), ("A", (2, 707)), ("B", (50, 100)), ("C", (40, 90)), ("D", (6, 12))):
        factory.month(factory.hospital(code, "tertiary"), date(2026, 2, 1), {RATE: parts})
    factory.db.session.commit()
    body = verified(signed_get(client, factory, "ME", QUERY), centre_key)
    shown = [p for p in body["peers"] if not p["suppressed"]]
    assert sorted((p["value"], p["denominator"]) for p in shown) == [(40.0, 90), (50.0, 10), (50.0, 100)]
    assert sum(p["suppressed"] for p in body["peers"]) == 1
    # Pooled from the hospitals shown as shown (B, C, D) and its own, not from A's two events:
    # (50 + 36 + 5 + 30) / 240 = 50.4 %, to whole percent at about 240 cases.
    assert body["regional"]["value"] == 50.0
    # D's 6 of 12 is shown with its volume banded to tens: 50 % of "10" is no count of cases. The rank is among the
    # hospitals shown: A's place does not show.
    assert body["ranked"] == 4


def test_volumes_do_not_single_out_a_peer_across_indicators(factory, client, centre_key):
    """(d) Before: the exact denominator (a hospital's volume) was the same in every indicator's answer, so a peer
    could be followed from one indicator to the next; rounded, different hospitals of similar size look alike."""
    for code, parts in (("ME", (30, 40)), ("A", (1000, 2540)), ("B", (2000, 2510))):
        factory.month(factory.hospital(code, "tertiary"), date(2026, 2, 1), {RATE: parts})
    factory.db.session.commit()
    body = verified(signed_get(client, factory, "ME", QUERY), centre_key)
    assert [p["denominator"] for p in body["peers"]] == [2500, 2500]


def test_with_fewer_than_three_hospitals_nothing_about_the_other_is_given(factory, client, centre_key):
    for code, parts in (("ME", (30, 40)), ("A", (17, 20))):
        factory.month(factory.hospital(code, "tertiary"), date(2026, 2, 1), {RATE: parts})
    factory.db.session.commit()
    body = verified(signed_get(client, factory, "ME", QUERY), centre_key)
    assert body["too_few_hospitals"] is True
    assert body["regional"] == {"value": None} and body["peers"] == [] and body["limits"] == []
    assert body["own"]["rank"] is None and body["ranked"] == 0
    assert body["own"]["numerator"] == 30 and body["own"]["value"] == 75.0


def test_a_hospitals_own_small_value_is_shown_to_it_but_not_ranked(factory, client, centre_key):
    for code, parts in (("ME", (2, 3)), ("A", (17, 20)), ("B", (30, 40)), ("C", (5, 10))):
        factory.month(factory.hospital(code, "tertiary"), date(2026, 2, 1), {RATE: parts})
    factory.db.session.commit()
    body = verified(signed_get(client, factory, "ME", QUERY), centre_key)
    assert body["own"]["numerator"] == 2 and body["own"]["denominator"] == 3 and body["own"]["small"] is True
    assert body["own"]["value"] == pytest.approx(66.666667) and body["own"]["rank"] is None
    assert body["ranked"] == 3 and len(body["peers"]) == 3


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


@pytest.mark.parametrize("own", [(5, 10), (400, 1000), (9000, 10000)])
def test_nothing_given_depends_on_a_peers_exact_figures_whatever_the_hospital_sends_itself(factory, client,
                                                                                      centre_key, own):
    """Found by review: a hospital sending its own month again with chosen figures and asking each time solved the
    regional value for its peers' exact sums (36 answers gave 78/102 and 142/154). The answer is now the same for
    any exact figures of the peers that look the same when shown."""
    answers = []
    for variant, (a, b) in enumerate((((78, 102), (142, 154)), ((77, 101), (141, 153)))):
        for code, parts in ((f"ME{variant}", own), (f"A{variant}", a), (f"B{variant}", b)):
            factory.month(factory.hospital(code, "tertiary" if variant == 0 else "secondary"), date(2026, 2, 1),
                          {RATE: parts})
        factory.db.session.commit()
        body = verified(signed_get(client, factory, f"ME{variant}", QUERY), centre_key)
        answers.append({key: body[key] for key in ("regional", "peers", "limits", "ranked")})
    assert answers[0]["peers"] == answers[1]["peers"]  # the peers look the same when shown ...
    assert answers[0] == answers[1]  # ... so nothing else in the answer tells them apart
