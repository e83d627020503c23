"""The rules a trigger applies, one table: what facts each reads, which parameters it takes, and what fires.

A rule is asked about one queued fact at a time and looks only at that patient's other facts (indexed by
patient and time), so evaluating N new facts costs O(N) whatever is stored. The evaluator reads a batch's
patients' facts once, in a few statements (`batch_facts`), and the rules compare them in memory.

Pair rules look both ways (the fact may be the first or the second of the pair: facts arrive out of order),
and every firing is keyed by its window — the first fact of the pair, the stay, or the death — so a fact
re-sent, or the pair seen from either end, fires once.

Windows count inclusively: a return to theatre 48 h after the first operation is within 48 h; 48 h and
one minute is not. A death known by its day counts in days (window_hours / 24).
"""
from __future__ import annotations

import math
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from qcflow.clinical.models import (
    LISTED_DRUGS,
    CriticalLabResult,
    Encounter,
    MedicationAdministration,
    Operation,
    Patient,
    Transfer,
)
from qcflow.clinical.workflow import OperationState
from qcflow.core.periods import local_midnight
from qcflow.core.time import hospital_tz, local
from qcflow.extensions import db


@dataclass(frozen=True)
class Firing:
    """What a trigger found: one possible event for review."""

    patient_id: int
    #: One firing per (trigger, patient, window): "operation:12", "encounter:34", "death".
    window_key: str
    #: The department of the stay or operation the firing is about (its reviewers, unless the trigger names
    #: other ones).
    department_id: int
    #: When the harm signal happened (the pair's second fact, the medicine, the result, the death).
    occurred_at: datetime
    #: The facts that fired it, as codes and ids (written in the reader's language by the pages).
    facts: list[dict] = field(default_factory=list)


def _at(value: datetime) -> str:
    return value.isoformat()


def operation_fact(op: Operation) -> dict:
    return {"kind": "operation", "id": op.id, "his_id": op.his_id, "at": _at(op.performed_at),
            "procedure_code": op.procedure_code, "department_id": op.department_id}


def encounter_fact(enc: Encounter, at: datetime, event: str) -> dict:
    return {"kind": "encounter", "id": enc.id, "his_id": enc.his_id, "at": _at(at), "event": event,
            "department_id": enc.department_id}


#: Where a batch's prefetched facts live while the evaluator reads the batch (the session's `info`).
BATCH = "qcflow_extraction_batch"
#: Ids per statement when a batch's facts are read (SQLite takes at most 32,766 parameters a statement).
IN_SLICE = 1000
#: The record a queued fact of each kind names.
RECORDS = {"operation": Operation, "encounter": Encounter, "transfer": Transfer,
           "administration": MedicationAdministration, "lab": CriticalLabResult, "death": Patient}


@dataclass
class PatientFacts:
    """One batch's patients' stored facts that the pair rules compare: every performed operation (by time), every
    stay and every transfer to intensive care (by time), per patient."""

    operations: dict[int, list[Operation]]
    stays: dict[int, list[Encounter]]
    icu_transfers: dict[int, list[Transfer]]
    #: The batch's own records and patients, held so that `db.session.get` finds them (the session keeps weak
    #: references only).
    held: list
    #: The patients whose facts these are (the batch's own patients: the rules read no other).
    patients: set[int]


def _by_patient(rows) -> dict[int, list]:
    grouped = defaultdict(list)
    for row in rows:
        grouped[row.patient_id].append(row)
    return grouped


@contextmanager
def batch_facts(facts: list[tuple[str, int, int]]):
    """While a batch — (kind, record id, patient id) per fact — is evaluated, its records, its patients and their
    stored facts are in memory, read in one statement per table (without the relationships the models join by
    default), instead of a few statements per fact and trigger. Each patient's whole history is read, not a
    window of it: a patient has few stays and operations, and what a batch costs stays proportional to the
    batch, whatever is stored."""
    ids, patients = defaultdict(set), set()
    for kind, record_id, patient_id in facts:
        ids[kind].add(record_id)
        patients.add(patient_id)
    ids["death"] |= patients
    plain = sa.orm.lazyload("*")

    def read(model, column, wanted, *where, order=()):
        """The rows whose `column` is one of `wanted`, in slices of a size every database takes as parameters."""
        rows = []
        wanted = sorted(wanted)
        for start in range(0, len(wanted), IN_SLICE):
            rows += db.session.scalars(sa.select(model).where(column.in_(wanted[start:start + IN_SLICE]), *where)
                                       .options(plain)).all()
        return sorted(rows, key=order) if order else rows

    held = []
    for kind, wanted in ids.items():
        held += read(RECORDS[kind], RECORDS[kind].id, wanted)
    cache = PatientFacts(
        operations=_by_patient(read(
            Operation, Operation.patient_id, patients, Operation.state == OperationState.PERFORMED.value,
            Operation.performed_at.is_not(None), order=lambda o: (o.performed_at, o.id))),
        stays=_by_patient(read(Encounter, Encounter.patient_id, patients, order=lambda e: (e.admitted_at, e.id))),
        icu_transfers=_by_patient(read(Transfer, Transfer.patient_id, patients, Transfer.to_icu.is_(True),
                                       order=lambda t: (t.transferred_at, t.id))),
        held=held, patients=patients)
    db.session.info[BATCH] = cache
    try:
        yield cache
    finally:
        db.session.info.pop(BATCH, None)


