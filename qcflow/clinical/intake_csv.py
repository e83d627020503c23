"""CSV files of HIS data and reference data, read into rows for `services.import_rows` (page and CLI), and the
template of each kind."""
from __future__ import annotations

import csv
import io

from flask_babel import gettext as _
from marshmallow import Schema

from qcflow.core.errors import BadRequest


def read_csv(data: bytes) -> list[dict]:
    """CSV rows as dicts (UTF-8, with or without BOM); empty cells are left out."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadRequest(_("The file is not UTF-8 text. Save it as “CSV UTF-8” and try again."))
    try:
        return [{k.strip(): v.strip() for k, v in row.items() if k and v is not None and v.strip() != ""}
                for row in csv.DictReader(io.StringIO(text))]
    except csv.Error as error:  # e.g. a cell beyond the csv module's limit of 128 KiB
        raise BadRequest(_("The file is not a CSV file we can read (%(problem)s). Save it as “CSV UTF-8” and try "
                           "again.", problem=str(error))) from None


def template(schema: type[Schema]) -> bytes:
    """A kind's CSV template: UTF-8 with BOM (spreadsheets then read the Chinese right), the header row of its
    field names and one example row, the examples of the OpenAPI document."""
    fields = schema._declared_fields
    example = [fields[name].metadata.get("example", "") for name in fields]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(fields)
    writer.writerow([str(value).lower() if isinstance(value, bool) else value for value in example])
    return ("\ufeff" + out.getvalue()).encode("utf-8")
