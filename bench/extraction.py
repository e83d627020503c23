"""Automatic extraction at scale (P14): stored HIS facts, new facts queued, the trigger evaluator against its
raw-SQL lower bound, and the exact set of firings the new facts must produce.

Stored facts are seeded set-based (one INSERT … SELECT per table over a numbers series, recursive CTE on
SQLite, generate_series on PostgreSQL): per patient a patient row, two stays (the second 60 days after the
first), an operation, a transfer (to intensive care for one patient in 20), a listed medicine and a critical
result, timed from one of `BASES` base instants (picked by patient id), i.e. 7 facts a patient.

New facts go to patients seeded in the first tranche, one fact a patient, each of the `VARIANTS` kinds below
picked by `i % len(VARIANTS)`: a second operation 30 h, 100 h or 40 days after the stored one, a stay 10 or
40 days after the stored discharge (same or other department), a transfer to intensive care 20 h or 60 h
after the stored operation, a medicine or a result on the second stay, a death 10 or 40 days after the
operation. About one in five fires; what fires, for which window, is known by construction
(`expected_firings`), so the evaluator's result is checked as a set, not only counted.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from bench.seed import departments, series
from qcflow.core.db import UTCDateTime

#: Facts stored per patient: the patient, two stays, an operation, a transfer, a medicine, a result.
PER_PATIENT = 7
#: Distinct base instants of the stored patients' histories (patient id % BASES), a week apart.
BASES = 100
FIRST_BASE = datetime(2023, 1, 2, 1, 0, tzinfo=timezone.utc)
DEPARTMENTS = 20
H, D = timedelta(hours=1), timedelta(days=1)

#: The new facts: (kind, what, the default triggers that fire and the window each fires for).
#: Windows: "op" = the stored operation, "stay2" = the stored second stay, "death" = the patient's death.
FIRING = [
    # a return within 48 h is within 31 days too: the same harm, raised once, by the 48-hour trigger
    ("operation", {"after_op": 30 * H}, [("return_theatre_48h", "op")]),
    ("operation", {"after_op": 100 * H}, [("return_theatre_31d", "op")]),
    ("encounter", {"after_discharge": 10 * D, "other_department": False}, [("readmission_31d", "stay2")]),
    ("transfer", {"after_op": 20 * H, "icu": True}, [("icu_after_operation_48h", "op")]),
    ("administration", {"drug": "naloxone", "reaction": False}, [("rescue_drug", "stay2")]),
    ("administration", {"drug": "blood_product", "reaction": True}, [("transfusion_reaction", "stay2")]),
    ("lab", {"test": "K", "value": 6.5}, [("critical_potassium", "stay2")]),
    ("death", {"after_op_days": 10}, [("death_30d_after_operation", "death")]),
]
QUIET = [
    ("operation", {"after_op": 40 * D}, []),
    ("encounter", {"after_discharge": 40 * D, "other_department": False}, []),
    ("encounter", {"after_discharge": 10 * D, "other_department": True}, []),
    ("transfer", {"after_op": 20 * H, "icu": False}, []),
    ("transfer", {"after_op": 60 * H, "icu": True}, []),
    ("administration", {"drug": "blood_product", "reaction": False}, []),
    ("lab", {"test": "K", "value": 4.0}, []),
    ("lab", {"test": "INR", "value": 3.0}, []),
    ("death", {"after_op_days": 40}, []),
]
#: 8 firing kinds and 32 quiet ones: a fifth of the new facts fire (9 firings per 40 facts).
VARIANTS = FIRING + [QUIET[j % len(QUIET)] for j in range(32)]

scratch = sa.MetaData()
bench_base = sa.Table(
    "bench_fact_base", scratch,
    sa.Column("k", sa.Integer, primary_key=True), sa.Column("admitted", UTCDateTime()),
    sa.Column("operated", UTCDateTime()), sa.Column("transferred", UTCDateTime()), sa.Column("given", UTCDateTime()),
    sa.Column("resulted", UTCDateTime()), sa.Column("discharged", UTCDateTime()), sa.Column("admitted2", UTCDateTime()),
    sa.Column("discharged2", UTCDateTime()),
)
bench_variant = sa.Table(
    "bench_fact_variant", scratch,
    sa.Column("k", sa.Integer, primary_key=True), sa.Column("v", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String(20)), sa.Column("at", UTCDateTime()), sa.Column("until", UTCDateTime()),
    sa.Column("other_department", sa.Integer), sa.Column("to_icu", sa.Boolean), sa.Column("drug", sa.String(20)),
    sa.Column("reaction", sa.Boolean), sa.Column("test_code", sa.String(20)), sa.Column("value", sa.Float),
    sa.Column("died_on", sa.Date),
)
bench_new = sa.Table(
    "bench_fact_new", scratch,
    sa.Column("i", sa.Integer, primary_key=True), sa.Column("patient_id", sa.Integer), sa.Column("v", sa.Integer),
    sa.Column("k", sa.Integer),
)


def base_times(k: int) -> dict:
    admitted = FIRST_BASE + timedelta(days=7 * k, hours=(5 * k) % 24)
    return {"k": k, "admitted": admitted, "operated": admitted + 2 * H, "transferred": admitted + 6 * H,
            "given": admitted + D, "resulted": admitted + D + 2 * H, "discharged": admitted + 3 * D,
            "admitted2": admitted + 60 * D, "discharged2": admitted + 63 * D}


def _reset(session, *tables) -> None:
    for table in tables:
        table.drop(bind=session.connection(), checkfirst=True)
        table.create(bind=session.connection())


def _max_id(session, table: str) -> int:
    return session.scalar(sa.text(f"SELECT coalesce(max(id), 0) FROM {table}"))


@dataclass
class Stored:
    patients: tuple[int, int]
    facts: int
    seconds: float


def _reference(session) -> tuple[list[int], str, int]:
    from bench.hospital import reference_data

    depts = departments(session, datetime(2026, 1, 1, tzinfo=timezone.utc), DEPARTMENTS)[:DEPARTMENTS]
    assert depts == list(range(depts[0], depts[0] + len(depts))), "department ids not contiguous"
    codes, staff = reference_data(session, depts, datetime(2026, 1, 1, tzinfo=timezone.utc))
    return depts, "BENCH.20", staff[0]


def seed_stored(session, facts: int, *, tag: str) -> Stored:
    """≈ `facts` stored HIS facts (7 per patient), none queued: the history the new facts are paired with."""
    started = time.perf_counter()
    dialect = session.get_bind().dialect.name
    depts, procedure, surgeon = _reference(session)
    dmin, dn = depts[0], len(depts)
    _reset(session, bench_base)
    session.execute(bench_base.insert(), [base_times(k) for k in range(BASES)])
    at = datetime(2026, 1, 1, tzinfo=timezone.utc)
    typed = [sa.bindparam("at", type_=UTCDateTime())]
    n = max(1, facts // PER_PATIENT)
    lo = _max_id(session, "patient")
    prefix = f"bx{tag}-"
    session.execute(sa.text(
        "INSERT INTO patient (his_id, mrn, name, sex, created_at, updated_at, version) "
        f"SELECT '{prefix}' || g, '{prefix}' || g, 'P' || g, 'U', :at, :at, 1 FROM ({series(dialect, n)}) AS s"
    ).bindparams(*typed), {"at": at})
    hi = _max_id(session, "patient")
    span = f"p.id > {lo} AND p.id <= {hi}"
    base = f"JOIN bench_fact_base b ON b.k = p.id % {BASES}"
    for letter, admitted, discharged in (("A", "admitted", "discharged"), ("B", "admitted2", "discharged2")):
        session.execute(sa.text(
            "INSERT INTO encounter (his_id, patient_id, department_id, admitted_at, discharged_at, is_day_surgery, "
            "disposition, created_at, updated_at, version) "
            f"SELECT 'BX{letter}' || p.id, p.id, {dmin} + p.id % {dn}, b.{admitted}, b.{discharged}, false, 'home', "
            f":at, :at, 1 FROM patient p {base} WHERE {span}").bindparams(*typed), {"at": at})
    first_stay = f"JOIN encounter e ON e.his_id = 'BXA' || p.id"
    session.execute(sa.text(
        "INSERT INTO operation (his_id, encounter_id, patient_id, department_id, procedure_code, grade, "
        "is_restricted_technology, surgeon_staff_id, state, planned_at, performed_at, is_unplanned_reoperation, "
        "is_emergency_override, created_at, updated_at, version) "
        f"SELECT 'BXO' || p.id, e.id, p.id, e.department_id, '{procedure}', 2, false, {surgeon}, 'performed', "
        f"b.operated, b.operated, false, false, :at, :at, 1 FROM patient p {base} {first_stay} WHERE {span}"
    ).bindparams(*typed), {"at": at})
    session.execute(sa.text(
        "INSERT INTO transfer (his_id, encounter_id, patient_id, from_department_id, to_department_id, to_icu, "
        "transferred_at, created_at, updated_at, version) "
        f"SELECT 'BXT' || p.id, e.id, p.id, e.department_id, {dmin} + (p.id + 1) % {dn}, p.id % 20 = 0, "
        f"b.transferred, :at, :at, 1 FROM patient p {base} {first_stay} WHERE {span}").bindparams(*typed), {"at": at})
    session.execute(sa.text(
        "INSERT INTO medication_administration (his_id, encounter_id, patient_id, drug, dose, given_at, reaction, "
        "created_at, updated_at, version) "
        "SELECT 'BXM' || p.id, e.id, p.id, CASE WHEN p.id % 10 = 0 THEN 'vitamin_k' ELSE 'blood_product' END, "
        f"NULL, b.given, false, :at, :at, 1 FROM patient p {base} {first_stay} WHERE {span}"
    ).bindparams(*typed), {"at": at})
    session.execute(sa.text(
        "INSERT INTO critical_lab_result (his_id, encounter_id, patient_id, test_code, value, unit, resulted_at, "
        "created_at, updated_at, version) "
        "SELECT 'BXL' || p.id, e.id, p.id, 'K', CASE WHEN p.id % 25 = 0 THEN 6.5 ELSE 4.0 END, 'mmol/L', "
        f"b.resulted, :at, :at, 1 FROM patient p {base} {first_stay} WHERE {span}").bindparams(*typed), {"at": at})
    bench_base.drop(bind=session.connection())
    return Stored((lo, hi), (hi - lo) * PER_PATIENT, time.perf_counter() - started)


def _variant_rows() -> list[dict]:
    from qcflow.core.time import local

    rows = []
    for k in range(BASES):
        b = base_times(k)
        for v, (kind, what, _fires) in enumerate(VARIANTS):
            row = {"k": k, "v": v, "kind": kind, "at": None, "until": None, "other_department": 0, "to_icu": False,
                   "drug": None, "reaction": False, "test_code": None, "value": None, "died_on": None}
            if kind in ("operation", "transfer"):
                row["at"] = b["operated"] + what["after_op"]
                row["to_icu"] = what.get("icu", False)
            elif kind == "encounter":
                row["at"] = b["discharged2"] + what["after_discharge"]
                row["until"] = row["at"] + 3 * D
                row["other_department"] = int(what["other_department"])
            elif kind == "administration":
                row.update(at=b["admitted2"] + D, drug=what["drug"], reaction=what["reaction"])
            elif kind == "lab":
                row.update(at=b["admitted2"] + D, test_code=what["test"], value=what["value"])
            else:
                row["died_on"] = local(b["operated"]).date() + timedelta(days=what["after_op_days"])
            rows.append(row)
    return rows


@dataclass
class Queued:
    facts: int
    expected: set[tuple[str, int, str]]
    seconds: float


def queue_new(session, n: int, *, patients: tuple[int, int], now: datetime) -> Queued:
    """n new facts on n distinct stored patients of `patients` (lo, hi], added and queued as the intake does;
    returns the exact set of (trigger code, patient id, window key) they must fire."""
    started = time.perf_counter()
    dialect = session.get_bind().dialect.name
    depts, procedure, surgeon = _reference(session)
    dmin, dn = depts[0], len(depts)
    lo, hi = patients
    step = (hi - lo) // n
    assert step >= 1, f"{n} new facts need as many stored patients ({hi - lo})"
    _reset(session, bench_variant, bench_new)
    session.execute(bench_variant.insert(), _variant_rows())
    nv = len(VARIANTS)
    session.execute(sa.text(
        "INSERT INTO bench_fact_new (i, patient_id, v, k) "
        f"SELECT g - 1, {lo + 1} + (g - 1) * {step}, (g - 1) % {nv}, ({lo + 1} + (g - 1) * {step}) % {BASES} "
        f"FROM ({series(dialect, n)}) AS s"))
    at = now
    typed = [sa.bindparam("at", type_=UTCDateTime())]
    new = "FROM bench_fact_new n JOIN bench_fact_variant x ON x.k = n.k AND x.v = n.v"
    stay1 = "JOIN encounter e ON e.his_id = 'BXA' || n.patient_id"
    stay2 = "JOIN encounter e ON e.his_id = 'BXB' || n.patient_id"
    before = {t: _max_id(session, t) for t in ("operation", "encounter", "transfer", "medication_administration",
                                               "critical_lab_result")}
    session.execute(sa.text(
        "INSERT INTO operation (his_id, encounter_id, patient_id, department_id, procedure_code, grade, "
        "is_restricted_technology, surgeon_staff_id, state, planned_at, performed_at, is_unplanned_reoperation, "
        "is_emergency_override, created_at, updated_at, version) "
        f"SELECT 'BXNO' || n.i, e.id, n.patient_id, e.department_id, '{procedure}', 2, false, {surgeon}, 'performed', "
        f"x.at, x.at, false, false, :at, :at, 1 {new} {stay1} WHERE x.kind = 'operation'").bindparams(*typed),
        {"at": at})
    session.execute(sa.text(
        "INSERT INTO encounter (his_id, patient_id, department_id, admitted_at, discharged_at, is_day_surgery, "
        "disposition, created_at, updated_at, version) "
        f"SELECT 'BXNE' || n.i, n.patient_id, {dmin} + (n.patient_id + x.other_department) % {dn}, x.at, x.until, "
        f"false, 'home', :at, :at, 1 {new} WHERE x.kind = 'encounter'").bindparams(*typed), {"at": at})
    session.execute(sa.text(
        "INSERT INTO transfer (his_id, encounter_id, patient_id, from_department_id, to_department_id, to_icu, "
        "transferred_at, created_at, updated_at, version) "
        f"SELECT 'BXNT' || n.i, e.id, n.patient_id, e.department_id, {dmin} + (n.patient_id + 1) % {dn}, x.to_icu, "
        f"x.at, :at, :at, 1 {new} {stay1} WHERE x.kind = 'transfer'").bindparams(*typed), {"at": at})
    session.execute(sa.text(
        "INSERT INTO medication_administration (his_id, encounter_id, patient_id, drug, dose, given_at, reaction, "
        "created_at, updated_at, version) "
        f"SELECT 'BXNM' || n.i, e.id, n.patient_id, x.drug, NULL, x.at, x.reaction, :at, :at, 1 {new} {stay2} "
        "WHERE x.kind = 'administration'").bindparams(*typed), {"at": at})
    session.execute(sa.text(
        "INSERT INTO critical_lab_result (his_id, encounter_id, patient_id, test_code, value, unit, resulted_at, "
        "created_at, updated_at, version) "
        f"SELECT 'BXNL' || n.i, e.id, n.patient_id, x.test_code, x.value, 'mmol/L', x.at, :at, :at, 1 {new} {stay2} "
        "WHERE x.kind = 'lab'").bindparams(*typed), {"at": at})
    session.execute(sa.text(
        "UPDATE patient SET died_on = (SELECT x.died_on FROM bench_fact_new n JOIN bench_fact_variant x "
        "ON x.k = n.k AND x.v = n.v WHERE n.patient_id = patient.id) "
        f"WHERE id IN (SELECT n.patient_id {new} WHERE x.kind = 'death')"))
    # Queued as the intake queues them (one row a fact), in the order the facts arrived.
    queue = "INSERT INTO extraction_queue (kind, record_id, patient_id, queued_at) "
    for kind, table in (("operation", "operation"), ("encounter", "encounter"), ("transfer", "transfer"),
                        ("administration", "medication_administration"), ("lab", "critical_lab_result")):
        session.execute(sa.text(
            queue + f"SELECT '{kind}', t.id, t.patient_id, :at FROM {table} t WHERE t.id > {before[table]} "
            "ORDER BY t.id").bindparams(*typed), {"at": at})
    session.execute(sa.text(
        queue + f"SELECT 'death', n.patient_id, n.patient_id, :at {new} WHERE x.kind = 'death' ORDER BY n.i"
    ).bindparams(*typed), {"at": at})
    expected = expected_firings(session)
    scratch.drop_all(bind=session.connection())
    queued = session.scalar(sa.text("SELECT count(*) FROM extraction_queue"))
    return Queued(queued, expected, time.perf_counter() - started)


def expected_firings(session) -> set[tuple[str, int, str]]:
    """(trigger code, patient id, window key) of every firing the new facts must produce: a pure function of
    what each new fact is (its variant) and the ids of the stored facts it pairs with."""
    rows = session.execute(sa.text(
        "SELECT n.patient_id, n.v, o.id, e.id FROM bench_fact_new n "
        "JOIN operation o ON o.his_id = 'BXO' || n.patient_id JOIN encounter e ON e.his_id = 'BXB' || n.patient_id"))
    expected = set()
    for patient_id, v, operation_id, stay2_id in rows:
        for code, window in VARIANTS[v][2]:
            key = {"op": f"operation:{operation_id}", "stay2": f"encounter:{stay2_id}", "death": "death"}[window]
            expected.add((code, patient_id, key))
    return expected


def actual_firings(session) -> tuple[set[tuple[str, int, str]], int]:
    """The firings recorded (as the expected set) and how many rows they are (a duplicate would differ)."""
    rows = session.execute(sa.text(
        "SELECT t.code, p.patient_id, p.window_key FROM followup_event_prompt p "
        "JOIN extraction_trigger t ON t.id = p.trigger_id")).all()
    return {tuple(r) for r in rows}, len(rows)


# ---------------------------------------------------------------------------------------------- raw bound

def _shift(dialect: str, column: str, hours: int) -> str:
    """column ± hours as SQL (the stored text form on SQLite)."""
    if dialect == "postgresql":
        return f"({column} + interval '{int(hours)} hours')"
    return f"(strftime('%Y-%m-%d %H:%M:%f', {column}, '{int(hours):+d} hours') || '000')"


def _day_plus(dialect: str, column: str, days: int) -> str:
    """The calendar day of a UTC instant, shifted to hospital time (UTC+8), plus days."""
    if dialect == "postgresql":
        return f"(CAST({column} AT TIME ZONE 'Asia/Shanghai' AS date) + {int(days)})"
    return f"date({column}, '+8 hours', '{int(days):+d} days')"


def pick(patient: str, kind: str, key_id: str | None, department: str, at: str) -> str:
    """A firing's select list: patient, window key ("operation:12", or "death"), department, when."""
    key = f"'{kind}:' || {key_id}" if key_id else f"'{kind}'"
    return f"SELECT {patient} AS patient_id, {key} AS window_key, {department} AS department_id, {at} AS occurred_at"


