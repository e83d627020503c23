"""The centre's demo (`make run-centre`): the centre's staff, three hospitals with their own keys, and a year of
their signed monthly submissions, each received through the real endpoint (signature, checks, versions).

One hospital has not sent last month yet (completeness shows the gap and the reminder); another corrected one
month after sending it (two versions, the newer counts). The numbers are invented but plausible: each hospital has
its own level of quality, so the comparisons have something to show.
"""
from __future__ import annotations

import os
import random
from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa
from flask import current_app

from qcflow.auth import services as auth_services
from qcflow.auth.models import Department
from qcflow.core.actors import Actor
from qcflow.core.periods import add_months, month_start
from qcflow.core.time import today
from qcflow.extensions import db
from qcflow.indicators import catalogue
from qcflow.region import keys, protocol, registry

CENTRE_DEPARTMENT = ("QCC", "省医疗质量控制中心", "Provincial Quality Control Centre", "functional")
CENTRE_USERS = [
    # user name, password, roles, department, display name
    ("centre", "demo-centre-2025", ["centre"], "QCC", "周质控"),
    ("admin", "demo-admin-2025", ["admin"], "QCC", "系统管理员"),
]


@dataclass(frozen=True)
class DemoHospital:
    code: str
    name: str
    name_en: str
    level: str
    ownership: str
    region: str
    #: How good its care is, 0 (worst of the three) to 1 (best): moves every rate the same way.
    quality: float
    #: Its size: multiplies every denominator.
    size: float


DEMO_HOSPITALS = [
    DemoHospital("H4101001", "郑州市第一人民医院", "Zhengzhou First People's Hospital", "tertiary", "public", "郑州市",
                 0.85, 2.0),
    DemoHospital("H4103002", "洛阳市中心医院", "Luoyang Central Hospital", "tertiary", "public", "洛阳市", 0.45, 1.4),
    DemoHospital("H4115003", "信阳市仁和医院", "Xinyang Renhe Hospital", "secondary", "private", "信阳市", 0.25, 0.5),
]

#: Indicators the demo hospitals send: code → (denominator range, worst and best rate or value).
RATES = {
    "followup_rate_level4": ((40, 120), (82.0, 97.0)),
    "followup_rate_cancer": ((120, 300), (78.0, 94.0)),
    "day_surgery_share": ((300, 700), (9.0, 28.0)),
    "preop_mdt_rate_level4": ((20, 60), (72.0, 100.0)),
    "day_surgery_24h_followup_rate": ((60, 160), (90.0, 100.0)),
    "ae_closure_on_time_rate": ((12, 30), (60.0, 95.0)),
    "cardiac_arrest_rosc_rate": ((2, 9), (15.0, 45.0)),
    "critical_value_report_timely_rate": ((200, 500), (94.0, 100.0)),
    "pressure_injury_rate": ((3000, 7000), (0.12, 0.02)),
    "clinical_pathway_rate": ((1000, 3000), (38.0, 72.0)),
    "coding_accuracy_rate": ((1000, 3000), (84.0, 98.0)),
    "unplanned_reoperation_rate": ((500, 1500), (5.0, 1.0)),
    "periop_mortality_rate": ((500, 1500), (3.0, 0.5)),
    "ae_per_100_discharges": ((2000, 6000), (0.9, 3.2)),
}
VALUES = {
    "emergency_response_time_mean": (19.0, 11.0),
    "cmi": (0.85, 1.25),
    "mdt_clinic_count": (1, 6),
    "annual_work_plan_status": (1, 1),
}


def _rate_value(code: str, unit: str, hospital: DemoHospital, rng: random.Random) -> dict:
    (low, high), (worst, best) = RATES[code]
    denominator = max(1, round(rng.randint(low, high) * hospital.size))
    rate = worst + (best - worst) * min(1.0, max(0.0, hospital.quality + rng.uniform(-0.12, 0.12)))
    factor = {"percent": 100, "permille": 1000, "per100": 100}[unit]
    numerator = round(denominator * rate / factor)
    if unit in ("percent", "permille"):
        numerator = min(numerator, denominator)
    return {"numerator": numerator, "denominator": denominator,
            "value": numerator * factor / denominator}