def _facts(patient_id: int) -> PatientFacts:
    """The batch's stored facts of one of its patients (the rules run inside `batch_facts` only)."""
    cache = db.session.info.get(BATCH)
    if cache is None or patient_id not in cache.patients:
        raise RuntimeError("the rules read a patient's facts inside batch_facts only")
    return cache


def _performed(patient_id: int, start: datetime, end: datetime, *, exclude: int | None = None,
               flagged: bool = False) -> list[Operation]:
    """The patient's performed operations between two instants, in time order."""
    return [op for op in _facts(patient_id).operations.get(patient_id, ()) if start <= op.performed_at <= end
            and op.id != exclude and (not flagged or op.is_unplanned_reoperation)]


def _stays(patient_id: int, column: str, start: datetime, end: datetime) -> list[Encounter]:
    """The patient's stays admitted (column "admitted_at") or discharged ("discharged_at") between two instants."""
    return [e for e in _facts(patient_id).stays.get(patient_id, ())
            if getattr(e, column) is not None and start <= getattr(e, column) <= end]


def _first_icu_transfer(patient_id: int, start: datetime, end: datetime) -> Transfer | None:
    return next((t for t in _facts(patient_id).icu_transfers.get(patient_id, ())
                 if start <= t.transferred_at <= end), None)


def _performed_operation(record_id: int) -> Operation | None:
    op = db.session.get(Operation, record_id)
    return op if op is not None and op.state == OperationState.PERFORMED and op.performed_at else None


# ---------------------------------------------------------------------------------------------- the rules

def return_to_theatre(kind: str, record_id: int, params: dict, window: timedelta) -> list[Firing]:
    """A second operation performed within the window after a first one (非计划重返手术室); with
    `only_flagged_unplanned`, only a second one the HIS flagged as an unplanned reoperation counts."""
    op = _performed_operation(record_id)
    if op is None:
        return []
    flagged = bool(params.get("only_flagged_unplanned"))
    firings = []
    if not flagged or op.is_unplanned_reoperation:  # op as the return: the first ones before it
        for first in _performed(op.patient_id, op.performed_at - window, op.performed_at, exclude=op.id):
            if first.performed_at < op.performed_at:
                firings.append(Firing(op.patient_id, f"operation:{first.id}", first.department_id, op.performed_at,
                                      [operation_fact(first), operation_fact(op)]))
    later = [o for o in _performed(op.patient_id, op.performed_at, op.performed_at + window, exclude=op.id,
                                   flagged=flagged) if o.performed_at > op.performed_at]
    if later:  # op as the first: the earliest return
        firings.append(Firing(op.patient_id, f"operation:{op.id}", op.department_id, later[0].performed_at,
                              [operation_fact(op), operation_fact(later[0])]))
    return firings


def readmission(kind: str, record_id: int, params: dict, window: timedelta) -> list[Firing]:
    """An admission within the window after a discharge (alive), to the same department with
    `same_department`; day-surgery stays left out with `exclude_day_surgery`."""
    enc = db.session.get(Encounter, record_id)
    if enc is None:
        return []

    def counts(first: Encounter, second: Encounter) -> bool:
        return (first.id != second.id and first.discharged_at is not None and first.disposition != "death"
                and first.discharged_at <= second.admitted_at <= first.discharged_at + window
                and (not params.get("same_department") or first.department_id == second.department_id)
                and not (params.get("exclude_day_surgery") and (first.is_day_surgery or second.is_day_surgery)))

    def firing(first: Encounter, second: Encounter) -> Firing:
        return Firing(first.patient_id, f"encounter:{first.id}", first.department_id, second.admitted_at,
                      [encounter_fact(first, first.discharged_at, "discharged"),
                       encounter_fact(second, second.admitted_at, "admitted")])

    earlier = _stays(enc.patient_id, "discharged_at", enc.admitted_at - window, enc.admitted_at)
    firings = [firing(first, enc) for first in earlier if counts(first, enc)]
    if enc.discharged_at is not None:
        later = sorted((e for e in _stays(enc.patient_id, "admitted_at", enc.discharged_at, enc.discharged_at + window)
                        if counts(enc, e)), key=lambda e: e.admitted_at)
        if later:
            firings.append(firing(enc, later[0]))
    return firings