def raw_statements(session) -> list[str]:
    """The evaluation as a few set-based statements: per default trigger, the pair lookups of the queued facts
    joined against the stored tables, inserted as firing rows (once per window), then their audit rows and the
    queue emptied."""
    dialect = session.get_bind().dialect.name
    triggers = {code: (tid, version, window)
                for code, tid, version, window in session.execute(sa.text(
                    "SELECT code, id, version, window_hours FROM extraction_trigger WHERE is_active = true"))}
    sh = lambda col, h: _shift(dialect, col, h)  # noqa: E731
    q = "FROM extraction_queue q"
    selects: dict[str, list[str]] = {}
    for code in ("return_theatre_48h", "return_theatre_31d"):
        w = triggers[code][2]
        # the 31-day trigger leaves the returns within 48 h to the 48-hour one (the same harm, raised once)
        narrow = triggers["return_theatre_48h"][2] if code == "return_theatre_31d" else 0
        selects[code] = [
            f"{pick('o.patient_id', 'operation', 'f.id', 'f.department_id', 'o.performed_at')} {q} "
            "JOIN operation o ON o.id = q.record_id "
            "JOIN operation f ON f.patient_id = o.patient_id AND f.state = 'performed' "
            f"AND f.performed_at >= {sh('o.performed_at', -w)} AND f.performed_at < {sh('o.performed_at', -narrow)} "
            "WHERE q.kind = 'operation' AND o.state = 'performed'",
            f"{pick('o.patient_id', 'operation', 'o.id', 'o.department_id', 'min(l.performed_at)')} {q} "
            "JOIN operation o ON o.id = q.record_id JOIN operation l ON l.patient_id = o.patient_id "
            "AND l.state = 'performed' AND l.performed_at > o.performed_at "
            f"AND l.performed_at <= {sh('o.performed_at', w)} "
            "WHERE q.kind = 'operation' AND o.state = 'performed' GROUP BY o.patient_id, o.id, o.department_id "
            f"HAVING min(l.performed_at) > {sh('o.performed_at', narrow)}"]
    w = triggers["readmission_31d"][2]
    selects["readmission_31d"] = [
        f"{pick('e.patient_id', 'encounter', 'f.id', 'f.department_id', 'e.admitted_at')} {q} "
        "JOIN encounter e ON e.id = q.record_id JOIN encounter f ON f.patient_id = e.patient_id AND f.id <> e.id "
        f"AND f.discharged_at >= {sh('e.admitted_at', -w)} AND f.discharged_at <= e.admitted_at "
        "AND coalesce(f.disposition, '') <> 'death' AND f.department_id = e.department_id WHERE q.kind = 'encounter'",
        f"{pick('e.patient_id', 'encounter', 'e.id', 'e.department_id', 'min(l.admitted_at)')} {q} "
        "JOIN encounter e ON e.id = q.record_id JOIN encounter l ON l.patient_id = e.patient_id AND l.id <> e.id "
        f"AND l.admitted_at >= e.discharged_at AND l.admitted_at <= {sh('e.discharged_at', w)} "
        "AND l.department_id = e.department_id WHERE q.kind = 'encounter' AND coalesce(e.disposition, '') <> 'death' "
        "GROUP BY e.patient_id, e.id, e.department_id"]
    w = triggers["icu_after_operation_48h"][2]
    selects["icu_after_operation_48h"] = [
        f"{pick('t.patient_id', 'operation', 'o.id', 'o.department_id', 't.transferred_at')} {q} "
        "JOIN transfer t ON t.id = q.record_id AND t.to_icu = true JOIN operation o ON o.patient_id = t.patient_id "
        f"AND o.state = 'performed' AND o.performed_at >= {sh('t.transferred_at', -w)} "
        "AND o.performed_at <= t.transferred_at WHERE q.kind = 'transfer'",
        f"{pick('o.patient_id', 'operation', 'o.id', 'o.department_id', 'min(t.transferred_at)')} {q} "
        "JOIN operation o ON o.id = q.record_id JOIN transfer t ON t.patient_id = o.patient_id AND t.to_icu = true "
        f"AND t.transferred_at >= o.performed_at AND t.transferred_at <= {sh('o.performed_at', w)} "
        "WHERE q.kind = 'operation' AND o.state = 'performed' GROUP BY o.patient_id, o.id, o.department_id"]
    # One-fact rules: the queued records of the kind first (materialised), then the trigger's condition on them;
    # otherwise PostgreSQL, misjudging the condition's selectivity, scans the queue once per matching stored row.
    ctes = {}
    given = (f"{pick('m.patient_id', 'encounter', 'm.encounter_id', 'e.department_id', 'm.given_at')} "
             "FROM queued_m m JOIN encounter e ON e.id = m.encounter_id WHERE ")
    queued_m = ("WITH queued_m AS MATERIALIZED (SELECT m.* FROM extraction_queue q JOIN medication_administration m "
                "ON m.id = q.record_id WHERE q.kind = 'administration') ")
    selects["rescue_drug"] = [given + "m.drug IN ('naloxone', 'flumazenil', 'vitamin_k', 'protamine', 'glucose_50', "
                                      "'antihistamine', 'adrenaline')"]
    selects["transfusion_reaction"] = [given + "m.drug = 'blood_product' AND m.reaction = true"]
    result = (f"{pick('r.patient_id', 'encounter', 'r.encounter_id', 'e.department_id', 'r.resulted_at')} "
              "FROM queued_r r JOIN encounter e ON e.id = r.encounter_id WHERE ")
    queued_r = ("WITH queued_r AS MATERIALIZED (SELECT r.* FROM extraction_queue q JOIN critical_lab_result r "
                "ON r.id = q.record_id WHERE q.kind = 'lab') ")
    unit = "lower(replace(coalesce(r.unit, ''), ' ', '')) = 'mmol/l'"
    selects["critical_inr"] = [result + "upper(trim(r.test_code)) = 'INR' AND r.value > 6.0"]
    selects["critical_glucose"] = [result + f"upper(trim(r.test_code)) = 'GLU' AND r.value < 2.8 AND {unit}"]
    selects["critical_potassium"] = [
        result + f"upper(trim(r.test_code)) = 'K' AND (r.value < 2.8 OR r.value > 6.2) AND {unit}"]
    ctes.update(rescue_drug=queued_m, transfusion_reaction=queued_m, critical_inr=queued_r, critical_glucose=queued_r,
                critical_potassium=queued_r)
    days = triggers["death_30d_after_operation"][2] // 24
    day = _day_plus(dialect, "o.performed_at", 0)
    selects["death_30d_after_operation"] = [
        f"{pick('p.id', 'death', None, 'max(o.department_id)', 'max(o.performed_at)')} {q} "
        "JOIN patient p ON p.id = q.record_id "
        f"JOIN operation o ON o.patient_id = p.id AND o.state = 'performed' AND {day} <= p.died_on "
        f"AND {_day_plus(dialect, 'o.performed_at', days)} >= p.died_on WHERE q.kind = 'death' GROUP BY p.id",
        f"{pick('o.patient_id', 'death', None, 'o.department_id', 'o.performed_at')} {q} "
        "JOIN operation o ON o.id = q.record_id "
        f"JOIN patient p ON p.id = o.patient_id AND p.died_on IS NOT NULL AND {day} <= p.died_on "
        f"AND {_day_plus(dialect, 'o.performed_at', days)} >= p.died_on WHERE q.kind = 'operation'"]
    statements = []
    for code, parts in selects.items():
        tid, version, _w = triggers[code]
        union = " UNION ALL ".join(parts)
        statements.append(
            ctes.get(code, "") + "INSERT INTO followup_event_prompt (trigger_id, trigger_version, window_key, "
            "patient_id, department_id, "
            "findings, facts, occurred_at, state, created_at, version) "
            f"SELECT {tid}, {version}, u.window_key, u.patient_id, u.department_id, '', '[]', u.occurred_at, 'open', "
            f":now, 1 FROM ({union}) AS u WHERE true "
            "ON CONFLICT (trigger_id, patient_id, window_key) DO NOTHING")
    statements.append(
        "INSERT INTO audit_entry (seq, at, actor, action, object_type, object_id, detail, prev_hash, hash) "
        "SELECT (SELECT coalesce(max(seq), 0) FROM audit_entry) + row_number() OVER (ORDER BY p.id), :now, "
        "'system:extraction', 'followup_prompt.fire', 'followup_event_prompt', CAST(p.id AS VARCHAR(20)), '{}', "
        "'bench', 'bench' FROM followup_event_prompt p WHERE p.id > :before")
    statements.append("DELETE FROM extraction_queue")
    return statements


