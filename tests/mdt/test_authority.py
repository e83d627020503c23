"""Who may act on a discussion (docs/decisions.md, "Who may act on a discussion").

The organising department's clinicians and heads and the quality office record, manage the
participants, appoint the chair and mark attendance; the chair (or a head of the organising
department, or the quality office) signs; a participant from another department reads, confirms their
own attendance and adds addenda after signing — nothing else. Observed before: an anaesthetist invited
to a general-surgery pre-operative discussion made himself chair, recorded the decision, marked
everyone present, signed alone, and the surgeon could then book the grade-4 operation.
"""
from datetime import timedelta

import pytest
import sqlalchemy as sa
from tests.factories import discussion_of

URL = "/api/v1/mdt/discussions"


def snapshot(discussion_id):
    """What an auditor would compare: the record, the participant list and the audit trail's length."""
    from qcflow.core.audit import AuditEntry
    from qcflow.extensions import db
    from qcflow.mdt.models import Discussion

    db.session.expire_all()
    d = db.session.get(Discussion, discussion_id)
    return {"state": d.state, "version": d.version, "chair": d.chair_user_id, "conclusion": d.conclusion,
            "decision": d.decision, "scheduled_at": d.scheduled_at,
            "participants": sorted((p.id, p.user_id, p.role, p.attended) for p in d.participants),
            "audit": db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry))}


def test_an_invited_outsider_cannot_open_the_booking_gate_alone(client, hospital, held_preop, grade_four, bearer):
    outsider = bearer("anaesthetist")
    me = hospital["anaesthetist"].id
    d = client.get(f"{URL}/{held_preop.id}", headers=outsider).json
    surgeon_row = next(p for p in d["participants"] if p["user_id"] == hospital["clinician"].id)
    own_row = next(p for p in d["participants"] if p["user_id"] == me)
    before = snapshot(held_preop.id)
    attempts = {
        "appoint himself chair": client.patch(f"{URL}/{d['id']}", headers=outsider,
                                               json={"version": d["version"], "chair_user_id": me}),
        "record the decision": client.patch(f"{URL}/{d['id']}", headers=outsider,
                                            json={"version": d["version"], "conclusion": "同意", "decision": "proceed"}),
        "mark everyone present": client.put(f"{URL}/{d['id']}/attendance", headers=outsider,
                                            json={"version": d["version"],
                                                  "attended": [p["id"] for p in d["participants"]]}),
        "mark the surgeon present": client.patch(f"{URL}/{d['id']}/participants/{surgeon_row['id']}",
                                                 headers=outsider, json={"version": d["version"], "attended": True}),
        "make his own row the chair": client.patch(f"{URL}/{d['id']}/participants/{own_row['id']}",
                                                   headers=outsider, json={"version": d["version"], "role": "chair"}),
        "invite a colleague": client.post(f"{URL}/{d['id']}/participants", headers=outsider,
                                          json={"name": "外院专家", "specialty": "pathology", "attended": True}),
        "remove the surgeon": client.delete(f"{URL}/{d['id']}/participants/{surgeon_row['id']}", headers=outsider),
        "sign": client.post(f"{URL}/{d['id']}/transitions", headers=outsider,
                            json={"action": "sign", "version": d["version"], "conclusion": "同意", "decision": "proceed"}),
        "cancel": client.post(f"{URL}/{d['id']}/transitions", headers=outsider,
                              json={"action": "cancel", "version": d["version"], "reason": "x"}),
    }
    wrong = {what: r.status_code for what, r in attempts.items() if r.status_code != 403}
    assert not wrong, wrong
    assert all(r.json["message"] for r in attempts.values())
    assert snapshot(held_preop.id) == before

    # What a participant may do: confirm their own attendance.
    stale = client.patch(f"{URL}/{d['id']}/participants/{own_row['id']}", headers=outsider,
                         json={"version": d["version"] - 1, "attended": True})
    assert stale.status_code == 409  # confirmed on a page read before the record changed
    confirmed = client.patch(f"{URL}/{d['id']}/participants/{own_row['id']}", headers=outsider,
                             json={"version": d["version"], "attended": True})
    assert confirmed.status_code == 200 and confirmed.json["attended"] is True

    # The gate stays shut for the surgeon.
    from qcflow.clinical.models import Operation
    from qcflow.extensions import db

    db.session.expire_all()
    booked = client.post(f"/api/v1/operations/{grade_four.id}/transitions", headers=bearer("clinician"),
                         json={"action": "book", "version": db.session.get(Operation, grade_four.id).version})
    assert booked.status_code == 409, booked.json


