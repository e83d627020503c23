"""The text of each kind of notification, rendered in the reader's language when it is read.

A notification stores its kind and parameters (codes, ids, numbers, ISO times, text people typed);
the page renders them in the current language, an e-mail in its recipient's. Codes among the
parameters go through label(); times are shown in hospital time.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from flask_babel import lazy_gettext as _l



@dataclass(frozen=True)
class Message:
    title: object
    body: object = None
    #: Parameters that are codes, shown through label(): {parameter: label kind}; a list is joined.
    labels: dict = field(default_factory=dict)
    #: Parameters holding ISO date-times, shown as hospital-local "YYYY-MM-DD HH:MM".
    times: tuple = ()
    #: Parameters holding ISO date-times or dates, shown as hospital-local "YYYY-MM-DD".
    dates: tuple = ()
    #: A parameter that rows stored by an earlier version lack: {parameter: the stored one shown instead}.
    earlier: dict = field(default_factory=dict)



MESSAGES = {
    "event.submitted": Message(_l("New adverse-event report %(ref)s")),
    "region.missing_month": Message(_l("%(missing)d hospitals have not sent the values of %(month)s"),
                                    _l("Hospitals: %(hospitals)s")),
    "region.rejected": Message(_l("The centre refused %(kind)s %(period)s (version %(version)d)"),
                               _l("Its reasons are on the submission's page: correct them and send it again."),
                               labels={"kind": "region_kind"}),
    "region.held": Message(_l("%(kind)s %(period)s (version %(version)d) is held back, not sent to the centre"),
                           _l("A value the centre would refuse: correct it, then check this month again."),
                           labels={"kind": "region_kind"}),
    "event.feedback": Message(_l("Feedback on your report %(ref)s")),
    "event.question": Message(_l("A question about your report %(ref)s")),
    "event.deadline_breached": Message(_l("Deadline passed (%(deadline)s) for %(ref)s — escalation level %(level)d"),
                                       labels={"deadline": "event_deadline"}),
    "action.assigned": Message(_l("Corrective action for %(ref)s: %(title)s")),
    "followup.urgent_due": Message(_l("24 h follow-up call #%(id)d is due by %(time)s"), times=("time",)),
    "followup.urgent_missed": Message(_l("24 h follow-up call #%(id)d missed its deadline (%(time)s)"),
                                      times=("time",)),
    "followup.alarming_answer": Message(_l("A patient answered follow-up call #%(id)d online with alarming answers: "
                                           "%(alarms)s"), _l("The call is at the top of the queue. Call the patient."),
                                        labels={"alarms": "fu_item"}),
    "followup.invitation_closed": Message(_l("The online link of follow-up call #%(id)d was closed after too many "
                                             "wrong answers to its identity check"),
                                          _l("Call the patient: someone other than the patient may have the link.")),
    "followup.event_prompt": Message(_l("Follow-up finding may be an adverse event: %(findings)s"),
                                     labels={"findings": "fu_item"}),
    "extraction.found": Message(_l("%(n)d possible adverse events found in the HIS data by the triggers"),
                                _l("Confirm or dismiss each one in the possible-events list.")),
    "operation.emergency_override": Message(_l("Emergency booking without MDT: %(procedure)s (operation %(id)s)"),
                                            _l("Reason: %(reason)s"), earlier={"procedure": "code"}),
    "operation.performed_without_mdt": Message(
        _l("%(procedure)s (operation %(id)s) was performed without a signed pre-operative MDT"),
        _l("Reported by the HIS: performed at %(time)s."), times=("time",), earlier={"procedure": "code"}),
    "mdt.requested": Message(_l("Pre-operative MDT needed before %(date)s: %(procedure)s"), dates=("date",)),
    "mdt.perioperative_death": Message(_l("Perioperative death review requested"), _l("Due by %(date)s"),
                                       times=("date",)),
    "mdt.death_case": Message(_l("Death case review requested"), _l("Due by %(date)s"), times=("date",)),
    "mdt.case_review": Message(_l("Case review needed: unplanned reoperation")),
    "mdt.invited": Message(_l("You are invited to MDT discussion #%(id)d: %(kind)s"), labels={"kind": "mdt_kind"}),
    "mdt.withdrawn": Message(_l("MDT discussion #%(id)d withdrawn: its operation (%(procedure)s) was cancelled or performed")),
    "mdt.scheduled": Message(_l("MDT discussion on %(date)s"), times=("date",)),
    "mdt.signed": Message(_l("MDT record signed")),
    "mdt.signed_for_review": Message(_l("MDT record #%(id)d signed: %(kind)s"),
                                     _l("The organisers recorded the participants and who attended; check them."),
                                     labels={"kind": "mdt_kind"}),
    "mdt.signed_after_removal": Message(_l("MDT record #%(id)d was signed after you were taken off its participants"),
                                        _l("%(kind)s. If you should have taken part, tell the quality office."),
                                        labels={"kind": "mdt_kind"}),
    "mdt.preop_missing": Message(_l("Grade-4 operation on %(date)s has no signed pre-operative MDT"), times=("date",)),
    "mdt.overdue": Message(_l("MDT discussion #%(id)d is overdue (due %(date)s)"), times=("date",)),
    "indicator.report_due": Message(_l("Indicator values of %(month)s due by %(date)s: %(n)d still to enter"),
                                    _l("Enter them on the indicator data-entry page."), dates=("date",)),
    "indicator.report_returned": Message(
        _l("An indicator value of %(month)s needs your correction"),
        _l("The quality office wrote: %(reason)s")),
    "indicator.report_overdue": Message(
        _l("Indicator values of %(month)s overdue: %(n)d from %(departments)d departments"),
        _l("The completeness view lists who still owes which value.")),
    "indicators.form_reminder": Message(
        _l("Annual indicator form %(year)s, due by %(due)s: %(missing)d reported indicators still have months "
           "not approved"), _l("%(form)s"), dates=("due",), labels={"form": "ind_form_generated"}),
}


def _value(message: Message, name: str, value):
    from qcflow.core.i18n import label_list
    from qcflow.core.time import local

    if name in message.labels:
        values = value if isinstance(value, (list, tuple)) else [value]
        return label_list(message.labels[name], values)
    if name in message.times or name in message.dates:
        if not value:
            return ""
        at = datetime.fromisoformat(value)
        if len(value) <= 10:
            return at.strftime("%Y-%m-%d")
        return local(at).strftime("%Y-%m-%d" if name in message.dates else "%Y-%m-%d %H:%M")
    return value


def render(kind: str, params: dict) -> tuple[str, str]:
    """(title, body) of a notification of `kind` in the current language."""
    message = MESSAGES[kind]
    params = {**{name: (params or {}).get(stored) for name, stored in message.earlier.items()}, **(params or {})}
    values = {name: _value(message, name, value) for name, value in params.items()}
    title = _format(str(message.title), values)
    body = ""
    # A body whose parameters are empty (a review without a deadline) is left out.
    if message.body is not None and all(values.get(name) for name in _names(str(message.body))):
        body = _format(str(message.body), values)
    return title, body


def _names(template: str) -> list[str]:
    return re.findall(r"%\((\w+)\)", template)


def _format(template: str, values: dict) -> str:
    """The template filled in; a missing parameter raises KeyError."""
    return template % values if _names(template) else template


def texts(notification) -> tuple[str, str]:
    """(title, body) of a stored notification in the current language; rows from before parameters keep their text."""
    if notification.params is None:
        return notification.title, notification.body
    try:
        return render(notification.kind, notification.params)
    except (KeyError, TypeError, ValueError):
        # A kind or parameter this version no longer knows: the kind, never a crash of the inbox.
        return notification.kind, ""
