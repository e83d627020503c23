"""Files are accepted by what their bytes are; images are encoded again with nothing of their metadata."""
import io

import pytest
from PIL import Image

from qcflow.core.errors import Unprocessable
from tests.files.conftest import ARTIST, SERIAL, docx, jpeg_with_exif, plain_zip, png_with_author


def clean(data):
    from qcflow.files import content

    return content.clean_image(data, max_pixels=40_000_000)


def test_a_photo_loses_its_gps_serial_and_artist_and_is_turned_upright(ctx):
    result = clean(jpeg_with_exif())
    stored = Image.open(io.BytesIO(result.data))
    exif = stored.getexif()
    assert dict(exif) == {} and exif.get_ifd(0x8825) == {} and exif.get_ifd(0x8769) == {}
    assert SERIAL.encode() not in result.data and ARTIST.encode() not in result.data
    assert b"Zhang San" not in result.data and b"Exif" not in result.data
    assert stored.size == (20, 40) and (result.width, result.height) == (20, 40)  # orientation 6 applied
    assert stored.format == "JPEG" and result.content_type == "image/jpeg"
    thumbnail = Image.open(io.BytesIO(result.thumbnail))
    assert thumbnail.format == "JPEG" and dict(thumbnail.getexif()) == {}


def test_a_png_loses_its_text_chunks_and_keeps_its_transparency(ctx):
    result = clean(png_with_author())
    assert b"Li Si" not in result.data and b"tEXt" not in result.data
    stored = Image.open(io.BytesIO(result.data))
    assert stored.format == "PNG" and stored.mode == "RGBA" and stored.info.get("Author") is None


@pytest.mark.parametrize("data, kind, extension", [
    (jpeg_with_exif(), "image", "jpg"),
    (b"%PDF-1.7\n%\xe2\xe3\n1 0 obj<<>>endobj\n", "pdf", "pdf"),
    (docx(), "document", "docx"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100 + "WordDocument".encode("utf-16-le"), "document", "doc"),
])
def test_accepted_files_are_known_by_their_bytes(ctx, data, kind, extension):
    from qcflow.files import content

    found = content.identify(data)
    assert (found.kind, found.extension) == (kind, extension)


@pytest.mark.parametrize("data, says", [
    (b"MZ\x90\x00\x03" + b"\x00" * 200, "a program"),
    (b"<!DOCTYPE html><html><script>alert(1)</script></html>", "a web page"),
    (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>', "SVG"),
    (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", "HEIC"),
    (plain_zip(), "ZIP"),
    (docx(macros=True), "contains macros"),
])
def test_other_files_are_refused_with_a_message_a_person_can_act_on(app, data, says):
    from qcflow.files import content

    from flask_babel import force_locale

    with app.test_request_context("/"), force_locale("en"):
        with pytest.raises(Unprocessable) as refused:
            content.identify(data, field="files")
    message = " ".join(refused.value.errors["files"])
    assert says in message


def test_the_message_is_english_for_an_english_page(app):
    from qcflow.files import content

    with app.test_request_context("/?lang=en"):
        from flask_babel import force_locale

        with force_locale("en"), pytest.raises(Unprocessable) as refused:
            content.identify(b"<html></html>")
    assert "not a photo, PDF or office document" in refused.value.errors["file"][0]
    assert "Save it as JPEG, PNG or PDF" in refused.value.errors["file"][0]


def test_a_corrupt_photo_and_a_decompression_bomb_are_refused(ctx):
    from qcflow.files import content

    with pytest.raises(Unprocessable) as damaged:
        clean(jpeg_with_exif()[:300])
    assert damaged.value.errors["file"]
    big = io.BytesIO()
    Image.new("1", (9000, 9000)).save(big, "PNG")  # 81 million pixels in a few kilobytes
    with pytest.raises(Unprocessable):
        content.clean_image(big.getvalue(), max_pixels=40_000_000)


def test_a_legacy_office_file_with_a_vba_project_is_refused(ctx):
    from qcflow.files import content

    macro_doc = (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100 + "WordDocument".encode("utf-16-le")
                 + "_VBA_PROJECT".encode("utf-16-le"))
    with pytest.raises(Unprocessable):
        content.identify(macro_doc)
