"""Specialties are one coded list with labels; participants come from the staff list, account or not."""
from datetime import timedelta

import pytest
import sqlalchemy as sa

from qcflow.mdt import services
from tests.factories import discussion_of

URL = "/api/v1/mdt/discussions"


def notified(user, kind):
    from qcflow.extensions import db
    from qcflow.notify.messages import texts
    from qcflow.notify.models import Notification

    rows = db.session.scalars(sa.select(Notification).where(Notification.user_id == user.id, Notification.kind == kind))
    return [texts(row)[0] for row in rows]


@pytest.fixture
def anaesthetist_without_account(hospital, create_staff):
    """The only active anaesthetist in the staff list has no qcflow account (the linked one left)."""
    from qcflow.extensions import db

    hospital["staff"]["anaesthetist"].is_active = False
    staff = create_staff(name="孙麻醉", department=hospital["anaes"], specialty="anaesthesia")
    db.session.commit()
    return staff


def test_the_automatic_request_proposes_the_anaesthetist_without_an_account(
        hospital, grade_four, anaesthetist_without_account, mdt_now):
    discussion = discussion_of(services.on_operation_planned(grade_four, now=mdt_now))
    rows = [(p.name, p.user_id, p.staff_id, p.specialty) for p in discussion.participants]
    assert rows[0][3] == "general_surgery"
    assert ("孙麻醉", None, anaesthetist_without_account.id, "anaesthesia") in rows


def test_a_staff_member_without_an_account_is_picked_counts_for_the_quorum_and_cannot_chair(
        hospital, held_preop, actor_of, anaesthetist_without_account, mdt_now):
    from qcflow.core.errors import Conflict, Unprocessable

    head, later = actor_of("head"), mdt_now + timedelta(days=1, hours=2)
    for p in list(held_preop.participants):
        if p.specialty == "anaesthesia":
            services.remove_participant(held_preop, p, actor=head, now=later)
    missing = services.sign_blockers(held_preop, {})
    assert "以下专科尚无人员出席：麻醉科" in missing, missing
    with pytest.raises(Unprocessable) as refused:
        services.add_participant(held_preop, {"staff_id": anaesthetist_without_account.id, "specialty": "oncology"},
                                 actor=head, now=later)
    assert "specialty" in refused.value.errors
    with pytest.raises(Unprocessable) as refused:
        services.add_participant(held_preop, {"staff_id": anaesthetist_without_account.id, "role": "chair"},
                                 actor=head, now=later)
    assert "role" in refused.value.errors
    row = services.add_participant(held_preop, {"staff_id": anaesthetist_without_account.id}, actor=head, now=later)
    assert (row.name, row.user_id, row.department_id, row.specialty) == (
        "孙麻醉", None, hospital["anaes"].id, "anaesthesia")
    with pytest.raises(Conflict):
        services.add_participant(held_preop, {"staff_id": anaesthetist_without_account.id}, actor=head, now=later)
    # No login: the organiser records the attendance, and it counts.
    services.record_attendance(held_preop, [p.id for p in held_preop.participants], actor=head, now=later)
    assert not any("麻醉科" in b for b in services.sign_blockers(held_preop, {}))


def test_a_listed_colleague_with_an_account_is_added_as_that_user(hospital, held_preop, actor_of, mdt_now):
    from qcflow.core.errors import Conflict

    with pytest.raises(Conflict):  # the surgeon's staff entry is the proposed surgeon's account
        services.add_participant(held_preop, {"staff_id": hospital["staff"]["surgeon"].id}, actor=actor_of("head"),
                                 now=mdt_now + timedelta(days=1, hours=2))


def test_the_api_accepts_specialty_codes_or_labels_and_names_the_valid_ones(client, clients, hospital, held_preop):
    head = clients("head")
    url = f"{URL}/{held_preop.id}/participants"
    typed = head.post(url, headers=head.csrf, json={"name": "王教授（省人民医院）", "specialty": "麻醉"})
    assert typed.status_code == 422
    message = typed.json["errors"]["specialty"][0]
    # Named as the reader says them (the codes are the OpenAPI document's enum); a label is taken as its code.
    assert "麻醉科" in message and "普通外科" in message and "general_surgery" not in message
    labelled = head.post(url, headers=head.csrf, json={"name": "赵教授（省人民医院）", "specialty": "麻醉科"})
    assert labelled.status_code == 201 and labelled.json["specialty"] == "anaesthesia"
    coded = head.post(url, headers=head.csrf, json={"name": "王教授（省人民医院）", "specialty": "pathology"})
    assert coded.status_code == 201 and coded.json["specialty"] == "pathology"
    unknown = head.post(url, headers=head.csrf, json={"staff_id": 99999})
    assert unknown.status_code == 422 and "staff_id" in unknown.json["errors"]


