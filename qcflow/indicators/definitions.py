"""The indicators as data: code, names, unit, direction, source plan, and numerator and denominator
as SQL over the domain tables (docs/indicators.md states each definition in words).

A part (numerator or denominator) is a list of *sources*: SQLAlchemy Core selects with the
columns `id`, `department_id` and `weight` (1 per record; a census row weighs its discharges) plus
the columns its label needs. The count is `SUM(weight)` over the union; the drill-down lists the
same rows. Nothing loops over rows in Python; only the months of a period are iterated (the
discharge census is monthly).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Callable

import sqlalchemy as sa
from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import aliased
from sqlalchemy.sql.expression import FunctionElement

from qcflow.auth.models import Department
from qcflow.clinical.models import DischargeCensus, Encounter, Operation, Patient, Procedure
from qcflow.clinical.workflow import OperationState
from qcflow.core.i18n import register_labels
from qcflow.core.periods import Period, local_midnight, month_end
from qcflow.core.time import hospital_tz
from qcflow.events.models import AdverseEvent
from qcflow.events.workflow import EventState
from qcflow.followup.models import Plan, Task
from qcflow.followup.timeliness import Timeliness, timeliness_sql
from qcflow.followup.workflow import TaskState
from qcflow.mdt.deadlines import SEVEN_DAYS, death_discussion_due, last_instant
from qcflow.mdt.models import Clinic, ClinicSlot, Discussion, DiscussionKind
from qcflow.mdt.workflow import DiscussionState

KEY_CANCERS = ("lung", "gastric", "liver", "breast", "colorectal")
#: Event states that are not reports: never submitted, withdrawn, duplicates, not reportable.
NOT_REPORTS = (EventState.DRAFT.value, EventState.WITHDRAWN.value, EventState.DUPLICATE.value,
               EventState.NOT_REPORTABLE.value)
UNIT_FACTORS = {"percent": 100, "permille": 1000, "per100": 100}


def format_value(value: float | None, unit: str) -> str:
    """A value as pages and charts show it in its unit: counts whole, a done-or-not item 1 or 0, the rest to two
    decimals with % or ‰ where the unit has one; "—" without a value."""
    if value is None:
        return "—"
    if unit == "count":
        return f"{value:.0f}"
    if unit == "status":
        return f"{value:g}"
    return f"{value:.2f}" + {"percent": "%", "permille": "‰"}.get(unit, "")


class days_between(FunctionElement):
    """(b − a) in days, fractional, on SQLite and PostgreSQL."""

    type = sa.Float()
    inherit_cache = True


@compiles(days_between, "sqlite")
def _days_between_sqlite(element, compiler, **kw):
    a, b = (compiler.process(c, **kw) for c in element.clauses)
    return f"(julianday({b}) - julianday({a}))"


@compiles(days_between, "postgresql")
def _days_between_postgresql(element, compiler, **kw):
    a, b = (compiler.process(c, **kw) for c in element.clauses)
    return f"(EXTRACT(EPOCH FROM ({b} - {a})) / 86400.0)"


class seconds_between(FunctionElement):
    """(b − a) in seconds, to the millisecond on SQLite (julianday) and exact on PostgreSQL."""

    type = sa.Float()
    inherit_cache = True


@compiles(seconds_between, "sqlite")
def _seconds_between_sqlite(element, compiler, **kw):
    a, b = (compiler.process(c, **kw) for c in element.clauses)
    return f"round((julianday({b}) - julianday({a})) * 86400.0, 3)"


@compiles(seconds_between, "postgresql")
def _seconds_between_postgresql(element, compiler, **kw):
    a, b = (compiler.process(c, **kw) for c in element.clauses)
    return f"EXTRACT(EPOCH FROM ({b} - {a}))"


#: How long after a month's last day a definition still looks at `now`: a day-surgery discharge
#: counts once its first 24 hours have passed. From then on a month's counts depend on the records
#: only, not on when they are computed (every other window or deadline is bounded by the month's end).
SETTLING = timedelta(hours=24)


def settled_at(month: date) -> datetime:
    """The instant from which a month's counts no longer depend on `now` (rollups cover such months)."""
    return local_midnight(month_end(month) + timedelta(days=1), hospital_tz()) + SETTLING


@dataclass(frozen=True)
class Source:
    """One kind of record behind a part: a select with id, department_id, weight and label columns."""

    kind: str
    select: Callable[[Period], sa.Select]
    #: The page of one record, e.g. "/events/{id}"; None where there is no page.
    url: str | None = None


