"""What one request may cost, what a stored file tells of its time, names that follow the content, office files
that may carry code, and records that no longer take or lose files."""
import io
import os
import zipfile
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
from flask_babel import force_locale
from PIL import Image

from qcflow.core.errors import Conflict, Forbidden, Unprocessable
from tests.events.test_anonymous_resend import fresh_form
from tests.events.test_session_free import report_form
from tests.files.conftest import docx, jpeg_with_exif
from tests.files.test_pages import rows, upload
from tests.files.test_services import stored_files


def image(size, mode="RGB", kind="PNG") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, (10, 20, 30, 40)[:len(mode)]).save(out, kind)
    return out.getvalue()


def multipart(client, path, files, **fields):
    return client.post(path, data={**fields, "files": [(io.BytesIO(data), name) for data, name in files]},
                       headers=getattr(client, "csrf", {}), content_type="multipart/form-data")


# Finding 1: the work one request can cause is bounded.

def test_the_pixels_of_one_request_have_a_budget_checked_before_any_decoding(app, clients, case):
    app.config["ATTACHMENT_MAX_PIXELS_PER_REQUEST"] = 100_000
    sent = multipart(clients("quality"), f"/events/{case.id}/files?lang=en",
                     [(image((200, 200), "RGBA"), f"{n}.png") for n in range(3)])  # 120 000 pixels together
    assert sent.status_code == 422 and "0.1 million pixels" in sent.get_data(as_text=True)
    assert "Send fewer photos at a time" in sent.get_data(as_text=True)
    assert rows(app) == [] and stored_files(app) == []
    kept = multipart(clients("quality"), f"/events/{case.id}/files?lang=en",
                     [(image((200, 200), "RGBA"), f"{n}.png") for n in range(2)])
    assert kept.status_code == 302 and len(rows(app)) == 2


def test_a_large_jpeg_is_decoded_at_a_reduced_scale_and_every_image_is_stored_at_most_max_side(ctx):
    from qcflow.files import content

    photo = image((2400, 1200), kind="JPEG")  # 2.9 million pixels: over the limit below if decoded whole
    kept = content.clean_image(photo, max_pixels=1_000_000, max_side=600)
    assert (kept.width, kept.height) == (600, 300)  # decoded at a quarter
    with pytest.raises(Unprocessable) as refused, force_locale("en"):  # a PNG is decoded whole: its pixels count
        content.clean_image(image((2400, 1200)), max_pixels=1_000_000, max_side=600)
    assert "at most 1 million" in refused.value.errors["file"][0]
    small = content.clean_image(image((1000, 500), "RGBA"), max_pixels=1_000_000, max_side=400)
    assert (small.width, small.height) == (334, 167) and small.content_type == "image/png"  # reduced by 3
    assert Image.open(io.BytesIO(small.data)).size == (334, 167)
    assert content.clean_image(image((800, 400)), max_pixels=1_000_000, max_side=800).width == 800


def test_an_anonymous_report_takes_at_most_five_photos_and_says_so(app, clients, report_body, hospital):
    from tests.events.test_anonymous_resend import event_count

    reporter = clients("anonymous")
    photos = [(jpeg_with_exif(), f"IMG_{n}.jpg") for n in range(6)]
    refused = reporter.post("/report?lang=en", data={**fresh_form(reporter), **report_form(report_body),
                                                     "files": [(io.BytesIO(d), n) for d, n in photos]},
                            content_type="multipart/form-data")
    page = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "at most 5 photos" in page and "Remove one" not in page
    assert event_count(app) == 0 and stored_files(app) == []


def test_too_many_files_at_once_says_how_many_may_be_sent(app, clients, case):
    app.config["ATTACHMENT_MAX_FILES_PER_RECORD"] = 3
    sent = multipart(clients("quality"), f"/events/{case.id}/files?lang=en",
                     [(b"%PDF-1.4 x %%EOF", f"{n}.pdf") for n in range(4)])
    page = sent.get_data(as_text=True)
    assert sent.status_code == 422 and "At most 3 files can be sent at once" in page and "Remove one" not in page
    assert rows(app) == []


# Finding 4: a stored file says nothing finer than its hour.

