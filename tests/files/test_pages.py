"""The file routes: who may add and read a case's files, what is served, the report forms, the receipt, the PDF."""
import io
import re
import subprocess

import sqlalchemy as sa
from PIL import Image

from tests.events.test_anonymous_resend import fresh_form, receipt_of
from tests.events.test_session_free import report_form
from tests.files.conftest import SERIAL, jpeg_with_exif
from tests.files.test_services import stored_files


def upload(client, event_id, data, name="photo.jpg", **fields):
    return client.post(f"/events/{event_id}/files?lang=en", data={"files": (io.BytesIO(data), name), **fields},
                       headers=client.csrf, content_type="multipart/form-data")


def rows(app, **where):
    from qcflow.extensions import db
    from qcflow.files.models import Attachment

    db.session.rollback()  # the test's own session sees what the requests committed
    return list(db.session.scalars(sa.select(Attachment).filter_by(**where).order_by(Attachment.id)))


def read_audits(app) -> int:
    from qcflow.core.audit import AnonymousAuditEntry, AuditEntry
    from qcflow.extensions import db

    db.session.rollback()
    return sum(db.session.scalar(sa.select(sa.func.count()).select_from(model).where(
        model.action == "attachment.read")) for model in (AuditEntry, AnonymousAuditEntry))


def test_the_quality_office_attaches_a_photo_that_departments_read_and_others_do_not(app, clients, case):
    answer = upload(clients("quality"), case.id, jpeg_with_exif(), name="压疮.jpg")
    assert answer.status_code == 302 and answer.location.endswith("#attachments")
    added, = rows(app)
    page = clients("quality").get(f"/events/{case.id}").get_data(as_text=True)
    assert f"/events/{case.id}/files/{added.id}/thumbnail" in page and "压疮.jpg" in page
    served = clients("head").get(f"/events/{case.id}/files/{added.id}")
    assert served.status_code == 200 and served.mimetype == "image/jpeg"
    assert SERIAL.encode() not in served.data and dict(Image.open(io.BytesIO(served.data)).getexif()) == {}
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert served.headers["Cache-Control"] == "private, no-store"
    assert "sandbox" in served.headers["Content-Security-Policy"]
    assert served.headers["Content-Disposition"].startswith("inline;")
    thumbnail = clients("head").get(f"/events/{case.id}/files/{added.id}/thumbnail")
    assert thumbnail.status_code == 200 and max(Image.open(io.BytesIO(thumbnail.data)).size) <= 320
    assert read_audits(app) == 2  # the file, the thumbnail
    assert clients("other_head").get(f"/events/{case.id}/files/{added.id}").status_code == 404
    assert clients("nurse").get(f"/events/{case.id}/files/{added.id}").status_code == 403
    # The named reporter reads the files they attached (My reports), not the staff's.
    assert clients("clinician").get(f"/events/{case.id}/files/{added.id}").status_code == 403
    assert clients("clinician").get(f"/my/files/{added.id}").status_code == 404
    assert read_audits(app) == 2


def test_a_pdf_is_downloaded_never_shown_inline(app, clients, case):
    assert upload(clients("head"), case.id, b"%PDF-1.4\n%%EOF\n", name="consent.pdf").status_code == 302
    added, = rows(app)
    served = clients("quality").get(f"/events/{case.id}/files/{added.id}")
    assert served.mimetype == "application/pdf" and served.headers["Content-Disposition"].startswith("attachment;")


