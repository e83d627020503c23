"""Read the cells of an XLSX's first sheet with the standard library (zipfile + XML), as a spreadsheet would."""
from __future__ import annotations

import io
import re
import zipfile
from xml.etree import ElementTree

NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
CELL = re.compile(r"([A-Z]+)(\d+)")


def _index(letters: str) -> int:
    n = 0
    for letter in letters:
        n = n * 26 + ord(letter) - 64
    return n - 1


def cells(data: bytes) -> dict[tuple[int, int], object]:
    """{(row, column): value} (0-based) of the first sheet: strings as text, numbers as floats."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        shared = []
        if "xl/sharedStrings.xml" in names:
            root = ElementTree.fromstring(archive.read("xl/sharedStrings.xml"))
            shared = ["".join(t.text or "" for t in si.iter(f"{{{NS['m']}}}t")) for si in root.findall("m:si", NS)]
        sheet = ElementTree.fromstring(archive.read("xl/worksheets/sheet1.xml"))
    found = {}
    for cell in sheet.iter(f"{{{NS['m']}}}c"):
        letters, number = CELL.fullmatch(cell.get("r")).groups()
        kind = cell.get("t")
        value = cell.find("m:v", NS)
        if kind == "s":
            found[(int(number) - 1, _index(letters))] = shared[int(value.text)]
        elif kind == "inlineStr":
            found[(int(number) - 1, _index(letters))] = "".join(t.text or "" for t in cell.iter(f"{{{NS['m']}}}t"))
        elif value is not None:
            found[(int(number) - 1, _index(letters))] = float(value.text)
    return found


def sheet_xml(data: bytes, name: str = "xl/worksheets/sheet1.xml") -> str:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.read(name).decode()


def row_of(found: dict, column: int, text: str) -> int:
    """The first row whose cell in `column` is `text`."""
    return min(row for (row, col), value in found.items() if col == column and value == text)