def raw_evaluate(session, now: datetime) -> int:
    """The lower bound of one evaluation of the queue; returns the firing rows inserted (not committed)."""
    before = _max_id(session, "followup_event_prompt")
    for text in raw_statements(session):
        stmt = sa.text(text)
        params = {k: v for k, v in (("now", now), ("before", before)) if f":{k}" in text}
        if "now" in params:
            stmt = stmt.bindparams(sa.bindparam("now", type_=UTCDateTime()))
        session.execute(stmt, params)
    return session.scalar(sa.text(f"SELECT count(*) FROM followup_event_prompt WHERE id > {before}"))


def app_evaluate(session, now: datetime, batch_size: int) -> int:
    """The evaluator's real path for one run (batches, rules, firings, audit entries written), not committed."""
    from qcflow.core import audit
    from qcflow.extraction import services

    result = services.evaluate_queued(now, batch_size=batch_size)
    audit.flush_pending()
    session.flush()
    return result.firings


def analyse(session) -> None:
    from bench.hospital import analyse as analyse_all

    analyse_all(session)



# ---------------------------------------------------------------------------------------------- P14

#: Stored facts per scale: (first measurement, second measurement); the new facts are the same in both.
P14_SIZES = {"S": (100_000, 1_000_000), "M": (1_000_000, 10_000_000), "L": (1_000_000, 10_000_000)}
P14_QUICK = (20_000, 200_000, 2_000)
NEW_FACTS = 10_000
#: The instant the new facts arrive and are evaluated.
P14_NOW = datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc)
#: Bounds: the evaluator within RATIO of the raw statements; t(10 × stored) / t(stored) within SCALING.
RATIO, SCALING = 20, 2