def test_disguised_and_oversized_files_are_refused_clearly_and_leave_nothing(app, clients, case):
    quality = clients("quality")
    for data, name in ((b"MZ\x90\x00" + b"\x00" * 500, "photo.jpg"), (b"<html><script></script></html>", "a.pdf"),
                       (jpeg_with_exif()[:400], "broken.jpg")):
        refused = upload(quality, case.id, data, name=name)
        assert refused.status_code == 422, name
        assert "Save it" in refused.get_data(as_text=True) or "damaged" in refused.get_data(as_text=True)
    too_big = upload(quality, case.id, b"%PDF-" + b"0" * (10 * 1024 * 1024 + 10), name="scan.pdf")
    assert too_big.status_code == 422 and "limit per file" in too_big.get_data(as_text=True)
    too_big.request.environ["wsgi.input"].close()  # the test client spooled the 10 MiB body to a temporary file
    app.config["UPLOAD_MAX_CONTENT_LENGTH"] = 200_000
    body = upload(quality, case.id, b"%PDF-" + b"0" * 300_000, name="scan.pdf")
    assert body.status_code == 413 and "Send fewer or smaller files" in body.get_data(as_text=True)
    assert rows(app) == [] and stored_files(app) == []
    # Elsewhere the 1 MiB limit stays.
    assert quality.post("/events?lang=en", data=b"x" * (1024 * 1024 + 1), headers=quality.csrf).status_code in (405, 413)


def test_only_those_who_may_act_on_the_case_add_files(app, clients, case):
    assert upload(clients("other_head"), case.id, jpeg_with_exif()).status_code == 404
    assert upload(clients("nurse"), case.id, jpeg_with_exif()).status_code == 403
    assert rows(app) == []


def test_an_anonymous_report_with_a_photo_and_its_receipt(app, clients, report_body, hospital):
    reporter = clients("anonymous")
    sent = reporter.post("/report", data={**fresh_form(reporter), **report_form(report_body),
                                          "files": (io.BytesIO(jpeg_with_exif()), "IMG_张三.jpg")},
                         content_type="multipart/form-data")
    assert sent.status_code == 200 and "Set-Cookie" not in sent.headers
    reference, code = receipt_of(sent.get_data(as_text=True))
    photo, = rows(app)
    assert photo.original_name is None and photo.uploaded_by_user_id is None and photo.from_reporter
    assert photo.id >= 2**30 and photo.uploaded_at.minute == 0 and photo.uploaded_at.second == 0
    # A staff file of the same case is never on the receipt page.
    assert upload(clients("quality"), photo.record_id, b"%PDF-1.4 internal", name="internal.pdf").status_code == 302
    staff = rows(app, from_reporter=False)[0]
    page = reporter.post("/receipt?lang=en", data={**fresh_form(reporter), "receipt_code": code}).get_data(as_text=True)
    assert f'/receipt/files/{photo.id}"' in page and f'/receipt/files/{staff.id}"' not in page
    assert "internal.pdf" not in page and "IMG_" not in page and code not in re.findall(r'action="([^"]+)"', page)[0]
    token = fresh_form(reporter)["csrf_token"]
    served = reporter.post(f"/receipt/files/{photo.id}", data={"csrf_token": token, "receipt_code": code})
    assert served.status_code == 200 and served.mimetype == "image/jpeg" and SERIAL.encode() not in served.data
    # Served as every stored file is: never sniffed or cached, sandboxed, named by its id (no name was kept).
    assert served.headers["Content-Disposition"] == (f'inline; filename="attachment-{photo.id}.jpg"; '
                                                     f"filename*=UTF-8''attachment-{photo.id}.jpg")
    assert "sandbox" in served.headers["Content-Security-Policy"] and "no-store" in served.headers["Cache-Control"]
    assert reporter.post(f"/receipt/files/{staff.id}", data={"csrf_token": token, "receipt_code": code}).status_code == 404
    assert reporter.post(f"/receipt/files/{photo.id}",
                         data={"csrf_token": token, "receipt_code": "AAAA-BBBB-CCCC"}).status_code == 404


def test_a_refused_file_files_no_report(app, clients, report_body):
    from tests.events.test_anonymous_resend import event_count

    reporter = clients("anonymous")
    refused = reporter.post("/report?lang=en", data={**fresh_form(reporter), **report_form(report_body),
                                                     "files": [(io.BytesIO(jpeg_with_exif()), "a.jpg"),
                                                               (io.BytesIO(b"%PDF-1.4 by Dr Wang"), "b.pdf")]},
                            content_type="multipart/form-data")
    assert refused.status_code == 422 and "Only photos and screenshots" in refused.get_data(as_text=True)
    assert event_count(app) == 0 and rows(app) == [] and stored_files(app) == []