def test_an_outsider_on_a_requested_discussion_cannot_schedule_or_hold(client, hospital, grade_four, bearer, mdt_now):
    from qcflow.extensions import db
    from qcflow.mdt import services

    discussion = discussion_of(services.on_operation_planned(grade_four, now=mdt_now))
    db.session.commit()
    outsider = bearer("anaesthetist")
    scheduled = client.post(f"{URL}/{discussion.id}/transitions", headers=outsider,
                            json={"action": "schedule", "version": discussion.version,
                                  "scheduled_at": "2026-03-05T14:00:00+08:00"})
    assert scheduled.status_code == 403
    assert snapshot(discussion.id)["state"] == "requested"


def test_the_chair_appointed_by_the_organisers_records_and_signs_but_does_not_manage(
        client, hospital, held_preop, bearer, actor_of, mdt_now):
    """The organising head appoints the oncologist (another department) chair: she records and signs."""
    from qcflow.extensions import db
    from qcflow.mdt import services

    head = actor_of("head")
    services.record_attendance(held_preop, [p.id for p in held_preop.participants], actor=head, now=mdt_now)
    services.update_discussion(held_preop, {"chair_user_id": hospital["oncologist"].id}, actor=head, now=mdt_now)
    db.session.commit()
    chair = bearer("oncologist")
    d = client.get(f"{URL}/{held_preop.id}", headers=chair).json
    invited = client.post(f"{URL}/{d['id']}/participants", headers=chair, json={"name": "外院专家"})
    assert invited.status_code == 403
    handed_on = client.patch(f"{URL}/{d['id']}", headers=chair,
                             json={"version": d["version"], "chair_user_id": hospital["radiologist"].id})
    assert handed_on.status_code == 403
    recorded = client.patch(f"{URL}/{d['id']}", headers=chair,
                            json={"version": d["version"], "summary": "评估麻醉风险。"})
    assert recorded.status_code == 200, recorded.json
    signed = client.post(f"{URL}/{d['id']}/transitions", headers=chair,
                         json={"action": "sign", "version": recorded.json["version"], "conclusion": "同意手术",
                               "decision": "proceed"})
    assert signed.status_code == 200, signed.json
    assert signed.json["signed_by_user_id"] == hospital["oncologist"].id


@pytest.mark.parametrize("role, status", [("other_head", 404), ("med_head", 404), ("head", 200), ("quality", 200),
                                          ("clinician", 403), ("anaesthetist", 403)])
def test_who_signs_a_complete_record(client, hospital, held_preop, bearer, actor_of, mdt_now, role, status):
    """A head signs their own department's discussions; invited or not, another head does not."""
    from qcflow.extensions import db
    from qcflow.mdt import services

    head = actor_of("head")
    services.record_attendance(held_preop, [p.id for p in held_preop.participants], actor=head, now=mdt_now)
    services.update_discussion(held_preop, {"chair_user_id": hospital["colleague"].id, "conclusion": "同意手术",
                                            "decision": "proceed"}, actor=head, now=mdt_now)
    if role == "med_head":  # invited from another department: reads it, signs nothing
        services.add_participant(held_preop, {"user_id": hospital["med_head"].id}, actor=head, now=mdt_now)
        status = 403
    db.session.commit()
    signed = client.post(f"{URL}/{held_preop.id}/transitions", headers=bearer(role),
                         json={"action": "sign", "version": held_preop.version})
    assert signed.status_code == status, signed.json
    assert snapshot(held_preop.id)["state"] == ("signed" if status == 200 else "held")


def test_a_participant_confirms_attendance_only_once_the_discussion_is_held(client, hospital, grade_four, bearer,
                                                                         mdt_now, actor_of):
    """Before the meeting there is nothing to attend: a confirmation then would count towards the quorum."""
    from qcflow.extensions import db
    from qcflow.mdt import services

    discussion = discussion_of(services.on_operation_planned(grade_four, now=mdt_now))
    db.session.commit()
    own = next(p.id for p in discussion.participants if p.user_id == hospital["anaesthetist"].id)
    early = client.patch(f"{URL}/{discussion.id}/participants/{own}", headers=bearer("anaesthetist"),
                         json={"version": discussion.version, "attended": True})
    assert early.status_code == 409 and early.json["message"]
    assert not snapshot(discussion.id)["participants"][0][3]
    head = actor_of("head")
    services.transition_discussion(discussion, "schedule", {"scheduled_at": mdt_now}, actor=head, now=mdt_now)
    services.transition_discussion(discussion, "hold", {}, actor=head, now=mdt_now)
    db.session.commit()
    held = client.patch(f"{URL}/{discussion.id}/participants/{own}", headers=bearer("anaesthetist"),
                        json={"version": discussion.version, "attended": True})
    assert held.status_code == 200 and held.json["attended"] is True