def _settle(session) -> None:
    """PostgreSQL: vacuum away the rolled-back rows between repetitions (not timed)."""
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        with bind.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM followup_event_prompt, extraction_queue, audit_entry, notification"))


def _timed(session, fn, repeats: int) -> tuple[list[float], int]:
    """Wall times (ms) of fn over `repeats` runs after one warm-up, each rolled back; and its last result."""
    times, result = [], 0
    for attempt in range(repeats + 1):
        started = time.perf_counter()
        try:
            result = fn()
            elapsed = (time.perf_counter() - started) * 1000
        finally:
            session.rollback()
            _settle(session)
        if attempt:
            times.append(elapsed)
    return times, result


def measure(session, repeats: int, batch_size: int) -> dict:
    import statistics

    raw, raw_rows = _timed(session, lambda: raw_evaluate(session, P14_NOW), repeats)
    app, app_rows = _timed(session, lambda: app_evaluate(session, P14_NOW, batch_size), repeats)
    stored = sum(session.scalar(sa.text(f"SELECT count(*) FROM {t}")) for t in (
        "patient", "encounter", "operation", "transfer", "medication_administration", "critical_lab_result"))
    return {"raw_ms": statistics.median(raw), "app_ms": statistics.median(app), "app_times": app,
            "raw_rows": raw_rows, "app_rows": app_rows, "stored": stored}