def test_a_named_report_keeps_its_files_names_and_its_reporter_reads_them(app, clients, report_body, hospital):
    reporter = clients("clinician")
    form = reporter.get("/report/named").get_data(as_text=True)
    token = re.findall(r'name="csrf_token" value="([^"]+)"', form)[-1]
    sent = reporter.post("/report/named", data={**report_form(report_body, mode="named"), "csrf_token": token,
                                                "files": (io.BytesIO(b"%PDF-1.4 consent"), "知情同意书.pdf")},
                         content_type="multipart/form-data")
    assert sent.status_code == 302
    scan, = rows(app)
    assert scan.original_name == "知情同意书.pdf" and scan.from_reporter and scan.kind == "pdf"
    assert f"/my/files/{scan.id}" in reporter.get("/my/reports").get_data(as_text=True)
    served = reporter.get(f"/my/files/{scan.id}")
    assert served.status_code == 200 and served.headers["Content-Disposition"].startswith("attachment;")
    assert clients("nurse").get(f"/my/files/{scan.id}").status_code == 404


def test_the_case_pdf_lists_the_files(app, clients, case):
    upload(clients("quality"), case.id, jpeg_with_exif(), name="床旁照片.jpg")
    added, = rows(app)
    answer = clients("quality").get(f"/events/{case.id}/case.pdf")
    assert answer.status_code == 200 and answer.mimetype == "application/pdf"
    text = "".join(subprocess.run(["pdftotext", "-", "-"], input=answer.data, capture_output=True,
                                  check=True).stdout.decode().split())
    assert "床旁照片.jpg" in text and added.sha256 in text
    assert re.search(r"[\u4e00-\u9fff]", text.replace("床旁照片", ""))
    assert clients("other_head").get(f"/events/{case.id}/case.pdf").status_code == 404


def test_the_api_adds_lists_and_serves_a_case_file(app, tokens, case):
    quality = tokens("quality")
    added = app.test_client().post(f"/api/v1/events/{case.id}/files", headers=quality,
                                   data={"file": (io.BytesIO(jpeg_with_exif()), "wound.jpg")},
                                   content_type="multipart/form-data")
    assert added.status_code == 201, added.get_json()
    body = added.get_json()
    assert body["kind"] == "image" and body["name"] == "wound.jpg" and body["content_type"] == "image/jpeg"
    listed = app.test_client().get(f"/api/v1/events/{case.id}/files", headers=tokens("head")).get_json()
    assert [f["id"] for f in listed["items"]] == [body["id"]]
    served = app.test_client().get(f"/api/v1/events/{case.id}/files/{body['id']}", headers=tokens("head"))
    assert served.status_code == 200 and SERIAL.encode() not in served.data
    refused = app.test_client().post(f"/api/v1/events/{case.id}/files?lang=en", headers=quality,
                                     data={"file": (io.BytesIO(b"<html></html>"), "x.jpg")},
                                     content_type="multipart/form-data")
    assert refused.status_code == 422 and "not a photo" in refused.get_json()["errors"]["file"][0]
    assert app.test_client().get(f"/api/v1/events/{case.id}/files", headers=tokens("other_head")).status_code == 404


def test_a_file_is_removed_from_the_case_page_only_when_confirmed(app, clients, case):
    quality = clients("quality")
    upload(quality, case.id, jpeg_with_exif())
    added, = rows(app)
    unconfirmed = quality.post(f"/events/{case.id}/files/{added.id}/remove", headers=quality.csrf)
    assert unconfirmed.status_code == 422 and rows(app)[0].removed_at is None
    assert clients("other_head").post(f"/events/{case.id}/files/{added.id}/remove", data={"confirm": "1"},
                                      headers=clients("other_head").csrf).status_code == 404
    removed = quality.post(f"/events/{case.id}/files/{added.id}/remove", data={"confirm": "1"}, headers=quality.csrf)
    assert removed.status_code == 302 and rows(app)[0].removed_at is not None and stored_files(app) == []
    assert quality.get(f"/events/{case.id}/files/{added.id}").status_code == 404


