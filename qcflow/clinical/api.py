"""HIS intake, reference data and operation steps over the JSON API."""
from __future__ import annotations

from flask import request
from marshmallow import fields, validate

from qcflow.auth.permissions import PERMISSIONS, allowed, authenticated, current_actor, roles_required
from qcflow.clinical import queries, services
from qcflow.clinical.schemas import (
    BatchOut,
    BookingCheckIn,
    BookingDecisionOut,
    OperationOut,
    OperationTransitionIn,
    PatientOut,
)
from qcflow.core.api import Blueprint
from qcflow.core.schemas import BaseSchema, QueryArgs
from qcflow.core.time import now

blp = Blueprint("clinical_api", __name__, url_prefix="/api/v1", description="Clinical intake from the HIS (HIS 数据接入)")


class BatchIn(BaseSchema):
    #: Rows are loaded one by one by the service (a bad row is reported, good rows land); the document shows
    #: each kind's row schema (`batch_doc`).
    items = fields.List(fields.Dict(), required=True, validate=validate.Length(min=1, max=services.MAX_BATCH))
    strict = fields.Boolean(load_default=False, metadata={"description": "true: one bad row and nothing lands"})


def batch_doc(kind: services.Kind) -> dict:
    """The documented request body of one kind: its rows' schema, with the limits BatchIn checks."""
    batch = {"type": "object", "required": ["items"], "properties": {
        "items": {"type": "array", "minItems": 1, "maxItems": services.MAX_BATCH, "items": kind.schema,
                  "description": "The rows; each is checked on its own: a bad row comes back with its errors and "
                                 "the good rows land (unless strict)"},
        "strict": {"type": "boolean", "default": False, "description": "true: one bad row and nothing lands"}}}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": batch}}}}


class PatientArgs(QueryArgs):
    mrn = fields.String(validate=validate.Length(max=40))



def _intake(kind: services.Kind):
    def intake(data):
        results = services.import_rows(kind.name, data["items"], actor=current_actor(), now=now(),
                                       strict=data["strict"])
        summary = services.summarise(results)
        # Some rows landed: 200 with per-row results. None did: 422, with the same per-row results.
        landed = summary["created"] + summary["updated"] + summary["unchanged"]
        return summary, (200 if landed or not summary["failed"] else 422)

    what = kind.schema.__doc__
    intake.__doc__ = (f"Upsert {kind.name}: {what[0].lower()}{what[1:]}\n\nGood rows land, bad "
                      "rows come back with their errors; re-sending changes nothing, and a field a row leaves out "
                      "keeps its value. Each row lists what it set off (`effects`). See docs/his-integration.md.")
    for decorate in (
        blp.alt_response(422, schema={"oneOf": [{"$ref": "#/components/schemas/BatchOut"},
                                                {"$ref": "#/components/schemas/Error"}]},
                         description="No row could be accepted (BatchOut, each row's errors listed), or the body is "
                                     "invalid (Error)"),
        blp.response(200, BatchOut),
        blp.doc(**batch_doc(kind)),
        blp.arguments(BatchIn),
        allowed("his_intake"),
        blp.post(f"/intake/{kind.name}", endpoint=f"intake_{kind.name}"),
    ):
        intake = decorate(intake)
    return intake


for _kind in services.KINDS.values():
    _intake(_kind)


@blp.get("/patients")
@allowed("patients")
@blp.arguments(PatientArgs, location="query")
@blp.response(200, PatientOut(many=True))
def patients(args):
    """Find patients by record number (phone and ID numbers masked)."""
    return queries.find_patients(current_actor(), mrn=args.get("mrn"))


@blp.get("/operations/<int:operation_id>")
@authenticated
@blp.response(200, OperationOut)
@blp.alt_response(404, description="No such operation in your department")
def get_operation(operation_id):
    """Show an operation."""
    return queries.load_operation(operation_id, current_actor())


@blp.post("/operations/<int:operation_id>/transitions")
@allowed("operations")
@blp.arguments(OperationTransitionIn)
@blp.response(200, OperationOut)
@blp.alt_response(409, description="Booking gate: what is missing (signed pre-operative MDT, surgeon authorisation)")
def operation_transition(data, operation_id):
    """Book, perform or cancel an operation. Grade 4 / restricted technology books only with a signed
    pre-operative MDT and an authorised surgeon, or with `emergency_override` and a reason."""
    actor = current_actor()
    operation = queries.load_operation(operation_id, actor)
    action, version = data.pop("action"), data.pop("version")
    services.transition_operation(operation, action, data, actor=actor, now=now(), expected_version=version)
    return operation


@blp.post("/operations/booking-check")
@roles_required(*(PERMISSIONS["his_intake"] | PERMISSIONS["operations"]))
@blp.arguments(BookingCheckIn)
@blp.response(200, BookingDecisionOut)
def booking_check(data):
    """May this operation (by HIS id) be booked for this time by this surgeon?

    Asks the booking gate with the values sent (by default the stored time and surgeon) and changes nothing:
    allowed, or every reason as a code with its message and next step in Chinese and English. Each answer is
    audited; send `Idempotency-Key` to make a retry write no second audit entry.
    """
    return services.booking_decision(data, actor=current_actor(), now=now(),
                                     idempotency_key=request.headers.get("Idempotency-Key"))
