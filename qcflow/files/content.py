"""What a file is, by its bytes (never its name or the client's content type), and images made clean.

`identify` accepts photos (JPEG, PNG, GIF, WebP), PDF and common office documents (OOXML without macros or other
code, legacy Word and PowerPoint without VBA); anything else is refused with a message a person can act on. `clean_image`
decodes an image with Pillow and encodes its pixels again into a new image, so that nothing of the
original's metadata survives (EXIF with GPS and the camera's serial number, XMP, ICC profiles, comments,
PNG text chunks); the orientation the camera recorded is applied to the pixels first.
"""
from __future__ import annotations

import io
import re
import warnings
import zipfile
from xml.etree import ElementTree
from dataclasses import dataclass

from flask_babel import gettext as _
from PIL import Image, UnidentifiedImageError

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


#: OOXML: the folder of the main part → (the main part, media type, extension).
OOXML_PARTS = {
    "word/": ("word/document.xml", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx"),
    "xl/": ("xl/workbook.xml", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
    "ppt/": ("ppt/presentation.xml", "application/vnd.openxmlformats-officedocument.presentationml.presentation",
             "pptx"),
}
#: Where the parts of a Word, Excel or PowerPoint file live; a member elsewhere is not part of such a document.
OOXML_FOLDERS = ("_rels/", "docProps/", "customXml/", *OOXML_PARTS)
#: Content types and part names of code inside an OOXML file: macro-enabled main parts, VBA projects and their
#: data, ActiveX controls, embedded OLE objects (which may hold a program): any binary part but the printer
#: settings Excel and Word keep (printerSettings/*.bin, a DEVMODE).
OOXML_CODE_TYPES = re.compile(r"macroenabled|vbaproject|vbadata|activex|oleobject|ms-office\.vba|keymapcustomizations",
                              re.I)
OOXML_CODE_PARTS = re.compile(r"vbaproject|vbadata|activex|oleobject|^(?!.*/printerSettings/[^/]*$).*\.bin$", re.I)
#: Members whose name says they are a program or a script, wherever they are (pictures, SVG icons, embedded
#: workbooks and HTML chunks are documents' own parts and stay).
EXECUTABLE_NAMES = re.compile(r"\.(exe|dll|com|scr|pif|bat|cmd|ps1|vbs|vbe|js|jse|wsf|wsh|hta|msi|lnk|jar|sh|cpl)$",
                              re.I)


def macros_refused(field: str) -> Unprocessable:
    return refuse(field, _("This office document contains macros or other code (VBA, ActiveX, embedded "
                           "objects), which are not accepted. Save it as a document without macros (.docx, .xlsx, "
                           ".pptx) or as PDF and attach it again."))


def not_office(field: str) -> Unprocessable:
    return refuse(field, _("This file is a ZIP archive that is not a Word, Excel or PowerPoint document (it holds "
                           "other files). Save the document itself as .docx, .xlsx, .pptx or PDF and attach it "
                           "again."))


def _office_open_xml(data: bytes, field: str) -> Identified:
    """A Word, Excel or PowerPoint file without code: [Content_Types].xml declaring no macro, VBA, ActiveX or
    embedded object, its main part present, and nothing outside the known folders nor anything named like a
    program."""
    damaged = refuse(field, _("This office document is damaged and cannot be opened. Save it again and attach "
                              "the new copy."))
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
            if "[Content_Types].xml" not in names:
                raise not_accepted(field, _("a ZIP archive"))
            if archive.getinfo("[Content_Types].xml").file_size > 1024 * 1024:
                raise damaged
            types = archive.read("[Content_Types].xml")
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, RuntimeError, NotImplementedError):
        raise damaged from None
    if b"<!DOCTYPE" in types.upper():  # no entities: [Content_Types].xml never needs any
        raise damaged
    try:
        declared = ElementTree.fromstring(types)
    except ElementTree.ParseError:
        raise damaged from None
    stated = " ".join(f"{element.get('ContentType', '')} {element.get('PartName', '')} {element.get('Extension', '')}"
                      for element in declared.iter())
    if OOXML_CODE_TYPES.search(stated) or any(OOXML_CODE_PARTS.search(name) for name in names):
        raise macros_refused(field)
    members = [name for name in names if name != "[Content_Types].xml" and not name.endswith("/")]
    if any(not name.startswith(OOXML_FOLDERS) or EXECUTABLE_NAMES.search(name) for name in members):
        raise not_office(field)
    for folder, (main, content_type, extension) in OOXML_PARTS.items():
        if any(name.startswith(folder) for name in members):
            if main not in names:
                raise not_office(field)
            return Identified("document", content_type, extension)
    raise not_accepted(field, _("a ZIP archive"))


#: Stream names in an OLE2 file's directory (UTF-16LE): the main stream of each legacy format kept.
OLE2_STREAMS = {
    "WordDocument".encode("utf-16-le"): ("application/msword", "doc"),
    "PowerPoint Document".encode("utf-16-le"): ("application/vnd.ms-powerpoint", "ppt"),
}
#: Excel 97–2003: its Excel 4.0 (XLM) macros live inside the Workbook stream itself, with no storage of their own to
#: look for, so these files are refused with the advice to save them as .xlsx.
OLE2_EXCEL = ("Workbook".encode("utf-16-le"), "Book".encode("utf-16-le"))
#: The stream every VBA project has (in Word's "Macros" and Excel's "_VBA_PROJECT_CUR" storages).
OLE2_MACROS = "_VBA_PROJECT".encode("utf-16-le")


def _legacy_office(data: bytes, field: str) -> Identified:
    """A Word 97–2003 or PowerPoint 97–2003 file without a VBA project, by the stream names in its directory."""
    if OLE2_MACROS in data:
        raise macros_refused(field)
    if any(name in data for name in OLE2_EXCEL):
        raise refuse(field, _("Excel 97–2003 workbooks (.xls) are not accepted: macros inside them cannot be "
                              "checked. Save it as .xlsx (Excel workbook) or as PDF and attach it again."))
    for name, (content_type, extension) in OLE2_STREAMS.items():
        if name in data:
            return Identified("document", content_type, extension)
    raise not_accepted(field, _("an office file of a kind not accepted here"))


def jpeg_scale(size: tuple[int, int], max_side: int) -> int:
    """How much smaller (1, 2, 4 or 8) a JPEG is decoded: the least that brings its long side within `max_side`
    (or 8); the decoder then does the reduction, at a fraction of the work."""
    for scale in (1, 2, 4):
        if max(size) // scale <= max_side:
            return scale
    return 8


def decoded_size(image: Image.Image, max_side: int) -> tuple[int, int]:
    """The size an image is decoded at: a JPEG at its reduced scale, any other image whole."""
    scale = jpeg_scale(image.size, max_side) if image.format == "JPEG" else 1
    return image.width // scale, image.height // scale


def decoded_pixels(data: bytes, max_side: int) -> int:
    """How many pixels decoding this image costs, from its header alone (0 for what is not an image: it is
    refused or costs nothing to decode)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = decoded_size(image, max_side)
                return width * height
    except Image.DecompressionBombError:
        return 0  # refused by clean_image before any decoding
    except Exception:  # noqa: BLE001 -- not an image Pillow knows: identify() says what it is
        return 0


def clean_image(data: bytes, *, max_pixels: int, max_side: int = 4096, field: str = "file") -> CleanImage:
    """Decode an image and encode its pixels again with no metadata; the first frame of an animation.

    A JPEG larger than needed is decoded at 1/2, 1/4 or 1/8 of its size (jpeg_scale); any image still longer than
    `max_side` is reduced by a whole factor, so the stored one has a long side between half of `max_side` and
    `max_side` (a 12 MP phone photo, 4032 px, is kept whole). Opaque images become JPEG (quality PHOTO_QUALITY),
    images with transparency PNG. More than `max_pixels` decoded pixels (a decompression bomb, or a panorama beyond any use
    here) and undecodable bytes are refused (422). The image is reduced before it is turned upright and copied,
    so one full decoded frame is the most a file holds in memory.
    """
    damaged = refuse(field, _("This image is damaged or incomplete and cannot be opened. Take the photo again "
                              "or save it again as JPEG or PNG."))
    too_large = refuse(field, _("This image has too many pixels (at most %(n)s million). Make it smaller and "
                                "attach it again.", n=millions(max_pixels)))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = decoded_size(image, max_side)
                if width * height > max_pixels:
                    raise too_large
                image.seek(0)
                if image.format == "JPEG" and (width, height) != image.size:
                    image.draft(image.mode, (width, height))
                image.load()
                turn = TRANSPOSE.get(image.getexif().get(ORIENTATION, 1))
                transparent = image.mode in ("RGBA", "LA", "PA") or (
                    image.mode == "P" and "transparency" in image.info)
                frame = image if image.mode == ("RGBA" if transparent else "RGB") else image.convert(
                    "RGBA" if transparent else "RGB")
                if max(frame.size) > max_side:  # by a whole factor: box averages, a tenth of a resampling's cost
                    frame = frame.reduce(-(-max(frame.size) // max_side))
                if turn is not None:
                    frame = frame.transpose(turn)
                # A new image from the pixels alone: no info, no EXIF, no XMP, no ICC profile, no text chunks.
                clean = Image.new(frame.mode, frame.size)
                clean.paste(frame)
                del frame
    except Unprocessable:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise too_large from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError):
        raise damaged from None
    out = io.BytesIO()
    if transparent:
        clean.save(out, "PNG")
        content_type, extension = "image/png", "png"
    else:
        clean.save(out, "JPEG", quality=PHOTO_QUALITY)
        content_type, extension = "image/jpeg", "jpg"
    return CleanImage(out.getvalue(), content_type, extension, clean.width, clean.height, thumbnail_of(clean))


#: The EXIF tag of the camera's orientation, and how each value turns the pixels upright (as ImageOps.exif_transpose).
ORIENTATION = 0x0112
TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
             5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
             8: Image.Transpose.ROTATE_90}


def millions(pixels: int) -> str:
    """A pixel count in millions, as a person reads it: 25, 0.1."""
    return f"{pixels / 1_000_000:.1f}".removesuffix(".0")


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
