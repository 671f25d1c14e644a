"""The DEK store protocol: what the rewrap engine needs from wherever DEKs live.

Three implementations satisfy it: Azure Table (keyward's own envelope encryption), Azure
Blob client-side encryption v2 metadata, and SQLite (the embedded default). The engine only
ever sees this protocol, so a fourth store is a new adapter, not an engine change.

Why these shapes:

* ``scan`` pages with an opaque continuation, so a job checkpoints "after this page" and a
  crashed worker resumes from the last checkpoint without rescanning what was done.
* Every record carries the ETag it was read with; every write is conditional on it, so a
  concurrent writer (or a second worker on the same shard) is never overwritten.
* Records that cannot be parsed are still returned (with ``problem`` set), so the engine can
  report them per item instead of the scan failing or silently skipping them.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from shared.crypto import WrapAlgorithm

#: Records per ``scan`` page when the caller does not say: the default for every store, the
#: engine's page (and checkpoint) size, the dry run and ``keyward rewrap --page-size``.
DEFAULT_PAGE_SIZE = 100


@dataclass(frozen=True)
class DekRecord:
    """One stored wrapped DEK as read from its store.

    Attributes:
        ref: the store's stable id for the DEK (table ``pk/rk``, blob ``container/name``,
            SQLite row id). Echoed in every per-item result.
        partition: the batching unit; writes in one batch share it (table partition key,
            blob container, SQLite ``"default"``).
        etag: the concurrency token the record was read with.
        key_id: full versioned key id the DEK is wrapped under ("" when unparseable).
        algorithm: the wrap algorithm (``None`` when unknown or unparseable).
        wrapped: the wrapped bytes, exactly as the KEK produced them ("" when unparseable).
        kcv: the DEK's key check value when the store keeps one (Table, SQLite); ``None`` for
            blobs, whose metadata has no KCV.
        material_prefix: bytes the unwrapped material must start with. Blob CSE v2 wraps
            ``protocol padded to 8 bytes with NUL || CEK``; the prefix check is its integrity
            check in place of a KCV. Empty for keyward's own DEKs.
        problem: why the record could not be parsed (bad base64, unknown algorithm, unknown
            protocol, ...); ``None`` for a sound record. The engine reports and skips these.
        previous_key_id: the key id of the wrap this one replaced, if the store keeps it.
    """

    ref: str
    partition: str
    etag: str
    key_id: str
    algorithm: WrapAlgorithm | None
    wrapped: bytes
    kcv: str | None = None
    material_prefix: bytes = b""
    problem: str | None = None
    previous_key_id: str | None = None

    def __repr__(self) -> str:
        return (
            f"DekRecord(ref={self.ref!r}, key_id={self.key_id!r}, "
            f"algorithm={self.algorithm.value if self.algorithm else None}, "
            f"wrapped=<{len(self.wrapped)} bytes>, problem={self.problem!r})"
        )


@dataclass(frozen=True)
class Rewrap:
    """Replace ``record``'s wrap with ``wrapped`` under ``key_id``, if its ETag still holds.

    The store keeps the record's current wrap as the *previous* wrap (Table, SQLite) so data
    stays readable under the old version until that version is retired.
    """

    record: DekRecord
    key_id: str
    algorithm: WrapAlgorithm
    wrapped: bytes
    kcv: str

    def __repr__(self) -> str:
        return f"Rewrap(ref={self.record.ref!r}, key_id={self.key_id!r})"


class WriteOutcome(enum.Enum):
    WRITTEN = "written"
    #: The ETag no longer matched: someone else changed the record. Nothing was written.
    CONFLICT = "conflict"
    #: The record is gone.
    NOT_FOUND = "not_found"
    #: Any other refusal; ``WriteResult.detail`` says what.
    FAILED = "failed"


@dataclass(frozen=True)
class WriteResult:
    ref: str
    outcome: WriteOutcome
    detail: str = ""
    new_etag: str | None = None


@dataclass(frozen=True)
class ScanPage:
    records: Sequence[DekRecord]
    #: Pass back to ``scan`` for the next page; ``None`` when the scan is complete.
    continuation: str | None = None


@dataclass(frozen=True)
class VersionCount:
    """How many DEKs of one key reference one key version (for the retirement report)."""

    key_id: str
    current: int = 0
    #: DEKs that keep this version as their *previous* wrap.
    previous: int = 0
    unreadable: int = 0
    extra: dict[str, int] = field(default_factory=dict)


@runtime_checkable
class DekStore(Protocol):
    """Where wrapped DEKs live. All methods are async; none ever sees plaintext key material."""

    @property
    def name(self) -> str:
        """A short label for reports and logs (``table:deks``, ``blob:container``, ``sqlite``)."""
        ...

    async def scan(
        self,
        key_ref: str,
        *,
        exclude_version: str | None,
        continuation: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> ScanPage:
        """DEKs wrapped by any version of key ``key_ref`` (the unversioned key id), skipping
        those already at ``exclude_version``; plus unparseable records that claim that key.

        A store may return records at ``exclude_version`` when it cannot filter them
        server-side (the engine treats them as already current); it must never omit a
        record that is not at that version.
        """
        ...

    async def replace_batch(self, rewraps: Sequence[Rewrap]) -> Sequence[WriteResult]:
        """Conditionally replace each record's wrap; one result per input, in order.

        Items in one call share a partition. A conflict on one item never loses another:
        stores that write atomically per batch fall back to per-item writes on conflict.
        """
        ...

    async def mark_unreadable(self, record: DekRecord, reason: str) -> WriteResult:
        """Record, conditionally on the ETag, that this DEK could not be unwrapped and why.

        The wrapped key itself is left exactly as it was.
        """
        ...

    async def version_counts(self, key_ref: str) -> Sequence[VersionCount]:
        """Per key version of ``key_ref``: DEKs currently wrapped under it and DEKs that
        still keep it as their previous wrap. Feeds the retirement report."""
        ...

    async def close(self) -> None: ...
