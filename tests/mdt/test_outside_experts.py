"""Outside experts typed by name cannot stand in for this hospital's colleagues (docs/decisions.md, "Outside experts").

Observed before: a surgeon organising the pre-operative discussion of his own grade-4 operation made himself
chair, took the invited anaesthetist and oncologist off the list, typed two "outside experts" named after
colleagues with the anaesthesia and cardiology departments of this hospital, marked them present, signed and
booked the operation. Nobody else was told.
"""
from datetime import timedelta

import pytest
import sqlalchemy as sa

from qcflow.mdt import services

URL = "/api/v1/mdt/discussions"


def titles(user, kind):
    """The user's notifications of `kind` as they read them (the hospital's language, Chinese)."""
    from qcflow.extensions import db
    from qcflow.notify.messages import texts
    from qcflow.notify.models import Notification

    rows = db.session.scalars(sa.select(Notification).where(Notification.user_id == user.id, Notification.kind == kind))
    return [texts(row) for row in rows]


def current(client, headers, discussion_id):
    return client.get(f"{URL}/{discussion_id}", headers=headers).json


def test_one_organiser_cannot_open_the_booking_gate_with_typed_experts(client, hospital, held_preop, grade_four,
                                                                      bearer):
    doctor = bearer("clinician")
    url = f"{URL}/{held_preop.id}"
    d = current(client, doctor, held_preop.id)
    assert client.patch(url, headers=doctor, json={"version": d["version"],
                                                   "chair_user_id": hospital["clinician"].id}).status_code == 200
    for p in current(client, doctor, held_preop.id)["participants"]:
        if p["user_id"] in (hospital["anaesthetist"].id, hospital["oncologist"].id):
            assert client.delete(f"{url}/participants/{p['id']}", headers=doctor).status_code == 204

    # As observed: "experts" of this hospital's departments, by name only.
    claimed = {
        "anaesthesia": client.post(f"{url}/participants?lang=en", headers=doctor, json={
            "name": "孙麻醉", "specialty": "anaesthesia", "department_id": hospital["anaes"].id, "attended": True}),
        "cardiology": client.post(f"{url}/participants?lang=en", headers=doctor, json={
            "name": "钱心内", "specialty": "cardiology", "department_id": hospital["cardio"].id, "attended": True}),
    }
    for response in claimed.values():
        assert response.status_code == 422, response.json
        assert "staff list" in response.json["errors"]["department_id"][0]
    # Typed without a department, they are outside experts: recorded, but no anaesthetist and one place only.
    for name, specialty in (("孙麻醉（外院）", "anaesthesia"), ("钱心内（外院）", "cardiology")):
        added = client.post(f"{url}/participants", headers=doctor,
                            json={"name": name, "specialty": specialty, "attended": True})
        assert added.status_code == 201 and added.json["department_id"] is None
    d = current(client, doctor, held_preop.id)
    d = client.put(f"{url}/attendance", headers=doctor,
                   json={"version": d["version"], "attended": [p["id"] for p in d["participants"]]}).json
    d = client.patch(url, headers=doctor, json={"version": d["version"], "conclusion": "同意手术",
                                                "decision": "proceed"}).json
    signed = client.post(f"{url}/transitions?lang=en", headers=doctor, json={"action": "sign", "version": d["version"]})
    assert signed.status_code == 422, signed.json
    message = signed.json["message"]
    assert "no attending participant for: Anaesthesia" in message
    assert "an outside expert does not stand in for a required specialty (Anaesthesia)" in message
    assert "2 of 3 distinct specialties attended" in message and "outside experts together count as one" in message

    from qcflow.clinical.models import Operation
    from qcflow.extensions import db

    db.session.expire_all()
    assert current(client, doctor, held_preop.id)["state"] == "held"
    booked = client.post(f"/api/v1/operations/{grade_four.id}/transitions", headers=doctor,
                         json={"action": "book", "version": db.session.get(Operation, grade_four.id).version})
    assert booked.status_code == 409, booked.json


@pytest.mark.parametrize("typed", ["赵麻", " 赵 麻 ", "孙瘤", "陈主任"])
def test_a_name_on_the_staff_list_or_an_account_is_picked_from_the_list(client, hospital, held_preop, bearer, typed):
    refused = client.post(f"{URL}/{held_preop.id}/participants?lang=en", headers=bearer("head"),
                          json={"name": typed, "specialty": "anaesthesia"})
    assert refused.status_code == 422, refused.json
    assert "pick them from the staff list" in refused.json["errors"]["name"][0]
    zh = client.post(f"{URL}/{held_preop.id}/participants?lang=zh", headers=bearer("head"),
                     json={"name": typed, "specialty": "anaesthesia"})
    assert "请从人员名单中选择" in zh.json["errors"]["name"][0]