def _transfer_fact(t: Transfer) -> dict:
    return {"kind": "transfer", "id": t.id, "his_id": t.his_id, "at": _at(t.transferred_at),
            "from_department_id": t.from_department_id, "to_department_id": t.to_department_id}


def icu_after_operation(kind: str, record_id: int, params: dict, window: timedelta) -> list[Firing]:
    """A transfer to an intensive care unit within the window after an operation."""
    if kind == "transfer":
        transfer = db.session.get(Transfer, record_id)
        if transfer is None or not transfer.to_icu:
            return []
        return [Firing(transfer.patient_id, f"operation:{op.id}", op.department_id, transfer.transferred_at,
                       [operation_fact(op), _transfer_fact(transfer)])
                for op in _performed(transfer.patient_id, transfer.transferred_at - window, transfer.transferred_at)]
    op = _performed_operation(record_id)
    if op is None:
        return []
    transfer = _first_icu_transfer(op.patient_id, op.performed_at, op.performed_at + window)
    if transfer is None:
        return []
    return [Firing(op.patient_id, f"operation:{op.id}", op.department_id, transfer.transferred_at,
                   [operation_fact(op), _transfer_fact(transfer)])]


def _stay_department(encounter_id: int) -> int:
    stay = db.session.get(Encounter, encounter_id)  # in the session when the batch's facts were read
    return stay.department_id if stay is not None else None


def drug_given(kind: str, record_id: int, params: dict, window: timedelta | None) -> list[Firing]:
    """One of the listed medicines given (with `reaction_only`, only one the system flagged a reaction to);
    once per stay."""
    given = db.session.get(MedicationAdministration, record_id)
    if given is None or given.drug not in params["drugs"] or (params.get("reaction_only") and not given.reaction):
        return []
    fact = {"kind": "administration", "id": given.id, "his_id": given.his_id, "at": _at(given.given_at),
            "drug": given.drug, "dose": given.dose, "reaction": given.reaction}
    return [Firing(given.patient_id, f"encounter:{given.encounter_id}", _stay_department(given.encounter_id),
                   given.given_at, [fact])]


def _unit(text: str | None) -> str:
    return "".join((text or "").split()).lower()


def critical_lab(kind: str, record_id: int, params: dict, window: timedelta | None) -> list[Firing]:
    """A critical result of the test above `above` or below `below` (in `unit` when given); once per stay."""
    result = db.session.get(CriticalLabResult, record_id)
    if result is None or result.test_code.strip().upper() != params["test_code"].strip().upper():
        return []
    if params.get("unit") and _unit(result.unit) != _unit(params["unit"]):
        return []
    above, below = params.get("above"), params.get("below")
    if not ((above is not None and result.value > above) or (below is not None and result.value < below)):
        return []
    fact = {"kind": "lab", "id": result.id, "his_id": result.his_id, "at": _at(result.resulted_at),
            "test_code": result.test_code, "value": result.value, "unit": result.unit}
    return [Firing(result.patient_id, f"encounter:{result.encounter_id}", _stay_department(result.encounter_id),
                   result.resulted_at, [fact])]


def death_after_operation(kind: str, record_id: int, params: dict, window: timedelta) -> list[Firing]:
    """A death within the window (in days: a death is known by its day) after an operation; once per patient,
    for the last operation before the death, whichever fact arrives first (the death, or an operation of a
    patient who has died)."""
    if kind == "death":
        patient = db.session.get(Patient, record_id)
    else:
        op = _performed_operation(record_id)
        patient = db.session.get(Patient, op.patient_id) if op is not None else None
    if patient is None or patient.died_on is None:
        return []
    died = local_midnight(patient.died_on, hospital_tz())
    ops = [op for op in _performed(patient.id, died - window - timedelta(days=1), died + timedelta(days=1))
           if 0 <= (patient.died_on - local(op.performed_at).date()).days <= window.days]
    if not ops:
        return []
    last = ops[-1]
    return [Firing(patient.id, "death", last.department_id, max(died, last.performed_at),
                   [operation_fact(last), {"kind": "death", "id": patient.id, "at": patient.died_on.isoformat()}])]


# ------------------------------------------------------------------------------------------- parameters

def _number(params: dict, name: str, errors: dict) -> None:
    value = params.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        errors[name] = [_l("Give a number.")]


