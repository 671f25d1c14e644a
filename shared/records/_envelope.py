"""The application envelope: ``encrypt`` a record under a fresh DEK, ``decrypt`` it again.

Direct mode (format 1): the DEK is wrapped under the newest enabled version of the vault
key; a read unwraps it in the vault with the version and algorithm the row names
(``VaultKeys.version(row.key_id, row.algorithm)``: RSA-OAEP-256, RSA-OAEP, or A256KW under
an oct-HSM key; RSA1_5 only where the vault adapter allows legacy reads). Hierarchy mode
(format 2): the DEK is wrapped locally (A256KW) under the partition's KEK, and only KEKs
are wrapped by the vault key (``_kek_ring``). Data is sealed by ``shared.crypto.seal``
bound to ``partition/record_id`` and the caller's context, the same in both formats.

A read follows the row's own format, whatever the store's mode: during a migration both
exist. A write follows the store's mode row (``ModeStore``), trusted for the mode TTL from
when its read was sent; the insert starts within that TTL (and the current KEK's) and is
abandoned ``WRITE_DEADLINE_SECONDS`` after it, so it lands within ``MAX_WRITE_SECONDS`` of
the TTL or never: the store jobs count only after that (``_write_bound``).
The application may *declare* the mode it expects; a store in the other steady mode is
refused (ConfigurationError) instead of silently writing the format nobody planned for. A
store between modes (a migration either way) serves either declaration: reads follow each
row's format (a declared-direct reader keeps reading the rows a migration to hierarchy has
converted), writes follow the mode row. Once the store reaches the other steady mode the
declaration contradicts it and is refused, reads included: declare the target (or no)
mode before the migration ends.

Every unwrap is checked against the row's KCV. Every plaintext key is wiped after use;
the cache keeps its own copies (``KeyCache``). Revocation: a DEK cached in direct mode
lives ``dek_cache_seconds``; in hierarchy mode no longer than the KEK that unwrapped it
(``kek_cache_seconds``), so disabling the vault key stops every read within that TTL.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from types import TracebackType
from typing import NoReturn

from shared.crypto import DataKey, LocalAesKeyWrapper, open_envelope, seal
from shared.errors import (
    ConfigurationError,
    ConflictError,
    IntegrityError,
    InvalidInputError,
    KeywardError,
    TransientServiceError,
)
from shared.records._cache import KeyCache
from shared.records._format import HIERARCHY_ALGORITHM, check_record_keys, record_ref
from shared.records._kek_ring import KekRing, OpenKek
from shared.records._locks import KeyedLocks
from shared.records._model import ModeRecord, RecordFormat, RecordWrite, StoredRecord, StoreMode
from shared.records._ports import KekStore, ModeStore, RecordStore, VaultKeys, unwrapper_for
from shared.records._settings import EnvelopeSettings
from shared.records._stats import EnvelopeStats
from shared.records._write_bound import SERVICE_GRACE_SECONDS, WRITE_DEADLINE_SECONDS

#: Pages an emptiness check reads before it decides a sparse store is not empty.
_EMPTY_CHECK_PAGES = 20
#: Decisions (mode, current KEK) one write makes at most: a second one when the first went
#: stale during the vault or KEK work.
_WRITE_DECISIONS = 2


class RecordNotFoundError(KeywardError, LookupError):
    """``decrypt`` of a record the store does not hold."""


class Envelope:
    """Encrypt and decrypt application records in one store, in direct or hierarchy mode."""

    def __init__(
        self,
        records: RecordStore,
        keks: KekStore,
        modes: ModeStore,
        vault: VaultKeys,
        key_ref: str,
        *,
        mode: StoreMode | None = None,
        settings: EnvelopeSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """Build an envelope over the ports (the composition root opens them).

        ``mode`` is the mode the application declares: ``None`` follows the store,
        ``DIRECT`` or ``HIERARCHY`` is checked against the store's mode row at every mode
        refresh (served while the store migrates either way; see the module). ``clock``
        (monotonic seconds) drives every TTL; ``wall_clock`` dates mode changes.

        Raises:
            InvalidInputError: a declared migration mode (only steady modes are declared).
        """
        if mode is not None and mode not in (StoreMode.DIRECT, StoreMode.HIERARCHY):
            raise InvalidInputError(f"declare mode direct or hierarchy, not {mode.value}")
        self._records = records
        self._keks = keks
        self._modes = modes
        self._vault = vault
        self._key_ref = key_ref
        self._declared = mode
        self._settings = settings or EnvelopeSettings()
        self._clock = clock
        self._wall_clock = wall_clock
        self._stats = EnvelopeStats()
        self._cache = KeyCache(self._settings.cache_size, clock=clock)
        self._ring = KekRing(
            keks, vault, key_ref, self._cache, self._stats,
            kek_seconds=self._settings.kek_cache_seconds, clock=clock,
        )  # fmt: skip
        self._locks = KeyedLocks()
        self._mode: StoreMode | None = None
        self._mode_identity: tuple[StoreMode, datetime | None] | None = None
        self._mode_until = float("-inf")
        self._closed = False

    @property
    def stats(self) -> EnvelopeStats:
        """A copy of the counters (vault unwraps and wraps, cache hits and misses, ...)."""
        return self._stats.copy()

    @property
    def settings(self) -> EnvelopeSettings:
        return self._settings

    @property
    def store_name(self) -> str:
        return self._records.name

    async def mode(self) -> StoreMode:
        """The store's mode as this envelope uses it (cached for the mode TTL).

        Raises:
            ConfigurationError: the store's mode contradicts the declared one.
        """
        return await self._current_mode(create=False)

    async def encrypt(
        self, partition: str, record_id: str, plaintext: bytes, *, context: bytes = b""
    ) -> StoredRecord:
        """Create record ``partition/record_id``: a fresh DEK, wrapped as the store's mode
        says, and ``plaintext`` sealed under it bound to the record and ``context``.

        Raises:
            InvalidInputError: a reserved (``~...``) or malformed partition or id.
            ConflictError: the record exists (records are created once; nothing changed).
            ConfigurationError: the store's mode contradicts the declared one.
            TransientServiceError: the write could not start, or finish, within its bound
                (``_write_bound``: the decision's TTL plus ``WRITE_DEADLINE_SECONDS``).
            ServiceError: the vault or the store failed.
        """
        self._check_open()
        check_record_keys(partition, record_id)
        ref = record_ref(partition, record_id)
        with DataKey.generate() as dek:
            sealed = seal(dek, plaintext, dek_id=ref, context=context)
            for attempt in range(_WRITE_DECISIONS):
                mode, start_by = await self._decided_mode(create=True)
                write, start_by, expires_at = await self._wrapped(
                    RecordWrite(
                        partition,
                        record_id,
                        mode.writes,
                        HIERARCHY_ALGORITHM,
                        b"",
                        dek.kcv,
                        sealed=sealed,
                    ),
                    dek,
                    start_by,
                )
                if self._clock() <= start_by or not self._may_decide_again(attempt):
                    break
            stored = await self._insert(ref, write, start_by + WRITE_DEADLINE_SECONDS)
            self._cache_dek(stored, dek, expires_at)
        return stored

    async def _wrapped(
        self, draft: RecordWrite, dek: DataKey, start_by: float
    ) -> tuple[RecordWrite, float, float | None]:
        """``draft`` (its format from the mode) with ``dek`` wrapped as that format says, until
        when its insert may start (the mode's and, in hierarchy mode, the current KEK's),
        and until when its DEK may be cached."""
        if draft.format is RecordFormat.HIERARCHY:
            kek = await self._ring.current(draft.partition)
            with kek.key:
                wrapped = LocalAesKeyWrapper(_kek_label(kek), kek.key).wrap(dek)
            write = replace(
                draft, algorithm=HIERARCHY_ALGORITHM, wrapped=wrapped, kek_version=kek.version
            )
            if kek.current_until is not None:
                start_by = min(start_by, kek.current_until)
            return write, start_by, kek.expires_at
        wrapper = await self._vault.newest(self._key_ref)
        wrapped = await wrapper.wrap(dek)
        self._stats.vault_wraps += 1
        write = replace(draft, algorithm=wrapper.algorithm, wrapped=wrapped, key_id=wrapper.key_id)
        return write, start_by, None

    def _may_decide_again(self, attempt: int) -> bool:
        """Whether a decision that went stale during the vault or KEK work is made again:
        once, and only when the TTLs cache at all (with a TTL of 0 every decision is stale
        at once; the write deadline alone bounds it)."""
        ttls = (self._settings.mode_ttl_seconds, self._settings.kek_cache_seconds)
        return attempt + 1 < _WRITE_DECISIONS and min(ttls) > 0

    async def _insert(self, ref: str, write: RecordWrite, deadline: float) -> StoredRecord:
        """Insert ``write`` if it can start before ``deadline`` (monotonic), abandoning it
        there: so it lands within ``MAX_WRITE_SECONDS`` of its decision's TTL or never, which
        the store jobs' counts rely on (``_write_bound``).

        Raises:
            ConflictError: the record exists.
            TransientServiceError: the deadline passed (before the start: nothing written;
                during the insert: it may still land, so read the record before retrying).
        """
        left = deadline - self._clock()
        if left <= 0:
            raise TransientServiceError(
                f"record {ref}: the store's mode was decided more than the mode TTL plus "
                f"{WRITE_DEADLINE_SECONDS:g} s ago (the vault was slow); nothing written: retry"
            )
        try:
            async with asyncio.timeout(left):
                return await self._records.insert_record(write)
        except ConflictError:
            raise ConflictError(f"record {ref} exists in {self._records.name}") from None
        except TimeoutError:
            raise TransientServiceError(
                f"record {ref}: the insert was abandoned at its deadline; it may still land "
                f"within {SERVICE_GRACE_SECONDS:g} s: read the record before writing it again"
            ) from None

    async def decrypt(self, partition: str, record_id: str, *, context: bytes = b"") -> bytes:
        """The plaintext of record ``partition/record_id``, if ``context`` is the one it was
        sealed with.

        Raises:
            InvalidInputError: a reserved or malformed key; a row of an unknown format
                ("record format N is newer than this keyward ...: upgrade keyward") or a
                corrupted one; a row without data.
            RecordNotFoundError: no such record.
            IntegrityError: wrong context, tampered data, or an unwrap whose KCV differs.
            ConfigurationError: the store's mode contradicts the declared one.
            ServiceError: the vault or the store failed, a revoked vault key included
                (``KeyDisabledError``, ``KeyNotFoundError``, ``AccessDeniedError``).
        """
        self._check_open()
        check_record_keys(partition, record_id)
        ref = record_ref(partition, record_id)
        await self._current_mode(create=False)
        row = await self._records.read_record(partition, record_id)
        if row is None:
            raise RecordNotFoundError(f"no record {ref} in {self._records.name}")
        if row.sealed is None:
            raise InvalidInputError(f"record {ref} holds no sealed data")
        with await self._dek(row) as dek:
            return open_envelope(dek, row.sealed, dek_id=ref, context=context)

    async def aclose(self) -> None:
        """Wipe every cached key; the envelope refuses further calls. The stores belong to
        whoever opened them."""
        self._closed = True
        self._cache.close()
        self._ring.clear()

    async def __aenter__(self) -> Envelope:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    # ---- keys --------------------------------------------------------------------------

    def _dek_entry(self, row: StoredRecord) -> tuple[str, str, str, str]:
        return ("dek", self._records.name, row.ref, row.kcv)

    def _cache_dek(self, row: StoredRecord, dek: DataKey, kek_expiry: float | None) -> None:
        """Cache a DEK; in hierarchy mode never past its KEK's expiry (or at all, when the
        KEK is not cached), so revocation latency stays the KEK TTL."""
        ttl = self._settings.dek_cache_seconds
        if row.format is RecordFormat.HIERARCHY:
            if kek_expiry is None:
                return
            self._cache.put(self._dek_entry(row), dek, ttl=ttl, expires_at=kek_expiry)
        else:
            self._cache.put(self._dek_entry(row), dek, ttl=ttl)

    def _cached_dek(self, row: StoredRecord) -> DataKey | None:
        dek = self._cache.get(self._dek_entry(row))
        if dek is None:
            self._stats.dek_cache_misses += 1
        else:
            self._stats.dek_cache_hits += 1
        return dek

    async def _dek(self, row: StoredRecord) -> DataKey:
        """The row's DEK (the caller wipes it): from the cache, else one unwrap (one caller
        at a time per record, so a burst of reads costs one vault call)."""
        if (dek := self._cached_dek(row)) is not None:
            return dek
        async with self._locks.hold(("dek", row.ref, row.kcv)):
            if (dek := self._cache.get(self._dek_entry(row))) is not None:
                return dek
            if row.format is RecordFormat.HIERARCHY:
                dek, kek_expiry = await self._unwrap_local(row)
            else:
                dek, kek_expiry = await self._unwrap_in_vault(row), None
            if row.kcv and dek.kcv != row.kcv:
                dek.wipe()
                raise IntegrityError(f"record {row.ref}: the unwrapped DEK's KCV differs")
            self._cache_dek(row, dek, kek_expiry)
            return dek

    async def _unwrap_in_vault(self, row: StoredRecord) -> DataKey:
        assert row.key_id is not None  # a format-1 row without problem has a key id
        wrapper = await unwrapper_for(self._vault, f"record {row.ref}", row.key_id, row.algorithm)
        self._stats.vault_unwraps += 1
        return await wrapper.unwrap(row.wrapped)

    async def _unwrap_local(self, row: StoredRecord) -> tuple[DataKey, float | None]:
        assert row.kek_version is not None  # a format-2 row without problem has one
        kek = await self._ring.open(row.partition, row.kek_version)
        try:
            return self._unwrap_with(kek, row), kek.expires_at
        except IntegrityError:
            # A cached KEK that no longer matches its row (deleted and re-created under the
            # first version id): read the row again, once.
            self._ring.forget(row.partition, row.kek_version)
            kek = await self._ring.open(row.partition, row.kek_version)
            return self._unwrap_with(kek, row), kek.expires_at

    def _unwrap_with(self, kek: OpenKek, row: StoredRecord) -> DataKey:
        with kek.key:
            dek = LocalAesKeyWrapper(_kek_label(kek), kek.key).unwrap(row.wrapped)
        self._stats.local_unwraps += 1
        return dek

    # ---- mode --------------------------------------------------------------------------

    async def _current_mode(self, *, create: bool) -> StoreMode:
        return (await self._decided_mode(create=create))[0]

    async def _decided_mode(self, *, create: bool) -> tuple[StoreMode, float]:
        """The store's mode, and until when a write may start under it (monotonic): the mode
        TTL after the read that said so was *sent* (the row may have changed any time after
        that; a migration waits the TTL from its own write)."""
        if self._mode is not None and self._clock() < self._mode_until:
            return self._mode, self._mode_until
        async with self._locks.hold("mode"):
            if self._mode is not None and self._clock() < self._mode_until:
                return self._mode, self._mode_until
            until = self._clock() + self._settings.mode_ttl_seconds
            record = await self._modes.read_mode()
            self._stats.mode_reads += 1
            self._note_mode_change(record)
            mode = await self._reconcile(record, create=create)
            if mode is not None:
                self._mode = mode
                self._mode_until = until
                return mode, until
            # Empty store, declared hierarchy, nothing written yet.
            return StoreMode.HIERARCHY, until

    def _note_mode_change(self, record: ModeRecord) -> None:
        """Drop every cached key and current-KEK pointer when the mode row changed since it
        was last read. Why: a migration back to direct mode deletes the KEKs, and one back
        to hierarchy mode creates them again under the same first version id with other
        keys; a writer must never wrap a new DEK under a KEK from before (its record would
        be unreadable once the cache expired). ``changed_at`` catches a round trip that
        ends in the mode this envelope last saw."""
        identity = (record.mode, record.changed_at)
        if self._mode_identity is not None and identity != self._mode_identity:
            self._ring.clear()
            self._cache.clear()
        self._mode_identity = identity

    async def _reconcile(self, record: ModeRecord, *, create: bool) -> StoreMode | None:
        """The mode to use given the row and the declaration (``None``: hierarchy, but the
        row is not written yet, so nothing may be cached).

        Raises:
            ConfigurationError: the store is in the other steady mode.
        """
        declared, actual = self._declared, record.mode
        migrating = actual in (StoreMode.TO_HIERARCHY, StoreMode.TO_DIRECT)
        if declared is None or declared is actual or migrating:
            return actual
        if declared is StoreMode.DIRECT:
            raise ConfigurationError(
                f"store {self._records.name} is in hierarchy mode; migrate it with "
                "`keyward migrate` or declare mode=hierarchy"
            )
        if record.etag or not await self._store_is_empty():
            raise ConfigurationError(
                f"store {self._records.name} is in direct mode; migrate it with `keyward migrate`"
            )
        if not create:
            return None
        try:
            written = await self._modes.write_mode(
                ModeRecord(StoreMode.HIERARCHY, etag="", changed_at=self._wall_clock())
            )
        except ConflictError:
            written = await self._modes.read_mode()
            self._stats.mode_reads += 1
            if written.mode is not StoreMode.HIERARCHY:
                return await self._reconcile(written, create=False)
        self._mode_identity = (written.mode, written.changed_at)
        return written.mode

    async def _store_is_empty(self) -> bool:
        continuation: str | None = None
        for _ in range(_EMPTY_CHECK_PAGES):
            page = await self._records.scan_records(continuation=continuation, page_size=1)
            if page.records:
                return False
            if page.continuation is None:
                return True
            continuation = page.continuation
        return False

    def _check_open(self) -> None:
        if self._closed:
            raise InvalidInputError("this envelope is closed")

    def __repr__(self) -> str:
        return (
            f"Envelope(store={self._records.name!r}, keks={self._keks.name!r}, "
            f"key_ref={self._key_ref!r}, declared={self._declared}, cache={self._cache!r})"
        )

    def __reduce__(self) -> NoReturn:
        raise TypeError("Envelope cannot be pickled: it holds unwrapped keys")


def _kek_label(kek: OpenKek) -> str:
    """What a local KEK wrapper is called in error messages (never secret)."""
    return f"kek:{kek.partition}/{kek.version}"
