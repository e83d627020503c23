"""Fixtures for attachments: the events tests' hospital, files made with Pillow, a case to attach to."""
import io
import zipfile
from datetime import datetime, timezone

import pytest
from PIL import ExifTags, Image, PngImagePlugin

from tests.events.conftest import hospital_layout, report_body  # noqa: F401  (the same hospital)

SERIAL = "SERIAL-987654"
ARTIST = "Zhang San Photographer"


def jpeg_with_exif(size=(40, 20)) -> bytes:
    """A photo as a phone takes it: GPS position, camera serial, artist, a comment, turned (orientation 6)."""
    image = Image.new("RGB", size, (200, 30, 30))
    image.paste((20, 20, 220), (0, 0, size[0] // 2, size[1]))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.Base.Artist] = ARTIST
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.BodySerialNumber] = SERIAL
    exif.get_ifd(ExifTags.IFD.GPSInfo).update({1: "N", 2: (31.0, 12.0, 30.0), 3: "E", 4: (121.0, 28.0, 1.0)})
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, comment=b"taken by Zhang San")
    data = out.getvalue()
    assert SERIAL.encode() in data and ARTIST.encode() in data  # the test photo does carry them
    return data


def png_with_author() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Li Si the author")
    image = Image.new("RGBA", (30, 30), (0, 128, 0, 128))
    out = io.BytesIO()
    image.save(out, "PNG", pnginfo=info)
    assert b"Li Si the author" in out.getvalue()
    return out.getvalue()


def docx(*, macros=False) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
        if macros:
            archive.writestr("word/vbaProject.bin", b"\x00" * 10)
    return out.getvalue()


def plain_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("notes.txt", "hello")
    return out.getvalue()


@pytest.fixture
def at():
    return datetime(2026, 3, 2, 1, 37, 12, tzinfo=timezone.utc)


@pytest.fixture
def case(hospital, report_body, actor_of, at):
    """A named report of the surgery clinician, submitted (committed)."""
    from qcflow.events import services
    from qcflow.events.schemas import ReportIn
    from qcflow.extensions import db

    data = ReportIn().load(report_body(mode="named"))
    data.pop("submit", None)
    event, _ = services.file_report(data, mode=data.pop("mode"), actor=actor_of("clinician"), now=at)
    db.session.commit()
    return event
