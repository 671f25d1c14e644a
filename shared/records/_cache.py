"""A bounded, time-limited in-memory cache of unwrapped keys (DEKs and KEKs).

Why each property:

* **bounded LRU**: an application reading millions of records must not hold millions of
  keys; the least recently used entry goes first.
* **TTL, per entry**: how long a key outlives a revocation of the vault key is the TTL. An
  entry's expiry can be given explicitly, so a DEK unwrapped by a cached KEK expires no
  later than that KEK: revocation latency in hierarchy mode is then the KEK TTL.
* **wipe**: every entry is zeroed when it leaves (eviction, expiry, ``discard``, ``clear``,
  ``close``). Expired entries are wiped at the next cache call (a heap of expiries keeps
  that O(log n)), not when the clock passes them: nothing runs in between.
* **copies**: ``put`` stores its own copy and ``get`` returns a fresh copy the caller wipes,
  so an eviction never wipes a key a caller is still using, and a caller's ``with key:``
  never wipes the cached one.
* **never pickled, no secrets in repr**: key material never goes to disk or a queue.

Entry keys are tuples of non-secret text (store name, ref, KCV). Not thread-safe across OS
threads by design of its callers (one event loop); a lock makes it safe anyway.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import NoReturn

from shared.crypto import DataKey
from shared.errors import InvalidInputError


@dataclass
class _Entry:
    key: DataKey
    expires_at: float
    serial: int


@dataclass(frozen=True)
class CacheStats:
    """Counters since the cache was made (for ``Envelope.stats`` and the benchmarks)."""

    hits: int = 0
    misses: int = 0
    evictions: int = 0
    expirations: int = 0
    entries: int = 0


class KeyCache:
    """Unwrapped keys by entry key, at most ``max_entries``, each until its expiry."""

    def __init__(self, max_entries: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        """``max_entries`` 0 disables caching (``put`` keeps nothing).

        Raises:
            InvalidInputError: ``max_entries`` is negative.
        """
        if max_entries < 0:
            raise InvalidInputError(f"cache size must be >= 0, got {max_entries}")
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._expiries: list[tuple[float, int, Hashable]] = []
        self._serial = 0
        self._lock = threading.Lock()
        self._closed = False
        self._hits = self._misses = self._evictions = self._expirations = 0

    @property
    def max_entries(self) -> int:
        return self._max

    def put(
        self,
        entry_key: Hashable,
        key: DataKey,
        *,
        ttl: float | None = None,
        expires_at: float | None = None,
    ) -> float | None:
        """Cache a copy of ``key`` until ``now + ttl`` or ``expires_at``, whichever is
        earlier (at least one must be given); the caller keeps (and wipes) its own.

        Returns the entry's expiry on the cache's clock, or ``None`` when nothing was kept
        (caching disabled, closed, or an expiry not in the future). A previous entry under
        the same key is wiped and replaced.

        Raises:
            InvalidInputError: neither ``ttl`` nor ``expires_at`` given, or ``key`` is wiped.
        """
        if ttl is None and expires_at is None:
            raise InvalidInputError("a cache entry needs a ttl or an expiry")
        now = self._clock()
        limits = [t for t in (None if ttl is None else now + ttl, expires_at) if t is not None]
        expiry = min(limits)
        if self._max == 0 or expiry <= now:
            return None
        copy = DataKey(key.reveal())
        with self._lock:
            if self._closed:
                copy.wipe()
                return None
            self._expire(now)
            old = self._entries.pop(entry_key, None)
            if old is not None:
                old.key.wipe()
            self._serial += 1
            self._entries[entry_key] = _Entry(copy, expiry, self._serial)
            heapq.heappush(self._expiries, (expiry, self._serial, entry_key))
            while len(self._entries) > self._max:
                _, evicted = self._entries.popitem(last=False)
                evicted.key.wipe()
                self._evictions += 1
            self._compact()
        return expiry

    def get(self, entry_key: Hashable) -> DataKey | None:
        """A fresh copy of the cached key (the caller wipes it), or ``None``."""
        with self._lock:
            self._expire(self._clock())
            entry = self._entries.get(entry_key)
            if entry is None:
                self._misses += 1
                return None
            self._entries.move_to_end(entry_key)
            self._hits += 1
            return DataKey(entry.key.reveal())

    def expires_at(self, entry_key: Hashable) -> float | None:
        """When the entry expires on the cache's clock, or ``None`` if there is none."""
        with self._lock:
            self._expire(self._clock())
            entry = self._entries.get(entry_key)
            return None if entry is None else entry.expires_at

    def discard(self, entry_key: Hashable) -> None:
        """Drop (and wipe) one entry, if present."""
        with self._lock:
            entry = self._entries.pop(entry_key, None)
            if entry is not None:
                entry.key.wipe()

    def purge_expired(self) -> int:
        """Wipe every expired entry now; returns how many."""
        with self._lock:
            return self._expire(self._clock())

    def clear(self) -> None:
        """Wipe and drop every entry; the cache stays usable."""
        with self._lock:
            for entry in self._entries.values():
                entry.key.wipe()
            self._entries.clear()
            self._expiries.clear()

    def close(self) -> None:
        """Wipe everything; later ``put`` keeps nothing."""
        self.clear()
        with self._lock:
            self._closed = True

    @property
    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(
                self._hits, self._misses, self._evictions, self._expirations, len(self._entries)
            )

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def _expire(self, now: float) -> int:
        """Wipe entries whose expiry has passed (called under the lock)."""
        expired = 0
        while self._expiries and self._expiries[0][0] <= now:
            _, serial, entry_key = heapq.heappop(self._expiries)
            entry = self._entries.get(entry_key)
            if entry is not None and entry.serial == serial:
                del self._entries[entry_key]
                entry.key.wipe()
                expired += 1
        self._expirations += expired
        return expired

    def _compact(self) -> None:
        """Rebuild the expiry heap when stale items (replaced or evicted entries) dominate,
        so its size stays proportional to the entries (called under the lock)."""
        if len(self._expiries) > 2 * self._max + 64:
            live = {(e.serial) for e in self._entries.values()}
            self._expiries = [item for item in self._expiries if item[1] in live]
            heapq.heapify(self._expiries)

    def __repr__(self) -> str:
        return f"KeyCache(entries={len(self)}, max_entries={self._max})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("KeyCache cannot be pickled: key material never goes to disk or queues")
