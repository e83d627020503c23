"""CSV files of HIS data and reference data, read into rows for `services.import_rows` (page and CLI), and the
template of each kind."""
from __future__ import annotations

import csv
import io

from flask_babel import gettext as _
from marshmallow import Schema

from qcflow.core.errors import BadRequest


def read_csv(data: bytes) -> list[dict]:
    """CSV rows as dicts (UTF-8, with or without BOM); empty cells are left out. A file without rows, or with a
    column named twice (which value would count?), is refused."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadRequest(_("The file is not UTF-8 text. Save it as “CSV UTF-8” and try again."))
    reader = csv.reader(io.StringIO(text))
    try:
        header = [name.strip() for name in next(reader, [])]
        named = [name for name in header if name]
        twice = sorted({name for name in named if named.count(name) > 1})
        if twice:
            raise BadRequest(_("The column “%(column)s” appears more than once in the header row; keep one.",
                               column="”, “".join(twice)))
        rows = [{name: cell.strip() for name, cell in zip(header, cells) if name and cell.strip() != ""}
                for cells in reader if cells]
    except csv.Error:
        raise BadRequest(_("Line %(line)d of the file cannot be read: a cell is longer than 128 KiB or a quote is "
                           "not closed. Save it as “CSV UTF-8” and try again.", line=reader.line_num)) from None
    if not rows:
        raise BadRequest(_("The file has no data rows: the first line names the columns, each further line is one "
                           "record (download the template)."))
    return rows


def example_row(schema: type[Schema]) -> dict:
    """The example row of a kind's template, as read back from the file (the OpenAPI document's examples)."""
    fields = schema._declared_fields
    values = {name: fields[name].metadata.get("example") for name in fields}
    return {name: str(value).lower() if isinstance(value, bool) else str(value)
            for name, value in values.items() if value is not None and value != ""}


def template(schema: type[Schema]) -> bytes:
    """A kind's CSV template: UTF-8 with BOM (spreadsheets then read the Chinese right), the header row of its
    field names and one example row. Uploaded unchanged, the example row is refused (`import_rows`)."""
    example = example_row(schema)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(schema._declared_fields)
    writer.writerow([example.get(name, "") for name in schema._declared_fields])
    return ("\ufeff" + out.getvalue()).encode("utf-8")
