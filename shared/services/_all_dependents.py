"""Every registered kind of key-dependent resource behind the one port the services use.

The key event, sweep and admin services do not know which kinds exist: they call
:class:`KeyDependents` (``shared.services._ports``), and this fans each call out to one
:class:`DependentService` per configured kind, in registry order. Kinds run one after the
other, so a failing kind raises as before and Event Grid redelivers the event.

A sweep first refreshes every kind's inventory, then judges: with Resource Graph the kinds
share one query (``shared.adapters.resource_graph``), so the sweep forgets the cached rows
once, at its start, and every kind reads the same fresh answer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Protocol

from shared.events import AccessScope, FollowUpRotation
from shared.services._ports import FlagsPage
from shared.services.dependents import DependentService, DependentSummary


class SharedInventory(Protocol):
    """The inventory the kinds share (Resource Graph's rows), as the sweep needs it."""

    @property
    def mode(self) -> str:
        """How resources are found now (``resource_graph``, or the fallback and why)."""
        ...

    def invalidate(self) -> None:
        """Forget cached rows: the next read queries afresh."""
        ...


class AllDependents:
    """The configured kinds' services; an unconfigured kind shows an empty flag list."""

    def __init__(
        self,
        services: Sequence[DependentService],
        *,
        status_keys: Sequence[str] = (),
        graph: SharedInventory | None = None,
    ) -> None:
        """``status_keys``: status keys shown even when their kind is not configured, so
        ``GET /api/status`` keeps its shape (``face_flags: []`` when Face is off).
        ``graph``: the inventory the kinds share, if any."""
        self._services = tuple(services)
        self.graph = graph
        self._status_keys = tuple(
            dict.fromkeys([*status_keys, *(s.kind.labels.status_key for s in services)])
        )

    @property
    def services(self) -> tuple[DependentService, ...]:
        return self._services

    async def on_key_event(
        self, rotations: Sequence[FollowUpRotation], scopes: Sequence[AccessScope]
    ) -> dict[str, DependentSummary]:
        """One evaluation per account of every kind (see ``DependentService.on_key_event``).

        Raises:
            ServiceError: a kind's inventory could not be listed.
        """
        return {s.kind.name: await s.on_key_event(rotations, scopes) for s in self._services}

    async def sweep(self) -> dict[str, DependentSummary]:
        """Every kind's sweep: every inventory refreshed first (one shared query), then
        every kind judged.

        Raises:
            ServiceError: a kind's inventory could not be listed (nothing was judged).
        """
        if self.graph is not None:
            self.graph.invalidate()
        for service in self._services:
            await service.refresh(fresh=False)
        return {s.kind.name: await s.sweep(refresh=False) for s in self._services}

    async def status(self, limit: int) -> Mapping[str, FlagsPage]:
        """At most ``limit`` flag records per kind, under the kind's status key
        (``face_flags``); an unconfigured kind's page is empty.

        Raises:
            ServiceError: a flag table could not be read.
        """
        shown = dict.fromkeys(self._status_keys, FlagsPage())
        for service in self._services:
            shown[service.kind.labels.status_key] = await service.status(limit)
        return shown

    async def pinned_versions(self, key_ref: str) -> Mapping[str, Sequence[str]]:
        """Version -> resources of any watched kind pinned to it (each an ARM id carrying its
        kind and name, see ``DependentService.pinned_versions``), kinds in registry order,
        from one fresh inventory.

        Raises:
            ServiceError: an inventory could not be listed.
        """
        if self.graph is not None:
            self.graph.invalidate()  # one fresh query for every kind
        for service in self._services:
            await service.refresh(fresh=False)
        pinned: dict[str, list[str]] = {}
        for service in self._services:
            found = await service.pinned_versions(key_ref, fresh=False)
            for version, ids in found.items():
                pinned.setdefault(version, []).extend(ids)
        return {version: tuple(ids) for version, ids in pinned.items()}

    async def close(self) -> None:
        """Close what each service owns (nothing, when the composition root built them)."""
        for service in self._services:
            with contextlib.suppress(Exception):
                await service.close()
