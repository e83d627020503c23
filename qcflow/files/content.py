"""What a file is, by its bytes (never its name or the client's content type), and images made clean.

`identify` accepts photos (JPEG, PNG, GIF, WebP), PDF and common office documents (OOXML without macros,
legacy Word/Excel/PowerPoint); anything else is refused with a message a person can act on. `clean_image`
decodes an image with Pillow and encodes its pixels again into a new image, so that nothing of the
original's metadata survives (EXIF with GPS and the camera's serial number, XMP, ICC profiles, comments,
PNG text chunks); the orientation the camera recorded is applied to the pixels first.
"""
from __future__ import annotations

import io
import warnings
import zipfile
from dataclasses import dataclass

from flask_babel import gettext as _
from PIL import Image, ImageOps, UnidentifiedImageError

from qcflow.core.errors import Unprocessable

#: The longest side of a thumbnail, in pixels.
THUMBNAIL_SIZE = 320
#: JPEG quality of re-encoded photos and of thumbnails.
PHOTO_QUALITY = 88
THUMBNAIL_QUALITY = 80

OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_MAGIC = b"PK\x03\x04"


@dataclass(frozen=True)
class Identified:
    """What the bytes are: kind (image, pdf, document), the media type and extension to store them under."""

    kind: str
    content_type: str
    extension: str


@dataclass(frozen=True)
class CleanImage:
    """An image encoded again from its pixels alone, with its thumbnail."""

    data: bytes
    content_type: str
    extension: str
    width: int
    height: int
    thumbnail: bytes


def refuse(field: str, message: str):
    return Unprocessable(errors={field: [message]})


def not_accepted(field: str, what: str) -> Unprocessable:
    return refuse(field, _("This file is not a photo, PDF or office document: %(what)s. Save it as JPEG, PNG or "
                           "PDF (or as a Word, Excel or PowerPoint file) and attach it again.", what=what))


def _guess_what(data: bytes) -> str:
    """A short description of a refused file, for the person who chose it."""
    head = data[:512].lstrip().lower()
    if data[:2] == b"MZ" or data[:4] == b"\x7fELF":
        return _("a program")
    if head.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<script")):
        return _("a web page")
    if head.startswith(b"<?xml") or head.startswith(b"<svg") or b"<svg" in head:
        return _("an SVG drawing or other XML")
    if data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypmsf1", b"ftyphevc", b"ftypavif"):
        return _("an HEIC/AVIF photo (set the camera to \"Most compatible\" or take a screenshot)")
    if data[:4] == ZIP_MAGIC:
        return _("a ZIP archive")
    if not data:
        return _("an empty file")
    return _("its content is of a type not accepted here")


def identify(data: bytes, *, field: str = "file") -> Identified:
    """What the file is, from its first bytes (and for ZIP and OLE2 containers, their parts)."""
    if data[:3] == b"\xff\xd8\xff":
        return Identified("image", "image/jpeg", "jpg")
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return Identified("image", "image/png", "png")
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return Identified("image", "image/gif", "gif")
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return Identified("image", "image/webp", "webp")
    if data[:5] == b"%PDF-":
        return Identified("pdf", "application/pdf", "pdf")
    if data[:4] == ZIP_MAGIC:
        return _office_open_xml(data, field)
    if data[:8] == OLE2_MAGIC:
        return _legacy_office(data, field)
    raise not_accepted(field, _guess_what(data))


#: OOXML: the folder of the main part → (media type, extension).
OOXML_PARTS = {
    "word/": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx"),
    "xl/": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
    "ppt/": ("application/vnd.openxmlformats-officedocument.presentationml.presentation", "pptx"),
}


