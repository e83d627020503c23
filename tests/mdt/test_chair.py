"""One chair everywhere: the record's chair, the participant with the chair role and the record form's choice."""
import re

from tests.conftest import csrf_from


def test_the_saved_chair_is_the_chair_participant_and_stays_chosen_in_the_form(clients, hospital, held_preop):
    from qcflow.extensions import db

    head = clients("head")
    base = f"/mdt/{held_preop.id}"
    csrf = csrf_from(head, base)
    db.session.expire_all()
    saved = head.post(base + "/record", data={"csrf_token": csrf, "version": str(held_preop.version),
                                              "chair_user_id": str(hospital["head"].id)})
    assert saved.status_code == 302
    html = head.get(base + "?lang=en").get_data(as_text=True)
    select = re.search(r'<select name="chair_user_id">.*?</select>', html, re.S).group(0)
    chosen = re.findall(r'<option value="(\d*)" selected>([^<]*)</option>', select)
    assert chosen and chosen[0][0] == str(hospital["head"].id) and "陈主任" in chosen[0][1]
    rows = re.search(r'id="participant-list".*?</table>', html, re.S).group(0)
    chair_rows = [row for row in re.findall(r"<tr.*?</tr>", rows, re.S) if ">Chair<" in row]
    assert len(chair_rows) == 1 and "陈主任" in chair_rows[0]


def test_the_blocker_names_the_specialty_whose_invitee_is_not_yet_marked_present(clients, hospital, held_preop):
    """The anaesthetist is invited but not marked present: the page says nobody of that specialty attended."""
    from qcflow.extensions import db
    from qcflow.mdt import services
    from qcflow.mdt.models import Discussion

    db.session.expire_all()
    discussion = db.session.get(Discussion, held_preop.id)
    anaesthetist = next(p for p in discussion.participants if p.specialty == "anaesthesia")
    assert not anaesthetist.attended
    assert services.sign_blockers(discussion, {})  # still blocked
    for language, expected in (("zh", "以下专科尚无人员出席：麻醉科"), ("en", "no attending participant for: Anaesthesia")):
        html = clients("head").get(f"/mdt/{held_preop.id}?lang={language}").get_data(as_text=True)
        quorum = re.search(r'id="quorum".*?</section>', html, re.S).group(0)
        assert expected in quorum and "缺少专科" not in quorum and "missing specialties" not in quorum


def test_the_operation_is_linked_only_for_readers_who_may_open_it(clients, hospital, held_preop, grade_four):
    """The invited anaesthetist reads the discussion and the procedure's name, without a link that would be a 404."""
    link = f'href="/operations/{grade_four.id}"'
    anaesthetist = clients("anaesthetist")
    html = anaesthetist.get(f"/mdt/{held_preop.id}?lang=en").get_data(as_text=True)
    assert link not in html and "胰十二指肠切除术" in html
    assert anaesthetist.get(f"/operations/{grade_four.id}").status_code == 404  # no new read rights
    for reader in ("head", "quality"):
        html = clients(reader).get(f"/mdt/{held_preop.id}?lang=en").get_data(as_text=True)
        assert link in html
        assert clients(reader).get(f"/operations/{grade_four.id}").status_code == 200


def test_the_home_page_names_the_patient_and_the_operation_of_each_waiting_discussion(clients, hospital, held_preop,
                                                                                       grade_four):
    from qcflow.clinical.models import Patient
    from qcflow.extensions import db

    patient = db.session.get(Patient, grade_four.patient_id)
    html = clients("clinician").get("/?lang=en").get_data(as_text=True)
    mdt = re.search(r'id="home-mdt".*?</section>', html, re.S).group(0)
    item = re.search(rf'<li>.*?href="/mdt/{held_preop.id}".*?</li>', mdt, re.S).group(0)
    link = re.search(r"<a [^>]*>(.*?)</a>", item, re.S).group(1)
    assert patient.name in link  # two discussions of one kind read differently
    assert "胰十二指肠切除术" in item and "planned" in item
    # A colleague with no part in it does not find it on their home page.
    assert f'/mdt/{held_preop.id}"' not in clients("radiologist").get("/").get_data(as_text=True)
