"""The operation workflow (DESIGN §5): planned → booked → performed, or cancelled."""
from __future__ import annotations

from enum import StrEnum

from flask_babel import gettext as _

from qcflow.auth.permissions import PERMISSIONS
from qcflow.core.workflow import Gate, Transition as T, Workflow


class OperationState(StrEnum):
    PLANNED = "planned"
    BOOKED = "booked"
    PERFORMED = "performed"
    CANCELLED = "cancelled"


def _booking_missing(operation) -> list[str]:
    # The services module imports this table, so its rule is looked up when the gate is asked.
    from qcflow.clinical.services import booking_missing

    return booking_missing(operation)


#: Grade 4 and restricted technology need a signed pre-operative MDT within the validity window, grade 3
#: and above a valid surgeon authorisation. An operation that needs the MDT may be booked by an emergency
#: override instead, whatever is missing (the service asks its reason, audits and reports it).
BOOKING_GATE = Gate(
    "booking gate (signed pre-op MDT, surgeon authorisation, or emergency override)",
    _booking_missing,
    lambda missing: _("This operation cannot be booked yet. %(reasons)s", reasons=" ".join(missing)),
    may_override=lambda operation: operation.needs_mdt,
    override_field="emergency_override",
)

S = OperationState
#: The HIS pushing what happened through intake: the intake service grants this role for the pushed steps only;
#: no user holds it, so no page or transitions call offers the HIS's own step.
HIS = "his"
#: Users who operate (their department's operations) and the HIS drive operations.
CLINICAL = PERMISSIONS["operations"] | {HIS}

OPERATION_WORKFLOW = Workflow(
    "operation",
    OperationState,
    [
        T("book",    {S.PLANNED},           S.BOOKED,    CLINICAL,  BOOKING_GATE),
        T("perform", {S.BOOKED},            S.PERFORMED, CLINICAL),
        T("cancel",  {S.PLANNED, S.BOOKED}, S.CANCELLED, CLINICAL),
        # The HIS reports an operation performed that was never booked here: a fact, recorded with its real
        # time whatever the gate lacks (the service reports a missing discussion to the quality office).
        T("record_performed", {S.PLANNED}, S.PERFORMED, {HIS}),
    ],
    initial=S.PLANNED,
    table="operation",
)