def test_someone_the_lists_do_not_offer_is_still_added_by_name(client, hospital, held_preop, bearer):
    """A nurse takes part by name (colleagues who take part are clinicians, heads or the quality office)."""
    nurse = hospital["nurse"].display_name
    added = client.post(f"{URL}/{held_preop.id}/participants", headers=bearer("head"), json={"name": nurse})
    assert added.status_code == 201 and added.json["name"] == nurse


def test_a_genuine_outside_expert_is_recorded_once_and_completes_the_quorum(hospital, held_preop, actor_of, mdt_now):
    """A pathologist of another hospital is the third specialty beside the surgeon and the listed anaesthetist."""
    from qcflow.core.errors import Conflict, Unprocessable
    from tests.mdt.conftest import complete_record

    head, later = actor_of("head"), mdt_now + timedelta(days=1, hours=2)
    oncologist = next(p for p in held_preop.participants if p.user_id == hospital["oncologist"].id)
    services.remove_participant(held_preop, oncologist, actor=head, now=later)
    expert = services.add_participant(held_preop, {"name": "王教授（省人民医院）", "specialty": "pathology"},
                                      actor=head, now=later)
    with pytest.raises(Conflict):
        services.add_participant(held_preop, {"name": " 王教授（省人民医院） ", "specialty": "radiology"},
                                 actor=head, now=later)
    with pytest.raises(Unprocessable) as moved:  # not afterwards either
        services.update_participant(held_preop, expert, {"department_id": hospital["onco"].id}, actor=head, now=later)
    assert "department_id" in moved.value.errors
    complete_record(held_preop, head, later, chair=hospital["head"])
    assert services.sign_blockers(held_preop, {}) == []
    # A second typed expert adds nothing: outside experts together hold one place.
    services.remove_participant(held_preop, next(p for p in held_preop.participants if p.specialty == "anaesthesia"),
                                actor=head, now=later)
    services.add_participant(held_preop, {"name": "李教授（市中心医院）", "specialty": "radiology", "attended": True},
                             actor=head, now=later)
    assert services.distinct_attendance(held_preop.participants) == 2


def test_the_quality_office_and_removed_invitees_are_told_of_the_signature(hospital, held_preop, actor_of, mdt_now):
    from qcflow.extensions import db
    from tests.mdt.conftest import complete_record

    head, later = actor_of("head"), mdt_now + timedelta(days=1, hours=2)
    oncologist = next(p for p in held_preop.participants if p.user_id == hospital["oncologist"].id)
    services.remove_participant(held_preop, oncologist, actor=head, now=later)
    services.add_participant(held_preop, {"name": "王教授（省人民医院）", "specialty": "pathology"}, actor=head, now=later)
    complete_record(held_preop, head, later, chair=hospital["head"])
    services.transition_discussion(held_preop, "sign", {}, actor=head, now=later)
    db.session.commit()
    assert held_preop.state == "signed"
    assert titles(hospital["oncologist"], "mdt.signed_after_removal") == [
        (f"MDT 记录 #{held_preop.id} 已签署，您此前已被移出参加人员", "术前讨论（四级手术）。如您本应参加，请告知质控办。")]
    assert titles(hospital["quality"], "mdt.signed_for_review") == [
        (f"MDT 记录 #{held_preop.id} 已签署：术前讨论（四级手术）", "参加人员和出席情况由组织者登记，请核对。")]
    # Those still on the list are told as before, and nobody twice.
    assert titles(hospital["anaesthetist"], "mdt.signed_after_removal") == []
    assert titles(hospital["anaesthetist"], "mdt.signed_for_review") == []
    assert titles(hospital["head"], "mdt.signed_for_review") == []


def test_the_invite_form_offers_no_department_for_an_outside_expert(clients, held_preop):
    page = clients("head").get(f"/mdt/{held_preop.id}").get_data(as_text=True)
    invite = page[page.index('id="invite"'):page.index("</details>", page.index('id="invite"'))]
    assert 'name="department_id"' not in invite
    assert "院外专家来自其他医院" in invite