@dataclass(frozen=True)
class Indicator:
    code: str
    name: str
    name_en: str
    #: percent, permille, per100, or count (the value is the numerator: a number on the period's last day).
    unit: str
    #: higher, lower (is better) or rising (no numeric target; should rise over time).
    direction: str
    #: The key of its requirement in BASES (words for pages) and SOURCE_PLANS (plan and line, for auditors).
    plan: str
    numerator: list[Source] = field(default_factory=list)
    denominator: list[Source] = field(default_factory=list)

    def label(self, language: str) -> str:
        return self.name_en if language == "en" else self.name

    @property
    def basis(self) -> "Basis":
        """The requirement and plans behind the indicator, in words for its page."""
        return BASES[self.plan]

    @property
    def source(self) -> str:
        """The plans and lines it comes from, as docs/indicators.md cites them (the API's `source`)."""
        return SOURCE_PLANS[self.plan]

    def sources(self, part: str) -> list[Source]:
        return self.numerator if part == "numerator" else self.denominator


def _row(id_column, department_column, *labels, weight=None):
    return sa.select(id_column.label("id"), department_column.label("department_id"),
                     (weight if weight is not None else sa.literal(1)).label("weight"), *labels)


def actively_reported():
    """A report staff made of their own accord (主动报告, found_by "reporter"), not one a reviewer filed from a
    trigger's firing (系统发现) nor one a patient or a family filed on the public form: only these count
    towards the reporting rate (docs/indicators.md)."""
    return sa.and_(AdverseEvent.found_by == "reporter", AdverseEvent.public_role.is_(None))


def found_by_system():
    """A report a reviewer filed from a trigger's firing (系统发现): counted apart, never in the rate."""
    return AdverseEvent.found_by == "trigger"


def reported_by_public():
    """A report a patient or a family filed on the public form (a ward poster's QR code): counted apart,
    never in the reporting rate, which measures staff's reporting (docs/indicators.md)."""
    return AdverseEvent.public_role.is_not(None)


def _reports_in(period: Period) -> sa.Select:
    return _row(AdverseEvent.id, AdverseEvent.department_id, AdverseEvent.reference.label("reference"),
                AdverseEvent.state.label("state")).where(
        AdverseEvent.submitted_at >= period.start_at, AdverseEvent.submitted_at < period.end_at,
        AdverseEvent.state.not_in(NOT_REPORTS))


def reported_events(period: Period) -> sa.Select:
    """Reports actively reported in the period (not drafts, withdrawn, duplicates or not reportable, and
    not found by a trigger)."""
    return _reports_in(period).where(actively_reported())


def events_found_by_system(period: Period) -> sa.Select:
    """Reports of the period filed from a trigger's firing (系统发现): counted apart, never in the rate."""
    return _reports_in(period).where(found_by_system())


def events_reported_by_public(period: Period) -> sa.Select:
    """Reports of the period from patients and families: counted apart, never in the rate."""
    return _reports_in(period).where(reported_by_public())


def _census_months(period: Period) -> list[date]:
    return [month for month, _first, _last, whole in period.segments() if whole]


def discharged_encounters(period: Period) -> sa.Select:
    """Discharges in the period, except in whole months where the department's census replaces them."""
    clauses = []
    for month, first, last, whole in period.segments():
        in_segment = sa.and_(Encounter.discharged_at >= local_midnight(first, hospital_tz()),
                             Encounter.discharged_at < local_midnight(last + timedelta(days=1), hospital_tz()))
        if whole:
            censused = sa.select(DischargeCensus.department_id).where(DischargeCensus.month_on == month)
            in_segment = sa.and_(in_segment, Encounter.department_id.not_in(censused))
        clauses.append(in_segment)
    return _row(Encounter.id, Encounter.department_id, Encounter.his_id.label("his_id"),
                Patient.mrn.label("mrn")).join(Patient, Patient.id == Encounter.patient_id).where(sa.or_(*clauses))


def census_rows(period: Period) -> sa.Select:
    """Census rows of the whole months in the period (each weighs its discharges)."""
    months = _census_months(period)
    return _row(DischargeCensus.id, DischargeCensus.department_id, DischargeCensus.month_on.label("month_on"),
                Department.code.label("department_code"), Department.name.label("department_name"),
                Department.name_en.label("department_name_en"), weight=DischargeCensus.discharges).join(
        Department, Department.id == DischargeCensus.department_id).where(
        DischargeCensus.month_on.in_(months) if months else sa.false())


