"""What the application services need from the outside, as small protocols.

The services compose domain logic with these; production wires the Azure adapters in
(``shared.composition``), tests wire in-process parts or the real adapters against
Azurite and the local emulator. No Azure import here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from shared.events import AccessScope, DependentsFollowUp, FollowUpRotation, RejectedEventRecord
from shared.rewrap import ShardMessage


class EventLedgerPort(Protocol):
    """Handled-event memory (at-least-once delivery) and the rejected-events record."""

    async def seen(self, dedup_key: str) -> bool: ...

    async def remember(self, dedup_key: str, *, event_type: str, event_id: str) -> bool: ...

    async def reject(self, record: RejectedEventRecord) -> None: ...

    async def recent_rejections(self, limit: int = 50) -> list[dict[str, Any]]: ...


class RejectionLog(Protocol):
    """Where refused deliveries (events and queue messages) are recorded for status."""

    async def reject(self, record: RejectedEventRecord) -> None: ...


class ShardQueue(Protocol):
    """Where shard messages go; the rewrap worker consumes them."""

    async def send(self, message: ShardMessage, *, delay_seconds: int = 0) -> None: ...


class FollowUpQueue(Protocol):
    """Where an event's key-dependent follow-up goes; the queue worker runs it (same queue
    as the shards in production: ``RewrapQueue``)."""

    async def send_follow_up(self, message: DependentsFollowUp) -> None: ...


@dataclass(frozen=True)
class FlagsPage:
    """A status page's flag records of one kind (JSON-ready), and whether it left some out."""

    flags: Sequence[Mapping[str, Any]] = ()
    more: bool = False


class KeyDependents(Protocol):
    """Resources that depend on a customer-managed key, of every registered kind
    (``shared.services._all_dependents.AllDependents``)."""

    async def on_key_event(
        self, rotations: Sequence[FollowUpRotation], scopes: Sequence[AccessScope]
    ) -> object:
        """Follow rotations up and re-check access scopes, one evaluation per account."""
        ...

    async def sweep(self) -> object: ...

    async def status(self, limit: int) -> Mapping[str, FlagsPage]:
        """At most ``limit`` flag records per kind, keyed by the kind's status key
        (``face_flags``)."""
        ...

    async def pinned_versions(self, key_ref: str) -> Mapping[str, Sequence[str]]: ...


class KeyRotator(Protocol):
    """Rotates a key in its vault (only used when near-expiry auto-rotation is enabled)."""

    async def rotate(self, key_ref: str, *, if_current_version: str | None) -> str | None:
        """Rotate ``key_ref`` unless its current version moved on; returns the new version,
        or ``None`` when it was skipped because the key was rotated already."""
        ...


class KeyLister(Protocol):
    """Lists the keys of an allowed vault (the sweep's way to find missed rotations)."""

    async def list_keys(self, vault_url: str) -> list[str]: ...


@runtime_checkable
class ReportsMode(Protocol):
    """A DEK store that knows its mode (``shared.records.StoreMode`` value, or what the shard
    holds, such as intermediate keys): the status page shows it. Cached by the store: O(1)."""

    async def store_mode(self) -> str: ...


@runtime_checkable
class ReportsJob(Protocol):
    """A DEK store whose mode row carries its store job's checkpoint (the data table): the
    status page shows a running or blocked job. From the same cached row as the mode: O(1)."""

    async def store_job(self) -> str | None: ...
