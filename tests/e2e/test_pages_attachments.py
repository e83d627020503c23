"""Attachments in the browser: a reporter on a phone (390 px) adds a photo to the anonymous report; the quality
office sees its thumbnail on the case page, and the stored photo has no location or camera data."""
from __future__ import annotations

import io

import sqlalchemy as sa
from playwright.sync_api import expect

from tests.e2e.conftest import E2E, check_no_horizontal_scroll, sending_report, shot
from tests.e2e.test_pages_events import fill_report
from tests.files.conftest import SERIAL, jpeg_with_exif

pytestmark = E2E


def test_a_photo_on_the_anonymous_form_reaches_the_case_page_as_a_thumbnail(server, contexts, tmp_path):
    from PIL import Image

    from qcflow.extensions import db
    from qcflow.files.models import Attachment
    from qcflow.files.services import read
    from qcflow.core.actors import Actor
    from qcflow.core.time import now

    photo = tmp_path / "IMG_20260301_床旁.jpg"
    photo.write_bytes(jpeg_with_exif(size=(800, 600)))
    page = contexts("phone").new_page()
    page.goto("/report")
    fill_report(page, "患者卧床翻身不及时，骶尾部出现压力性损伤，见照片。")
    page.set_input_files("#files", str(photo))
    assert check_no_horizontal_scroll(page)
    with sending_report(page):
        page.click("button[type=submit].primary")
    expect(page.locator("#receipt-code")).to_be_visible()
    shot(page, "attachments-anonymous-report-phone")
    with server.db():
        added = db.session.scalars(sa.select(Attachment).order_by(Attachment.uploaded_at.desc(),
                                                                  Attachment.id.desc())).first()
        assert added.original_name is None and added.from_reporter and added.uploaded_by_user_id is None
        stored = read(added, actor=Actor.system("e2e"), now=now())
        event_id, added_id = added.record_id, added.id
        db.session.rollback()
    assert SERIAL.encode() not in stored and dict(Image.open(io.BytesIO(stored)).getexif()) == {}

    quality = contexts("desktop", user="quality").new_page()
    quality.goto(f"/events/{event_id}")
    thumbnail = quality.locator(f"#attachment-list img.thumb[src$='/files/{added_id}/thumbnail']")
    expect(thumbnail).to_be_visible()
    assert quality.evaluate("(img) => img.complete && img.naturalWidth > 0", thumbnail.element_handle())
    assert "IMG_20260301" not in quality.content()
    shot(quality, "attachments-case-page-thumbnail")
