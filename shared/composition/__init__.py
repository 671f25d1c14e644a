"""The composition root: the one place that builds keyward's clients and services.

Trigger modules (``functions/``), the local host and the demo import from here. Everything
below is built once per process and event loop from :class:`shared.settings.Settings`: one
credential, one state table client, one Key Vault adapter, one queue client, the configured
DEK stores and the key-dependent resource kinds. The DEK-store registry (``_stores``) says
which store kinds exist, how the app builds them and how the CLI opens one.
"""

from shared.composition._context import (
    AppContext,
    context_for_current_loop,
    default_credential,
    reset_contexts,
)
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

__all__ = [
    "AppContext",
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
]
