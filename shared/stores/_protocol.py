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


#: Immutable copies a ``VersionCount`` names, at most (its ``immutable`` counts them all).
MAX_LISTED_COPIES = 100
#: Records (listing items) one ``count_versions`` / ``forget_previous_page`` call reads when
#: the caller does not say: one service page (Table queries return at most 1,000 entities).
DEFAULT_COUNT_PAGE_SIZE = 1000


@dataclass(frozen=True)
class ImmutableCopy:
    """A read-only copy of a wrapped DEK that still needs its key version.

    Blob versions, snapshots and soft-deleted blobs keep the ``encryptiondata`` they had when
    they were made; Azure lets nobody change it, so keyward cannot rewrap them. Only their
    owner can act (delete them, or undelete and rewrite): the fields say exactly which copy.

    Attributes:
        ref: ``container/blob`` of the blob the copy belongs to.
        key_id: the versioned key id its wrap needs, as stored.
        version_id: the blob version id (a previous version, versioning on), else ``None``.
        snapshot: the snapshot time (``2026-12-06T10:51:37.4610000Z``), else ``None``.
        deleted: soft-deleted (the base blob, a version or a snapshot); restorable until the
            retention period ends, and until then it still needs the key version.
    """

    ref: str
    key_id: str
    version_id: str | None = None
    snapshot: str | None = None
    deleted: bool = False

    @property
    def name(self) -> str:
        """How an operator names the copy: the blob URL's query form, plus ``(deleted)``."""
        name = self.ref
        if self.snapshot:
            name += f"?snapshot={self.snapshot}"
        elif self.version_id:
            name += f"?versionid={self.version_id}"
        return name + (" (deleted)" if self.deleted else "")


@dataclass(frozen=True)
class VersionCount:
    """What references one key version in one store (for the retirement report).

    ``key_id`` is the caller's spelling of the key plus the lower-case version: every
    spelling of a version is counted here, whole. A version is safe to disable as far as this
    store knows only when ``current``, ``previous``, ``immutable`` and every ``extra`` count
    are all zero.
    """

    key_id: str
    #: Rewrappable DEKs wrapped under this version now (the rewrap job's work).
    current: int = 0
    #: DEKs that keep this version as their *previous* wrap (dropped by ``forget_previous``).
    previous: int = 0
    #: Of ``current``, DEKs marked unreadable.
    unreadable: int = 0
    extra: dict[str, int] = field(default_factory=dict)
    #: Immutable copies (blob versions, snapshots, soft-deleted blobs) wrapped under this
    #: version: never rewrapped, never in ``current``; each blocks retirement until its owner
    #: deletes it. 0 for stores without such copies (Table, SQLite).
    immutable: int = 0
    #: The first :data:`MAX_LISTED_COPIES` of those copies by name (``immutable`` counts all).
    immutable_copies: tuple[ImmutableCopy, ...] = ()


@dataclass(frozen=True)
class CountPage:
    """The counts of one page of a store's records, and where the next page starts.

    Pages are disjoint: merging every page's counts (``shared.stores.merge_counts``) gives
    the whole store's, so a counting scan can stop after any page, keep the merged counts
    and the continuation as its checkpoint, and resume without counting a record twice.
    """

    counts: Sequence[VersionCount]
    #: Pass back to ``count_versions`` for the next page; ``None`` when the count is complete.
    continuation: str | None = None


@dataclass(frozen=True)
class ForgetPage:
    """Previous wraps one page of ``forget_previous_page`` dropped, and the next page."""

    dropped: int
    continuation: str | None = None


@runtime_checkable
class KeepsPreviousWraps(Protocol):
    """A store that keeps each rewrapped DEK's previous wrap until its version is retired.

    Dropping is idempotent (a dropped wrap is not there to drop again) and each drop is
    conditional on the record's ETag, so a page may be run again after a crash; the pages
    are positional, so a drop never moves a record out of the pages still to come.
    """

    async def forget_previous(self, previous_key_id: str) -> int:
        """Drop every previous wrap under ``previous_key_id`` (all pages); returns how many."""
        ...

    async def forget_previous_page(
        self,
        previous_key_id: str,
        *,
        continuation: str | None = None,
        page_size: int = DEFAULT_COUNT_PAGE_SIZE,
    ) -> ForgetPage:
        """Drop the previous wraps under ``previous_key_id`` in one page of records.

        Raises:
            InvalidInputError: not a versioned key id, or a continuation not issued here.
        """
        ...


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

    async def count_versions(
        self,
        key_ref: str,
        *,
        continuation: str | None = None,
        page_size: int = DEFAULT_COUNT_PAGE_SIZE,
    ) -> CountPage:
        """One page of :meth:`version_counts`: the counts of the records of one service
        page (at most ``page_size`` records read), and the continuation of the next.

        Raises:
            InvalidInputError: ``page_size`` out of range, or a continuation not issued here.
        """
        ...

    async def version_counts(self, key_ref: str) -> Sequence[VersionCount]:
        """Per key version of ``key_ref`` (any spelling of the key id): DEKs currently wrapped
        under it, DEKs that still keep it as their previous wrap, and immutable copies that
        need it (see :class:`VersionCount`). A whole-store scan: every store implements it as
        ``shared.stores.all_version_counts(self, key_ref)``, the one loop over
        :meth:`count_versions`; nothing on a timer or in a request may call it."""
        ...

    async def close(self) -> None: ...
