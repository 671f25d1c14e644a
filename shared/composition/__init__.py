"""The composition root: the one place that builds keyward's clients and services.

Trigger modules (``functions/``), the local host and the demo import from here. Everything
below is built once per process and event loop from :class:`shared.settings.Settings`: one
credential, one state table client, one Key Vault adapter, one queue client, the configured
DEK stores and the key-dependent resource kinds.
"""

from shared.composition._context import (
    AppContext,
    context_for_current_loop,
    default_credential,
    reset_contexts,
)

__all__ = ["AppContext", "context_for_current_loop", "default_credential", "reset_contexts"]
