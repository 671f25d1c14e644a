"""The composition root: the one place that builds keyward's clients and services.

Trigger modules (``functions/``), the local host and the demo import from here. Everything
below is built once per process and event loop from :class:`shared.settings.Settings`: one
credential, one state table client, one Key Vault adapter, one queue client, the configured
DEK stores and the key-dependent resource kinds (their registry: ``_dependents.KINDS``).

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

__all__ = [
    "AppContext",
    "build_dependent_service",
    "context_for_current_loop",
    "default_credential",
    "reset_contexts",
]
