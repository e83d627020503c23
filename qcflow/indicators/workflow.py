"""The workflow of a reported monthly value (docs/indicators.md, Reported values): a department (or the HIS)
submits it, the quality office approves or returns it; an approved month is locked until the quality office
re-opens it with a reason."""
from __future__ import annotations

from enum import StrEnum

from flask_babel import gettext as _

from qcflow.auth.permissions import PERMISSIONS
from qcflow.core.workflow import Transition as T, Workflow


class ReportState(StrEnum):
    #: A report being created: never stored (the first step, submit, stores it as submitted).
    NEW = "new"
    SUBMITTED = "submitted"
    RETURNED = "returned"
    APPROVED = "approved"
    REOPENED = "reopened"


def reason_guard(report, data):
    if not (data.get("reason") or "").strip():
        return _("Give a reason: the department reads it.")
    return None


#: The head of the department a report is for (that the department reports the indicator is the service's rule).
REPORTING_HEAD = "reporting_head"
#: The HIS pushing a value through intake: the intake service grants this role for its rows only.
HIS = "his"
QUALITY = PERMISSIONS["approve_indicators"]
REPORTERS = QUALITY | {REPORTING_HEAD, HIS}


def report_relations(report, actor):
    if "dept_head" in actor.roles and actor.department_id is not None and actor.department_id == report.department_id:
        return {REPORTING_HEAD}
    return set()


def refusal(action: str) -> str:
    if action in ("submit", "revise"):
        return _("Only a head of the reporting department, the quality office or the HIS may enter this value.")
    return _("Only the quality office may approve, return or re-open a reported value.")


S = ReportState
#: States in which the department (or the HIS) may still change the value: it is not awaiting nor past a decision.
OPEN_TO_REVISION = (S.SUBMITTED, S.RETURNED, S.REOPENED)

REPORT_WORKFLOW = Workflow(
    "indicator_report",
    ReportState,
    [
        #  action     from                 to            roles      guard
        T("submit",  {S.NEW},              S.SUBMITTED,  REPORTERS),
        T("revise",  set(OPEN_TO_REVISION), S.SUBMITTED, REPORTERS),
        T("approve", {S.SUBMITTED},        S.APPROVED,   QUALITY),
        T("return",  {S.SUBMITTED},        S.RETURNED,   QUALITY,   reason_guard),
        T("reopen",  {S.APPROVED},         S.REOPENED,   QUALITY,   reason_guard),
    ],
    relations=report_relations,
    initial=S.NEW,
    refusal=refusal,
    table="indicator_report",
    phases={
        "owed": {S.RETURNED, S.REOPENED},
        "awaiting_decision": {S.SUBMITTED},
        "locked": {S.APPROVED},
    },
)
