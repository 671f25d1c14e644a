"""Key-dependent resources found with Azure Resource Graph: one paged query, cached, paced.

Listing each subscription for each kind costs one ARM listing per subscription, kind and
page on every sweep; Resource Graph answers for every watched subscription and every kind at
once. :class:`ResourceGraphInventory` sends one query (the ``Resources`` table, the watched
ARM types, Key Vault as the key source) over all watched subscriptions (at most 1000 per
request, Resource Graph's limit), 1000 rows a page, following ``$skipToken``; it keeps the
rows for ``KEYWARD_INVENTORY_CACHE_SECONDS`` so every kind of one sweep, and the key events
that follow, share them. Its requests go through the shared :class:`ArmClients`, so they are
paced with every other ARM request (``KEYWARD_ARM_REQUESTS_PER_SECOND``).

Each kind reads its own resources out of those rows (:class:`GraphKindInventory`, with the
kind's pure mapper, the same one that maps an ARM GET). Where Resource Graph refuses the query
(403, ``AuthorizationFailed``: a tenant policy, or a custom role without
``Microsoft.ResourceGraph/resources/read``) every kind falls back to its per-subscription
listing; the refusal is logged once, shown in ``mode``, and Resource Graph is asked again
after :data:`RETRY_REFUSED_AFTER`.

**A partial inventory never passes for a whole one** ("safe to disable" rests on it). Paging
stops with a :class:`ServiceError` (not transient) when Resource Graph repeats a
``$skipToken``, returns an empty page that still carries one, says ``resultTruncated: true``
with no token to go on, or would take more than :data:`MAX_PAGES` pages. And Resource Graph
answers only for what the caller may read: a watched subscription without Reader simply
comes back empty. So every refresh also asks, in the same paged way, which of the watched
subscriptions the caller can see (:func:`subscriptions_query`, one more request per 1000
subscriptions). A watched subscription missing from that answer is logged and named by each
watching kind's :attr:`GraphKindInventory.missing_subscriptions`; the retirement look-up
(``DependentService.pinned_versions``) then raises :class:`AccessDeniedError` naming it, so
"safe to disable" is never answered from an inventory that cannot see a watched subscription.
Sweeps and key events go on judging what is visible (no flag is cleared because its resource
is not listed). Per-subscription listing is not tried instead: it would only meet the same
missing Reader role (403).

The rows project what the kinds need: id, name, type, kind, location, sku, tags, ``identity``
(principal and user-assigned identities with their client ids) and ``properties.encryption``
(Cognitive Services' ``keyVaultProperties.identityClientId``, storage's
``encryption.identity.userAssignedIdentity``), so the identity used for the key can be judged
from the inventory alone. API: ``POST /providers/Microsoft.ResourceGraph/resources``
(azure-mgmt-resourcegraph 8.0, api-version 2021-03-01), see docs/emulator.md.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from azure.mgmt.resourcegraph.aio import ResourceGraphClient
from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions

from shared.adapters._azure_errors import translated
from shared.adapters.arm import ArmClients
from shared.dependents import DependentInventory, DependentResource
from shared.errors import AccessDeniedError, ServiceError

_LOG = logging.getLogger(__name__)
#: Rows per page (Resource Graph's most) and subscriptions per request (its limit).
PAGE_SIZE = 1000
MAX_SUBSCRIPTIONS_PER_QUERY = 1000
#: After a refusal, per-subscription listing is used this long before Resource Graph is
#: asked again (access may be granted meanwhile).
RETRY_REFUSED_AFTER = 3600.0
#: Pages one query may take (1000 rows each): beyond this the inventory is called incomplete
#: rather than followed for ever.
MAX_PAGES = 500
#: Error code of an inventory that Resource Graph answered only in part.
INCOMPLETE = "InventoryIncomplete"
MODE_RESOURCE_GRAPH = "resource_graph"
MODE_FALLBACK = "per_subscription (Resource Graph refused)"
#: Maps one resource (ARM's REST JSON shape) to a kind's ``DependentResource``, or ``None``.
Mapper = Callable[[Mapping[str, object]], DependentResource | None]


def inventory_query(resource_types: Sequence[str]) -> str:
    """The one query: resources of ``resource_types`` whose key is in Key Vault.

    Written in the KQL subset the emulator answers (docs/emulator.md); ``=~`` because
    Cognitive Services spells the key source ``Microsoft.KeyVault`` and Storage
    ``Microsoft.Keyvault``.
    """
    types = ", ".join(f"'{t.lower()}'" for t in sorted(set(resource_types)))
    return (
        f"Resources | where type in~ ({types})"
        " | where tostring(properties.encryption.keySource) =~ 'microsoft.keyvault'"
        " | project id, name, type, kind, location, subscriptionId, resourceGroup, sku, tags,"
        " identity, encryption = properties.encryption"
        " | order by id asc"
    )


def subscriptions_query() -> str:
    """The subscriptions (of those the request names) the caller can read."""
    return (
        "ResourceContainers | where type =~ 'microsoft.resources/subscriptions'"
        " | project subscriptionId"
    )


def row_as_resource(row: Mapping[str, Any]) -> dict[str, Any]:
    """A projected row in the shape of ARM's GET, for the kinds' mappers."""
    resource = {k: v for k, v in row.items() if k != "encryption"}
    resource["properties"] = {"encryption": row.get("encryption")}
    return resource


class ResourceGraphInventory:
    """Every watched resource with a Key Vault key, by one paged query, cached for a TTL."""

    def __init__(
        self,
        arm: ArmClients,
        subscriptions: Sequence[str],
        resource_types: Sequence[str],
        *,
        cache_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self._arm = arm
        self._subscriptions = tuple(dict.fromkeys(s.lower() for s in subscriptions))
        self._query = inventory_query(resource_types)
        self._ttl = cache_seconds
        self._page_size = page_size
        self._clock = clock
        self._rows: list[dict[str, Any]] | None = None
        #: Watched subscriptions Resource Graph did not show (the caller cannot read them).
        self.unreadable: frozenset[str] = frozenset()
        self._fetched_at = 0.0
        self._refused_at: float | None = None
        self._lock: asyncio.Lock | None = None
        #: Queries sent (pages included) since this object was built.
        self.requests = 0

    @property
    def mode(self) -> str:
        """How resources are found now (``resource_graph`` or the fallback, with why)."""
        return MODE_FALLBACK if self._refused_at is not None else MODE_RESOURCE_GRAPH

    def invalidate(self) -> None:
        """Forget the cached rows (the next ``rows`` queries)."""
        self._rows = None

    async def rows(self) -> list[dict[str, Any]] | None:
        """The rows (cached up to the TTL); ``None`` while Resource Graph refuses.

        Raises:
            ServiceError: Resource Graph failed otherwise (throttled, unavailable).
        """
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            now = self._clock()
            if self._refused_at is not None:
                if now - self._refused_at < RETRY_REFUSED_AFTER:
                    return None
                self._refused_at = None
            if self._rows is not None and now - self._fetched_at < self._ttl:
                return self._rows
            try:
                self._rows = await self._fetch()
            except AccessDeniedError as error:
                self._refused_at = now
                self._rows = None
                self.unreadable = frozenset()  # the fallback's listings answer for them
                _LOG.warning(
                    "Resource Graph refused the inventory query (%s); listing each "
                    "subscription instead for the next %d s",
                    error,
                    int(RETRY_REFUSED_AFTER),
                )
                return None
            self._fetched_at = now
            return self._rows

    async def _fetch(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        visible: set[str] = set()
        subs = self._subscriptions
        for start in range(0, len(subs), MAX_SUBSCRIPTIONS_PER_QUERY):
            chunk = list(subs[start : start + MAX_SUBSCRIPTIONS_PER_QUERY])
            for row in await self._query_all(chunk, subscriptions_query()):
                visible.add(str(row.get("subscriptionId") or "").lower())
            found.extend(await self._query_all(chunk, self._query))
        self.unreadable = frozenset(s for s in subs if s not in visible)
        if self.unreadable:
            _LOG.warning(
                "Resource Graph shows none of %d watched subscription(s) (no Reader role?): %s",
                len(self.unreadable),
                ", ".join(sorted(self.unreadable)),
            )
        return found

    async def _query_all(self, subscriptions: list[str], query: str) -> list[dict[str, Any]]:
        """Every row of ``query`` over ``subscriptions``, page by page.

        Raises:
            ServiceError: Resource Graph failed, or answered only in part (a repeated or
                dangling ``$skipToken``, ``resultTruncated`` with no token, more than
                :data:`MAX_PAGES` pages): code :data:`INCOMPLETE`, not transient.
        """
        client = self._arm.tenant(ResourceGraphClient)
        found: list[dict[str, Any]] = []
        token: str | None = None
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            request = QueryRequest(
                subscriptions=subscriptions,
                query=query,
                options=QueryRequestOptions(
                    top=self._page_size, skip_token=token, result_format="objectArray"
                ),
            )
            with translated("query Resource Graph"):
                answer = await client.resources(request)
            self.requests += 1
            data: list[Any] = answer.data if isinstance(answer.data, list) else []
            found.extend(row for row in data if isinstance(row, dict))
            token = answer.skip_token or None
            if token is None:
                truncated = getattr(answer.result_truncated, "value", answer.result_truncated)
                if str(truncated or "").lower() == "true":
                    raise _incomplete("said its result is truncated and gave no $skipToken")
                return found
            if token in seen:
                raise _incomplete("repeated a $skipToken")
            if not data:
                raise _incomplete("returned an empty page with a $skipToken")
            seen.add(token)
        raise _incomplete(f"had more than {MAX_PAGES} pages")


def _incomplete(what: str) -> ServiceError:
    return ServiceError(
        f"Resource Graph {what}: the inventory is incomplete, nothing is judged from it",
        code=INCOMPLETE,
    )


class GraphKindInventory:
    """One kind's :class:`DependentInventory` over the shared Resource Graph rows, falling
    back to the kind's own per-subscription listing while Resource Graph refuses."""

    def __init__(
        self,
        graph: ResourceGraphInventory,
        mapper: Mapper,
        fallback: DependentInventory,
        *,
        subscriptions: Sequence[str],
        resource_groups: Sequence[str] = (),
    ) -> None:
        self._graph = graph
        self._mapper = mapper
        self._fallback = fallback
        self._subscriptions = {s.lower() for s in subscriptions}
        self._groups = {g.lower() for g in resource_groups}

    def invalidate(self) -> None:
        """Forget the shared rows: the next listing (of any kind) queries afresh."""
        self._graph.invalidate()

    @property
    def missing_subscriptions(self) -> tuple[str, ...]:
        """Subscriptions this kind watches that the last query could not see (the caller
        has no Reader role there): the listing is incomplete while any is named."""
        return tuple(sorted(self._graph.unreadable & self._subscriptions))

    async def list_accounts(self) -> Sequence[DependentResource]:
        """The kind's resources in its subscriptions (and groups), sorted by id.

        Resources of a watched subscription Resource Graph does not show are missing from
        it: see :attr:`missing_subscriptions`, which the retirement look-up refuses to pass.

        Raises:
            ServiceError: Resource Graph (or the fallback listing) failed.
        """
        rows = await self._graph.rows()
        if rows is None:
            return await self._fallback.list_accounts()
        found: dict[str, DependentResource] = {}
        for row in rows:
            resource = self._mapper(row_as_resource(row))
            if resource is None or resource.subscription_id not in self._subscriptions:
                continue
            if self._groups and resource.resource_group.lower() not in self._groups:
                continue
            found[resource.id.lower()] = resource
        return [found[k] for k in sorted(found)]
