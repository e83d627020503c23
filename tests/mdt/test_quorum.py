"""Signing needs a chair, a conclusion, the pre-operative decision and a quorum of attending specialties."""
from types import SimpleNamespace

import pytest

from qcflow.core.errors import GuardFailed
from qcflow.mdt import services
from tests.mdt.conftest import complete_record


@pytest.fixture(scope="module")
def config_ctx(tmp_path_factory):
    """An app context for configuration and translated messages; no database."""
    from tests.conftest import make_app

    path = tmp_path_factory.mktemp("quorum")
    # The messages are asserted in English; the hospital default (Chinese) is tested elsewhere.
    with make_app(f"sqlite:///{path}/unused.sqlite3", str(path), BABEL_DEFAULT_LOCALE="en").app_context():
        yield


@pytest.fixture
def english(app):
    app.config["BABEL_DEFAULT_LOCALE"] = "en"


def people(*rows):
    """(specialty, department_id, attended) rows; department None is an outside expert (no account, not listed)."""
    from qcflow.mdt.models import Participant

    return [Participant(id=n, user_id=n if d is not None else None, staff_id=None, specialty=s, department_id=d,
                        attended=a)
            for n, (s, d, a) in enumerate(rows, 1)]


def record(kind="preop_level4", participants=(), **fields):
    return SimpleNamespace(kind=kind, chair_user_id=fields.get("chair", 1), conclusion=fields.get("conclusion", "同意"),
                           decision=fields.get("decision", "proceed" if kind == "preop_level4" else None),
                           participants=list(participants))


SURGERY, ANAES, ONCO, RADIO = 1, 2, 3, 4


@pytest.mark.parametrize("rows, blockers", [
    pytest.param([("general_surgery", SURGERY, True), ("anaesthesia", ANAES, True), ("oncology", ONCO, True)],
                 [], id="three specialties from three departments"),
    pytest.param([("general_surgery", SURGERY, True), ("oncology", ONCO, True), ("radiology", RADIO, True)],
                 ["no attending participant for: Anaesthesia"], id="missing anaesthesia"),
    pytest.param([("general_surgery", SURGERY, True), ("anaesthesia", ANAES, True)],
                 ["2 of 3 distinct specialties attended"], id="too few specialties"),
    pytest.param([("general_surgery", SURGERY, True), ("hepatobiliary_surgery", SURGERY, True),
                  ("anaesthesia", ANAES, True)],
                 ["2 of 3 distinct specialties attended"], id="same department twice counts once"),
    pytest.param([("general_surgery", SURGERY, True), ("anaesthesia", ANAES, False), ("oncology", ONCO, True),
                  ("radiology", RADIO, False)],
                 ["no attending participant for: Anaesthesia", "2 of 3 distinct specialties attended"],
                 id="absent participants do not count"),
    pytest.param([("general_surgery", SURGERY, True), ("general_surgery", ONCO, True), ("anaesthesia", ANAES, True)],
                 ["2 of 3 distinct specialties attended"], id="same specialty twice counts once"),
    pytest.param([("general_surgery", SURGERY, True), ("anaesthesia", ANAES, True), ("oncology", None, True)],
                 [], id="an outside expert is a department of their own"),
    pytest.param([("general_surgery", SURGERY, True), ("anaesthesia", None, True), ("oncology", ONCO, True)],
                 ["no attending participant for: Anaesthesia",
                  "an outside expert does not stand in for a required specialty (Anaesthesia)"],
                 id="an outside expert never meets a required specialty"),
    pytest.param([("anaesthesia", ANAES, True), ("oncology", None, True), ("radiology", None, True)],
                 ["2 of 3 distinct specialties attended (each from a different department; outside experts together "
                  "count as one)"], id="outside experts together count as one"),
    pytest.param([("Anaesthesia ", ANAES, True), ("general_surgery", SURGERY, True), ("oncology", ONCO, True)],
                 [], id="specialties compare without case or spaces"),
    # A greedy count would pair anaesthesia with department 1 first and stop at 2.
    pytest.param([("anaesthesia", SURGERY, True), ("anaesthesia", ANAES, True), ("general_surgery", SURGERY, True),
                  ("oncology", ANAES, True), ("oncology", ONCO, True)], [],
                 id="best pairing of specialty and department"),
])
def test_preop_quorum(config_ctx, rows, blockers):
    found = services.sign_blockers(record(participants=people(*rows)), {})
    assert len(found) == len(blockers)
    for text, expected in zip(found, blockers):
        assert text.startswith(expected)