def test_stored_files_and_their_folders_keep_only_the_hour(app, case, actor_of, at):
    from qcflow.core.actors import Actor
    from qcflow.extensions import db
    from qcflow.files import services

    services.attach("adverse_event", case.id, services.Upload(jpeg_with_exif()), stage=case.state,
                    actor=Actor.anonymous(), now=at, anonymous=True, from_reporter=True, images_only=True)
    services.attach("adverse_event", case.id, services.Upload(b"%PDF-1.4 x %%EOF", "a.pdf"), stage=case.state,
                    actor=actor_of("quality"), now=at)
    db.session.commit()
    hour = at.replace(minute=0, second=0).timestamp()
    paths = stored_files(app)
    assert len(paths) == 3
    for path in paths:
        assert os.stat(path).st_mtime == hour and os.stat(path).st_atime == hour
        # (a folder's access time is whenever it was last listed, as by the walk above: not the upload's)
        for folder in (os.path.dirname(path), os.path.dirname(os.path.dirname(path))):
            assert os.stat(folder).st_mtime == hour, folder
    # The orphan sweep still finds bytes left by a crash (a day after their hour).
    from datetime import timedelta

    from qcflow.files.storage import storage

    storage().put(b"left by a crash", at=at)
    assert services.sweep_orphans(at + timedelta(hours=2)) == 0
    assert services.sweep_orphans(at + timedelta(days=2)) == 1


# Finding 5: the name a file is shown and downloaded under ends in the type of what it holds.

@pytest.mark.parametrize("data,sent,shown", [
    (b"%PDF-1.4 x %%EOF", "检查结果.html", "检查结果.pdf"),
    (b"%PDF-1.4 x %%EOF", "scan", "scan.pdf"),
    (b"%PDF-1.4 x %%EOF", "report.PDF", "report.PDF"),
    (None, "evil\u202egpj.exe", "evilgpj.jpg"),
    (None, "anim.gif", "anim.jpg"),
])
def test_the_name_ends_in_the_stored_contents_extension(app, clients, case, data, sent, shown):
    response = upload(clients("quality"), case.id, data or jpeg_with_exif(), name=sent)
    assert response.status_code == 302
    added, = rows(app)
    assert added.original_name == shown and added.name == shown
    served = clients("quality").get(f"/events/{case.id}/files/{added.id}")
    assert served.headers["Content-Disposition"].endswith(
        "''" + __import__("urllib.parse").parse.quote(shown))


# Finding 6: office documents that can carry code.

def ooxml(members: dict, content_types: str = "<Types/>") -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("[Content_Types].xml", content_types)
        for name, body in members.items():
            archive.writestr(name, body)
    return out.getvalue()


MACRO_TYPES = ('<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
               '<Override PartName="/word/document.xml" '
               'ContentType="application/vnd.ms-word.document.macroEnabled.main+xml"/>'
               '<Override PartName="/word/vbaData.dat" ContentType="application/vnd.ms-office.vbaProject"/></Types>')
OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100


@pytest.mark.parametrize("data,says", [
    (ooxml({"word/document.xml": "<w/>", "word/vbaData.dat": "x"}, MACRO_TYPES), "contains macros"),
    (ooxml({"word/document.xml": "<w/>", "word/activeX/activeX1.bin": "x"}), "contains macros"),
    (ooxml({"word/evil.html": "<html/>", "payload.exe": "MZ"}, "<x/>"), "not a Word, Excel or PowerPoint"),
    (ooxml({"word/document.xml": "<w/>", "word/media/run.exe": "MZ"}), "not a Word, Excel or PowerPoint"),
    (ooxml({"word/document.xml": "<w/>", "word/embeddings/oleObject1.bin": "x"}), "contains macros"),
    (ooxml({"ppt/presentation.xml": "<p/>"}, '<Types><Default Extension="bin" '
           'ContentType="application/vnd.openxmlformats-officedocument.oleObject"/></Types>'), "contains macros"),
    (ooxml({"word/document.xml": "<w/>"}, "<Types"), "damaged"),
    (OLE2 + "Workbook".encode("utf-16-le"), "Save it as .xlsx"),
    (OLE2 + "Book".encode("utf-16-le"), "Save it as .xlsx"),
])
def test_office_documents_that_may_carry_code_are_refused(app, data, says):
    from qcflow.files import content

    with app.test_request_context("/?lang=en"):
        with pytest.raises(Unprocessable) as refused:
            content.identify(data)
    assert says in refused.value.errors["file"][0]


def test_plain_office_documents_are_still_accepted(ctx):
    from qcflow.files import content

    assert content.identify(docx()).extension == "docx"
    assert content.identify(ooxml({"_rels/.rels": "<r/>", "docProps/core.xml": "<c/>", "xl/workbook.xml": "<w/>",
                                   "customXml/item1.xml": "<i/>", "xl/printerSettings/printerSettings1.bin": "dm",
                                   "xl/media/image1.svg": "<svg/>"})).extension == "xlsx"
    assert content.identify(OLE2 + "WordDocument".encode("utf-16-le")).extension == "doc"
    assert content.identify(OLE2 + "PowerPoint Document".encode("utf-16-le")).extension == "ppt"


