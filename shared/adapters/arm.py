"""Azure Resource Manager clients: built once per context, shared by every ARM reader and writer.

The kinds' inventories and writers (``arm_face``) and the key-access reader (vaults, role
assignments) all talk to ARM with the same credential, endpoint and CA. :class:`ArmClients`
holds one management client per (SDK client class, subscription), created on first use and
closed together, so two adapters asking the same subscription share one client and its
connection pool.

Every request any of them sends, retries included, passes one :class:`ArmPacer` (shared by
all of them, through a :class:`PacingPolicy` in each client's pipeline): at most
``requests_per_second`` requests start in any one-second window
(``KEYWARD_ARM_REQUESTS_PER_SECOND``), so a sweep over thousands of resources spreads its
reads instead of tripping ARM's throttling for the whole subscription.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import copy
import inspect
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from azure.core.credentials_async import AsyncTokenCredential
from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import AsyncHTTPPolicy

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


class ArmPacer:
    """At most ``per_second`` requests start in any one-second window (a sliding window).

    Shared by every client of one :class:`ArmClients` (each client's pipeline holds its own
    :class:`PacingPolicy` over it); a request over the budget waits, it is never refused.
    ``sent`` counts every request that passed (tests and benchmarks read it).
    """

    def __init__(self, per_second: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        if per_second < 1:
            raise ValueError("per_second must be at least 1")
        self.per_second = per_second
        self.sent = 0
        self._clock = clock
        self._starts: collections.deque[float] = collections.deque()
        self._lock: asyncio.Lock | None = None

    async def wait(self) -> None:
        """Return when one more request may start."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            while True:
                now = self._clock()
                while self._starts and now - self._starts[0] >= 1.0:
                    self._starts.popleft()
                if len(self._starts) < self.per_second:
                    break
                await asyncio.sleep(1.0 - (now - self._starts[0]))
            self._starts.append(self._clock())
            self.sent += 1


class PacingPolicy(AsyncHTTPPolicy[Any, Any]):
    """One client's pipeline step that waits for the shared :class:`ArmPacer`.

    One instance per pipeline: a policy's ``next`` belongs to the pipeline it sits in, so an
    instance shared by two clients would send one client's requests down the other's chain.
    """

    def __init__(self, pacer: ArmPacer) -> None:
        super().__init__()
        self._pacer = pacer

    async def send(self, request: PipelineRequest[Any]) -> PipelineResponse[Any, Any]:
        await self._pacer.wait()
        response: PipelineResponse[Any, Any] = await self.next.send(request)
        return response


class ArmClients:
    """One management client per (client class, subscription), created on first use."""

    def __init__(
        self,
        credential: AsyncTokenCredential,
        kwargs: Mapping[str, Any],
        *,
        pacer: ArmPacer | None = None,
    ) -> None:
        self._credential = credential
        self._kwargs = dict(kwargs)
        #: Paces every request of every client here (``None``: unpaced).
        self.pacer = pacer
        self._clients: dict[tuple[Callable[..., Any], str], Any] = {}

    def _client_kwargs(self) -> dict[str, Any]:
        """The shared keyword arguments with pipeline policies of the new client's own (a
        policy instance cannot sit in two pipelines: its ``next`` is per pipeline)."""
        kwargs = dict(self._kwargs)
        kwargs["per_call_policies"] = [copy.copy(p) for p in kwargs.get("per_call_policies", ())]
        retry = [copy.copy(p) for p in kwargs.get("per_retry_policies", ())]
        if self.pacer is not None:
            retry.append(PacingPolicy(self.pacer))
        kwargs["per_retry_policies"] = retry
        return kwargs

    @classmethod
    def for_endpoint(
        cls,
        credential: AsyncTokenCredential,
        arm_endpoint: str,
        ca_bundle: str | None,
        *,
        requests_per_second: int | None = None,
    ) -> ArmClients:
        """Clients for ``arm_endpoint`` (settings' ``arm_endpoint`` and ``ca_bundle``), paced
        at ``requests_per_second`` (settings' ``arm_requests_per_second``) when given."""
        pacer = ArmPacer(requests_per_second) if requests_per_second else None
        return cls(credential, management_kwargs(arm_endpoint, ca_bundle), pacer=pacer)

    def tenant(self, client_class: Callable[..., ClientT]) -> ClientT:
        """A tenant-level ``client_class`` (no subscription: Resource Graph), shared too."""
        key = (client_class, "")
        client = self._clients.get(key)
        if client is None:
            client = client_class(self._credential, **self._client_kwargs())
            self._clients[key] = client
        result: ClientT = client
        return result

    def get(self, client_class: Callable[..., ClientT], subscription_id: str) -> ClientT:
        """The ``client_class`` (an azure-mgmt aio client) for ``subscription_id``."""
        key = (client_class, subscription_id.lower())
        client = self._clients.get(key)
        if client is None:
            client = client_class(self._credential, subscription_id, **self._client_kwargs())
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
