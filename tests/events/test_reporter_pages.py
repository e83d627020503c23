"""What a reporter notices on the report forms and the receipt page: files lost after an error are said to be
lost and a refused file is named; the receipt page keeps a typed reply and a typed code, says when an answer
was sent, shows a patient's or a family's status in plain words and thumbnails of their own photos; the public
form takes photos; the case PDF carries the conversation; family pages use plain words; posters' links."""
import io
import json
import re
from datetime import datetime, timezone
import shutil
import subprocess

import pytest
import sqlalchemy as sa

from tests.events.test_anonymous_resend import fresh_form, receipt_of
from tests.events.test_public_reports import at_now, file, public_body, public_form, tokens  # noqa: F401
from tests.events.test_session_free import report_form
from tests.files.conftest import jpeg_with_exif


@pytest.fixture
def at():
    return datetime(2026, 3, 2, 3, 10, tzinfo=timezone.utc)


def attachments():
    from qcflow.extensions import db
    from qcflow.files.models import Attachment

    db.session.rollback()
    return list(db.session.scalars(sa.select(Attachment).order_by(Attachment.id)))


def events_filed():
    from qcflow.events.models import AdverseEvent
    from qcflow.extensions import db

    db.session.rollback()
    return list(db.session.scalars(sa.select(AdverseEvent)))


def photo(name="photo.jpg"):
    return io.BytesIO(jpeg_with_exif()), name


# F1: the report forms

def test_after_an_error_the_anonymous_form_says_the_chosen_photos_must_be_chosen_again(clients, report_body):
    reporter = clients("anonymous")
    body = {**report_form(report_body), "occurred_at": ""}
    with_photo = reporter.post("/report?lang=en", data={**fresh_form(reporter), **body, "files": photo()},
                               content_type="multipart/form-data")
    page = with_photo.get_data(as_text=True)
    assert with_photo.status_code == 422 and 'id="files-dropped"' in page
    assert "Your photos were not sent because of the errors above: choose them again." in page
    without = reporter.post("/report?lang=en", data={**fresh_form(reporter), **body}).get_data(as_text=True)
    assert 'id="files-dropped"' not in without


def test_a_refused_photo_of_an_anonymous_report_is_named_by_its_number(clients, report_body):
    reporter = clients("anonymous")
    refused = reporter.post("/report?lang=en", data={**fresh_form(reporter), **report_form(report_body),
                                                     "files": [photo("a.jpg"), (io.BytesIO(b"%PDF-1.4 x"), "王医生.pdf")]},
                            content_type="multipart/form-data")
    page = refused.get_data(as_text=True)
    error = page[page.index('id="files-error"'):].split("</p>")[0]
    assert refused.status_code == 422 and error.startswith('id="files-error">Photo 2 was not accepted:')
    assert "王医生" not in page  # an anonymous form shows no file name, not even back to its sender
    assert 'id="files-dropped"' in page and events_filed() == []


def test_a_refused_file_of_a_named_report_is_named_by_its_name(clients, report_body):
    reporter = clients("clinician")
    token = re.findall(r'name="csrf_token" value="([^"]+)"', reporter.get("/report/named").get_data(as_text=True))[-1]
    refused = reporter.post("/report/named?lang=en", data={
        **report_form(report_body, mode="named"), "csrf_token": token,
        "files": [photo("wound.jpg"), (io.BytesIO(b"MZ\x90\x00" + b"\x00" * 300), "setup.jpg")]},
        content_type="multipart/form-data")
    page = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "“setup.jpg” was not accepted:" in page and "wound.jpg” was" not in page
    assert "Your files were not sent because of the errors above: choose them again." in page
    assert attachments() == []


# F1b, F5, F6: the receipt page

def receipt_post(client, code, **fields):
    return client.post("/receipt?lang=en", data={**fresh_form(client), "receipt_code": code, **fields},
                       content_type="multipart/form-data")


@pytest.fixture
def family_receipt(hospital, public_body):
    from qcflow.extensions import db

    event, code = file(public_body())  # with a name and a phone
    db.session.commit()
    return event, code


def test_a_refused_photo_keeps_the_typed_reply_and_says_what_to_do_with_a_phone(clients, family_receipt):
    event, code = family_receipt
    reporter = clients("anonymous")
    refused = receipt_post(reporter, code, message="补充：当时走廊灯也不亮。", files=(io.BytesIO(b"%PDF-1.4"), "fake.pdf"))
    page = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert ">补充：当时走廊灯也不亮。</textarea>" in page and f'name="receipt_code" value="{code}"' in page
    error = page[page.index('id="files-error"'):].split("</p>")[0]
    assert "Choose a photo (JPEG or PNG) from your phone" in error and "PDF" not in error and "Word" not in error
    assert 'id="files-dropped"' in page
    from qcflow.events.services import messages

    assert [m for m in messages(event) if "走廊灯" in m.body] == []  # nothing of the attempt was kept