def _office_open_xml(data: bytes, field: str) -> Identified:
    """A Word, Excel or PowerPoint file (a ZIP with [Content_Types].xml and its main folder), without macros."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError):
        raise refuse(field, _("This office document is damaged and cannot be opened. Save it again and attach "
                              "the new copy.")) from None
    if any(name.lower().endswith("vbaproject.bin") for name in names):
        raise refuse(field, _("This office document contains macros, which are not accepted. Save it as a "
                              "document without macros (.docx, .xlsx, .pptx) or as PDF and attach it again."))
    if "[Content_Types].xml" in names:
        for folder, (content_type, extension) in OOXML_PARTS.items():
            if any(name.startswith(folder) for name in names):
                return Identified("document", content_type, extension)
    raise not_accepted(field, _("a ZIP archive"))


#: Stream names in an OLE2 file's directory (UTF-16LE): the main stream of each legacy format.
OLE2_STREAMS = {
    "WordDocument".encode("utf-16-le"): ("application/msword", "doc"),
    "Workbook".encode("utf-16-le"): ("application/vnd.ms-excel", "xls"),
    "Book".encode("utf-16-le"): ("application/vnd.ms-excel", "xls"),
    "PowerPoint Document".encode("utf-16-le"): ("application/vnd.ms-powerpoint", "ppt"),
}
#: The stream every VBA project has (in Word's "Macros" and Excel's "_VBA_PROJECT_CUR" storages).
OLE2_MACROS = "_VBA_PROJECT".encode("utf-16-le")


def _legacy_office(data: bytes, field: str) -> Identified:
    """A Word 97–2003, Excel 97–2003 or PowerPoint 97–2003 file, by the stream names in its directory."""
    if OLE2_MACROS in data:
        raise refuse(field, _("This office document contains macros, which are not accepted. Save it as a "
                              "document without macros (.docx, .xlsx, .pptx) or as PDF and attach it again."))
    for name, (content_type, extension) in OLE2_STREAMS.items():
        if name in data:
            return Identified("document", content_type, extension)
    raise not_accepted(field, _("an office file of a kind not accepted here"))


def clean_image(data: bytes, *, max_pixels: int, field: str = "file") -> CleanImage:
    """Decode an image and encode its pixels again with no metadata; the first frame of an animation.

    Opaque images become JPEG (quality PHOTO_QUALITY), images with transparency PNG. More than
    `max_pixels` pixels (a decompression bomb, or a panorama beyond any use here) and undecodable
    bytes are refused (422).
    """
    damaged = refuse(field, _("This image is damaged or incomplete and cannot be opened. Take the photo again "
                              "or save it again as JPEG or PNG."))
    too_large = refuse(field, _("This image has too many pixels (at most %(n)d million). Make it smaller and "
                                "attach it again.", n=max_pixels // 1_000_000))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                if image.width * image.height > max_pixels:
                    raise too_large
                image.seek(0)
                image.load()
                upright = ImageOps.exif_transpose(image)
                transparent = upright.mode in ("RGBA", "LA", "PA") or (
                    upright.mode == "P" and "transparency" in upright.info)
                pixels = upright.convert("RGBA" if transparent else "RGB")
    except Unprocessable:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise too_large from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError):
        raise damaged from None
    # A new image from the pixels alone: no info, no EXIF, no XMP, no ICC profile, no text chunks.
    clean = Image.frombytes(pixels.mode, pixels.size, pixels.tobytes())
    out = io.BytesIO()
    if transparent:
        clean.save(out, "PNG")
        content_type, extension = "image/png", "png"
    else:
        clean.save(out, "JPEG", quality=PHOTO_QUALITY)
        content_type, extension = "image/jpeg", "jpg"
    return CleanImage(out.getvalue(), content_type, extension, clean.width, clean.height, thumbnail_of(clean))


def thumbnail_of(image: Image.Image) -> bytes:
    """A JPEG of at most THUMBNAIL_SIZE pixels a side (transparency on white)."""
    small = image.copy()
    small.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
    if small.mode == "RGBA":
        flat = Image.new("RGB", small.size, (255, 255, 255))
        flat.paste(small, mask=small.getchannel("A"))
        small = flat
    out = io.BytesIO()
    small.save(out, "JPEG", quality=THUMBNAIL_QUALITY)
    return out.getvalue()