def _closure_days() -> dict:
    """Days from submission to close a case on time, by grade (confirmed, else the reporter's)."""
    return current_app.config["EVENT_CLOSURE_DAYS"]


def _event_grade():
    return sa.func.coalesce(AdverseEvent.confirmed_grade, AdverseEvent.reporter_grade, "I")


def events_due_to_close(period: Period) -> sa.Select:
    """Reports whose closing deadline (submission + the grade's days) passed within the period."""
    grade, days = _event_grade(), _closure_days()
    clauses = [sa.and_(grade == g, AdverseEvent.submitted_at >= period.start_at - timedelta(days=n),
                       AdverseEvent.submitted_at < period.closed_by - timedelta(days=n)) for g, n in days.items()]
    return _row(AdverseEvent.id, AdverseEvent.department_id, AdverseEvent.reference.label("reference"),
                AdverseEvent.state.label("state")).where(AdverseEvent.state.not_in(NOT_REPORTS), sa.or_(*clauses))


def events_closed_on_time(period: Period) -> sa.Select:
    days = _closure_days()
    allowed = sa.case(*((_event_grade() == g, n) for g, n in days.items()), else_=min(days.values()))
    return events_due_to_close(period).where(
        AdverseEvent.state == EventState.CLOSED.value, AdverseEvent.closed_at.is_not(None),
        days_between(AdverseEvent.submitted_at, AdverseEvent.closed_at) <= allowed)


def effective_on_time(task=Task, now: datetime | None = None):
    """A completed call that was an effective follow-up (followup.services: reached the patient or
    family, every core item recorded) and done inside its window (followup.timeliness)."""
    return sa.and_(task.state == TaskState.COMPLETED.value, task.is_effective.is_(True),
                   timeliness_sql(task, now) == Timeliness.DUE.value)


def followup_calls_due(pathways: Callable[[], sa.ColumnElement]):
    """Calls of the pathways whose window closed in the period (cancelled calls are not due).

    A window that closes at local midnight on the 1st closed in the month that starts then (the
    period's end is exclusive, as for every other source), so months add up to the year; by now it
    counts once it has closed (`closes_at <= now`, the timeliness rule).
    """

    def select(period: Period) -> sa.Select:
        return _row(Task.id, Task.department_id, Task.pathway.label("pathway"), Task.due_on.label("due_on"),
                    Patient.mrn.label("mrn")).join(Patient, Patient.id == Task.patient_id).where(
            pathways(), Task.state != TaskState.CANCELLED.value,
            Task.closes_at >= period.start_at, Task.closes_at < period.end_at, Task.closes_at <= period.now)

    return select


def followup_calls_effective(pathways):
    due = followup_calls_due(pathways)
    return lambda period: due(period).where(effective_on_time(Task, period.now))


def day_surgery_discharges(period: Period) -> sa.Select:
    """Day-surgery discharges (not deaths) whose first 24 hours have passed."""
    return _row(Encounter.id, Encounter.department_id, Encounter.his_id.label("his_id"),
                Patient.mrn.label("mrn")).join(Patient, Patient.id == Encounter.patient_id).where(
        Encounter.is_day_surgery.is_(True), sa.or_(Encounter.disposition.is_(None), Encounter.disposition != "death"),
        Encounter.discharged_at >= period.start_at, Encounter.discharged_at < period.end_at,
        Encounter.discharged_at <= period.now - timedelta(hours=24))


def day_surgery_called_in_24h(period: Period) -> sa.Select:
    """… whose first follow-up call was effective and on time (its window is discharge → +24 h).

    An uncorrelated IN: SQLite evaluates it once per statement (a correlated EXISTS made it index
    the plans again for every discharge).
    """
    called = sa.select(Plan.source_id).join(Task, Task.plan_id == Plan.id).where(
        Plan.source_type == "encounter", Plan.pathway == "day_surgery", Task.occurrence == 1,
        effective_on_time(Task, period.now))
    return day_surgery_discharges(period).where(Encounter.id.in_(called))


def _operation_row(*where):
    return _row(Operation.id, Operation.department_id, Operation.his_id.label("his_id"),
                Procedure.name.label("procedure"), Patient.mrn.label("mrn")).join(
        Procedure, Procedure.code == Operation.procedure_code).join(Patient, Patient.id == Operation.patient_id).where(
        Operation.state == OperationState.PERFORMED.value, *where)


