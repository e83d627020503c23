"""Survival of the five key cancers (恶性肿瘤患者生存时间, Henan [003:1559]): Kaplan–Meier estimates.

One row per cancer diagnosis of the five key types, read by one SQL query: the days from the diagnosis to
the death (an event) or to the last day the patient was known alive (censored), as known on the day
`as_of`. A death is the patient's `died_on`, whoever recorded it (the HIS, or a follow-up call through
clinical.record_death). Known alive: a completed follow-up call that reached the patient, or the family who
said the patient is alive, and every admission and discharge (not by death) of the patient. A patient
never seen again after the diagnosis is censored on the day of diagnosis and adds nothing but a row.

The estimator is lifelines' `KaplanMeierFitter` (95 % confidence interval by the exponential Greenwood
formula); nothing here computes survival by hand. A group with fewer than k diagnoses (the reports'
small-cell k, REPORT_SMALL_CELL_K) is shown as "fewer than k", without a curve or a value.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import sqlalchemy as sa
from flask import current_app

from qcflow.clinical.models import CancerDiagnosis, Encounter, Patient
from qcflow.core.time import today
from qcflow.extensions import db
from qcflow.followup.models import Task
from qcflow.followup.workflow import TaskState
from qcflow.indicators.definitions import CANCER_NAMES, KEY_CANCERS, days_from, local_day

#: Catalogue codes: the five key cancers together (None) and each type.
SURVIVAL_CODES: dict[str, str | None] = {"cancer_5y_survival": None,
                                         **{f"cancer_5y_survival_{t}": t for t in KEY_CANCERS}}
#: The survival reported at these years after diagnosis; a year is 365.25 days (rounded to whole days).
HORIZON_YEARS = (1, 3, 5)
YEAR_DAYS = 365.25


def horizon_days(years: int) -> int:
    return round(years * YEAR_DAYS)


def _known_alive(as_of: date):
    """(patient_id, last day) a patient with a key-cancer diagnosis was known alive, up to `as_of`."""
    # Only the diagnosed patients' calls and stays are read (an uncorrelated IN, evaluated once).
    diagnosed = sa.select(CancerDiagnosis.patient_id).where(CancerDiagnosis.cancer_type.in_(KEY_CANCERS))
    day = local_day(Task.closed_at)
    calls = sa.select(Task.patient_id.label("patient_id"), day.label("day")).where(
        Task.state == TaskState.COMPLETED.value, Task.closed_at.is_not(None),
        sa.or_(Task.vital_status == "alive", sa.and_(Task.respondent == "patient",
                                                      sa.or_(Task.vital_status.is_(None),
                                                             Task.vital_status != "dead"))),
        day <= as_of, Task.patient_id.in_(diagnosed))
    admitted = local_day(Encounter.admitted_at)
    admissions = sa.select(Encounter.patient_id, admitted).where(admitted <= as_of, Encounter.patient_id.in_(diagnosed))
    discharged = local_day(Encounter.discharged_at)
    discharges = sa.select(Encounter.patient_id, discharged).where(
        Encounter.discharged_at.is_not(None), sa.or_(Encounter.disposition.is_(None), Encounter.disposition != "death"),
        discharged <= as_of, Encounter.patient_id.in_(diagnosed))
    evidence = sa.union_all(calls, admissions, discharges).subquery()
    return (sa.select(evidence.c.patient_id, sa.func.max(evidence.c.day).label("day"))
            .group_by(evidence.c.patient_id).subquery())


def diagnosis_rows(as_of: date, *, department_id: int | None = None, cancer_type: str | None = None) -> sa.Select:
    """One row per key-cancer diagnosis made up to `as_of`: id, department_id, cancer_type, diagnosed_on,
    duration (days from the diagnosis to the death or the last day known alive, never negative) and event
    (1: died on or before `as_of`; 0: censored)."""
    alive = _known_alive(as_of)
    dead = sa.and_(Patient.died_on.is_not(None), Patient.died_on <= as_of)
    last_day = sa.case((dead, Patient.died_on), else_=alive.c.day)
    days = days_from(CancerDiagnosis.diagnosed_on, last_day)
    duration = sa.case((sa.or_(days.is_(None), days < 0), 0), else_=days)
    stmt = (sa.select(CancerDiagnosis.id, CancerDiagnosis.department_id, CancerDiagnosis.cancer_type,
                      CancerDiagnosis.diagnosed_on, duration.label("duration"),
                      sa.case((dead, 1), else_=0).label("event"))
            .join(Patient, Patient.id == CancerDiagnosis.patient_id)
            .outerjoin(alive, alive.c.patient_id == CancerDiagnosis.patient_id)
            .where(CancerDiagnosis.cancer_type.in_(KEY_CANCERS), CancerDiagnosis.diagnosed_on <= as_of))
    if department_id is not None:
        stmt = stmt.where(CancerDiagnosis.department_id == department_id)
    if cancer_type is not None:
        stmt = stmt.where(CancerDiagnosis.cancer_type == cancer_type)
    return stmt.order_by(CancerDiagnosis.id)


@dataclass
class Estimate:
    """Survival at one time after diagnosis, with its 95 % interval and the diagnoses still at risk."""

    years: int
    days: int
    survival: float | None
    lower: float | None
    upper: float | None
    at_risk: int


@dataclass
class Curve:
    """The Kaplan–Meier curve of one group (a cancer type, or None for the five together)."""

    cancer_type: str | None
    n: int
    events: int
    k: int
    #: Step points: days after diagnosis and the survival (0..1) from then on, with the 95 % interval.
    times: list[float] = field(default_factory=list)
    survival: list[float] = field(default_factory=list)
    lower: list[float] = field(default_factory=list)
    upper: list[float] = field(default_factory=list)
    estimates: list[Estimate] = field(default_factory=list)
    #: A department's group whose complement (the rest of the hospital's group) is smaller than k: shown, it
    #: would give away the few others by subtraction from the hospital's curve.
    complement_small: bool = False

    @property
    def suppressed(self) -> bool:
        """Fewer than k diagnoses, or fewer than k others beside them: no curve and no value is shown."""
        return self.n < self.k or self.complement_small

    def at(self, years: int) -> Estimate | None:
        return next((e for e in self.estimates if e.years == years), None)

    def name(self, language: str) -> str:
        if self.cancer_type is None:
            return "五种重点癌症" if language != "en" else "Five key cancers"
        zh, en = CANCER_NAMES[self.cancer_type]
        return en if language == "en" else zh


def kaplan_meier(durations: list[float], events: list[int], *, cancer_type: str | None = None, k: int = 1,
                 others: int | None = None) -> Curve:
    """Fit lifelines' Kaplan–Meier estimator to the rows of one group.

    The survival at a horizon is given only when some diagnosis was followed that long (the estimate is
    not carried past the longest follow-up); `at_risk` counts the diagnoses with duration ≥ the horizon.
    """
    curve = Curve(cancer_type, len(durations), int(sum(events)), k,
                  complement_small=others is not None and 0 < others < k)
    if curve.suppressed or not durations:
        return curve
    from lifelines import KaplanMeierFitter  # heavy: imported when a curve is drawn, not with the app

    fitter = KaplanMeierFitter(alpha=0.05).fit(durations, event_observed=events)
    frame = fitter.survival_function_.join(fitter.confidence_interval_survival_function_)
    curve.times = [float(t) for t in frame.index]
    curve.survival = [float(v) for v in frame.iloc[:, 0]]
    curve.lower = [float(v) for v in frame.iloc[:, 1]]
    curve.upper = [float(v) for v in frame.iloc[:, 2]]
    longest = max(durations)
    for years in HORIZON_YEARS:
        days = horizon_days(years)
        at_risk = sum(1 for d in durations if d >= days)
        if days > longest:
            curve.estimates.append(Estimate(years, days, None, None, None, at_risk))
            continue
        row = frame[frame.index <= days].iloc[-1]
        curve.estimates.append(Estimate(years, days, float(row.iloc[0]), float(row.iloc[1]), float(row.iloc[2]),
                                        at_risk))
    return curve


def small_group_k() -> int:
    """The reports' k for small cells (QCFLOW_REPORT_SMALL_CELL_K): a smaller group shows no curve."""
    return int(current_app.config["REPORT_SMALL_CELL_K"])


