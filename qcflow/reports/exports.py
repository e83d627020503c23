"""CSV and XLSX exports of reports (shaped for re-keying into the national NCIS platform) and of
follow-up results.

Events: every analysis field, free text through the PII scrubber, and nothing about the reporter
(no mode, no user, no receipt, no message): the export is a list of what happened, not of who told
us. Submission times are written to the hour for every report, as an anonymous one is stored, so
the minute never tells anonymous reports from the others. Follow-up: tasks with their outcome, the patient's phone masked. docs/exports.md maps
each column to the NCIS form.

Both formats are written completely, inside the request, into a spooled temporary file (in memory up
to SPOOL_BYTES, then an anonymous file on disk; CSV: UTF-8 with a BOM so Excel reads the Chinese;
XLSX: row by row by xlsxwriter in constant-memory mode), which is then sent. Nothing that needs the
request (its language, the database session, the user) runs after the view has returned: the server
sends the body after Flask has torn the request down, so a generator that still translated a header
or read a row failed there (a 500 on every CSV export).
"""
from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import IO, Callable

import sqlalchemy as sa
from flask import Response
from flask_babel import gettext as _, lazy_gettext as _l

from qcflow.auth.models import Department, User
from qcflow.auth.permissions import scoped
from qcflow.clinical.models import Patient
from qcflow.core.actors import Actor
from qcflow.core.i18n import current_language, label, label_list
from qcflow.core.masking import mask_phone
from qcflow.core.periods import Period
from qcflow.core.time import local
from qcflow.events.models import AdverseEvent, EventCategory
from qcflow.events.queries import SCOPE as EVENT_SCOPE
from qcflow.events.queries import with_origin
from qcflow.events.scrub import own_data, patient_names, scrub, staff_names
from qcflow.extensions import db
from qcflow.followup.models import Task
from qcflow.followup.timeliness import timeliness_label, timeliness_sql
from qcflow.reports.analysis import effective_grade, reports_clause

BATCH = 500
XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass(frozen=True)
class Column:
    code: str
    title: object  # lazy label


def _at(value: datetime | None) -> str:
    return local(value).strftime("%Y-%m-%d %H:%M") if value else ""


def _hour(value: datetime | None) -> str:
    """Submission times to the hour for every report: an anonymous one is stored so, and a minute
    on the others would tell the two apart."""
    return local(value).strftime("%Y-%m-%d %H:00") if value else ""


def _on(value: date | None) -> str:
    return value.isoformat() if value else ""


def _yes_no(value: bool | None) -> str:
    return "" if value is None else (_("yes") if value else _("no"))


EVENT_COLUMNS = [
    Column("reference", _l("Reference")),
    Column("state", _l("State")),
    Column("submitted_at", _l("Reported at")),
    Column("occurred_at", _l("Occurred at")),
    Column("discovered_at", _l("Discovered at")),
    Column("department", _l("Department where it happened")),
    Column("location", _l("Location")),
    Column("category", _l("Category")),
    Column("subcategory", _l("Subcategory")),
    Column("grade", _l("Grade")),
    Column("reporter_grade", _l("Grade given by the reporter")),
    Column("harm", _l("Harm")),
    Column("ncc_merp", _l("NCC MERP category")),
    Column("care_stage", _l("Care stage")),
    Column("clinical_state", _l("Clinical state")),
    Column("is_unplanned_reoperation", _l("Unplanned reoperation")),
    Column("description", _l("What happened")),
    Column("immediate_actions", _l("Immediate actions")),
    Column("external_severity", _l("Severity for the health authority")),
    Column("external_reported_at", _l("Reported to the health authority at")),
    Column("handling_department", _l("Handling department")),
    Column("rca_cause_domains", _l("Cause domains")),
    Column("rca_factors", _l("Contributing factors")),
    Column("analysis", _l("Analysis")),
    Column("improvement_types", _l("Improvement types")),
    Column("closed_at", _l("Closed at")),
    #: Reported by staff, or found by the system (filed from a trigger's firing, not in the reporting rate).
    Column("found_by", _l("Found by")),
    #: Staff, or a patient or a family on the public form (never their contact details).
    Column("reported_by", _l("Source of the report")),
]

