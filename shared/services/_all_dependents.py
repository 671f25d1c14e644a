"""Every registered kind of key-dependent resource behind the one port the services use.

The key event, sweep and admin services do not know which kinds exist: they call
:class:`KeyDependents` (``shared.services._ports``), and this fans each call out to one
:class:`DependentService` per configured kind, in registry order. Kinds run one after the
other, so a failing kind raises as before and Event Grid redelivers the event.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence

from shared.events import AccessScope, FollowUpRotation
from shared.services._ports import FlagsPage
from shared.services.dependents import DependentService, DependentSummary


class AllDependents:
    """The configured kinds' services; an unconfigured kind shows an empty flag list."""

    def __init__(
        self, services: Sequence[DependentService], *, status_keys: Sequence[str] = ()
    ) -> None:
        """``status_keys``: every registered kind's status key, configured or not, so
        ``GET /api/status`` keeps its shape (``face_flags: []`` when Face is off)."""
        self._services = tuple(services)
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
        """Every kind's sweep.

        Raises:
            ServiceError: a kind's inventory could not be listed.
        """
        return {s.kind.name: await s.sweep() for s in self._services}

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
        """Version -> ids of accounts of any kind pinned to it."""
        pinned: dict[str, list[str]] = {}
        for service in self._services:
            for version, ids in (await service.pinned_versions(key_ref)).items():
                pinned.setdefault(version, []).extend(ids)
        return {version: tuple(ids) for version, ids in pinned.items()}

    async def close(self) -> None:
        """Close what each service owns (nothing, when the composition root built them)."""
        for service in self._services:
            with contextlib.suppress(Exception):
                await service.close()
