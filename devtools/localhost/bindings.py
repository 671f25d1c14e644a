"""Turn raw trigger payloads into what a function receives, through azure.functions' own
converters (the ones the Python worker uses), and discover the app's functions.

Timer schedules are read by the app's own ``shared.settings.Ncrontab`` (the host imports it),
so the local host fires a timer exactly when the schedule the settings check accepted says.
"""

from __future__ import annotations

import datetime as dt
import inspect
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import azure.functions as func
from azure.functions.eventgrid import EventGridEventInConverter
from azure.functions.meta import Datum
from azure.functions.queue import QueueMessageInConverter
from azure.functions.timer import TimerRequestConverter

EVENT_GRID_TRIGGER = "eventGridTrigger"
QUEUE_TRIGGER = "queueTrigger"
TIMER_TRIGGER = "timerTrigger"
HTTP_TRIGGER = "httpTrigger"


@dataclass(frozen=True)
class FunctionSpec:
    """One indexed function: its trigger binding and the Python callable behind it."""

    name: str
    trigger_type: str
    binding: Mapping[str, Any]
    param_name: str
    user_function: Callable[..., Any]

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.user_function)


def discover(app: func.FunctionApp | Iterable[Any]) -> dict[str, FunctionSpec]:
    """Index ``app``, or take functions it already indexed (``get_functions`` may only run
    once per app object: a second call raises on the names the first one built)."""
    functions = app.get_functions() if isinstance(app, func.FunctionApp) else list(app)
    specs: dict[str, FunctionSpec] = {}
    for function in functions:
        trigger = function.get_trigger()
        if trigger is None:
            continue
        binding = trigger.get_dict_repr()
        name = function.get_function_name()
        assert name is not None
        specs[name] = FunctionSpec(
            name=name,
            trigger_type=str(binding["type"]),
            binding=binding,
            param_name=str(binding["name"]),
            user_function=function.get_user_function(),
        )
    return specs


def resolve_setting_reference(value: str, settings: Mapping[str, str]) -> str:
    """``%NAME%`` binding expressions are app-setting references, as in the real host."""
    if len(value) > 2 and value.startswith("%") and value.endswith("%"):
        name = value[1:-1]
        if name not in settings:
            raise KeyError(f"binding refers to app setting {name!r}, which is not set")
        return settings[name]
    return value


def event_grid_input(event: Mapping[str, Any]) -> Any:
    """One element of an Event Grid delivery, as the function's parameter."""
    datum = Datum(type="json", value=json.dumps(event))
    return EventGridEventInConverter.decode(datum, trigger_metadata={})


def queue_input(
    *,
    message_id: str,
    body: str,
    dequeue_count: int,
    inserted_on: dt.datetime | None,
    expires_on: dt.datetime | None,
    next_visible_on: dt.datetime | None,
    pop_receipt: str,
) -> func.QueueMessage:
    """A queue message, with the trigger metadata the host sends the worker."""

    def when(value: dt.datetime | None) -> Datum | None:
        return None if value is None else Datum(type="string", value=value.isoformat())

    metadata = {
        "Id": Datum(type="string", value=message_id),
        "DequeueCount": Datum(type="int", value=dequeue_count),
        "InsertionTime": when(inserted_on),
        "ExpirationTime": when(expires_on),
        "NextVisibleTime": when(next_visible_on),
        "PopReceipt": Datum(type="string", value=pop_receipt),
    }
    present = {k: v for k, v in metadata.items() if v is not None}
    decoded: func.QueueMessage = QueueMessageInConverter.decode(
        Datum(type="string", value=body), trigger_metadata=present
    )
    return decoded


def timer_input(*, past_due: bool, last: dt.datetime | None, next_: dt.datetime) -> Any:
    """The TimerRequest a timer function receives."""
    info = {
        "IsPastDue": past_due,
        "ScheduleStatus": {
            "Last": last.isoformat() if last else None,
            "Next": next_.isoformat(),
            "LastUpdated": dt.datetime.now(dt.UTC).isoformat(),
        },
        "Schedule": {"AdjustForDST": True},
    }
    return TimerRequestConverter.decode(
        Datum(type="json", value=json.dumps(info)), trigger_metadata={}
    )
