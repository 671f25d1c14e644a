"""Turn raw trigger payloads into what a function receives, through azure.functions' own
converters (the ones the Python worker uses), and discover the app's functions.

Timer schedules are read by the app's own ``shared.settings.Ncrontab`` (the host imports it),
so the local host fires a timer exactly when the schedule the settings check accepted says.
"""

from __future__ import annotations

import datetime as dt
import inspect
import json
import secrets
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import azure.functions as func
from azure.functions._abc import RetryContext, RpcException, TraceContext
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

    @property
    def wants_context(self) -> bool:
        """Whether the function declares ``context`` (the worker then passes a Context)."""
        return "context" in inspect.signature(self.user_function).parameters


def child_traceparent(parent: str | None = None) -> str:
    """The host's trace context for one invocation: a new span id, in ``parent``'s trace when
    the trigger brought one (an HTTP or Event Grid request's ``traceparent`` header), else in a
    new trace (a queue message, a timer), as the Functions host starts an activity per
    invocation (W3C Trace Context, version 00)."""
    parts = (parent or "").split("-")
    trace_id = parts[1] if len(parts) == 4 and len(parts[1]) == 32 else secrets.token_hex(16)
    return f"00-{trace_id}-{secrets.token_hex(8)}-01"


class LocalTraceContext(TraceContext):
    """``func.Context.trace_context`` as the worker fills it from the host's request."""

    def __init__(self, trace_parent: str, trace_state: str = "") -> None:
        self._parent = trace_parent
        self._state = trace_state

    @property
    def trace_parent(self) -> str:
        return self._parent

    @property
    def trace_state(self) -> str:
        return self._state

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class _NoRetry(RetryContext):
    @property
    def retry_count(self) -> int:
        return 0

    @property
    def max_retry_count(self) -> int:
        return 0

    @property
    def exception(self) -> RpcException:
        raise AttributeError("no retry policy: no exception")


class LocalContext(func.Context):
    """The ``context`` argument the Python worker passes a function that declares one."""

    _local = threading.local()

    def __init__(self, function_name: str, trace_parent: str) -> None:
        self._name = function_name
        self._invocation_id = secrets.token_hex(16)
        self._trace = LocalTraceContext(trace_parent)

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> Any:
        return self._local

    @property
    def function_name(self) -> str:
        return self._name

    @property
    def function_directory(self) -> str:
        return ""

    @property
    def trace_context(self) -> TraceContext:
        return self._trace

    @property
    def retry_context(self) -> RetryContext:
        return _NoRetry()


def invocation_context(function_name: str, parent: str | None = None) -> LocalContext:
    """A fresh invocation context (tests calling a function without the host use it too)."""
    return LocalContext(function_name, child_traceparent(parent))


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


def with_context(name: str, user_function: Callable[..., Any]) -> Callable[..., Any]:
    """``user_function`` as a test calls it without the host: when it declares ``context``,
    each call gets a fresh invocation context, as the worker passes one."""
    if "context" not in inspect.signature(user_function).parameters:
        return user_function

    def call(*args: Any, **kwargs: Any) -> Any:
        return user_function(*args, context=invocation_context(name), **kwargs)

    return call
