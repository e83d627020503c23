"""What an audit entry says to a person: its action as a label, its actor as a name.

Every action the code writes has a label here (tests/core/test_labels_core.py fails on one that
has none); every timeline renders its entries through `audit_rows()` (the macro
templates/_macros/timeline.html).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Iterable

from flask import Flask, current_app
from flask_babel import lazy_gettext as _l

from qcflow.core.i18n import current_language, label, register_labels

#: Rows that one intake (CSV upload, HIS push, command line) writes, by intake kind.
INTAKE_KINDS = {
    "patients": _l("Patient"),
    "encounters": _l("Admission record"),
    "operations": _l("Operation"),
    "diagnoses": _l("Cancer diagnosis"),
    "census": _l("Discharge census"),
    "procedures": _l("Procedure catalogue entry"),
    "staff": _l("Staff member"),
    "authorisations": _l("Surgeon authorisation"),
    "transfers": _l("Transfer between departments"),
    "administrations": _l("Listed medicine given"),
    "lab_results": _l("Critical laboratory result"),
}

AUDIT_ACTIONS = {
    # Accounts and access
    "department.create": _l("Department created"),
    "user.create": _l("User account created"),
    "user.disable": _l("User account disabled"),
    "user.change_password": _l("Password changed"),
    "user.set_locale": _l("Language setting changed"),
    "user.login": _l("Logged in"),
    "user.second_factor_enrol": _l("Second factor set up"),
    "user.second_factor_passed": _l("Second factor checked"),
    "user.second_factor_failed": _l("Wrong second-factor code"),
    "user.second_factor_reset": _l("Second factor reset"),
    "token.create": _l("API token created"),
    "token.revoke": _l("API token revoked"),
    # Adverse events
    "event.create": _l("Report started"),
    "event.update_draft": _l("Draft saved"),
    "event.submit": _l("Report submitted"),
    "event.request_info": _l("Question sent to the reporter"),
    "event.provide_info": _l("Reporter answered"),
    "event.triage": _l("Case triaged"),
    "event.mark_duplicate": _l("Marked as duplicate"),
    "event.reject": _l("Marked as not reportable"),
    "event.withdraw": _l("Report withdrawn"),
    "event.start_investigation": _l("Investigation started"),
    "event.plan_actions": _l("Root-cause analysis and improvement measures recorded"),
    "event.verify": _l("Improvement measures verified"),
    "event.close": _l("Case closed"),
    "event.reopen": _l("Case reopened"),
    "event.message_to_reporter": _l("Message to the reporter"),
    "event.message_from_reporter": _l("Message from the reporter"),
    "event.read_reporter": _l("Reporter's identity viewed"),
    "event.read_contact": _l("Patient's or family's contact details viewed"),
    "event.deadline_breached": _l("Deadline passed, escalated"),
    "event.external_reported": _l("Reported to the health authority"),
    "event_lesson.write": _l("Lesson written from the case"),
    "event_lesson.update": _l("Lesson changed"),
    "event_lesson.submit_review": _l("Lesson sent for review"),
    "event_lesson.return_draft": _l("Lesson sent back to its author"),
    "event_lesson.publish": _l("Lesson published"),
    "event_lesson.withdraw": _l("Lesson withdrawn"),
    "corrective_action.create": _l("Improvement measure added"),
    "attachment.add": _l("File attached"),
    "attachment.read": _l("File opened"),
    "attachment.remove": _l("File removed"),
    "corrective_action.complete": _l("Improvement measure completed"),
    "corrective_action.verify": _l("Improvement measure verified"),
    "corrective_action.reopen": _l("Improvement measure reopened"),
    "corrective_action.cancel": _l("Improvement measure cancelled"),
    # Follow-up
    "patient.read_phone": _l("Patient's phone number viewed"),
    "patient.death_recorded": _l("Date of death recorded"),
    "patient.death_date_differs": _l("A different date of death reported; the recorded one kept"),
    "followup_protocol.create": _l("Follow-up pathway version created"),
    "followup_plan.enrol": _l("Patient enrolled in follow-up"),
    "followup_plan.protocol_moved": _l("Follow-up plan moved to a new pathway version"),
    "followup_plan.reanchor": _l("Follow-up dates recalculated"),
    "followup_plan.pause": _l("Follow-up paused"),
    "followup_plan.resume": _l("Follow-up resumed"),
    "followup_plan.stop": _l("Follow-up stopped"),
    "followup_plan.mark_lost": _l("Patient lost to follow-up"),
    "followup_plan.withdraw": _l("Follow-up withdrawn"),
    "followup_task.claim": _l("Follow-up call claimed"),
    "followup_task.release": _l("Follow-up call released"),
    "followup_task.reassign": _l("Follow-up call reassigned"),
    "followup_task.log_attempt": _l("Call attempt recorded"),
    "followup_task.reschedule": _l("Follow-up call rescheduled"),
    "followup_task.complete": _l("Follow-up call completed"),
    "followup_task.mark_unreachable": _l("Patient marked unreachable"),
    "followup_task.cancel": _l("Follow-up call cancelled"),
    "followup_task.urgent_warning": _l("24 h follow-up warning sent"),
    "followup_task.alarm": _l("Alarming answers online: call put first in the queue"),
    "followup_invitation.create": _l("Invitation to answer online created"),
    "followup_invitation.send": _l("Invitation to answer online sent"),
    "followup_invitation.remind": _l("Reminder to answer online sent"),
    "followup_invitation.send_failed": _l("Invitation or reminder could not be sent"),
    "followup_invitation.fail": _l("Invitation given up: it could not be sent"),
    "followup_invitation.deliver": _l("Invitation delivered to the patient's phone"),
    "followup_invitation.delivery_report": _l("Delivery report received"),
    "followup_invitation.open": _l("Invitation opened by the patient (second factor passed)"),
    "followup_invitation.wrong_factor": _l("Wrong second factor on the patient's page"),
    "followup_invitation.answer": _l("Patient answered online"),
    "followup_invitation.expire": _l("Invitation expired unanswered"),
    "followup_invitation.close": _l("Invitation closed: the call was closed first"),
    "followup_invitation.confirm": _l("Online answers confirmed by the nurse"),
    "followup_prompt.open": _l("Possible adverse event flagged to the quality office"),
    "followup_prompt.fire": _l("Possible adverse event found by a trigger in the HIS data"),
    "followup_prompt.file": _l("Possible adverse event filed as a report"),
    "followup_prompt.link": _l("Possible adverse event linked to the report already filed"),
    "extraction_trigger.create": _l("Trigger added"),
    "extraction_trigger.update": _l("Trigger changed (new version)"),
    "extraction.evaluation_failed": _l("A trigger could not evaluate a fact (see the log)"),
    "followup_prompt.dismiss": _l("Possible adverse event dismissed"),
    # MDT and operations
    "mdt_discussion.request": _l("MDT discussion requested"),
    "mdt_discussion.withdraw": _l("Discussion withdrawn: its operation was cancelled or performed"),
    "mdt_discussion.update": _l("MDT record edited"),
    "mdt_discussion.due_changed": _l("MDT due time changed"),
    "mdt_discussion.disputed": _l("Marked as disputed"),
    "mdt_discussion.overdue": _l("MDT discussion overdue, escalated"),
    "mdt_discussion.schedule": _l("MDT discussion scheduled"),
    "mdt_discussion.hold": _l("MDT discussion held"),
    "mdt_discussion.sign": _l("MDT record signed"),
    "mdt_discussion.cancel": _l("MDT discussion cancelled"),
    "mdt_clinic.create": _l("MDT clinic added"),
    "mdt_clinic.update": _l("MDT clinic changed"),
    "mdt_clinic.deactivate": _l("MDT clinic closed"),
    "mdt_participant.add": _l("Participant added"),
    "mdt_participant.update": _l("Participant changed"),
    "mdt_participant.attendance": _l("Attendance recorded"),
    "mdt_participant.remove": _l("Participant removed"),
    "mdt_addendum.add": _l("Addendum added"),
    "mdt_alert.preop_missing": _l("Reminder: no signed pre-operative MDT"),
    "operation.book": _l("Operation booked"),
    "operation.perform": _l("Operation performed"),
    "operation.cancel": _l("Operation cancelled"),
    "operation.record_performed": _l("Operation performed, as the HIS reported it"),
    "operation.booking_check": _l("Asked whether the operation may be booked"),
    # Indicators
    "indicator_snapshot.freeze": _l("Monthly indicators frozen"),
    "indicator_rollup.refresh": _l("Indicator figures refreshed"),
    "indicator_target.set": _l("Indicator target set"),
    "indicator_setup.set": _l("How the indicator gets its value changed"),
    "indicator_setup.reset": _l("Indicator set back to the catalogue's default"),
    "local_indicator.create": _l("Department's own indicator created"),
    "local_indicator.update": _l("Department's own indicator changed"),
    "local_indicator.deactivate": _l("Department's own indicator switched off"),
    "local_indicator.reactivate": _l("Department's own indicator switched on again"),
    "indicator_report.submit": _l("Indicator value entered"),
    "indicator_report.revise": _l("Indicator value corrected"),
    "indicator_report.approve": _l("Indicator value approved"),
    "indicator_report.return": _l("Indicator value returned"),
    "indicator_report.reopen": _l("Approved indicator value re-opened"),
    "indicator_report.reminded": _l("Reminder: indicator values still to enter"),
    "indicator_report.overdue": _l("Notice: indicator values overdue"),
    "region_outbox.queue": _l("Submission to the centre queued"),
    "region_outbox.send": _l("Submission sent to the centre"),
    "region_outbox.accept": _l("Submission accepted by the centre"),
    "region_outbox.reject": _l("Submission rejected by the centre"),
    "region_outbox.wait": _l("Centre did not answer; submission waiting"),
    "region_outbox.requeue": _l("Rejected submission queued again"),
    "region_hospital.create": _l("Hospital registered at the centre"),
    "region_hospital.update": _l("Hospital's details changed"),
    "region_hospital.change_key": _l("Hospital's signing key replaced"),
    "region_hospital.retire": _l("Hospital retired: its submissions are refused"),
    "region_hospital.reactivate": _l("Hospital taken back"),
    "region_submission.receive": _l("Submission received from a hospital"),
    "region_reminder.send": _l("Centre reminded of hospitals that have not sent a month"),
    "indicator_form.generate": _l("Indicator form generated and archived"),
    "indicator_form.remind": _l("Reminder: indicator values missing for the annual form"),
}
for _kind, _what in INTAKE_KINDS.items():
    AUDIT_ACTIONS[f"intake.{_kind}.created"] = _l("%(what)s imported (new)", what=_what)
    AUDIT_ACTIONS[f"intake.{_kind}.updated"] = _l("%(what)s imported (changed)", what=_what)

#: Actors that are not a user account ("system:<job>" is matched by its prefix).
ACTORS = {
    "anonymous": _l("Anonymous reporter"),
    "public": _l("Patient/family"),
    "patient": _l("The patient (page answered online)"),
    "reporter": _l("Reporter"),
    "his": _l("Hospital information system"),
    "system": _l("System (automatic)"),
    "system:cli": _l("System (command line)"),
    "system:demo-data": _l("System (demo data)"),
    "system:scheduler": _l("System (scheduler)"),
}

register_labels({"audit_action": AUDIT_ACTIONS, "audit_actor": ACTORS})


def actor_key(actor: str) -> str:
    """The ACTORS entry of a non-user actor: scheduler jobs are named "<domain>.<job>"."""
    if actor in ACTORS:
        return actor
    if actor.startswith("his"):
        return "his"
    if actor.startswith("system:"):
        return "system:scheduler" if "." in actor else "system"
    return actor


@dataclass(frozen=True)
class Row:
    at: datetime
    action: str
    #: Who did it, as a person reads it; "" when the page may not show who.
    actor: str
    #: The end of the span the entry lies in, when only that span is stored (an anonymous reporter's hour).
    until: datetime | None = None


#: app.extensions key of the user lookup timelines name their actors with.
USER_LOOKUP = "qcflow.audit_user_lookup"


def install_user_lookup(app: Flask, lookup: Callable[[set[int]], Iterable]) -> None:
    """Let timelines find users by id: the kernel knows no user model, the auth domain installs this at app
    creation (each user has `id`, `display_name` and `department.label(language)`)."""
    app.extensions[USER_LOOKUP] = lookup


def audit_rows(entries, show_users: bool = True, reporter: str | None = None) -> list[Row]:
    """Timeline rows: labelled actions, actors as names (users as "name · department").

    With show_users false, user actors are left blank (a reporter's identity is not every reader's to see);
    the actor `reporter` (a case's reporter, "user:<id>", while the page has not asked to show who) reads
    as "Reporter".
    """
    ids = {int(e.actor.split(":", 1)[1]) for e in entries if e.actor != reporter
           and e.actor.startswith("user:") and e.actor.split(":", 1)[1].isdigit()} if show_users else set()
    users = {u.id: u for u in current_app.extensions[USER_LOOKUP](ids)} if ids else {}
    language = current_language()
    rows = []
    for entry in entries:
        if reporter is not None and entry.actor == reporter:
            who = label("audit_actor", "reporter") if show_users else ""
        elif entry.actor.startswith("user:"):
            user = users.get(int(entry.actor[5:])) if entry.actor[5:].isdigit() else None
            if not show_users:
                who = ""
            elif user is None:
                who = str(_l("Former user"))
            else:
                who = f"{user.display_name} · {user.department.label(language)}"
        else:
            who = label("audit_actor", actor_key(entry.actor))
        rows.append(Row(entry.at, label("audit_action", entry.action), who, getattr(entry, "until", None)))
    return rows