def test_other_kinds_need_two_specialties_and_no_particular_one(config_ctx):
    two = people(("cardiology", 1, True), ("general_surgery", 2, True))
    assert services.sign_blockers(record("death_case", two), {}) == []
    assert services.sign_blockers(record("death_case", two[:1]), {})[0].startswith("1 of 2 distinct specialties")


def test_chair_conclusion_and_preop_decision_are_required(config_ctx):
    full = people(("general_surgery", 1, True), ("anaesthesia", 2, True), ("oncology", 3, True))
    blockers = services.sign_blockers(record(participants=full, chair=None, conclusion=None, decision=None), {})
    assert blockers == ["no chair", "no conclusion", "no decision (proceed, modify the plan or do not operate)"]
    assert services.sign_blockers(record("case_review", full, decision=None), {}) == []
    # Conclusion and decision may come with the sign step itself.
    assert services.sign_blockers(record(participants=full, conclusion=None, decision=None),
                                  {"conclusion": "同意", "decision": "proceed"}) == []


def test_quorum_is_configurable(config_ctx, monkeypatch):
    from flask import current_app

    monkeypatch.setitem(current_app.config, "MDT_QUORUM", {"preop_level4": {"min_specialties": 2, "required": []},
                                                           "default": {"min_specialties": 1, "required": []}})
    two = people(("general_surgery", 1, True), ("oncology", 2, True))
    assert services.sign_blockers(record(participants=two), {}) == []


# Through the service and the API ------------------------------------------------------------------

def test_signing_without_anaesthesia_is_refused_with_what_is_missing(english, hospital, held_preop, actor_of, mdt_now):
    absent = next(p for p in held_preop.participants if p.specialty == "anaesthesia")
    attended = [p.id for p in held_preop.participants if p is not absent]
    complete_record(held_preop, actor_of("head"), mdt_now, chair=hospital["head"], attended=attended)
    with pytest.raises(GuardFailed) as caught:
        services.transition_discussion(held_preop, "sign", {}, actor=actor_of("head"), now=mdt_now)
    assert caught.value.status == 422
    assert "no attending participant for: Anaesthesia; 2 of 3 distinct specialties attended" in str(caught.value.message)
    assert held_preop.state == "held"


def test_signing_over_the_api_names_every_gap_then_succeeds(clients, hospital, held_preop):
    head = clients("head")
    url = f"/api/v1/mdt/discussions/{held_preop.id}"
    current = head.get(url).json
    refused = head.post(url + "/transitions?lang=en", headers=head.csrf,
                        json={"action": "sign", "version": current["version"]})
    assert refused.status_code == 422 and refused.json["code"] == "guard_failed"
    for gap in ("no chair", "no conclusion", "no decision", "no attending participant for: Anaesthesia",
                "0 of 3 distinct specialties attended"):
        assert gap in refused.json["message"]
    ids = [p["id"] for p in current["participants"]]
    current = head.put(url + "/attendance", headers=head.csrf,
                       json={"version": current["version"], "attended": ids}).json
    current = head.patch(url, headers=head.csrf, json={"version": current["version"],
                                                       "chair_user_id": hospital["head"].id,
                                                       "conclusion": "同意手术", "decision": "proceed"}).json
    signed = head.post(url + "/transitions", headers=head.csrf, json={"action": "sign", "version": current["version"]})
    assert signed.status_code == 200, signed.json
    assert signed.json["state"] == "signed" and signed.json["signed_at"]
    assert signed.json["signed_by_user_id"] == hospital["head"].id
    chair_rows = [p for p in signed.json["participants"] if p["role"] == "chair"]
    assert [p["user_id"] for p in chair_rows] == [hospital["head"].id]