def test_a_photo_too_big_is_refused_with_advice_that_fits_a_phone(app, clients, family_receipt, monkeypatch):
    _event, code = family_receipt
    monkeypatch.setitem(app.config, "ATTACHMENT_MAX_BYTES", 200)
    refused = receipt_post(clients("anonymous"), code, message="再补充一张", files=photo())
    page = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "Photo 1 is too big" in page and "Take a screenshot" in page
    assert "black and white" not in page and ">再补充一张</textarea>" in page


def test_a_mistyped_code_stays_in_the_field(clients, family_receipt):
    _event, code = family_receipt
    typo = code[:-1] + ("A" if code[-1] != "A" else "B")
    page = receipt_post(clients("anonymous"), typo).get_data(as_text=True)
    assert f'id="receipt_code" name="receipt_code" autocomplete="off" autocapitalize="characters" required ' \
           f'value="{typo}"' in page


def test_a_family_who_left_a_contact_sends_without_anonymously_and_is_told_it_was_sent(clients, family_receipt,
                                                                                       hospital, public_body):
    from qcflow.extensions import db

    _event, code = family_receipt
    reporter = clients("anonymous")
    page = receipt_post(reporter, code).get_data(as_text=True)
    assert ">Send</button>" in page and "Send anonymously" not in page and 'id="receipt-sent"' not in page
    sent = receipt_post(reporter, code, message="水是从卫生间漏出来的。").get_data(as_text=True)
    assert 'id="receipt-sent"' in sent and "Your answer was sent." in sent and "水是从卫生间漏出来的。" in sent
    _other, anonymous_code = file(public_body(contact_name=None, contact_phone=None))
    db.session.commit()
    assert "Send anonymously" in receipt_post(reporter, anonymous_code).get_data(as_text=True)


def test_a_staff_anonymous_reply_still_says_anonymously(clients, report_body):
    reporter = clients("anonymous")
    _reference, code = receipt_of(reporter.post("/report", data={**fresh_form(reporter),
                                                                 **report_form(report_body)}).get_data(as_text=True))
    page = receipt_post(reporter, code).get_data(as_text=True)
    assert "Send anonymously" in page and 'id="plain-status"' not in page


def test_every_state_has_one_plain_status_and_it_has_words():
    from qcflow.core.i18n import LABELS
    from qcflow.events.workflow import PLAIN_STATUS, EventState, plain_status

    placed = [state for states in PLAIN_STATUS.values() for state in states]
    assert sorted(placed) == sorted(EventState) and len(placed) == len(set(placed))
    assert set(PLAIN_STATUS) == set(LABELS["plain_status"])
    assert plain_status("verifying") == "improving" and plain_status("info_requested") == "question"


def test_a_family_reads_its_status_in_plain_words(clients, family_receipt, actor_of, at):
    from qcflow.events import services
    from qcflow.extensions import db

    event, code = family_receipt
    reporter = clients("anonymous")
    page = receipt_post(reporter, code).get_data(as_text=True)
    assert 'id="plain-status">Received: we will look into it<' in page and event.reference not in page
    services.transition_event(event, "request_info", {"message": "请问是哪一天？"}, actor=actor_of("quality"), now=at)
    db.session.commit()
    page = receipt_post(reporter, code).get_data(as_text=True)
    assert 'id="plain-status">We have asked you a question<' in page and "Question to reporter" not in page
    assert "Hospital quality management department" in page and "Quality office" not in page


def test_the_receipt_page_shows_thumbnails_of_the_reporters_own_photos_each_read_audited(app, clients,
                                                                                         family_receipt):
    from qcflow.core.audit import AnonymousAuditEntry
    from qcflow.extensions import db

    _event, code = family_receipt
    reporter = clients("anonymous")
    assert receipt_post(reporter, code, message="照片", files=photo()).status_code == 200
    page = receipt_post(reporter, code).get_data(as_text=True)
    assert re.search(r'<img class="receipt-thumb" src="data:image/(jpeg|png);base64,[A-Za-z0-9+/=]{100,}"', page)
    db.session.rollback()
    reads = list(db.session.scalars(sa.select(AnonymousAuditEntry).where(
        AnonymousAuditEntry.action == "attachment.read")))
    # the page after the reply and the page looked up again: one thumbnail read each, in the anonymous chain
    assert len(reads) == 2 and all(json.loads(entry.detail)["thumbnail"] is True for entry in reads)
    assert "img-src 'self' data:" in receipt_post(reporter, code).headers["Content-Security-Policy"]