FOLLOWUP_COLUMNS = [
    Column("task_id", _l("Task")),
    Column("pathway", _l("Pathway")),
    Column("occurrence", _l("Call no.")),
    Column("department", _l("Department")),
    Column("patient_mrn", _l("MRN")),
    Column("patient_name", _l("Patient")),
    Column("phone", _l("Phone (masked)")),
    Column("due_on", _l("Due")),
    Column("window_opens", _l("Window opens")),
    Column("window_closes", _l("Window closes")),
    Column("state", _l("State")),
    Column("timeliness", _l("Timeliness")),
    Column("attempts", _l("Attempts")),
    Column("closed_at", _l("Completed at")),
    Column("completed_by", _l("Completed by")),
    Column("respondent", _l("Respondent")),
    Column("channel", _l("Channel")),
    Column("complication", _l("Complication")),
    Column("complication_note", _l("Complication note")),
    Column("unplanned_readmission", _l("Unplanned readmission")),
    Column("reoperation", _l("Reoperation")),
    Column("recurrence_metastasis", _l("Recurrence or metastasis")),
    Column("vital_status", _l("Vital status")),
    Column("died_on", _l("Date of death")),
    Column("health_education_given", _l("Health education given")),
    Column("revisit_booked", _l("Revisit booked")),
    Column("satisfaction", _l("Satisfaction (1–5)")),
    Column("outcome_note", _l("Note")),
    Column("is_effective", _l("Effective follow-up")),
]




def _batched(result, size: int = BATCH) -> Iterator[list]:
    while batch := result.fetchmany(size):
        yield batch


def event_rows(actor: Actor, period: Period, department_id: int | None) -> Iterator[list[str]]:
    """The reports of the period the actor may see, one list of cells per report, oldest first."""
    language = current_language()
    departments = {d.id: d.label(language) for d in db.session.scalars(sa.select(Department))}
    categories = {c.code: c.label(language) for c in db.session.scalars(sa.select(EventCategory))}
    names = staff_names()
    e = AdverseEvent
    stmt = scoped(sa.select(
        e.reference, e.state, e.submitted_at, e.occurred_at, e.discovered_at, e.department_id, e.location,
        e.category_code, e.subcategory_code, effective_grade().label("grade"), e.reporter_grade, e.harm, e.ncc_merp,
        e.care_stage, e.clinical_state, e.is_unplanned_reoperation, e.description, e.immediate_actions,
        e.external_severity, e.external_reported_at, e.handling_department_id, e.rca_cause_domains, e.rca_factors,
        e.analysis, e.improvement_types, e.closed_at, e.found_by, e.patient_mrn, e.origin,
        e.public_role, e.contact_name, e.contact_phone,
    ), EVENT_SCOPE, actor).where(reports_clause(period)).order_by(e.submitted_at, e.id)
    if department_id is not None:
        stmt = stmt.where(sa.or_(e.department_id == department_id, e.handling_department_id == department_id))
    result = db.session.execute(stmt.execution_options(yield_per=BATCH))
    for batch in _batched(result):
        batch_names = names + patient_names(row.patient_mrn for row in batch)

        for row in batch:
            own = own_data(row)

            def clean(text, own=own):
                return scrub(text or "", batch_names, own=own)

            location, description = with_origin(row.origin, row.location, row.description)
            yield [
                row.reference or "", label("state", row.state), _hour(row.submitted_at), _at(row.occurred_at),
                _at(row.discovered_at), departments.get(row.department_id, ""), clean(location),
                categories.get(row.category_code, row.category_code or ""),
                categories.get(row.subcategory_code, row.subcategory_code or ""), label("grade", row.grade),
                label("grade", row.reporter_grade), label("harm", row.harm), row.ncc_merp or "",
                label("care_stage", row.care_stage), clean(row.clinical_state), _yes_no(row.is_unplanned_reoperation),
                clean(description), clean(row.immediate_actions),
                label("external_severity", row.external_severity) if row.external_severity else "",
                _at(row.external_reported_at), departments.get(row.handling_department_id, ""),
                label_list("cause_domain", row.rca_cause_domains), clean(row.rca_factors), clean(row.analysis),
                label_list("improvement_type", row.improvement_types), _at(row.closed_at),
                label("reported_by", "public") if row.public_role else label("found_by", row.found_by),
                label("public_role", row.public_role) if row.public_role else label("reported_by", "staff"),
            ]