def _plain_value(code: str, unit: str, hospital: DemoHospital, rng: random.Random) -> dict:
    worst, best = VALUES[code]
    value = worst + (best - worst) * min(1.0, max(0.0, hospital.quality + rng.uniform(-0.1, 0.1)))
    if unit in ("count", "status"):
        value = float(round(value))
    return {"numerator": None, "denominator": None, "value": round(value, 2)}


def month_values(hospital: DemoHospital, month: date, *, revision: int = 1) -> list[dict]:
    """The hospital's values for a month (the same on every run: seeded by hospital, month and revision)."""
    rng = random.Random(f"{hospital.code}-{month:%Y-%m}-{revision}")
    values = []
    for code in [*RATES, *VALUES]:
        unit = catalogue.entry(code).unit
        make = _rate_value if code in RATES else _plain_value
        values.append({"code": code, "unit": unit, **make(code, unit, hospital, rng)})
    return values


def send(hospital: DemoHospital, key, month: date, revision: int, *, now: datetime) -> None:
    """One signed month, posted to this centre's own endpoint (in-process): the same checks as over the network."""
    document = protocol.month_document(month, current_app.config["INDICATOR_PLAN"],
                                       month_values(hospital, month, revision=revision))
    body = protocol.envelope(hospital.code, "month", f"{month:%Y-%m}", revision, document, now)
    headers = {"Content-Type": "application/json", protocol.HEADER_HOSPITAL: hospital.code,
               protocol.HEADER_SIGNATURE: protocol.sign(key, body)}
    with current_app.app_context():  # a fresh session, as a real request has
        response = current_app.test_client().post("/api/v1/centre/submissions", data=body, headers=headers)
    if response.status_code != 201:
        raise RuntimeError(f"demo submission {hospital.code} {month:%Y-%m} v{revision} refused: "
                           f"{response.status_code} {response.get_data(as_text=True)[:500]}")


def load_centre_demo(*, now: datetime) -> bool:
    """Create the centre's demo unless its department exists; True when it was created."""
    code, name, name_en, kind = CENTRE_DEPARTMENT
    if db.session.scalar(sa.select(Department.id).where(Department.code == code)) is not None:
        return False
    actor = Actor.system("demo-data")
    department = auth_services.create_department(code, name, kind, actor=actor, now=now, name_en=name_en)
    for username, password, roles, _dept, display_name in CENTRE_USERS:
        auth_services.create_user(username, password, roles, department, actor=actor, now=now,
                                  display_name=display_name)
    if not os.path.exists(keys.key_path()):
        protocol.write_private_key(keys.key_path(), protocol.generate_key())
    hospital_keys = {}
    last = add_months(month_start(today(now)), -1)
    # Registered as of the first month they send (a year back), so that every month since is owed and the one
    # not sent shows as a gap on completeness and in the reminder (a month before registration is not expected).
    first = add_months(last, -11)
    registered_at = now.replace(year=first.year, month=first.month, day=5, hour=4)
    for hospital in DEMO_HOSPITALS:
        hospital_keys[hospital.code] = protocol.generate_key()
        row = registry.add_hospital({"code": hospital.code, "name": hospital.name, "name_en": hospital.name_en,
                                     "level": hospital.level, "ownership": hospital.ownership,
                                     "region": hospital.region,
                                     "public_key": protocol.public_key_text(hospital_keys[hospital.code])},
                                    actor=actor, now=now)
        row.created_at = registered_at
    db.session.commit()
    for hospital in DEMO_HOSPITALS:
        for back in range(12, 0 if hospital is not DEMO_HOSPITALS[2] else 1, -1):
            send(hospital, hospital_keys[hospital.code], add_months(last, 1 - back), 1, now=now)
    # A correction after sending: the newer version counts, the first stays in the history.
    send(DEMO_HOSPITALS[1], hospital_keys[DEMO_HOSPITALS[1].code], add_months(last, -2), 2, now=now)
    return True