def _performed_in(period: Period):
    return sa.and_(Operation.performed_at >= period.start_at, Operation.performed_at < period.end_at)


def level4_operations(period: Period) -> sa.Select:
    """Grade-4 (and restricted-technology) operations performed in the period."""
    return _operation_row(_performed_in(period),
                          sa.or_(Operation.grade == 4, Operation.is_restricted_technology.is_(True)))


def level4_with_preop_mdt(period: Period) -> sa.Select:
    """… with a linked pre-operative discussion signed before the operation."""
    signed = sa.select(Discussion.id).where(
        Discussion.operation_id == Operation.id, Discussion.kind == DiscussionKind.PREOP_LEVEL4.value,
        Discussion.state == DiscussionState.SIGNED.value, Discussion.signed_at <= Operation.performed_at)
    return level4_operations(period).where(signed.exists())


def performed_operations(period: Period) -> sa.Select:
    return _operation_row(_performed_in(period))


def unplanned_reoperations(period: Period) -> sa.Select:
    return performed_operations(period).where(Operation.is_unplanned_reoperation.is_(True))


_PREVIOUS = aliased(Operation)


def unplanned_reoperations_within(window: timedelta) -> Callable[[Period], sa.Select]:
    """Unplanned reoperations performed in the period whose patient had another performed operation at
    most `window` before (the extraction's return-to-theatre rule: the window's first instant counts, an
    operation at the same instant does not), in whichever month that one was."""

    def select(period: Period) -> sa.Select:
        previous = sa.select(_PREVIOUS.id).where(
            _PREVIOUS.patient_id == Operation.patient_id, _PREVIOUS.id != Operation.id,
            _PREVIOUS.state == OperationState.PERFORMED.value, _PREVIOUS.performed_at < Operation.performed_at,
            seconds_between(_PREVIOUS.performed_at, Operation.performed_at) <= window.total_seconds())
        return unplanned_reoperations(period).where(previous.exists())

    return select


def elective_operations(period: Period) -> sa.Select:
    """Performed operations that were planned: not unplanned reoperations, not emergency bookings."""
    return performed_operations(period).where(Operation.is_unplanned_reoperation.is_(False),
                                              Operation.is_emergency_override.is_(False))


def day_surgery_operations(period: Period) -> sa.Select:
    day_case = sa.select(Encounter.id).where(Encounter.id == Operation.encounter_id,
                                             Encounter.is_day_surgery.is_(True))
    return elective_operations(period).where(day_case.exists())


_DEATH_ENCOUNTER, _DEATH_OPERATION, _OTHER_REVIEW = aliased(Encounter), aliased(Operation), aliased(Discussion)


def perioperative_deaths(period: Period) -> sa.Select:
    """Perioperative deaths as the MDT module recognised them (one review each), by the day the patient
    died (`patient.died_on`, however the death was learnt: HIS or follow-up call).

    A cancelled review still counts its death unless another review of the patient replaced it.
    """
    death_encounter, operation, other = _DEATH_ENCOUNTER, _DEATH_OPERATION, _OTHER_REVIEW
    replaced = sa.select(other.id).where(
        other.patient_id == Discussion.patient_id, other.kind == Discussion.kind, other.id != Discussion.id,
        other.state != DiscussionState.CANCELLED.value)
    return (_row(Discussion.id, sa.func.coalesce(operation.department_id, Discussion.department_id),
                 Patient.mrn.label("mrn"), Discussion.state.label("state"))
            .join(Patient, Patient.id == Discussion.patient_id)
            .outerjoin(death_encounter, sa.and_(death_encounter.id == Discussion.encounter_id,
                                                death_encounter.disposition == "death"))
            .outerjoin(operation, operation.id == Discussion.operation_id)
            .where(Discussion.kind == DiscussionKind.PERIOPERATIVE_DEATH.value,
                   Patient.died_on >= period.start, Patient.died_on <= period.end,
                   sa.not_(sa.and_(Discussion.state == DiscussionState.CANCELLED.value, replaced.exists()))))


def perioperative_deaths_discussed(period: Period) -> sa.Select:
    return perioperative_deaths(period).where(Discussion.state == DiscussionState.SIGNED.value)