def test_participants_add_addenda_after_signing_and_outsiders_do_not(client, hospital, held_preop, bearer, actor_of,
                                                                     mdt_now):
    from qcflow.extensions import db
    from qcflow.mdt import services

    head = actor_of("head")
    services.record_attendance(held_preop, [p.id for p in held_preop.participants], actor=head, now=mdt_now)
    services.update_discussion(held_preop, {"chair_user_id": hospital["head"].id, "conclusion": "同意手术",
                                            "decision": "proceed"}, actor=head, now=mdt_now)
    services.transition_discussion(held_preop, "sign", {}, actor=head, now=mdt_now + timedelta(hours=2))
    db.session.commit()
    url = f"{URL}/{held_preop.id}/addenda"
    assert client.post(url, headers=bearer("anaesthetist"), json={"text": "麻醉方案调整。"}).status_code == 201
    assert client.post(url, headers=bearer("other_head"), json={"text": "x"}).status_code == 404


def test_the_page_offers_a_participant_only_their_own_attendance(app, clients, hospital, held_preop):
    from tests.conftest import csrf_from

    page = clients("anaesthetist")
    html = page.get(f"/mdt/{held_preop.id}").get_data(as_text=True)
    assert 'name="chair_user_id"' not in html and "mdt/%d/participants\"" % held_preop.id not in html
    assert 'type="checkbox" name="attended"' not in html and "/remove" not in html
    assert f"/mdt/{held_preop.id}/my-attendance" in html
    token = csrf_from(page, f"/mdt/{held_preop.id}")
    refused = page.post(f"/mdt/{held_preop.id}/attendance",
                        data={"csrf_token": token, "version": held_preop.version,
                              "attended": [p.id for p in held_preop.participants]})
    assert refused.status_code == 403
    confirmed = page.post(f"/mdt/{held_preop.id}/my-attendance",
                          data={"csrf_token": token, "version": held_preop.version, "attended": "true"})
    assert confirmed.status_code == 302
    rows = {p[1]: p[3] for p in snapshot(held_preop.id)["participants"]}
    assert rows[hospital["anaesthetist"].id] is True
    assert [attended for user, attended in rows.items() if user != hospital["anaesthetist"].id] == [False] * (len(rows) - 1)
    organiser = clients("head").get(f"/mdt/{held_preop.id}").get_data(as_text=True)
    assert 'name="chair_user_id"' in organiser and 'type="checkbox" name="attended"' in organiser


def test_an_organiser_cannot_invent_a_colleagues_specialty_or_department(client, hospital, held_preop, bearer):
    """The quorum counts distinct specialties from distinct departments: for a colleague both come from
    the staff list and their account, not from whoever records (an outside expert's are written by hand)."""
    doctor = bearer("clinician")
    d = client.get(f"{URL}/{held_preop.id}", headers=doctor).json
    anaesthetist = next(p for p in d["participants"] if p["user_id"] == hospital["anaesthetist"].id)
    relabelled = client.patch(f"{URL}/{d['id']}/participants/{anaesthetist['id']}", headers=doctor,
                              json={"version": d["version"], "specialty": "cardiology"})
    assert relabelled.status_code == 422 and "anaesthesia" in relabelled.json["errors"]["specialty"][0]
    moved = client.post(f"{URL}/{d['id']}/participants", headers=doctor,
                        json={"user_id": hospital["colleague"].id, "department_id": hospital["cardio"].id,
                              "specialty": "hepatobiliary_surgery"})
    assert moved.status_code == 422 and "department_id" in moved.json["errors"]
    expert = client.post(f"{URL}/{d['id']}/participants", headers=doctor,
                         json={"name": "王教授（省人民医院）", "specialty": "pathology"})
    assert expert.status_code == 201 and expert.json["specialty"] == "pathology"
    assert snapshot(held_preop.id)["participants"] == sorted(
        [*((p["id"], p["user_id"], p["role"], p["attended"]) for p in d["participants"]),
         (expert.json["id"], None, "member", False)])


@pytest.mark.parametrize("who", ["nurse", "disabled clinician"])
def test_a_chair_is_an_active_clinician_head_or_quality_officer(client, hospital, grade_four, bearer, create_user,
                                                                 who):
    from qcflow.extensions import db

    chair = hospital["nurse"] if who == "nurse" else create_user(username="gone", roles=("clinician",),
                                                                 department=hospital["surgery"], is_active=False)
    db.session.commit()
    requested = client.post(URL, headers=bearer("head"), json={"kind": "difficult_case", "question": "疑难病例",
                                                               "operation_id": grade_four.id,
                                                               "chair_user_id": chair.id})
    assert requested.status_code == 422 and "chair_user_id" in requested.json["errors"], requested.json


def test_a_clinician_names_only_their_own_department_as_organiser(client, hospital, grade_four, bearer):
    body = {"kind": "difficult_case", "question": "疑难病例", "operation_id": grade_four.id}
    other = client.post(URL, headers=bearer("clinician"), json={**body, "department_id": hospital["cardio"].id})
    assert other.status_code == 404  # not silently organised by their own department instead
    own = client.post(URL, headers=bearer("clinician"), json={**body, "department_id": hospital["surgery"].id})
    assert own.status_code == 201 and own.json["department_id"] == hospital["surgery"].id


