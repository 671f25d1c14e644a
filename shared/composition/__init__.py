"""The composition root: the one place that builds keyward's clients and services.

Trigger modules (``functions/``), the local host and the demo import from here. Everything
below is built once per process and event loop from :class:`shared.settings.Settings`: one
credential, one state table client, one Key Vault adapter, one queue client, the configured
DEK stores and the key-dependent resource kinds. Two registries say what exists:

* ``_stores``: the DEK-store kinds, how the app builds them and how the CLI opens one;
* ``_dependents.KINDS``: the key-dependent resource kinds (Face today).

``build_dependent_service`` builds one kind's service with clients of its own, the way the
context does, for tests that inject a flag table, a clock and an Event Grid credential.
"""

from shared.composition._context import (
    AppContext,
    context_for_current_loop,
    default_credential,
    reset_contexts,
)
from shared.composition._dependents import build_dependent_service
from shared.composition._onboarding import OnboardingSession, deployment_for, open_onboarding
from shared.composition._operator import operator_caller
from shared.composition._record_ports import RecordPorts, default_kek_table, open_record_ports
from shared.composition._stores import (
    CONNECTION_STRING_ENV,
    StorageClients,
    StoreKind,
    StoreSpec,
    build_app_stores,
    open_store,
    parse_connection,
    parse_path,
    parse_store_spec,
    register,
    store_kinds,
)
from shared.composition._telemetry import host_traceparent, traced_invocation
from shared.services._caller import VIA_ADMIN_API, VIA_CLI, Caller
from shared.services._error_answer import error_answer
from shared.services.admin_access import OPERATOR_ROLE, READER_ROLE, Access
from shared.services.admin_access import require as require_access

__all__ = [
    "OnboardingSession",
    "deployment_for",
    "open_onboarding",
    "AppContext",
    "Caller",
    "VIA_ADMIN_API",
    "VIA_CLI",
    "Access",
    "READER_ROLE",
    "OPERATOR_ROLE",
    "require_access",
    "RecordPorts",
    "default_kek_table",
    "open_record_ports",
    "operator_caller",
    "build_dependent_service",
    "error_answer",
    "context_for_current_loop",
    "default_credential",
    "reset_contexts",
    # the DEK-store registry
    "CONNECTION_STRING_ENV",
    "StorageClients",
    "StoreKind",
    "StoreSpec",
    "build_app_stores",
    "open_store",
    "parse_connection",
    "parse_path",
    "parse_store_spec",
    "register",
    "store_kinds",
    # telemetry: one span per invocation
    "host_traceparent",
    "traced_invocation",
]
