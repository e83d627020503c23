"""JSON API of regional mode (hospital side): what this hospital sent to its centre, and the steps the quality
office takes on it."""
from __future__ import annotations

import json

from marshmallow import ValidationError

from qcflow.auth.permissions import allowed, current_actor
from qcflow.core.api import Blueprint
from qcflow.core.errors import Unprocessable, translate_errors
from qcflow.core.i18n import label
from qcflow.core.schemas import Month
from qcflow.core.time import now
from qcflow.region import outbox
from qcflow.region.models import RegionOutbox
from qcflow.region.schemas import (MonthQueueOut, OutboxActionIn, OutboxDetailOut, OutboxListArgs, OutboxPage,
                                   SendOut)

blp = Blueprint("region_api", __name__, url_prefix="/api/v1/region",
                description="Regional centre: what this hospital sent (区域质控中心报送)")

FIELDS = ("id", "kind", "period", "revision", "state", "attempts", "next_attempt_at", "last_attempt_at",
          "last_error", "answered_at", "created_at", "digest", "version")


def present(row: RegionOutbox, *, detail: bool = False) -> dict:
    data = {name: getattr(row, name) for name in FIELDS}
    data["state_label"] = label("region_outbox_state", row.state)
    if detail:
        data["document"] = json.loads(row.document)
        data["answer"] = row.answer
    return data


@blp.get("/submissions")
@allowed("region_submissions")
@blp.arguments(OutboxListArgs, location="query")
@blp.response(200, OutboxPage)
def list_submissions(args):
    """What this hospital queued and sent to the centre, newest first (keyset-paginated by id)."""
    rows = outbox.rows(state=args.get("state"), kind=args.get("kind"), period=args.get("period"),
                       before_id=args.get("cursor"), limit=args["limit"] + 1)
    more = len(rows) > args["limit"]
    rows = rows[:args["limit"]]
    return {"items": [present(row) for row in rows], "next_cursor": rows[-1].id if more else None}


@blp.get("/submissions/<int:row_id>")
@allowed("region_submissions")
@blp.response(200, OutboxDetailOut)
@blp.alt_response(404, description="No such submission")
def get_submission(row_id):
    """One submission with its document and the centre's answer (receipt or reasons)."""
    return present(outbox.get_row(row_id), detail=True)


@blp.post("/submissions/<int:row_id>/send")
@allowed("region_submissions")
@blp.arguments(OutboxActionIn)
@blp.response(200, SendOut)
@blp.alt_response(404, description="No such submission")
@blp.alt_response(409, description="Stale version, already answered, or sending not set up")
def send_submission(data, row_id):
    """Send this submission now: marked and committed, then sent; the centre's answer is recorded."""
    row = outbox.get_row(row_id)
    outcome = outbox.send_now(row, actor=current_actor(), now=now(), expected_version=data["version"])
    return {**present(row, detail=True), "outcome": outcome}


@blp.post("/submissions/<int:row_id>/requeue")
@allowed("region_submissions")
@blp.arguments(OutboxActionIn)
@blp.response(200, OutboxDetailOut)
@blp.alt_response(404, description="No such submission")
@blp.alt_response(409, description="Stale version, or not rejected")
def requeue_submission(data, row_id):
    """Queue a rejected version again, unchanged (its cause was fixed at the centre)."""
    row = outbox.requeue(outbox.get_row(row_id), actor=current_actor(), now=now(), expected_version=data["version"])
    return present(row, detail=True)


@blp.post("/months/<month>/queue")
@allowed("region_submissions")
@blp.response(200, MonthQueueOut)
@blp.alt_response(409, description="Sending not set up (REGION_CENTRE_URL, HOSPITAL_CODE)")
@blp.alt_response(422, description="Not a month (YYYY-MM), or its reporting deadline has not passed")
def queue_month(month):
    """Check a month again: queue its next version when its values changed since the latest one."""
    try:
        first = Month().deserialize(month)
    except ValidationError as error:
        raise Unprocessable(errors={"month": translate_errors(error.messages)}) from None
    row = outbox.check_month(first, actor=current_actor(), now=now())
    return {"queued": present(row) if row is not None else None}
