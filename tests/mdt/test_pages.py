"""Discussion pages: list, request form, the record page's forms, access and CSRF."""
import re

import sqlalchemy as sa
from werkzeug.datastructures import MultiDict

from tests.conftest import csrf_from
from tests.factories import discussion_of


def token(client, path):
    return csrf_from(client, path)


def test_list_shows_mine_first_and_filters(clients, hospital, held_preop, operated_death):
    doctor = clients("clinician")
    page = doctor.get("/mdt?lang=en")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    pending = re.search(r'id="pending".*?</section>', html, re.S).group(0)
    # The surgeon is invited to both, the death review although medical affairs organises it.
    assert f'"/mdt/{held_preop.id}"' in pending and f'"/mdt/{operated_death.id}"' in pending
    radiologist = clients("radiologist").get("/mdt?lang=en").get_data(as_text=True)
    assert "/mdt/" + str(held_preop.id) not in radiologist and "No discussions match." in radiologist
    quality_html = clients("quality").get("/mdt?kind=perioperative_death&lang=en").get_data(as_text=True)
    assert f'"/mdt/{operated_death.id}"' in quality_html and f'"/mdt/{held_preop.id}"' not in quality_html
    assert clients("quality").get("/mdt?state=nope").status_code == 422
    assert clients("nurse").get("/mdt").status_code == 403


def test_nav_links_to_mdt_for_clinical_roles_only(clients):
    assert 'href="/mdt"' in clients("clinician").get("/").get_data(as_text=True)
    assert 'href="/mdt"' not in clients("nurse").get("/").get_data(as_text=True)


def test_request_form_creates_a_discussion_and_reports_field_errors(clients, hospital, grade_four):
    doctor = clients("clinician")
    csrf = token(doctor, "/mdt/new")
    missing = doctor.post("/mdt/new?lang=en", data={"csrf_token": csrf, "kind": "preop_level4"})
    assert missing.status_code == 422 and "choose it" in missing.get_data(as_text=True)
    created = doctor.post("/mdt/new", data={"csrf_token": csrf, "kind": "preop_level4",
                                             "operation_id": str(grade_four.id), "question": "手术指征？"})
    assert created.status_code == 302
    page = doctor.get(created.headers["Location"] + "?lang=en").get_data(as_text=True)
    assert "手术指征？" in page and "anaesthesia" in page and 'value="schedule"' in page
    assert 'value="sign"' not in page  # a clinician who does not chair cannot sign


def test_the_record_page_drives_a_discussion_to_signed_with_forms(clients, hospital, grade_four):
    from qcflow.extensions import db
    from qcflow.mdt import services

    discussion = discussion_of(services.on_operation_planned(grade_four, now=grade_four.planned_at.replace(day=1)))
    db.session.commit()
    head = clients("head")
    base = f"/mdt/{discussion.id}"
    csrf = token(head, base)

    def version():
        db.session.expire_all()
        return str(db.session.get(type(discussion), discussion.id).version)

    def post(path, **form):
        return head.post(base + path, data={"csrf_token": csrf, **form})

    scheduled = post("/transitions", action="schedule", version=version(), scheduled_at="2026-03-05T14:00")
    assert scheduled.status_code == 302
    db.session.expire_all()
    assert discussion.scheduled_at.isoformat() == "2026-03-05T06:00:00+00:00"  # the form's time is Shanghai time
    assert post("/transitions", action="hold", version=version()).status_code == 302
    ids = [str(p.id) for p in discussion.participants]
    attendance = head.post(base + "/attendance", data=MultiDict(
        [("csrf_token", csrf), ("version", version())] + [("attended", i) for i in ids]))
    assert attendance.status_code == 302
    assert post("/record", version=version(), chair_user_id=str(hospital["head"].id), summary="讨论纪要",
                conclusion="同意手术", decision="proceed").status_code == 302
    page = head.get(base + "?lang=en").get_data(as_text=True)
    assert 'value="sign"' in page and 'id="quorum"' not in page
    assert post("/transitions", action="sign", version=version()).status_code == 302
    db.session.expire_all()
    assert discussion.state == "signed"
    page = head.get(base + "?lang=en").get_data(as_text=True)
    assert 'id="addenda"' in page and 'id="record"' not in page and 'name="attended"' not in page
    assert post("/addenda", text="补充说明").status_code == 302
    assert "补充说明" in head.get(base).get_data(as_text=True)
    assert post("/record", version=version(), conclusion="改").status_code == 409
    assert head.post(base + "/addenda", data={"text": "无令牌"}).status_code == 400


def test_record_page_shows_what_still_blocks_signing(clients, held_preop):
    html = clients("head").get(f"/mdt/{held_preop.id}?lang=en").get_data(as_text=True)
    quorum = re.search(r'id="quorum".*?</section>', html, re.S).group(0)
    assert "no chair" in quorum and "0 of 3 distinct specialties attended" in quorum


def test_other_departments_get_404_on_every_page(clients, held_preop):
    other = clients("other_head")
    for path in ("", "/minutes.pdf"):
        assert other.get(f"/mdt/{held_preop.id}{path}").status_code == 404
    csrf = token(other, "/mdt")
    assert other.post(f"/mdt/{held_preop.id}/addenda", data={"csrf_token": csrf, "text": "x"}).status_code == 404


def test_page_steps_are_audited_with_the_user(clients, hospital, held_preop):
    from qcflow.core.audit import AuditEntry
    from qcflow.extensions import db

    quality = clients("quality")
    csrf = token(quality, f"/mdt/{held_preop.id}")
    response = quality.post(f"/mdt/{held_preop.id}/transitions", data={
        "csrf_token": csrf, "action": "cancel", "version": str(held_preop.version), "reason": "患者转院"})
    assert response.status_code == 302
    actors = db.session.scalars(sa.select(AuditEntry.actor).where(AuditEntry.action == "mdt_discussion.cancel")).all()
    assert actors == [f"user:{hospital['quality'].id}"]