def _flag(params: dict, name: str, errors: dict) -> None:
    if name in params and not isinstance(params[name], bool):
        errors[name] = [_l("Give true or false.")]


def _short_text(value) -> bool:
    """A code or unit as the laboratory writes it: 1 to 20 printable characters."""
    return isinstance(value, str) and 0 < len(value.strip()) <= 20 and value.isprintable()


def check_drugs(params: dict) -> dict:
    errors: dict = {}
    drugs = params.get("drugs")
    if not isinstance(drugs, list) or not drugs or not all(isinstance(d, str) for d in drugs):
        errors["drugs"] = [_l("Choose at least one medicine.")]
    elif len(set(drugs)) != len(drugs):
        errors["drugs"] = [_l("Name each medicine once.")]
    elif set(drugs) - set(LISTED_DRUGS):
        errors["drugs"] = [_l("Unknown medicine code: %(codes)s.") % {
            "codes": ", ".join(sorted(set(drugs) - set(LISTED_DRUGS)))}]
    _flag(params, "reaction_only", errors)
    return errors


def check_lab(params: dict) -> dict:
    errors: dict = {}
    if not _short_text(params.get("test_code")):
        errors["test_code"] = [_l("Give the laboratory's test code (at most 20 characters).")]
    _number(params, "above", errors)
    _number(params, "below", errors)
    if params.get("above") is None and params.get("below") is None:
        errors["above"] = [_l("Give a threshold: above, below or both.")]
    elif not errors and params.get("above") is not None and params.get("below") is not None \
            and params["below"] > params["above"]:
        errors["below"] = [_l("The low threshold is above the high one.")]
    unit = params.get("unit")
    if unit is not None and not _short_text(unit):
        errors["unit"] = [_l("Give the unit as the laboratory writes it (at most 20 characters).")]
    return errors


def check_flags(*names: str) -> Callable[[dict], dict]:
    def check(params: dict) -> dict:
        errors: dict = {}
        for name in names:
            _flag(params, name, errors)
        return errors
    return check


@dataclass(frozen=True)
class Rule:
    #: The fact kinds it reads (the queue's kinds).
    reads: frozenset[str]
    fire: Callable[..., list[Firing]]
    #: The parameters it takes (others are refused) and their check: {field: [messages]}.
    params: frozenset[str]
    check: Callable[[dict], dict]
    #: A pair rule needs a window; a one-fact rule has none.
    needs_window: bool


#: How the triggers page asks for each parameter (in this order): a flag, a number, a short text, or the listed
#: medicines.
PARAM_KINDS = {"only_flagged_unplanned": "flag", "same_department": "flag", "exclude_day_surgery": "flag",
               "drugs": "drugs", "reaction_only": "flag", "test_code": "text", "unit": "text", "below": "number",
               "above": "number"}

RULES: dict[str, Rule] = {
    "return_to_theatre": Rule(frozenset({"operation"}), return_to_theatre, frozenset({"only_flagged_unplanned"}),
                              check_flags("only_flagged_unplanned"), True),
    "readmission": Rule(frozenset({"encounter"}), readmission, frozenset({"same_department", "exclude_day_surgery"}),
                        check_flags("same_department", "exclude_day_surgery"), True),
    "icu_after_operation": Rule(frozenset({"operation", "transfer"}), icu_after_operation, frozenset(),
                                check_flags(), True),
    "drug_given": Rule(frozenset({"administration"}), drug_given, frozenset({"drugs", "reaction_only"}),
                       check_drugs, False),
    "critical_lab": Rule(frozenset({"lab"}), critical_lab, frozenset({"test_code", "above", "below", "unit"}),
                         check_lab, False),
    "death_after_operation": Rule(frozenset({"operation", "death"}), death_after_operation, frozenset(),
                                  check_flags(), True),
}


def check(rule_name: str, params, window_hours) -> dict:
    """The errors of a trigger's definition ({field: [messages]}), empty when the evaluator can apply it."""
    rule = RULES.get(rule_name)
    if rule is None:
        return {"rule": [_l("Unknown rule.")]}
    if not isinstance(params, dict):
        return {"params": [_l("Give the parameters as an object.")]}
    errors = {name: [_l("This rule takes no parameter “%(name)s”.") % {"name": name}]
              for name in sorted(set(params) - rule.params)}
    errors.update(rule.check(params))
    if window_hours is not None and not 1 <= window_hours <= 366 * 24:
        errors["window_hours"] = [_l("The window is between 1 hour and one year.")]
    elif rule.needs_window and not window_hours:
        errors["window_hours"] = [_l("This rule needs a window (in hours).")]
    elif not rule.needs_window and window_hours:
        errors["window_hours"] = [_l("This rule fires on one fact and takes no window.")]
    return errors
