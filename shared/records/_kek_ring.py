"""A partition's intermediate key-encryption keys: find, create on first use, unwrap, cache.

The envelope asks for the *current* KEK of a partition (to wrap a new DEK) or for one
*version* (to unwrap a stored DEK). Either comes from the key cache or, on a miss, from
one vault unwrap of the KEK row, checked against the row's KCV and cached for the KEK
TTL. That TTL is the revocation latency of hierarchy mode: once a cached KEK expires, the
next use needs the vault again, and a disabled or deleted vault key refuses it.

Which version is current is remembered for the same TTL, so a KEK rotation (a new
version) reaches every writer within it; the rotation job waits that long before it
counts what is left under the old version.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace

from shared.crypto import DataKey
from shared.errors import ConflictError, IntegrityError, KeyNotFoundError, TransientServiceError
from shared.records._cache import KeyCache
from shared.records._kek_ids import FIRST_KEK_VERSION
from shared.records._locks import KeyedLocks
from shared.records._model import StoredKek
from shared.records._ports import KekStore, VaultKeys, unwrapper_for
from shared.records._stats import EnvelopeStats
from shared.records._write_bound import SERVICE_GRACE_SECONDS, WRITE_DEADLINE_SECONDS
from shared.stores import NewDek


@dataclass(frozen=True)
class OpenKek:
    """An unwrapped KEK for the caller (who wipes ``key``), and until when it is cached.

    ``expires_at`` (on the cache's clock) is ``None`` when the KEK is not cached (caching
    off): a DEK it unwraps must not be cached either, or it would outlive its KEK.
    ``current_until`` (same clock; only from :meth:`KekRing.current`): until when this
    version may be taken as the partition's current KEK, the KEK TTL after the listing that
    said so was *sent*; a write under it must start by then (``_write_bound``).
    """

    partition: str
    version: str
    key: DataKey
    expires_at: float | None
    current_until: float | None = None

    def __repr__(self) -> str:
        return f"OpenKek({self.partition}/{self.version}, expires_at={self.expires_at})"


class KekRing:
    """The KEKs of every partition of one KEK store, under one vault key."""

    def __init__(
        self,
        keks: KekStore,
        vault: VaultKeys,
        key_ref: str,
        cache: KeyCache,
        stats: EnvelopeStats,
        *,
        kek_seconds: float,
        clock: Callable[[], float],
    ) -> None:
        self._keks = keks
        self._vault = vault
        self._key_ref = key_ref
        self._cache = cache
        self._stats = stats
        self._ttl = kek_seconds
        self._clock = clock
        self._locks = KeyedLocks()
        #: partition -> (current version, its KCV, until when that is trusted); bounded like
        #: the cache. Not secret: a KCV identifies a key without revealing it.
        self._current: OrderedDict[str, tuple[str, str, float]] = OrderedDict()

    def _entry(self, partition: str, version: str) -> tuple[str, str, str, str]:
        return ("kek", self._keks.name, partition, version)

    def _cached(self, partition: str, version: str) -> OpenKek | None:
        entry = self._entry(partition, version)
        key = self._cache.get(entry)
        if key is None:
            # Counted once, where the miss is paid (``_unwrap``, ``_create``): a lookup looks
            # again under the lock, and that second look is not a second miss.
            return None
        self._stats.kek_cache_hits += 1
        return OpenKek(partition, version, key, self._cache.expires_at(entry))

    def _remembered(self, partition: str) -> OpenKek | None:
        """The current KEK as last seen, if that is still trusted and the cached key is the
        one the KEK row held (same KCV)."""
        remembered = self._current.get(partition)
        if remembered is None or remembered[2] <= self._clock():
            return None
        self._current.move_to_end(partition)
        hit = self._cached(partition, remembered[0])
        if hit is not None and hit.key.kcv != remembered[1]:
            hit.key.wipe()
            return None
        return None if hit is None else replace(hit, current_until=remembered[2])

    def _remember_current(self, kek: StoredKek, until: float) -> None:
        if self._ttl <= 0 or self._cache.max_entries == 0:
            return
        self._current[kek.partition] = (kek.version, kek.kcv, until)
        self._current.move_to_end(kek.partition)
        while len(self._current) > self._cache.max_entries:
            self._current.popitem(last=False)

    async def current(self, partition: str) -> OpenKek:
        """The partition's newest KEK, created (wrapped under the newest vault key version)
        when the partition has none.

        Raises:
            ServiceError: the vault or the store failed (a refused unwrap included).
            IntegrityError: a KEK row unwrapped to a key whose KCV differs from the row's.
        """
        if (hit := self._remembered(partition)) is not None:
            return hit
        async with self._locks.hold(("current", partition)):
            if (hit := self._remembered(partition)) is not None:
                return hit
            # Trusted from when the listing was sent, not from when the unwrap ended: a KEK
            # rotation waits the KEK TTL after making a new version, and no writer may take
            # an older one for current past that (however slow its vault unwrap was).
            until = self._clock() + self._ttl
            listed = await self._keks.list_keks(partition)
            if not listed:
                opened, stored = await self._create(partition)
            else:
                stored = listed[0]
                opened = self._cached_as(stored) or await self._unwrap(stored)
            self._remember_current(stored, until)
            return replace(opened, current_until=until)

    def _cached_as(self, stored: StoredKek) -> OpenKek | None:
        """The cached key of ``stored`` if it is the key the row holds now (a KEK deleted and
        re-created under the first version id has the same version and another key)."""
        hit = self._cached(stored.partition, stored.version)
        if hit is not None and stored.kcv and hit.key.kcv != stored.kcv:
            hit.key.wipe()
            self._cache.discard(self._entry(stored.partition, stored.version))
            return None
        return hit

    async def open(self, partition: str, version: str) -> OpenKek:
        """One version of the partition's KEK, from the cache or one vault unwrap.

        Raises:
            KeyNotFoundError: the KEK store has no such version.
            ServiceError: the vault or the store failed (a refused unwrap included).
            IntegrityError: the KEK row unwrapped to a key whose KCV differs from the row's.
        """
        if (hit := self._cached(partition, version)) is not None:
            return hit
        async with self._locks.hold((partition, version)):
            if (hit := self._cached(partition, version)) is not None:
                return hit
            stored = await self._keks.read_kek(partition, version)
            if stored is None:
                raise KeyNotFoundError(
                    f"KEK {partition}/{version} is not in {self._keks.name}", status=404
                )
            return await self._unwrap(stored)

    def forget(self, partition: str, version: str) -> None:
        """Drop a cached KEK that failed to unwrap a DEK (a KEK deleted and re-created under
        the same first version id); the next use reads the row again."""
        self._cache.discard(self._entry(partition, version))
        self._current.pop(partition, None)

    def clear(self) -> None:
        """Forget which versions are current (the cached keys are the cache's business)."""
        self._current.clear()

    async def _unwrap(self, stored: StoredKek) -> OpenKek:
        wrapper = await unwrapper_for(
            self._vault, f"KEK {stored.ref}", stored.key_id, stored.algorithm
        )
        self._stats.kek_cache_misses += 1
        self._stats.vault_unwraps += 1
        key = await wrapper.unwrap(stored.wrapped)
        if stored.kcv and key.kcv != stored.kcv:
            key.wipe()
            raise IntegrityError(
                f"KEK {stored.ref} unwrapped to a key whose KCV differs from the row's"
            )
        expires_at = self._cache.put(
            self._entry(stored.partition, stored.version), key, ttl=self._ttl
        )
        return OpenKek(stored.partition, stored.version, key, expires_at)

    async def _create(self, partition: str) -> tuple[OpenKek, StoredKek]:
        """Make the partition's first KEK. Its version id is fixed, so writers racing in
        other processes conflict on insert; the loser wipes its key and uses the winner's.

        The insert is bounded like a record's (``_write_bound``): it must start within
        ``WRITE_DEADLINE_SECONDS`` of asking for the newest vault version and is abandoned at
        that deadline, so a KEK wrapped under a version a rotation has just superseded lands
        inside the window retirement waits (``superseded_wait_seconds``) or never.

        Raises:
            TransientServiceError: the deadline passed (before the insert: nothing written).
        """
        key = DataKey.generate()
        deadline = self._clock() + WRITE_DEADLINE_SECONDS
        try:
            wrapper = await self._vault.newest(self._key_ref)
            wrapped = await wrapper.wrap(key)
            self._stats.vault_wraps += 1
            new = NewDek(
                partition, FIRST_KEK_VERSION, wrapper.key_id, wrapper.algorithm, wrapped, key.kcv
            )
            inserted = await self._insert_by(new, deadline)
        except ConflictError:
            key.wipe()
            listed = await self._keks.list_keks(partition)
            if not listed:
                raise
            return await self._unwrap(listed[0]), listed[0]
        except BaseException:
            key.wipe()
            raise
        self._stats.keks_created += 1
        self._stats.kek_cache_misses += 1
        expires_at = self._cache.put(self._entry(partition, FIRST_KEK_VERSION), key, ttl=self._ttl)
        return OpenKek(partition, FIRST_KEK_VERSION, key, expires_at), inserted

    async def _insert_by(self, new: NewDek, deadline: float) -> StoredKek:
        left = deadline - self._clock()
        if left <= 0:
            raise TransientServiceError(
                f"KEK {new.ref}: the vault took longer than {WRITE_DEADLINE_SECONDS:g} s to "
                "wrap it; nothing written: retry"
            )
        try:
            async with asyncio.timeout(left):
                return await self._keks.insert_kek(new)
        except TimeoutError:
            raise TransientServiceError(
                f"KEK {new.ref}: the insert was abandoned at its deadline; it may still land "
                f"within {SERVICE_GRACE_SECONDS:g} s"
            ) from None
