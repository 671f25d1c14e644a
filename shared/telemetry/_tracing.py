"""Span helpers: one span per invocation, and the W3C ``traceparent`` a queue message carries.

**Parent, not link, for queue messages.** A worker's span is a *child* of the span that sent
its message (the Event Grid invocation, the previous slice, the sweep), so one rotation is one
trace: Application Insights' end-to-end transaction view shows the event, every slice and
every continuation together, and its ``operation_Id`` (the trace id) finds them all. A link
would leave each slice a trace of its own, joined only by a side reference that most views
do not follow. The host's own trace context of the invocation (``func.Context.trace_context``)
is then kept as a *link*, so the host's request telemetry of that invocation is reachable
too. Where no message carries a context (an Event Grid event, a timer), the host's trace
context is the parent, as the Functions worker itself does (docs/telemetry.md, sources).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from shared.telemetry._names import ATTR_FUNCTION, ATTR_TRIGGER, TRACER_NAME

_PROPAGATOR = TraceContextTextMapPropagator()
#: W3C Trace Context version 00: ``00-{trace id}-{parent id}-{flags}``, lowercase hex.
_TRACEPARENT = re.compile(r"^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$")
#: ``faas.trigger`` values (OpenTelemetry FaaS semantic conventions).
_KINDS = {"pubsub": SpanKind.CONSUMER, "http": SpanKind.SERVER, "timer": SpanKind.INTERNAL}


def is_traceparent(value: object) -> bool:
    """Whether ``value`` is a valid W3C ``traceparent`` (version 00, non-zero ids)."""
    return isinstance(value, str) and _TRACEPARENT.match(value) is not None


def current_traceparent() -> str | None:
    """The current span's ``traceparent``, for a message sent now; ``None`` without one."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    value = carrier.get("traceparent")
    return value if is_traceparent(value) else None


def _context_of(traceparent: str | None) -> Context | None:
    if not is_traceparent(traceparent):
        return None
    assert traceparent is not None
    return _PROPAGATOR.extract({"traceparent": traceparent})


@contextmanager
def invocation_span(
    function: str,
    *,
    trigger: str,
    message_traceparent: str | None = None,
    host_traceparent: str | None = None,
    attributes: Mapping[str, str | int | None] | None = None,
) -> Iterator[Span]:
    """The one span of a function invocation, current while the function runs.

    Args:
        function: the function's name (the span's name).
        trigger: ``pubsub`` (Event Grid, queue), ``timer`` or ``http``.
        message_traceparent: the context the triggering queue message carries: the parent.
        host_traceparent: the host's context of this invocation (``context.trace_context``):
            the parent when no message carries one, else a link.
        attributes: ids and counts only (``None`` values are left out).
    """
    message = _context_of(message_traceparent)
    host = _context_of(host_traceparent)
    links: list[Link] = []
    parent = host
    if message is not None:
        parent = message
        if host is not None:
            links.append(Link(trace.get_current_span(host).get_span_context()))
    values = {k: v for k, v in (attributes or {}).items() if v is not None}
    values[ATTR_FUNCTION] = function
    values[ATTR_TRIGGER] = trigger
    tracer = trace.get_tracer(TRACER_NAME)
    with tracer.start_as_current_span(
        function,
        context=parent,
        kind=_KINDS.get(trigger, SpanKind.INTERNAL),
        links=links,
        attributes=values,
    ) as span:
        yield span


def annotate_current_span(attributes: Mapping[str, str]) -> None:
    """Add ids to the span of the running invocation (the admin API's caller, known only
    once its token is proven); nothing without a recording span."""
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attributes(dict(attributes))