def _hospital_sizes(as_of: date) -> dict[str | None, int]:
    """Diagnoses per cancer type (None: the five together) in the whole hospital, as known on `as_of`."""
    sub = diagnosis_rows(as_of).subquery()
    sizes = {cancer_type: int(n) for cancer_type, n in db.session.execute(
        sa.select(sub.c.cancer_type, sa.func.count()).group_by(sub.c.cancer_type))}
    sizes[None] = sum(sizes.values())
    return sizes


def _others(sizes: dict | None, cancer_type: str | None, n: int) -> int | None:
    """How many of the hospital's group are not in the department's (None: the hospital's own view)."""
    return None if sizes is None else sizes.get(cancer_type, 0) - n


def curves(as_of: date, *, department_id: int | None = None, k: int | None = None) -> list[Curve]:
    """The five key cancers together and each type, as known on `as_of`. A department's group is suppressed
    when it, or the rest of the hospital's group beside it, holds fewer than k diagnoses."""
    k = small_group_k() if k is None else k
    rows = db.session.execute(diagnosis_rows(as_of, department_id=department_id)).all()
    sizes = _hospital_sizes(as_of) if department_id is not None else None
    groups: list[str | None] = [None, *KEY_CANCERS]
    result = []
    for cancer_type in groups:
        chosen = [r for r in rows if cancer_type is None or r.cancer_type == cancer_type]
        result.append(kaplan_meier([r.duration for r in chosen], [r.event for r in chosen], cancer_type=cancer_type,
                                   k=k, others=_others(sizes, cancer_type, len(chosen))))
    return result