def test_the_api_adds_a_staff_member_without_an_account(clients, hospital, held_preop, anaesthetist_without_account):
    head = clients("head")
    added = head.post(f"{URL}/{held_preop.id}/participants", headers=head.csrf,
                      json={"staff_id": anaesthetist_without_account.id})
    assert added.status_code == 201, added.json
    assert (added.json["user_id"], added.json["staff_id"], added.json["name"], added.json["specialty"],
            added.json["department_id"]) == (None, anaesthetist_without_account.id, "孙麻醉", "anaesthesia",
                                             hospital["anaes"].id)


def test_an_invited_colleague_is_notified_once(hospital, held_preop, actor_of, mdt_now):
    before = len(notified(hospital["colleague"], "mdt.invited"))
    services.add_participant(held_preop, {"user_id": hospital["colleague"].id}, actor=actor_of("head"),
                             now=mdt_now + timedelta(days=1, hours=2))
    titles = notified(hospital["colleague"], "mdt.invited")
    assert len(titles) == before + 1 and f"#{held_preop.id}" in titles[-1]


def test_the_automatic_request_tells_the_proposed_colleagues_but_not_the_surgeon_twice(hospital, grade_four, mdt_now):
    discussion = discussion_of(services.on_operation_planned(grade_four, now=mdt_now))
    assert len(notified(hospital["anaesthetist"], "mdt.invited")) == 1
    assert notified(hospital["clinician"], "mdt.invited") == []
    assert len(notified(hospital["clinician"], "mdt.requested")) == 1
    assert discussion.participants


def test_the_quorum_gap_is_named_in_the_readers_language(app, hospital, grade_four, mdt_now):
    discussion = discussion_of(services.on_operation_planned(grade_four, now=mdt_now))
    with app.test_request_context("/?lang=zh"):
        blockers = services.sign_blockers(discussion, {})
    assert any("麻醉科" in b for b in blockers) and not any("anaesthesia" in b for b in blockers)


def test_the_staff_feed_refuses_an_unknown_specialty(hospital, actor_of, mdt_now):
    from qcflow.clinical.services import import_rows

    results = import_rows("staff", [
        {"his_id": "X1", "name": "孙麻醉", "specialty": "麻醉"},
        {"his_id": "X2", "name": "钱病理", "specialty": "pathology"},
    ], actor=actor_of("admin"), now=mdt_now)
    assert "specialty" in results[0].errors and "麻醉科" in results[0].errors["specialty"][0]
    assert results[1].status == "created" and not results[1].errors


def test_specialties_stored_as_free_text_become_codes_on_upgrade(tmp_path):
    """A staff list typed by hand (“麻醉”, “普外科”) counts for the quorum after the upgrade."""
    from flask_migrate import upgrade

    from qcflow.extensions import db
    from tests.conftest import MIGRATIONS, make_app

    url = f"sqlite:///{tmp_path}/old.sqlite3"
    app = make_app(url, str(tmp_path))
    with app.app_context():
        upgrade(directory=MIGRATIONS, revision="c3a8e6f1d2b5")
        with db.engine.begin() as conn:
            for n, text in enumerate(("麻醉", " 普外科 ", "Anesthesia", "General_Surgery", "针灸推拿"), start=1):
                conn.execute(sa.text("INSERT INTO staff (id, his_id, name, specialty, is_active, version) "
                                     "VALUES (:id, :his, '某医生', :s, 1, 1)"), {"id": n, "his": f"S{n}", "s": text})
        upgrade(directory=MIGRATIONS)
        with db.engine.connect() as conn:
            stored = list(conn.execute(sa.text("SELECT specialty FROM staff ORDER BY id")).scalars())
        db.engine.dispose()
    assert stored == ["anaesthesia", "general_surgery", "anaesthesia", "general_surgery", "针灸推拿"]


def test_the_quorum_rules_name_specialties_of_the_list(app):
    """A required specialty outside the list could never be met (nobody can be given it)."""
    from qcflow.clinical.models import SPECIALTIES

    required = {code for rule in app.config["MDT_QUORUM"].values() for code in rule.get("required", [])}
    assert required and required <= set(SPECIALTIES)


def test_a_cancer_board_invites_the_oncologist_and_the_departments_surgeon(hospital, actor_of, create_patient,
                                                                           create_staff, mdt_now):
    """A cancer board has no quorum specialty, yet it is held for the oncologist: a lung-cancer patient's board
    asked by the surgical department invites its surgeon, the oncologist and the radiologist, not an
    anaesthetist picked only to make up numbers."""
    from qcflow.extensions import db

    create_staff(name="吴病理", department=hospital["radio"], specialty="pathology")  # a second one in radiology
    patient = create_patient()
    db.session.commit()
    board = services.request_discussion({"kind": "cancer_board", "patient_mrn": patient.mrn,
                                         "department_id": hospital["surgery"].id},
                                        actor=actor_of("quality"), now=mdt_now)
    invited = {p.name: p.specialty for p in board.participants}
    assert invited == {"李刀": "general_surgery", "孙瘤": "oncology", "钱影": "radiology"}, invited
    assert services.quorum_rule("cancer_board")["required"] == []  # signing asks for two specialties, as before