def scenario_p14(db: str, scale: str, url: str, make_app, *, quick: bool = False, log=print) -> list:
    """10,000 new facts evaluated against 1M and then 10M stored facts (scale M), beside the raw statements;
    then the job's real path, committed, and its firings compared with the expected set."""
    from bench.harness import pct
    from bench.scenarios import Row, r2, sig3, verdict
    from qcflow.extensions import db as qdb
    from qcflow.extraction import jobs

    small, large, new = P14_QUICK if quick else (*P14_SIZES[scale], NEW_FACTS)
    repeats = 1 if quick else 3
    app = make_app(url)
    with app.app_context():
        session = qdb.session
        batch_size = int(app.config["EXTRACTION_BATCH"])
        first = seed_stored(session, small, tag="1")
        session.commit()
        queued = queue_new(session, new, patients=first.patients, now=P14_NOW)
        session.commit()
        analyse(session)
        log(f"# P14 seeded {first.facts:,} stored facts in {first.seconds:.1f} s, queued {queued.facts:,} "
            f"in {queued.seconds:.1f} s ({len(queued.expected):,} firings expected)")
        at_small = measure(session, repeats, batch_size)
        log(f"# P14 at {at_small['stored']:,}: raw {at_small['raw_ms']:.1f} ms, app {at_small['app_ms']:.1f} ms")
        second = seed_stored(session, large - at_small["stored"], tag="2")
        session.commit()
        started = time.perf_counter()
        analyse(session)
        log(f"# P14 seeded {second.facts:,} more in {second.seconds:.1f} s "
            f"(+ analyse {time.perf_counter() - started:.1f} s)")
        at_large = measure(session, repeats, batch_size)
        log(f"# P14 at {at_large['stored']:,}: raw {at_large['raw_ms']:.1f} ms, app {at_large['app_ms']:.1f} ms")
        started = time.perf_counter()
        summary = jobs.evaluate_triggers(P14_NOW)
        session.commit()
        committed_ms = (time.perf_counter() - started) * 1000
        got, recorded = actual_firings(session)
        left = session.scalar(sa.text("SELECT count(*) FROM extraction_queue"))
        session.remove()
    expected = queued.expected
    correct = got == expected and recorded == len(expected) and left == 0
    counts_ok = all(m["raw_rows"] == m["app_rows"] == len(expected) for m in (at_small, at_large))
    rows = []
    for label, m in (("stored_1x", at_small), ("stored_10x", at_large)):
        ratio = m["app_ms"] / m["raw_ms"]
        rows.append(Row(f"P14 evaluate_{label}", db, scale, new, r2(m["raw_ms"]), r2(m["app_ms"]), sig3(ratio),
                        f"<={RATIO}x raw", verdict(ratio <= RATIO and counts_ok and correct),
                        {"stored_facts": m["stored"], "new_facts": new, "firings": m["app_rows"],
                         "raw_firings": m["raw_rows"], "batch": batch_size, "correct": counts_ok and correct,
                         "app_committed_ms": r2(committed_ms), "job": summary,
                         "check": f"firings == expected set ({len(expected):,}), each once, queue empty"},
                        r2(pct(m["app_times"], 95)), r2(pct(m["app_times"], 99))))
    scaling = at_large["app_ms"] / at_small["app_ms"]
    rows.append(Row("P14 o_new_scaling", db, scale, new, r2(at_large["raw_ms"]), r2(at_large["app_ms"]),
                    sig3(scaling), f"t({at_large['stored']:,})/t({at_small['stored']:,})<={SCALING}",
                    verdict(scaling <= SCALING and counts_ok and correct),
                    {"small_stored": at_small["stored"], "large_stored": at_large["stored"],
                     "app_small_ms": r2(at_small["app_ms"]), "raw_small_ms": r2(at_small["raw_ms"]),
                     "raw_scaling": sig3(at_large["raw_ms"] / at_small["raw_ms"]), "correct": counts_ok and correct,
                     "check": "same firings at both sizes == expected set"},
                    r2(pct(at_large["app_times"], 95)), r2(pct(at_large["app_times"], 99))))
    return rows
