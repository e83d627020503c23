"""Automatic extraction over the JSON API (DESIGN §10): the triggers. Their firings are possible events
(/api/v1/followup/prompts?source=trigger)."""
from __future__ import annotations

from qcflow.auth.permissions import allowed, current_actor
from qcflow.core.api import Blueprint
from qcflow.core.time import now
from qcflow.extraction import queries, services
from qcflow.extraction.schemas import TriggerChangeIn, TriggerIn, TriggerOut

blp = Blueprint("extraction_api", __name__, url_prefix="/api/v1/triggers",
                description="Automatic extraction (自动提取): triggers on HIS data")


@blp.get("")
@allowed("triggers")
@blp.response(200, TriggerOut(many=True))
def list_triggers():
    """Every trigger, active or switched off, with its rule, parameters, window and version."""
    return queries.triggers()


@blp.post("")
@allowed("triggers")
@blp.arguments(TriggerIn)
@blp.response(201, TriggerOut)
@blp.alt_response(409, description="A trigger with this code exists")
@blp.alt_response(422, description="The rule cannot be evaluated with these parameters or window")
def create_trigger(data):
    """A new trigger of one of the rules; checked before it is saved (audited)."""
    return services.create_trigger(data, actor=current_actor(), now=now())


@blp.get("/<code>")
@allowed("triggers")
@blp.response(200, TriggerOut)
@blp.alt_response(404, description="No trigger with this code")
def get_trigger(code):
    return queries.load_trigger(code)


@blp.patch("/<code>")
@allowed("triggers")
@blp.arguments(TriggerChangeIn)
@blp.response(200, TriggerOut)
@blp.alt_response(404, description="No trigger with this code")
@blp.alt_response(409, description="A newer version exists")
@blp.alt_response(422, description="The rule cannot be evaluated with these parameters or window")
def change_trigger(data, code):
    """Tune a trigger or switch it off (`is_active`): a new version, audited; it applies to facts arriving
    from now on."""
    trigger = queries.load_trigger(code)
    return services.update_trigger(trigger, data, actor=current_actor(), now=now(),
                                   expected_version=data.pop("version"))
