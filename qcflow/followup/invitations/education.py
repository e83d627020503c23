"""Health education shown to the patient after they answer: a few plain sentences per kind of pathway, and when
to come back to hospital or call 120. Short on purpose: it is read on a phone, and it never replaces what the
doctor told the patient at discharge."""
from __future__ import annotations

from dataclasses import dataclass

from flask_babel import lazy_gettext as _l


@dataclass(frozen=True)
class Education:
    title: str
    advice: tuple  # lazy strings, one short sentence each
    urgent: object  # lazy string: when to come back at once or call 120


EDUCATION = {
    "day_surgery": Education(
        _l("After your day surgery"),
        (_l("Rest today and tomorrow. For 24 hours after the anaesthetic, do not drive and do not make "
            "important decisions."),
         _l("Keep the wound clean and dry. Change the dressing as you were shown."),
         _l("Take the pain medicine as the doctor prescribed.")),
        _l("Come to the emergency department or call 120 at once if you have heavy bleeding, a fever above "
           "38.5 °C, pain that gets worse, trouble breathing, or you cannot pass urine."),
    ),
    "surgery": Education(
        _l("Recovering from your operation"),
        (_l("Increase your activity slowly: walk a little every day."),
         _l("Eat a balanced diet. Do not smoke and do not drink alcohol."),
         _l("Take your medicines as prescribed and keep your check-up appointments.")),
        _l("Call 120 or go to the emergency department at once if you have chest pain, shortness of breath, a "
           "high fever, a wound that is red, swollen or leaking, black stools or you vomit blood."),
    ),
    "cancer": Education(
        _l("Living well after cancer treatment"),
        (_l("Keep your check-up appointments even when you feel well: they find problems early."),
         _l("Eat well, stay as active as you can, and stop smoking."),
         _l("Tell your doctor about a new lump, weight loss you cannot explain, or a cough or pain that does not "
            "go away.")),
        _l("Call 120 or go to the emergency department at once if you have a high fever during treatment, "
           "bleeding, severe pain or sudden breathlessness."),
    ),
    "general": Education(
        _l("Looking after your health"),
        (_l("Take your medicines as prescribed and keep your check-up appointments."),
         _l("If something worries you, call the department that treated you.")),
        _l("In an emergency, call 120 at once."),
    ),
}


def kind_of(pathway: str) -> str:
    """The kind of education for a pathway's code: day surgery, (four-level) surgery, cancer, else general."""
    code = pathway or ""
    if code == "day_surgery":
        return "day_surgery"
    if code.startswith("cancer"):
        return "cancer"
    if "surgery" in code:
        return "surgery"
    return "general"


def education_for(pathway: str) -> Education:
    return EDUCATION[kind_of(pathway)]
