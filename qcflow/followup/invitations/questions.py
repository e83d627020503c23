"""What the patient is asked on their page, what in their answers is alarming, and their answers as the call's
outcome once a nurse confirms them."""
from __future__ import annotations

from datetime import date

from flask_babel import gettext as _
from marshmallow import fields, validate

from qcflow.core.schemas import BaseSchema, WholeNumber, no_control_characters
from qcflow.followup.models import Protocol

#: Outcome items a patient (or their family) can answer in plain words; the others (health education given, a
#: revisit booked) are the nurse's.
ASKABLE = ("complication", "unplanned_readmission", "reoperation", "recurrence_metastasis", "satisfaction")
#: How the patient feels compared with before: "worse" is alarming.
CONDITIONS = ("better", "same", "worse")
#: Alarming findings: the call goes to the top of the queue and a possible-event prompt opens, as a phoned finding
#: does (services.answer).
ALARMS = ("complication", "unplanned_readmission", "reoperation", "recurrence_metastasis", "worsening", "death")
RESPONDENTS = ("patient", "family")
RECURRENCE = ("yes", "no", "unknown")


class AnswersIn(BaseSchema):
    """The patient's page's answers (every field optional here: which are required depends on the phase)."""

    respondent = fields.String(validate=validate.OneOf(RESPONDENTS), allow_none=True)
    vital_status = fields.String(validate=validate.OneOf(("alive", "dead")), allow_none=True)
    died_on = fields.Date(allow_none=True)
    complication = fields.Boolean(allow_none=True)
    complication_note = fields.String(validate=[validate.Length(max=1000), no_control_characters(long_text=True)],
                                      allow_none=True)
    unplanned_readmission = fields.Boolean(allow_none=True)
    reoperation = fields.Boolean(allow_none=True)
    #: A check-up found a recurrence or metastasis: yes, no, or not known (no check-up since, or no result yet).
    recurrence_metastasis = fields.String(validate=validate.OneOf(RECURRENCE), allow_none=True)
    condition = fields.String(validate=validate.OneOf(CONDITIONS), allow_none=True)
    satisfaction = WholeNumber(validate=validate.Range(min=1, max=5), allow_none=True)
    revisit_requested = fields.Boolean(allow_none=True)
    note = fields.String(validate=[validate.Length(max=1000), no_control_characters(long_text=True)], allow_none=True)


def asked(protocol: Protocol) -> list[str]:
    """The outcome items this call's patient is asked (its protocol's, those a patient can answer)."""
    return [item for item in ASKABLE if item in protocol.outcome_items]


def passed_away(answers: dict) -> bool:
    """A family member answered that the patient has died: the questions about how the patient is are not asked."""
    return answers.get("respondent") == "family" and answers.get("vital_status") == "dead"


def missing(answers: dict, protocol: Protocol) -> dict[str, list[str]]:
    """What must still be answered before the answers can be sent, field by field."""
    needed = ["respondent"]
    if answers.get("respondent") == "family":
        needed.append("vital_status")
    if not passed_away(answers):
        needed += ["condition", *asked(protocol)]
    return {name: [_("Please answer this question.")] for name in needed if answers.get(name) is None}


def date_errors(answers: dict, *, today: date, anchor_day: date) -> dict[str, list[str]]:
    """A date of death is given with "dead", not in the future and not before the operation or diagnosis."""
    died_on = answers.get("died_on")
    if answers.get("vital_status") == "dead" and died_on is None:
        return {"died_on": [_("Please give the date the patient passed away.")]}
    if died_on is not None and died_on > today:
        return {"died_on": [_("This date is in the future.")]}
    if died_on is not None and died_on < anchor_day:
        return {"died_on": [_("This date is before the operation, discharge or diagnosis (%(day)s).",
                              day=anchor_day.isoformat())]}
    return {}


def alarms_of(answers: dict) -> list[str]:
    """The alarming findings of these answers, in ALARMS order."""
    found = {item for item in ("complication", "unplanned_readmission", "reoperation") if answers.get(item)}
    if answers.get("recurrence_metastasis") == "yes":
        found.add("recurrence_metastasis")
    if answers.get("condition") == "worse":
        found.add("worsening")
    if answers.get("vital_status") == "dead":
        found.add("death")
    return [alarm for alarm in ALARMS if alarm in found]


def outcome_of(answers: dict, protocol: Protocol) -> dict:
    """The answers as the call's outcome form (what services.complete_task takes), channel online.

    The patient's page shows the health education of the pathway, so it was given. A revisit the patient asked for
    is not a revisit booked: the note says it, for the nurse to book. A recurrence not known is not recorded."""
    data = {item: answers.get(item) for item in asked(protocol)}
    if "recurrence_metastasis" in data:
        data["recurrence_metastasis"] = {"yes": True, "no": False}.get(data["recurrence_metastasis"])
    data["respondent"] = answers.get("respondent") or "patient"
    data["vital_status"] = answers.get("vital_status") or "alive"
    data["date_of_death"] = answers.get("died_on") if data["vital_status"] == "dead" else None
    data["complication_note"] = answers.get("complication_note")
    data["health_education_given"] = True
    notes = [answers.get("note") or ""]
    if answers.get("revisit_requested"):
        notes.insert(0, _("Asks for a revisit appointment."))
    if answers.get("condition"):
        notes.insert(0, {"better": _("Feels better than before."), "same": _("Feels the same as before."),
                         "worse": _("Feels worse than before.")}[answers["condition"]])
    data["note"] = " ".join(n for n in notes if n).strip() or None
    data["channel"] = "online"
    return data