def followup_rows(actor: Actor, period: Period, department_id: int | None, now: datetime) -> Iterator[list[str]]:
    """Follow-up calls due in the period the actor may see, with their outcome; phones masked."""
    language = current_language()
    departments = {d.id: d.label(language) for d in db.session.scalars(sa.select(Department))}
    users = {u.id: u.display_name for u in db.session.scalars(sa.select(User))}
    t = Task
    stmt = scoped(sa.select(
        t.id, t.pathway, t.occurrence, t.department_id, Patient.mrn, Patient.name, Patient.phone, t.due_on,
        t.opens_at, t.closes_at, t.state, timeliness_sql(t, now).label("timeliness"), t.attempt_count, t.closed_at,
        t.completed_by_id, t.respondent, t.channel, t.complication, t.complication_note, t.unplanned_readmission,
        t.reoperation, t.recurrence_metastasis, t.vital_status, t.died_on, t.health_education_given,
        t.revisit_booked, t.satisfaction, t.outcome_note, t.is_effective,
    ).join(Patient, Patient.id == t.patient_id), t.department_id, actor).where(
        t.due_on >= period.start, t.due_on <= period.end).order_by(t.due_on, t.id)
    if department_id is not None:
        stmt = stmt.where(t.department_id == department_id)
    result = db.session.execute(stmt.execution_options(yield_per=BATCH))
    for batch in _batched(result):
        for row in batch:
            yield [
                str(row.id), label("fu_pathway", row.pathway), str(row.occurrence),
                departments.get(row.department_id, ""), row.mrn, row.name, mask_phone(row.phone) or "",
                _on(row.due_on), _at(row.opens_at), _at(row.closes_at), label("fu_task_state", row.state),
                timeliness_label(row.state, row.timeliness), str(row.attempt_count),
                _at(row.closed_at), users.get(row.completed_by_id, ""), label("fu_respondent", row.respondent),
                label("fu_channel", row.channel), _yes_no(row.complication), scrub(row.complication_note or ""),
                _yes_no(row.unplanned_readmission), _yes_no(row.reoperation), _yes_no(row.recurrence_metastasis),
                label("fu_vital_status", row.vital_status), _on(row.died_on),
                _yes_no(row.health_education_given), _yes_no(row.revisit_booked),
                "" if row.satisfaction is None else str(row.satisfaction), scrub(row.outcome_note or ""),
                _yes_no(row.is_effective),
            ]


def header(columns: list[Column]) -> list[str]:
    return [str(column.title) for column in columns]


def _csv_line(cells: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow([_defuse(cell) for cell in cells])
    return buffer.getvalue()


def _defuse(cell: str) -> str:
    """Keep a spreadsheet from reading text as a formula (CSV injection)."""
    return "'" + cell if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell


def write_csv(handle: IO[bytes], columns: list[Column], rows: Iterable[list[str]]) -> None:
    """Write the header and rows as CSV in UTF-8 with a BOM (Excel then reads Chinese correctly)."""
    handle.write(("\ufeff" + _csv_line(header(columns))).encode("utf-8"))
    for cells in rows:
        handle.write(_csv_line(cells).encode("utf-8"))


def csv_response(columns: list[Column], rows: Callable[[], Iterable[list[str]]], filename: str) -> Response:
    """The rows as a CSV file, written completely before the response is returned."""
    buffer = _buffer()
    try:
        write_csv(buffer, columns, rows())
    except BaseException:
        buffer.close()
        raise
    return _file_response(buffer, "text/csv", filename)


def write_xlsx(target: str | IO[bytes], columns: list[Column], rows: Iterable[list[str]], sheet: str) -> None:
    """Write the rows as an XLSX workbook into a path or a binary file, one row at a time (constant memory)."""
    import xlsxwriter

    workbook = xlsxwriter.Workbook(target, {"constant_memory": True, "strings_to_formulas": False,
                                            "strings_to_urls": False, "strings_to_numbers": False})
    worksheet = workbook.add_worksheet(sheet[:31])
    bold = workbook.add_format({"bold": True, "bg_color": "#EEF1F4"})
    worksheet.write_row(0, 0, header(columns), bold)
    worksheet.freeze_panes(1, 0)
    for index, cells in enumerate(rows, start=1):
        worksheet.write_row(index, 0, cells)
    workbook.close()


def xlsx_response(columns: list[Column], rows: Callable[[], Iterable[list[str]]], filename: str, sheet: str) -> Response:
    """The rows as an XLSX workbook, written completely before the response is returned."""
    buffer = _buffer()
    try:
        write_xlsx(buffer, columns, rows(), sheet)
    except BaseException:
        buffer.close()
        raise
    return _file_response(buffer, XLSX_MIMETYPE, filename)


#: An export up to this size is kept in memory; a larger one goes to an anonymous temporary file, which
#: the system deletes when it is closed (no file is left behind, however the download ends).
SPOOL_BYTES = 4 * 1024 * 1024


def _buffer() -> IO[bytes]:
    return tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES, prefix="qcflow-export-")


def _file_response(buffer: IO[bytes], mimetype: str, filename: str) -> Response:
    """Send a finished file from its start, in 64 KiB chunks."""
    size = buffer.seek(0, os.SEEK_END)
    buffer.seek(0)
    return Response(_Chunks(buffer), mimetype=mimetype, direct_passthrough=True,
                    headers={"Content-Disposition": f'attachment; filename="{filename}"',
                             "Content-Length": str(size), "Cache-Control": "no-store"})


class _Chunks:
    """A file read in 64 KiB chunks, closed when read to its end, when the server closes the response, or
    when a response nobody read is dropped."""

    def __init__(self, handle: IO[bytes]):
        self.handle = handle

    def __iter__(self):
        return self

    def __next__(self) -> bytes:
        chunk = self.handle.read(64 * 1024)
        if not chunk:
            self.handle.close()
            raise StopIteration
        return chunk

    def close(self) -> None:
        self.handle.close()

    __del__ = close