# Finding 7: a record that is no longer open neither takes nor loses files.

def test_a_case_no_longer_open_takes_and_loses_no_files(app, clients, tokens, case, actor_of, at):
    from qcflow.events import services as events
    from qcflow.extensions import db
    from qcflow.files import services

    kept = services.attach("adverse_event", case.id, services.Upload(jpeg_with_exif(), "a.jpg"), stage=case.state,
                           actor=actor_of("quality"), now=at)
    events.transition_event(case, "withdraw", {}, actor=actor_of("clinician"), now=at)
    db.session.commit()
    quality = clients("quality")
    refused = upload(quality, case.id, jpeg_with_exif())
    assert refused.status_code == 409 and "no longer open" in refused.get_data(as_text=True)
    api = app.test_client().post(f"/api/v1/events/{case.id}/files?lang=en", headers=tokens("quality"),
                                 data={"file": (io.BytesIO(jpeg_with_exif()), "b.jpg")},
                                 content_type="multipart/form-data")
    assert api.status_code == 409
    removed = quality.post(f"/events/{case.id}/files/{kept.id}/remove?lang=en",
                           data={"confirm": "1"}, headers=quality.csrf)
    assert removed.status_code == 409
    assert [a.removed_at for a in rows(app)] == [None]
    page = quality.get(f"/events/{case.id}").get_data(as_text=True)
    assert f"/events/{case.id}/files/{kept.id}/remove" not in page and f'action="/events/{case.id}/files"' not in page


@pytest.fixture
def discussion(hospital, actor_of, at):
    from qcflow.extensions import db
    from qcflow.mdt import services as mdt

    made = mdt.request_discussion({"kind": "case_review", "question": "讨论一个病例的处理"},
                                  actor=actor_of("head"), now=at)
    db.session.commit()
    return made


def test_discussion_files_only_while_it_may_be_recorded_and_only_the_uploader_or_its_keepers_remove_them(
        app, hospital, discussion, actor_of, at):
    from qcflow.extensions import db
    from qcflow.files import services
    from qcflow.mdt import services as mdt

    heads = services.attach("mdt_discussion", discussion.id, services.Upload(jpeg_with_exif(), "a.jpg"),
                            stage=discussion.state, actor=actor_of("head"), now=at)
    own = services.attach("mdt_discussion", discussion.id, services.Upload(jpeg_with_exif(), "b.jpg"),
                          stage=discussion.state, actor=actor_of("clinician"), now=at)
    clinician = actor_of("clinician")
    with pytest.raises(Forbidden):  # a clinician of the department does not remove the head's evidence
        services.check_may_remove_from_discussion(heads, discussion, clinician)
    services.check_may_remove_from_discussion(own, discussion, clinician)
    services.check_may_remove_from_discussion(own, discussion, actor_of("head"))
    mdt.transition_discussion(discussion, "cancel", {"reason": "不需要了"}, actor=actor_of("head"), now=at)
    db.session.commit()
    for actor in (actor_of("head"), actor_of("quality"), clinician):
        with pytest.raises(Conflict):
            services.check_may_remove_from_discussion(own, discussion, actor)
        with pytest.raises(Conflict):
            services.check_may_add_to_discussion(discussion, actor)


def test_the_discussion_page_refuses_files_once_cancelled(app, clients, discussion, actor_of, at):
    from qcflow.extensions import db
    from qcflow.files import services
    from qcflow.mdt import services as mdt

    heads = services.attach("mdt_discussion", discussion.id, services.Upload(jpeg_with_exif(), "a.jpg"),
                            stage=discussion.state, actor=actor_of("head"), now=at)
    db.session.commit()
    clinician = clients("clinician")
    assert clinician.post(f"/mdt/{discussion.id}/files/{heads.id}/remove?lang=en", data={"confirm": "1"},
                          headers=clinician.csrf).status_code == 403
    mdt.transition_discussion(db.session.merge(discussion), "cancel", {"reason": "不需要了"}, actor=actor_of("head"),
                              now=at)
    db.session.commit()
    head = clients("head")
    removed = head.post(f"/mdt/{discussion.id}/files/{heads.id}/remove?lang=en", data={"confirm": "1"},
                        headers=head.csrf)
    assert removed.status_code == 409 and "cancelled" in removed.get_data(as_text=True)
    assert [a.removed_at for a in rows(app)] == [None]
    page = head.get(f"/mdt/{discussion.id}").get_data(as_text=True)
    assert f"/files/{heads.id}/remove" not in page
