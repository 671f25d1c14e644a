"""``on_key_vault_event``: Key Vault and subscription events from Event Grid.

Accepts the Event Grid schema and CloudEvents 1.0 (the binding yields ``EventGridEvent`` or
``CloudEvent``). Plans and enqueues only: Event Grid waits 30 s for an answer; the rewrap and
the key-dependent resources' follow-up run in ``rewrap_worker``. Returning normally
acknowledges the event (also for rejected ones, and for events the vault refuses for good:
unknown key or version, 403; all recorded); raising makes Event Grid redeliver (transient
faults).
"""

from __future__ import annotations

import logging

import azure.functions as func

from shared.composition import context_for_current_loop, traced_invocation
from shared.events import event_dict_from_binding
from shared.telemetry import ATTR_EVENT_ID

bp = func.Blueprint()
_log = logging.getLogger("keyward.functions.key_events")


@bp.function_name("on_key_vault_event")
@bp.event_grid_trigger(arg_name="event")
async def on_key_vault_event(event: func.EventGridEvent, context: func.Context) -> None:
    attributes = {ATTR_EVENT_ID: event.id}
    with traced_invocation("on_key_vault_event", context, trigger="pubsub", attributes=attributes):
        app = await context_for_current_loop()
        outcome = await app.key_events().handle(event_dict_from_binding(event))
        _log.info(outcome.log_line())