def _by_day_of_death(period: Period, value: Callable[[date], datetime]):
    """A CASE on the day of death giving `value(day)` for each day of the period (the deadlines come from
    mdt.deadlines, which knows the Chinese calendar; SQL does not)."""
    days = [period.start + timedelta(days=n) for n in range((period.end - period.start).days + 1)]
    return sa.case({day: sa.literal(value(day), Discussion.signed_at.type) for day in days},
                   value=Patient.died_on, else_=sa.null())


def perioperative_deaths_discussed_within(rule: str) -> Callable[[Period], sa.Select]:
    """… signed by the death's deadline under `rule` (mdt.deadlines: "7d", "5wd"), counted from the stored
    time of death (an in-hospital death: its discharge; otherwise the day of death's last instant),
    whatever deadline the MDT module gave the review (DEATH_DISCUSSION_DEADLINE, a dispute)."""

    def select(period: Period) -> sa.Select:
        signed_by_day = Discussion.signed_at <= _by_day_of_death(
            period, lambda day: death_discussion_due(last_instant(day), rule))
        if rule == "7d":  # seven days to the instant of an in-hospital death
            known = _DEATH_ENCOUNTER.discharged_at.is_not(None)
            on_time = sa.case((known, seconds_between(_DEATH_ENCOUNTER.discharged_at, Discussion.signed_at)
                               <= SEVEN_DAYS.total_seconds()), else_=signed_by_day)
        else:  # by the end of a day: the hour of death does not matter
            on_time = signed_by_day
        return perioperative_deaths_discussed(period).where(on_time)

    return select


class local_day(FunctionElement):
    """The calendar day of an instant in the hospital time zone, as a SQL date.

    PostgreSQL converts with the zone's rules; SQLite, which has no time-zone database, shifts by the
    zone's standard offset (exact for zones without summer time, as China's).
    """

    type = sa.Date()
    inherit_cache = True