# F7: photos on the public form

def test_the_public_form_takes_photos_with_the_report(clients, hospital, at_now):
    client = clients("anonymous")
    page = client.get("/report/patient?d=GS").get_data(as_text=True)
    assert 'enctype="multipart/form-data"' in page and 'type="file"' in page
    answer = client.post("/report/patient", data={**public_form(hospital), **tokens(page), "files": photo("IMG_1.jpg")},
                         content_type="multipart/form-data")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    [event], [added] = events_filed(), attachments()
    assert (added.record_id, added.from_reporter, added.original_name, added.uploaded_by_user_id) == (
        event.id, True, None, None)
    assert added.uploaded_at.minute == 0


def test_a_refused_photo_on_the_public_form_files_no_report(clients, hospital, at_now):
    client = clients("anonymous")
    page = client.get("/report/patient?lang=en").get_data(as_text=True)
    refused = client.post("/report/patient?lang=en", data={**public_form(hospital), **tokens(page),
                                                           "files": (io.BytesIO(b"%PDF-1.4 x"), "x.pdf")},
                          content_type="multipart/form-data")
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "Photo 1 could not be added." in html and 'id="files-dropped"' in html
    assert "夜里呼叫铃坏了" in html  # what was typed is kept
    assert events_filed() == [] and attachments() == []


# F8: the case PDF

def test_the_case_pdf_carries_the_conversation_for_the_quality_office_only(clients, family_receipt, actor_of, at):
    from qcflow.events import services
    from qcflow.extensions import db

    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext missing")
    event, code = family_receipt
    services.transition_event(event, "request_info", {"message": "请问地面的水从哪里来？"}, actor=actor_of("quality"),
                              now=at)
    db.session.commit()
    receipt_post(clients("anonymous"), code, message="卫生间漏水，没有提示牌。")

    def text(who):
        data = clients(who).get(f"/events/{event.id}/case.pdf").data
        return "".join(subprocess.run(["pdftotext", "-", "-"], input=data, capture_output=True,
                                      check=True).stdout.decode().split())

    quality = text("quality")
    assert quality.index("请问地面的水从哪里来？") < quality.index("卫生间漏水，没有提示牌。")
    head = text("head")
    assert "请问地面的水从哪里来" not in head and "卫生间漏水" not in head


# F12: plain words for patients and families; their wards

def test_family_pages_use_no_internal_jargon(clients, hospital, at_now):
    client = clients("anonymous")
    form = client.get("/report/patient?d=GS&lang=zh").get_data(as_text=True)
    visible = re.sub(r"<[^>]+>", " ", form[form.index("<body"):])
    assert "不良事件" not in visible and "质控办" not in visible.replace(hospital["qc"].name, "")
    answer = client.post("/report/patient?lang=zh", data={**public_form(hospital), **tokens(form)})
    page = answer.get_data(as_text=True)
    shown = re.sub(r"<[^>]+>", " ", re.sub(r'<p id="receipt-reference-line" hidden>.*?</p>', "", page,
                                            flags=re.S)[page.index("<body"):])
    assert "不良事件" not in shown and "质控办" not in shown
    assert re.search(r'<p id="receipt-reference-line" hidden>', page) and 'data-public="1"' in page


def test_the_public_form_and_the_posters_list_only_wards_patients_stay_in_or_visit(clients, hospital, public_body):
    from qcflow.core.errors import Unprocessable

    form = clients("anonymous").get("/report/patient").get_data(as_text=True)
    posters = clients("quality").get("/events/posters").get_data(as_text=True)
    for page in (form, posters):
        assert "普通外科" in page and "心内科" in page
        assert "药剂科" not in page and ">质控办<" not in page
    assert clients("quality").get("/events/posters/PHA.pdf").status_code == 404
    with pytest.raises(Unprocessable) as refused:
        file(public_body(department_id=hospital["pharmacy"].id))
    assert "department_id" in refused.value.errors


# F13: the English poster

def test_an_english_posters_code_opens_the_english_form(clients, hospital, monkeypatch):
    import segno

    import qcflow.events.views as views

    made = []
    real = segno.make
    monkeypatch.setattr(views.segno, "make", lambda content, **kw: made.append(content) or real(content, **kw))
    assert clients("quality").get("/events/posters/GS.pdf?lang=en").status_code == 200
    assert clients("quality").get("/events/posters/GS.pdf?lang=zh").status_code == 200
    assert made[0].endswith("/report/patient?d=GS&lang=en") and made[1].endswith("/report/patient?d=GS")