def test_evidence_is_attached_to_a_corrective_action(app, clients, case, actor_of, at):
    from datetime import timedelta

    from qcflow.events import services as events
    from qcflow.extensions import db

    quality = actor_of("quality")
    events.transition_event(case, "triage", {"confirmed_grade": "III", "handling_department_id": case.department_id,
                                             "external_severity": "none"}, actor=quality, now=at)
    events.transition_event(case, "start_investigation", {}, actor=quality, now=at)
    action = events.add_action(case, {"title": "双人核对培训", "improvement_type": "training",
                                      "owner_department_id": case.department_id,
                                      "due_on": (at + timedelta(days=30)).date()}, actor=quality, now=at)
    db.session.commit()
    answer = upload(clients("head"), case.id, b"%PDF-1.4 sign-in sheet", name="培训签到表.pdf", action_id=action.id)
    assert answer.status_code == 302 and answer.location.endswith(f"#action-{action.id}")
    evidence, = rows(app)
    assert evidence.action_id == action.id and evidence.stage == "investigating"
    page = clients("quality").get(f"/events/{case.id}").get_data(as_text=True)
    section = page[page.index(f'id="action-{action.id}"'):]
    assert "培训签到表.pdf" in section[:section.index("</li>")]
    assert upload(clients("head"), case.id, b"%PDF-1.4", action_id=999_999).status_code == 404


def test_the_receipt_holder_adds_a_photo_with_a_reply(app, clients, report_body, hospital):
    reporter = clients("anonymous")
    sent = reporter.post("/report", data={**fresh_form(reporter), **report_form(report_body)})
    _reference, code = receipt_of(sent.get_data(as_text=True))
    replied = reporter.post("/receipt", data={**fresh_form(reporter), "receipt_code": code, "message": "补充一张照片",
                                              "files": (io.BytesIO(jpeg_with_exif()), "IMG_0001.jpg")},
                            content_type="multipart/form-data")
    assert replied.status_code == 200
    photo, = rows(app)
    assert photo.from_reporter and photo.original_name is None and photo.uploaded_by_user_id is None
    assert f'/receipt/files/{photo.id}"' in replied.get_data(as_text=True)
    refused = reporter.post("/receipt?lang=en", data={**fresh_form(reporter), "receipt_code": code, "message": "再补充",
                                                      "files": (io.BytesIO(b"%PDF-1.4"), "a.pdf")},
                            content_type="multipart/form-data")
    page = refused.get_data(as_text=True)
    # The receipt page's own plain words (a phone's photo album), never the staff's advice about PDFs.
    assert refused.status_code == 422 and "Photo 1 could not be added. Choose a photo (JPEG or PNG)" in page
    assert "PDF" not in page.split('id="files-error"')[1].split("</p>")[0]
    assert len(rows(app)) == 1


def test_a_file_named_after_a_person_is_scrubbed_for_readers_outside_the_quality_office(app, clients, case):
    """A department head reads the case's text scrubbed of names; the names of its files too (page, API, PDF)."""
    upload(clients("quality"), case.id, jpeg_with_exif(), name="张建国-压疮.jpg")
    added, = rows(app)
    head = clients("head")
    page = head.get(f"/events/{case.id}").get_data(as_text=True)
    assert "张建国-压疮" not in page and "[姓名]-压疮.jpg" in page
    listed = head.get(f"/api/v1/events/{case.id}/files").json["items"]
    assert [f["name"] for f in listed] == ["[姓名]-压疮.jpg"]
    assert "张建国-压疮.jpg" in clients("quality").get(f"/events/{case.id}").get_data(as_text=True)
    assert clients("quality").get(f"/api/v1/events/{case.id}/files").json["items"][0]["name"] == "张建国-压疮.jpg"
