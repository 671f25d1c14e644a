"""The triggers' telemetry: configure once, then one span per invocation.

Every trigger in ``functions/`` wraps its work in :func:`traced_invocation`, which configures
OpenTelemetry for the process on first use (``shared.adapters.telemetry``: Azure Monitor when
``APPLICATIONINSIGHTS_CONNECTION_STRING`` is set, nothing otherwise) and opens the
invocation's span. A queue message's ``traceparent`` makes the span a child of the span that
sent it; otherwise the host's trace context (``func.Context.trace_context``) is the parent
(``shared.telemetry._tracing`` says why).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from opentelemetry.trace import Span

from shared.adapters.telemetry import configure_telemetry
from shared.rewrap import peek_message
from shared.telemetry import (
    ATTR_INVOCATION_ID,
    ATTR_JOB_ID,
    ATTR_MESSAGE_ID,
    ATTR_MESSAGE_KIND,
    ATTR_OPERATION_ID,
    ATTR_SLICE,
    invocation_span,
)


def host_traceparent(context: object) -> str | None:
    """The host's ``traceparent`` for this invocation, from a ``func.Context`` (or ``None``).

    The worker's ``TraceContext`` spells it ``trace_parent`` (azure-functions' interface) and,
    in older workers, ``Traceparent``; either is read.
    """
    trace_context = getattr(context, "trace_context", None)
    for name in ("trace_parent", "Traceparent"):
        value = getattr(trace_context, name, None)
        if isinstance(value, str) and value:
            return value
    return None


@contextmanager
def traced_invocation(
    function: str,
    context: object,
    *,
    trigger: str,
    message_body: str | None = None,
    message_id: str | None = None,
    attributes: Mapping[str, str | int | None] | None = None,
) -> Iterator[Span]:
    """Configure telemetry (once) and run the invocation inside its span.

    Args:
        function: the function's name.
        context: the invocation's ``func.Context`` (its trace context; may be ``None``).
        trigger: ``pubsub`` (Event Grid, queue), ``timer`` or ``http``.
        message_body: a queue message's text: its ``traceparent`` (the parent), kind, job or
            operation id and slice become the span's.
        message_id: the queue message's id.
        attributes: more ids (``keyward.event_id``): never key material.
    """
    configure_telemetry(os.environ)
    values: dict[str, str | int | None] = dict(attributes or {})
    values[ATTR_INVOCATION_ID] = getattr(context, "invocation_id", None)
    parent = None
    if message_body is not None:
        peek = peek_message(message_body)
        parent = peek.traceparent
        values.update(
            {
                ATTR_MESSAGE_KIND: peek.kind,
                ATTR_MESSAGE_ID: message_id,
                ATTR_JOB_ID: peek.job_id,
                ATTR_OPERATION_ID: peek.operation_id,
                ATTR_SLICE: peek.slice_number,
            }
        )
    with invocation_span(
        function,
        trigger=trigger,
        message_traceparent=parent,
        host_traceparent=host_traceparent(context),
        attributes=values,
    ) as span:
        yield span
