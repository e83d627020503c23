"""The operation workflow (DESIGN §5): planned → booked → performed, or cancelled."""
from __future__ import annotations

from enum import StrEnum

from qcflow.auth.permissions import PERMISSIONS
from qcflow.core.workflow import Transition as T, Workflow


class OperationState(StrEnum):
    PLANNED = "planned"
    BOOKED = "booked"
    PERFORMED = "performed"
    CANCELLED = "cancelled"


S = OperationState
#: The HIS (an API client with the clinician role) and the quality office drive operations.
CLINICAL = PERMISSIONS["operations"]

OPERATION_WORKFLOW = Workflow(
    "operation",
    OperationState,
    [
        T("book",    {S.PLANNED},           S.BOOKED,    CLINICAL),
        T("perform", {S.BOOKED},            S.PERFORMED, CLINICAL),
        T("cancel",  {S.PLANNED, S.BOOKED}, S.CANCELLED, CLINICAL),
    ],
    initial=S.PLANNED,
)