def test_a_clinician_cannot_reach_another_departments_patient_by_record_number(client, hospital, grade_four, bearer):
    """Requesting a discussion by MRN was a hospital-wide name look-up (and let another department
    take over that patient's death review)."""
    from qcflow.clinical.models import Patient
    from qcflow.extensions import db

    mrn = db.session.get(Patient, grade_four.patient_id).mrn
    body = {"kind": "death_case", "question": "x", "patient_mrn": mrn}
    foreign = client.post(URL, headers=bearer("other_head"), json=body)
    unknown = client.post(URL, headers=bearer("other_head"), json={**body, "patient_mrn": "NO-SUCH-MRN"})
    assert foreign.status_code == unknown.status_code == 422
    assert foreign.json["errors"] == unknown.json["errors"]  # the same answer: nothing to enumerate
    assert client.post(URL, headers=bearer("head"), json=body).status_code == 201


def test_the_death_hook_never_adopts_a_review_requested_in_another_department(hospital, create_patient,
                                                                           create_encounter, actor_of, mdt_now):
    from qcflow.extensions import db
    from qcflow.mdt import services

    patient = create_patient()
    stay = create_encounter(patient, hospital["cardio"], mdt_now - timedelta(days=3))
    db.session.commit()
    elsewhere = services.request_discussion(
        {"kind": "death_case", "patient_mrn": patient.mrn, "department_id": hospital["onco"].id, "question": "x"},
        actor=actor_of("quality"), now=mdt_now)
    review = discussion_of(services.on_death(patient, died_at=mdt_now - timedelta(hours=2), encounter=stay,
                                             now=mdt_now))
    assert review.id != elsewhere.id
    assert (review.department_id, review.due_at) == (hospital["cardio"].id, mdt_now - timedelta(hours=2) + timedelta(days=7))


def test_a_requester_cannot_push_a_death_review_beyond_its_rule(client, hospital, grade_four, bearer):
    from qcflow.clinical.models import Patient
    from qcflow.extensions import db

    mrn = db.session.get(Patient, grade_four.patient_id).mrn
    late = client.post(URL, headers=bearer("head"), json={"kind": "death_case", "patient_mrn": mrn,
                                                          "due_at": "2199-01-01T00:00:00+00:00"})
    assert late.status_code == 422 and "due_at" in late.json["errors"]


def test_only_clinicians_heads_and_quality_take_part_as_colleagues_with_their_listed_specialty(
        client, hospital, held_preop, bearer):
    doctor = bearer("clinician")
    d = client.get(f"{URL}/{held_preop.id}", headers=doctor).json
    admin = client.post(f"{URL}/{d['id']}/participants", headers=doctor,
                        json={"user_id": hospital["admin"].id, "specialty": "anaesthesia"})
    assert admin.status_code == 422 and "user_id" in admin.json["errors"]
    unlisted = client.post(f"{URL}/{d['id']}/participants", headers=doctor,   # no staff row: no specialty
                           json={"user_id": hospital["med_head"].id, "specialty": "anaesthesia"})
    assert unlisted.status_code == 422 and "specialty" in unlisted.json["errors"]
    anaesthetist = next(p for p in d["participants"] if p["user_id"] == hospital["anaesthetist"].id)
    nowhere = client.patch(f"{URL}/{d['id']}/participants/{anaesthetist['id']}", headers=doctor,
                           json={"version": d["version"], "department_id": None})
    assert nowhere.status_code == 422 and "department_id" in nowhere.json["errors"]
    assert snapshot(held_preop.id)["version"] == d["version"]


def test_a_refused_step_says_who_may_and_a_hold_time_before_the_request_is_refused(client, hospital, held_preop,
                                                                                     grade_four, bearer):
    refused = client.post(f"{URL}/{held_preop.id}/transitions", headers=bearer("clinician"),
                          json={"action": "sign", "version": held_preop.version})
    assert refused.status_code == 403 and "主持人" in refused.json["message"]
    requested = client.post(URL, headers=bearer("head"), json={"kind": "difficult_case", "question": "x",
                                                               "operation_id": grade_four.id}).json
    scheduled = client.post(f"{URL}/{requested['id']}/transitions", headers=bearer("head"),
                            json={"action": "schedule", "version": requested["version"],
                                  "scheduled_at": "2030-01-01T09:00:00+08:00"}).json
    early = client.post(f"{URL}/{requested['id']}/transitions", headers=bearer("head"),
                        json={"action": "hold", "version": scheduled["version"], "held_at": "1990-01-01T09:00:00+08:00"})
    assert early.status_code == 422 and "held_at" in early.json["errors"]
