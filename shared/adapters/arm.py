"""Azure Resource Manager clients: built once per context, shared by every ARM reader and writer.

The kinds' inventories and writers (``arm_face``) and the key-access reader (vaults, role
assignments) all talk to ARM with the same credential, endpoint and CA. :class:`ArmClients`
holds one management client per (SDK client class, subscription), created on first use and
closed together, so two adapters asking the same subscription share one client and its
connection pool.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from azure.core.credentials_async import AsyncTokenCredential

from shared.adapters._pipeline import pinned_client_kwargs
from shared.settings import PUBLIC_ARM_ENDPOINT

#: The real ARM audience, also when ``base_url`` points at a sovereign cloud's ARM host.
ARM_SCOPE_SUFFIX = "/.default"
ClientT = TypeVar("ClientT")


def management_kwargs(
    arm_endpoint: str, ca_bundle: str | None, *, polling_interval: float | None = None
) -> dict[str, Any]:
    """Keyword arguments shared by every azure-mgmt client keyward builds.

    ``credential_scopes`` is the endpoint's own audience (management.azure.com, or the
    sovereign cloud's); ``connection_verify`` is set only for the emulator's CA bundle. No
    redirect is followed, and no request leaves the endpoint's origin (``_pipeline``).
    """
    endpoint = arm_endpoint.rstrip("/")
    audience = endpoint
    if endpoint.startswith(("https://127.0.0.1", "https://localhost")):
        audience = PUBLIC_ARM_ENDPOINT  # the emulator checks the real audience
    kwargs: dict[str, Any] = {
        "base_url": endpoint,
        "credential_scopes": [audience + ARM_SCOPE_SUFFIX],
        # No redirects; listings' nextLink and pollers' URLs stay on the ARM endpoint.
        **pinned_client_kwargs(endpoint),
    }
    if ca_bundle:
        kwargs["connection_verify"] = ca_bundle
    if polling_interval is not None:
        kwargs["polling_interval"] = polling_interval
    return kwargs


class ArmClients:
    """One management client per (client class, subscription), created on first use."""

    def __init__(self, credential: AsyncTokenCredential, kwargs: Mapping[str, Any]) -> None:
        self._credential = credential
        self._kwargs = dict(kwargs)
        self._clients: dict[tuple[Callable[..., Any], str], Any] = {}

    @classmethod
    def for_endpoint(
        cls, credential: AsyncTokenCredential, arm_endpoint: str, ca_bundle: str | None
    ) -> ArmClients:
        """Clients for ``arm_endpoint`` (settings' ``arm_endpoint`` and ``ca_bundle``)."""
        return cls(credential, management_kwargs(arm_endpoint, ca_bundle))

    def get(self, client_class: Callable[..., ClientT], subscription_id: str) -> ClientT:
        """The ``client_class`` (an azure-mgmt aio client) for ``subscription_id``."""
        key = (client_class, subscription_id.lower())
        client = self._clients.get(key)
        if client is None:
            client = client_class(self._credential, subscription_id, **self._kwargs)
            self._clients[key] = client
        result: ClientT = client
        return result

    async def close(self) -> None:
        """Close every client (each on its own: one failing close leaves none open)."""
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            with contextlib.suppress(Exception):
                result = client.close()  # the multi-API clients' close is untyped
                if inspect.isawaitable(result):
                    await result

    def __repr__(self) -> str:
        return f"ArmClients(base_url={self._kwargs.get('base_url')!r}, open={len(self._clients)})"
