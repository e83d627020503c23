"""Read side of automatic extraction: the triggers, and the facts of a firing written in the reader's language."""
from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from flask_babel import gettext as _

from qcflow.auth.models import Department
from qcflow.clinical.models import Procedure
from qcflow.core.errors import NotFound
from qcflow.core.i18n import current_language, label
from qcflow.core.time import local
from qcflow.extensions import db
from qcflow.extraction.models import Trigger


def triggers() -> list[Trigger]:
    return list(db.session.scalars(sa.select(Trigger).order_by(Trigger.id)))


def load_trigger(code: str) -> Trigger:
    trigger = db.session.scalar(sa.select(Trigger).where(Trigger.code == code))
    if trigger is None:
        raise NotFound()
    return trigger


def _time(text: str) -> str:
    if "T" not in text:
        return date.fromisoformat(text).isoformat()
    return local(datetime.fromisoformat(text)).strftime("%Y-%m-%d %H:%M")


def facts_text(facts: list[dict] | None) -> list[str]:
    """Each fact of a firing as one sentence in the reader's language (departments and procedures by name)."""
    return facts_texts([facts or []])[0]


def facts_texts(firings: list[list[dict]]) -> list[list[str]]:
    """`facts_text` for many firings (a page of them), reading the names they need once."""
    every = [f for facts in firings for f in facts]
    language = current_language()
    department_ids = {f.get(k) for f in every for k in ("department_id", "from_department_id", "to_department_id")}
    departments = {d.id: d.label(language) for d in db.session.scalars(
        sa.select(Department).where(Department.id.in_({i for i in department_ids if i})))} if every else {}
    codes = {f["procedure_code"] for f in every if f.get("procedure_code")}
    procedures = dict(db.session.execute(sa.select(Procedure.code, Procedure.name).where(
        Procedure.code.in_(codes))).all()) if codes else {}
    return [[_fact_text(f, departments, procedures) for f in facts] for facts in firings]


def _fact_text(fact: dict, departments: dict, procedures: dict) -> str:
    kind, at = fact["kind"], _time(fact["at"])
    if kind == "operation":
        return _("Operation %(procedure)s (%(his_id)s) performed at %(time)s, %(department)s",
                 procedure=procedures.get(fact["procedure_code"], fact["procedure_code"]), his_id=fact["his_id"],
                 time=at, department=departments.get(fact["department_id"], ""))
    if kind == "encounter":
        text = _("Discharged from %(department)s at %(time)s (stay %(his_id)s)") if fact["event"] == "discharged" \
            else _("Admitted to %(department)s at %(time)s (stay %(his_id)s)")
        return text % {"department": departments.get(fact["department_id"], ""), "time": at, "his_id": fact["his_id"]}
    if kind == "transfer":
        return _("Transferred from %(from)s to intensive care (%(to)s) at %(time)s",
                 **{"from": departments.get(fact["from_department_id"], ""),
                    "to": departments.get(fact["to_department_id"], ""), "time": at})
    if kind == "administration":
        text = _("%(drug)s given at %(time)s", drug=label("clin_drug", fact["drug"]), time=at)
        if fact.get("dose"):
            text += _(" (%(dose)s)", dose=fact["dose"])
        return text + (_("; a reaction was flagged") if fact.get("reaction") else "")
    if kind == "lab":
        return _("Critical result %(test)s %(value)s %(unit)s at %(time)s", test=fact["test_code"],
                 value=f"{fact['value']:g}", unit=fact.get("unit") or "", time=at)
    return _("Died on %(day)s", day=at)