def survival_value(code: str, start: date, end: date, department_id: int | None = None) -> float | None:
    """The 5-year survival in percent of the diagnoses made up to `end` (as known on `end`, or today if
    earlier; `start` does not narrow it: survival needs the years before the period), for the catalogue.

    None: an unknown code, fewer than k diagnoses, or nobody followed five years yet.
    """
    if code not in SURVIVAL_CODES:
        return None
    as_of = min(end, today())
    cancer_type = SURVIVAL_CODES[code]
    rows = db.session.execute(diagnosis_rows(as_of, department_id=department_id, cancer_type=cancer_type)).all()
    sizes = _hospital_sizes(as_of) if department_id is not None else None
    curve = kaplan_meier([r.duration for r in rows], [r.event for r in rows], cancer_type=cancer_type,
                         k=small_group_k(), others=_others(sizes, cancer_type, len(rows)))
    estimate = curve.at(5)
    if curve.suppressed or estimate is None or estimate.survival is None:
        return None
    return estimate.survival * 100


def check_as_of(as_of: date | None, at) -> date:
    """The day asked for, default today; a day in the future is refused (422)."""
    from flask_babel import gettext as _

    from qcflow.core.errors import Unprocessable

    day = as_of or today(at)
    if day > today(at):
        raise Unprocessable(errors={"as_of": [_("This date is in the future.")]})
    return day


def code_of(cancer_type: str | None) -> str:
    return "cancer_5y_survival" if cancer_type is None else f"cancer_5y_survival_{cancer_type}"


def present(curve: Curve, language: str) -> dict:
    """A group for the API and the page: a suppressed one carries neither its counts nor a curve."""
    shown = not curve.suppressed
    return {"code": code_of(curve.cancer_type), "cancer_type": curve.cancer_type, "name": curve.name(language),
            "suppressed": curve.suppressed, "n": curve.n if shown else None, "events": curve.events if shown else None,
            "estimates": [vars(e) for e in curve.estimates] if shown else [],
            "curve": {"times": curve.times, "survival": curve.survival, "lower": curve.lower, "upper": curve.upper}
            if shown and curve.times else None}
