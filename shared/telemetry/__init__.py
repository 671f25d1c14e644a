"""keyward's telemetry vocabulary: every span helper, metric and attribute, named once.

Imports only the OpenTelemetry API (never the SDK, never ``azure``), so every layer above
``shared.errors`` can record: the rewrap engine, the adapters, the services. Without a
configured SDK (no Application Insights connection string, ``shared.adapters.telemetry``)
every call here is the API's no-op. What is recorded is ids, versions, counts and reasons:
never key material, wrapped keys, tokens or connection strings (docs/telemetry.md).
"""

from shared.telemetry._metrics import (
    dependent_verdict_changed,
    event_rejected,
    job_progress,
    page_committed,
    vault_operation,
    vault_throttled,
)
from shared.telemetry._names import (
    ATTR_CALLER_OBJECT_ID,
    ATTR_CALLER_ROLES,
    ATTR_CALLER_TENANT_ID,
    ATTR_CALLER_VIA,
    ATTR_EVENT_ID,
    ATTR_FUNCTION,
    ATTR_INVOCATION_ID,
    ATTR_JOB_ID,
    ATTR_KEY,
    ATTR_KIND,
    ATTR_MESSAGE_ID,
    ATTR_MESSAGE_KIND,
    ATTR_OPERATION_ID,
    ATTR_OUTCOME,
    ATTR_REASON,
    ATTR_SHARD,
    ATTR_SLICE,
    ATTR_TRIGGER,
    ATTR_VAULT,
    ATTR_VERDICT,
    METER_NAME,
    METRICS,
    TRACER_NAME,
    MetricSpec,
    vault_of,
)
from shared.telemetry._tracing import (
    annotate_current_span,
    current_traceparent,
    invocation_span,
    is_traceparent,
)

__all__ = [
    "ATTR_CALLER_OBJECT_ID",
    "ATTR_CALLER_ROLES",
    "ATTR_CALLER_TENANT_ID",
    "ATTR_CALLER_VIA",
    "annotate_current_span",
    "ATTR_EVENT_ID",
    "ATTR_FUNCTION",
    "ATTR_INVOCATION_ID",
    "ATTR_JOB_ID",
    "ATTR_KEY",
    "ATTR_KIND",
    "ATTR_MESSAGE_ID",
    "ATTR_MESSAGE_KIND",
    "ATTR_OPERATION_ID",
    "ATTR_OUTCOME",
    "ATTR_REASON",
    "ATTR_SHARD",
    "ATTR_SLICE",
    "ATTR_TRIGGER",
    "ATTR_VAULT",
    "ATTR_VERDICT",
    "METER_NAME",
    "METRICS",
    "TRACER_NAME",
    "MetricSpec",
    "current_traceparent",
    "dependent_verdict_changed",
    "event_rejected",
    "invocation_span",
    "is_traceparent",
    "job_progress",
    "page_committed",
    "vault_of",
    "vault_operation",
    "vault_throttled",
]