@compiles(local_day, "sqlite")
def _local_day_sqlite(element, compiler, **kw):
    (column,) = (compiler.process(c, **kw) for c in element.clauses)
    minutes = int(datetime(2000, 1, 1, tzinfo=hospital_tz()).utcoffset().total_seconds() // 60)
    return f"date({column}, '{minutes:+d} minutes')"


@compiles(local_day, "postgresql")
def _local_day_postgresql(element, compiler, **kw):
    (column,) = (compiler.process(c, **kw) for c in element.clauses)
    zone = compiler.process(sa.literal(current_app.config["TIMEZONE"], sa.String()), **kw)
    return f"CAST(timezone({zone}, {column}) AS DATE)"


class days_from(FunctionElement):
    """Whole days from date a to date b (b − a), on SQLite and PostgreSQL."""

    type = sa.Integer()
    inherit_cache = True


@compiles(days_from, "sqlite")
def _days_from_sqlite(element, compiler, **kw):
    a, b = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(julianday({b}) - julianday({a}) AS INTEGER)"


@compiles(days_from, "postgresql")
def _days_from_postgresql(element, compiler, **kw):
    a, b = (compiler.process(c, **kw) for c in element.clauses)
    return f"(CAST({b} AS DATE) - CAST({a} AS DATE))"


def perioperative_operations_of(patient=Patient):
    """The performed operations that make the patient's death (`died_on`) perioperative, latest first.

    The MDT module's rule (mdt.services.perioperative_operation): performed on or before the day of death,
    and at most PERIOPERATIVE_DEATH_DAYS calendar days before it (hospital time zone) or during the same
    admission (the death falls between its admission and discharge days, or it has not been discharged).
    """
    operation, stay = aliased(Operation), aliased(Encounter)
    since = days_from(local_day(operation.performed_at), patient.died_on)
    same_stay = sa.and_(local_day(stay.admitted_at) <= patient.died_on,
                        sa.or_(stay.discharged_at.is_(None), local_day(stay.discharged_at) >= patient.died_on))
    return (sa.select(operation.department_id).join(stay, stay.id == operation.encounter_id)
            .where(operation.patient_id == patient.id, operation.state == OperationState.PERFORMED.value,
                   operation.performed_at.is_not(None), since >= 0,
                   sa.or_(since <= current_app.config["PERIOPERATIVE_DEATH_DAYS"], same_stay))
            .order_by(operation.performed_at.desc(), operation.id.desc()))


def perioperative_deaths_by_day(period: Period) -> sa.Select:
    """Patients who died in the period (by `died_on`, whoever recorded it: the HIS or a follow-up call) within
    the perioperative window of a performed operation; department: that (latest) operation's."""
    operations = perioperative_operations_of(Patient)
    return _row(Patient.id, operations.limit(1).scalar_subquery(), Patient.mrn.label("mrn")).where(
        Patient.died_on >= period.start, Patient.died_on <= period.end, operations.exists())


def surgical_discharges(period: Period) -> sa.Select:
    """Discharges in the period (deaths included) of admissions with at least one performed operation."""
    operated = sa.select(Operation.id).where(Operation.encounter_id == Encounter.id,
                                             Operation.state == OperationState.PERFORMED.value)
    return _row(Encounter.id, Encounter.department_id, Encounter.his_id.label("his_id"),
                Patient.mrn.label("mrn")).join(Patient, Patient.id == Encounter.patient_id).where(
        Encounter.discharged_at >= period.start_at, Encounter.discharged_at < period.end_at, operated.exists())


def mdt_clinics_open(period: Period) -> sa.Select:
    """MDT clinics active on the period's last day with at least one weekly slot and two or more specialties."""
    day = period.end
    return _row(Clinic.id, Clinic.department_id, Clinic.name.label("name")).where(
        Clinic.active_from <= day, sa.or_(Clinic.active_to.is_(None), Clinic.active_to >= day),
        sa.select(ClinicSlot.id).where(ClinicSlot.clinic_id == Clinic.id).exists(),
        sa.func.json_array_length(Clinic.specialties) >= 2)


register_labels({"kind": {"patient": _l("Patient"), "mdt_clinic": _l("MDT clinic")},
                 "unit": {"count": _l("count")}}, prefix="ind_")


EVENT_URL, OPERATION_URL, TASK_URL, MDT_URL = "/events/{id}", "/operations/{id}", "/followup/tasks/{id}", "/mdt/{id}"
CLINIC_URL = "/mdt/clinics/{id}"
DISCHARGES = [Source("encounter", discharged_encounters), Source("census", census_rows)]
SOURCE_PLANS = {
    "ae": "全面提升医疗质量行动: 每百出院人次主动报告不良事件例次 > 2.5 (Guizhou [000:93]; Yubei [002:510-512]; "
          "Henan [003:1196-1200])",
    "level4": "四级手术患者有效随访率 ≥ 90 % (Yubei [002:426-428, 720]; Henan [003:1528])",
    "cancer": "恶性肿瘤患者有效随访率 ≥ 90 % (Yubei [002:426-428, 722]; five key cancers Guizhou [000:65])",
    "day24": "日间手术患者出院后24小时内完成首次随访 (Henan [003:515]; Shaoxing [001:106, 730])",
    "mdt": "四级手术术前多学科讨论完成率 100 % (Shaoxing [001:74, 464]; Guizhou [000:85]; Henan [003:1073-1075])",
    "death": "围手术期死亡病例多学科讨论完成率 100 % (Shaoxing [001:82, 532])",
    "death_5wd": "围手术期死亡病例5个工作日内讨论完成率: the provincial sets that count working days (issue 21 §1); "
                 "every death discussed: Shaoxing [001:82, 532]",
    "reop": "非计划重返手术室再手术率 ≤ 1.8 ‰ (Guizhou [000:85]; Yubei [002:276-278]; Henan [003:999-1001])",
    "reop_window": "非计划重返手术室再手术率（48小时内）/（31日内）, as reported nationally (issue 21 §1); the plans' "
                   "rate: Guizhou [000:85]; Yubei [002:276-278]; Henan [003:999-1001]",
    "share": "日间手术占择期手术的比例 逐步提高 (Guizhou [000:61]; Yubei [002:338-340]; Henan [003:1005-1007])",
    "closure": "internal: 不良事件按期结案率 (DESIGN §8)",
    "periop_mortality": "围术期死亡率 逐步降低 (Henan [003:1557])",
    "mdt_clinics": "多学科（MDT）门诊 ≥ 3 (tertiary), ≥ 1 (secondary) by end 2025 (Yubei [002:321-325])",
}


@dataclass(frozen=True)
class SourcePlan:
    """A plan the indicators come from: a short name for the help line and its title."""

    name: object  # lazy label
    title: object


#: The seed plans of docs/indicators.md (file 000 … 003 of the requirement sources), named as users know them.
PLANS = {
    "guizhou": SourcePlan(_l("Guizhou provincial implementation plan"),
                    _l("Guizhou Province implementation plan for the comprehensive improvement of medical quality "
                       "(2023–2025)")),
    "shaoxing": SourcePlan(_l("Shaoxing Hospital of TCM three-year plan"),
                     _l("Shaoxing Hospital of Traditional Chinese Medicine three-year medical quality improvement plan "
                        "(2023–2025)")),
    "yubei": SourcePlan(_l("Yubei district (Chongqing) implementation plan"),
                  _l("Yubei District, Chongqing, implementation plan for the comprehensive improvement of medical "
                     "quality (2023–2025)")),
    "henan": SourcePlan(_l("Henan provincial implementation plan"),
                  _l("Henan Province implementation plan for the comprehensive improvement of medical quality "
                     "(2023–2025)")),
}


@dataclass(frozen=True)
class Basis:
    """What a plan asks of an indicator, in words, and which plans ask it (SOURCE_PLANS cites their lines)."""

    requirement: object  # lazy label
    plans: tuple[str, ...] = ()

    def plan_names(self) -> str:
        """The plans' short names as one list in the reader's language ("河南省实施方案、…")."""
        from qcflow.core.i18n import current_language

        return ("; " if current_language() == "en" else "、").join(str(PLANS[key].name) for key in self.plans)

    def plan_titles(self) -> list[str]:
        return [str(PLANS[key].title) for key in self.plans]


BASES = {
    "ae": Basis(_l("More than 2.5 adverse events reported per 100 discharges"), ("guizhou", "yubei", "henan")),
    "level4": Basis(_l("Effective follow-up of at least 90 percent of four-level surgery patients"), ("yubei", "henan")),
    "cancer": Basis(_l("Effective follow-up of at least 90 percent of cancer patients (five key cancers)"),
                    ("yubei", "guizhou")),
    "day24": Basis(_l("First follow-up of day-surgery patients within 24 hours of discharge"), ("henan", "shaoxing")),
    "mdt": Basis(_l("A pre-operative MDT discussion before every four-level operation"),
                 ("shaoxing", "guizhou", "henan")),
    "death": Basis(_l("An MDT discussion of every perioperative death"), ("shaoxing",)),
    "death_5wd": Basis(_l("An MDT discussion of every perioperative death within five working days, where the "
                          "province counts working days"), ("shaoxing",)),
    "reop": Basis(_l("At most 1.8 ‰ unplanned return-to-theatre reoperations"), ("guizhou", "yubei", "henan")),
    "reop_window": Basis(_l("Unplanned return to theatre as reported nationally: within 48 hours and within 31 days "
                            "of an earlier operation"), ("guizhou", "yubei", "henan")),
    "share": Basis(_l("A rising share of day surgery among elective operations"), ("guizhou", "yubei", "henan")),
    "closure": Basis(_l("The hospital's own indicator: adverse-event cases closed by their deadline")),
    "periop_mortality": Basis(_l("A falling perioperative mortality"), ("henan",)),
    "mdt_clinics": Basis(_l("At least three MDT clinics in a tertiary hospital, one in a secondary hospital"),
                         ("yubei",)),
}
CANCER_NAMES = {"lung": ("肺癌", "lung cancer"), "gastric": ("胃癌", "gastric cancer"),
                "liver": ("肝癌", "liver cancer"), "breast": ("乳腺癌", "breast cancer"),
                "colorectal": ("结直肠癌", "colorectal cancer")}


def _pathway(*names):
    return lambda: Task.pathway.in_(names)


def _followup(code, name, name_en, plan, pathways):
    return Indicator(code, name, name_en, "percent", "higher", plan,
                     numerator=[Source("followup_task", followup_calls_effective(pathways), TASK_URL)],
                     denominator=[Source("followup_task", followup_calls_due(pathways), TASK_URL)])


INDICATORS: list[Indicator] = [
    Indicator("ae_per_100_discharges", "每百出院人次主动报告不良事件例次",
              "Adverse events reported per 100 discharges", "per100", "higher", "ae",
              numerator=[Source("event", reported_events, EVENT_URL)], denominator=DISCHARGES),
    _followup("followup_rate_level4", "四级手术患者有效随访率", "Effective follow-up rate, four-level surgery",
              "level4", _pathway("four_level_surgery")),
    _followup("followup_rate_cancer", "恶性肿瘤患者有效随访率", "Effective follow-up rate, key cancers",
              "cancer", _pathway(*(f"cancer_{t}" for t in KEY_CANCERS))),
    *[_followup(f"followup_rate_cancer_{t}", f"{CANCER_NAMES[t][0]}患者有效随访率",
                f"Effective follow-up rate, {CANCER_NAMES[t][1]}", "cancer", _pathway(f"cancer_{t}"))
      for t in KEY_CANCERS],
    Indicator("day_surgery_24h_followup_rate", "日间手术患者出院后24小时内随访率",
              "Day-surgery patients followed up within 24 h of discharge", "percent", "higher", "day24",
              numerator=[Source("encounter", day_surgery_called_in_24h)],
              denominator=[Source("encounter", day_surgery_discharges)]),
    Indicator("preop_mdt_rate_level4", "四级手术术前多学科讨论完成率",
              "Pre-operative MDT completion rate, four-level surgery", "percent", "higher", "mdt",
              numerator=[Source("operation", level4_with_preop_mdt, OPERATION_URL)],
              denominator=[Source("operation", level4_operations, OPERATION_URL)]),
    Indicator("periop_death_discussion_rate", "围手术期死亡病例讨论完成率",
              "Perioperative deaths discussed", "percent", "higher", "death",
              numerator=[Source("discussion", perioperative_deaths_discussed, MDT_URL)],
              denominator=[Source("discussion", perioperative_deaths, MDT_URL)]),
    Indicator("periop_death_discussion_7d_rate", "围手术期死亡病例7日内讨论完成率",
              "Perioperative deaths discussed within 7 days", "percent", "higher", "death",
              numerator=[Source("discussion", perioperative_deaths_discussed_within("7d"), MDT_URL)],
              denominator=[Source("discussion", perioperative_deaths, MDT_URL)]),
    Indicator("periop_death_discussion_5wd_rate", "围手术期死亡病例5个工作日内讨论完成率",
              "Perioperative deaths discussed within 5 working days", "percent", "higher", "death_5wd",
              numerator=[Source("discussion", perioperative_deaths_discussed_within("5wd"), MDT_URL)],
              denominator=[Source("discussion", perioperative_deaths, MDT_URL)]),
    Indicator("unplanned_reoperation_rate", "非计划重返手术室再手术率", "Unplanned return-to-theatre reoperation rate",
              "permille", "lower", "reop",
              numerator=[Source("operation", unplanned_reoperations, OPERATION_URL)],
              denominator=[Source("operation", performed_operations, OPERATION_URL)]),
    Indicator("unplanned_reoperation_48h_rate", "非计划重返手术室再手术率（48小时内）",
              "Unplanned return to theatre within 48 hours", "permille", "lower", "reop_window",
              numerator=[Source("operation", unplanned_reoperations_within(timedelta(hours=48)), OPERATION_URL)],
              denominator=[Source("operation", performed_operations, OPERATION_URL)]),
    Indicator("unplanned_reoperation_31d_rate", "非计划重返手术室再手术率（31日内）",
              "Unplanned return to theatre within 31 days", "permille", "lower", "reop_window",
              numerator=[Source("operation", unplanned_reoperations_within(timedelta(days=31)), OPERATION_URL)],
              denominator=[Source("operation", performed_operations, OPERATION_URL)]),
    Indicator("day_surgery_share", "日间手术占择期手术的比例", "Day surgery as a share of elective surgery",
              "percent", "rising", "share",
              numerator=[Source("operation", day_surgery_operations, OPERATION_URL)],
              denominator=[Source("operation", elective_operations, OPERATION_URL)]),
    Indicator("ae_closure_on_time_rate", "不良事件按期结案率", "Adverse events closed on time", "percent", "higher",
              "closure",
              numerator=[Source("event", events_closed_on_time, EVENT_URL)],
              denominator=[Source("event", events_due_to_close, EVENT_URL)]),
    Indicator("periop_mortality_rate", "围术期死亡率", "Perioperative mortality", "permille", "lower",
              "periop_mortality",
              numerator=[Source("patient", perioperative_deaths_by_day)],
              denominator=[Source("encounter", surgical_discharges)]),
    Indicator("mdt_clinic_count", "多学科（MDT）门诊数量", "MDT clinics", "count", "higher", "mdt_clinics",
              numerator=[Source("mdt_clinic", mdt_clinics_open, CLINIC_URL)]),
]
BY_CODE = {indicator.code: indicator for indicator in INDICATORS}
