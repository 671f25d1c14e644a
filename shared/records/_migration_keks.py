"""The intermediate keys a job works with, one partition at a time, each unwrapped once.

Jobs (migration, KEK rotation) read records in key order, partition by partition, so they
hold the KEKs of one partition only: entering another partition wipes the previous one's.
That bounds the plaintext held to one tenant's KEK versions, and still costs one vault
unwrap per KEK version a job touches (a partition's rows are contiguous in the scan; a
resumed job pays at most one more per KEK).

Vault calls go through ``VaultKeys``; the service hands the job a paced one (the rewrap
engine's limiter, which this floor may not import).
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

from shared.crypto import DataKey
from shared.errors import IntegrityError, KeywardError
from shared.records._cache import KeyCache
from shared.records._kek_ids import kek_version_time, new_kek_version
from shared.records._kek_ring import KekRing
from shared.records._model import StoredKek
from shared.records._ports import KekStore, VaultKeys, unwrapper_for
from shared.records._stats import EnvelopeStats
from shared.stores import NewDek


class KekMissingError(KeywardError):
    """A record names a KEK version its partition does not have (nothing can open it)."""


def kek_created_at(kek: StoredKek) -> datetime | None:
    """When ``kek`` was made: the time in its version id (written by the job's own clock),
    else the stored time; ``None`` when neither says (a partition's first KEK has a fixed
    id: treat it as older than any dated one)."""
    try:
        made = kek_version_time(kek.version)
    except KeywardError:
        made = None
    return made if made is not None else kek.created_at


class JobKeks:
    """KEKs of the partition a job is in, unwrapped on first use and wiped on leaving it."""

    def __init__(
        self,
        keks: KekStore,
        vault: VaultKeys,
        key_ref: str,
    ) -> None:
        self._keks = keks
        self._vault = vault
        self._key_ref = key_ref
        self._partition: str | None = None
        self._plain: dict[str, DataKey] = {}
        #: Rows of a partition are converted concurrently: one of them unwraps a KEK, the
        #: others wait for it (exactly one vault call per KEK version).
        self._lock = asyncio.Lock()
        #: The envelope's own KEK maker (first KEK of a partition), with a cache that holds
        #: nothing: the job keeps what it needs in ``_plain``.
        self._stats = EnvelopeStats()
        self._counted_unwraps = 0
        self._ring = KekRing(
            keks, vault, key_ref, KeyCache(0), self._stats,
            kek_seconds=0, clock=time.monotonic,
        )  # fmt: skip
        #: Vault unwraps so far (one per KEK version touched, per partition visit).
        self.vault_unwraps = 0
        self.created = 0

    def enter(self, partition: str) -> None:
        """Work on ``partition`` now: the previous partition's KEKs are wiped."""
        if partition != self._partition:
            self.clear()
            self._partition = partition

    def clear(self) -> None:
        for key in self._plain.values():
            key.wipe()
        self._plain.clear()
        self._partition = None

    async def key(self, kek: StoredKek) -> DataKey:
        """``kek`` unwrapped (the cached instance: do not wipe it; valid until ``enter``
        moves on or ``clear``).

        Raises:
            IntegrityError: the unwrapped KEK does not match its row's KCV.
        """
        async with self._lock:
            self.enter(kek.partition)
            cached = self._plain.get(kek.version)
            if cached is not None:
                return cached
            return await self._unwrap_kek(kek)

    async def _unwrap_kek(self, kek: StoredKek) -> DataKey:
        wrapper = await unwrapper_for(self._vault, f"KEK {kek.ref}", kek.key_id, kek.algorithm)
        self.vault_unwraps += 1
        plain = await wrapper.unwrap(kek.wrapped)
        if plain.kcv != kek.kcv:
            plain.wipe()
            raise IntegrityError(f"KEK {kek.ref} does not match its key check value")
        self._plain[kek.version] = plain
        return plain

    async def version(self, partition: str, version: str) -> tuple[StoredKek, DataKey]:
        """The stored KEK ``version`` of ``partition`` and its key.

        Raises:
            KekMissingError: the partition has no such version.
        """
        self.enter(partition)
        stored = await self._keks.read_kek(partition, version)
        if stored is None:
            raise KekMissingError(f"KEK {partition}/{version} does not exist")
        return stored, await self.key(stored)

    async def current(self, partition: str) -> StoredKek:
        """The partition's current (newest) KEK, unwrapped later, by :meth:`key`, only if a
        row needs it. A partition without one gets its first KEK exactly as the envelope
        makes it (``KekRing``: a fixed first version id, so of writers and jobs racing to
        make it one wins and the others use the winner's)."""
        self.enter(partition)
        versions = await self._keks.list_keks(partition)
        if versions:
            return versions[0]
        opened = await self._ring.current(partition)
        stored = await self._keks.read_kek(partition, opened.version)
        if stored is None:
            opened.key.wipe()
            raise KekMissingError(f"KEK {partition}/{opened.version} vanished once made")
        async with self._lock:
            self.enter(partition)
            self._plain.setdefault(stored.version, opened.key)
        self.vault_unwraps += self._stats.vault_unwraps - self._counted_unwraps
        self._counted_unwraps = self._stats.vault_unwraps
        self.created = self._stats.keks_created
        return stored

    async def create(self, partition: str, *, now: datetime) -> StoredKek:
        """A new KEK version of ``partition`` dated ``now`` (the KEK rotation's: it becomes
        the partition's current KEK), wrapped locally under the newest enabled version of
        the job's key, then inserted.

        Raises:
            ConflictError: that version exists (two rotations in one microsecond).
        """
        self.enter(partition)
        version = new_kek_version(now)
        wrapper = await self._vault.newest(self._key_ref)
        plain = DataKey.generate()
        try:
            stored = await self._keks.insert_kek(
                NewDek(
                    partition,
                    version,
                    wrapper.key_id,
                    wrapper.algorithm,
                    await wrapper.wrap(plain),
                    plain.kcv,
                )
            )
        except BaseException:
            plain.wipe()
            raise
        self.created += 1
        self._plain[version] = plain
        return stored
