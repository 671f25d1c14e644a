"""KeyCache: bounded LRU, per-entry TTL, wipe on every way out, copies, never pickled."""

from __future__ import annotations

import copy
import pickle

import pytest

from shared.crypto import DataKey
from shared.errors import InvalidInputError
from shared.records import KeyCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def key(byte: int) -> DataKey:
    return DataKey(bytes([byte]) * 32)


def held(cache: KeyCache) -> list[DataKey]:
    """The cache's own entries (white box: to prove they are wiped)."""
    return [entry.key for entry in cache._entries.values()]


def test_get_returns_a_fresh_copy_the_caller_may_wipe() -> None:
    cache = KeyCache(4, clock=Clock())
    original = key(1)
    cache.put("a", original, ttl=10)
    original.wipe()  # the caller's copy: the cached one is independent
    first = cache.get("a")
    assert first is not None
    assert first.reveal() == bytes([1]) * 32
    first.wipe()
    second = cache.get("a")
    assert second is not None
    assert not second.wiped
    assert second is not first


def test_lru_bound_evicts_least_recently_used_and_wipes_it() -> None:
    cache = KeyCache(2, clock=Clock())
    cache.put("a", key(1), ttl=10)
    cache.put("b", key(2), ttl=10)
    [entry_a, _] = held(cache)
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("c", key(3), ttl=10)
    assert cache.get("b") is None
    assert cache.get("a") is not None
    assert cache.get("c") is not None
    assert len(cache) == 2
    cache.put("d", key(4), ttl=10)  # a was read before c: a is now the least recent
    assert entry_a.wiped
    assert cache.get("a") is None
    assert len(cache) == 2
    assert cache.stats.evictions == 2


def test_eviction_wipes_the_evicted_entry() -> None:
    cache = KeyCache(1, clock=Clock())
    cache.put("a", key(1), ttl=10)
    [entry] = held(cache)
    cache.put("b", key(2), ttl=10)
    assert entry.wiped


def test_ttl_expires_and_wipes() -> None:
    clock = Clock()
    cache = KeyCache(4, clock=clock)
    cache.put("a", key(1), ttl=5)
    [entry] = held(cache)
    clock.now += 4.999
    assert cache.get("a") is not None
    clock.now += 0.001
    assert cache.get("a") is None
    assert entry.wiped
    assert cache.stats.expirations == 1


def test_expired_entries_are_wiped_at_the_next_call_on_any_key() -> None:
    clock = Clock()
    cache = KeyCache(4, clock=clock)
    cache.put("a", key(1), ttl=1)
    [entry] = held(cache)
    clock.now += 2
    assert cache.get("other") is None
    assert entry.wiped
    assert len(cache) == 0


def test_explicit_expiry_caps_the_ttl() -> None:
    """A DEK unwrapped by a cached KEK lives no longer than the KEK entry."""
    clock = Clock()
    cache = KeyCache(4, clock=clock)
    kek_expiry = cache.put("kek", key(9), ttl=10)
    assert kek_expiry == 1010.0
    dek_expiry = cache.put("dek", key(1), ttl=300, expires_at=kek_expiry)
    assert dek_expiry == kek_expiry == cache.expires_at("dek")
    clock.now = 1010.0
    assert cache.get("kek") is None
    assert cache.get("dek") is None


def test_an_expiry_in_the_past_keeps_nothing() -> None:
    clock = Clock()
    cache = KeyCache(4, clock=clock)
    assert cache.put("a", key(1), ttl=10, expires_at=clock.now) is None
    assert cache.put("b", key(1), ttl=0) is None
    assert len(cache) == 0


def test_size_zero_disables_caching() -> None:
    cache = KeyCache(0, clock=Clock())
    assert cache.put("a", key(1), ttl=10) is None
    assert cache.get("a") is None


def test_replacing_an_entry_wipes_the_old_one() -> None:
    cache = KeyCache(4, clock=Clock())
    cache.put("a", key(1), ttl=10)
    [old] = held(cache)
    cache.put("a", key(2), ttl=10)
    assert old.wiped
    got = cache.get("a")
    assert got is not None
    assert got.reveal() == bytes([2]) * 32


def test_clear_discard_and_close_wipe() -> None:
    cache = KeyCache(4, clock=Clock())
    cache.put("a", key(1), ttl=10)
    cache.put("b", key(2), ttl=10)
    entry_a, entry_b = held(cache)
    cache.discard("a")
    assert entry_a.wiped
    assert not entry_b.wiped
    cache.clear()
    assert entry_b.wiped
    assert len(cache) == 0
    cache.put("c", key(3), ttl=10)
    [entry_c] = held(cache)
    cache.close()
    assert entry_c.wiped
    assert cache.put("d", key(4), ttl=10) is None
    assert len(cache) == 0


def test_never_pickled_or_copied() -> None:
    cache = KeyCache(4, clock=Clock())
    cache.put("a", key(1), ttl=10)
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(cache)
    with pytest.raises(TypeError, match="cannot be pickled"):
        copy.copy(cache)


def test_repr_shows_counts_only() -> None:
    cache = KeyCache(4, clock=Clock())
    secret = key(0xAB)
    cache.put(("store", "p/r", secret.kcv), secret, ttl=10)
    text = repr(cache)
    assert text == "KeyCache(entries=1, max_entries=4)"
    assert "ab" not in text.lower().replace("max_entries", "")


def test_stats_count_hits_and_misses() -> None:
    cache = KeyCache(4, clock=Clock())
    cache.put("a", key(1), ttl=10)
    cache.get("a")
    cache.get("b")
    stats = cache.stats
    assert (stats.hits, stats.misses, stats.entries) == (1, 1, 1)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(InvalidInputError):
        KeyCache(-1)
    cache = KeyCache(4)
    with pytest.raises(InvalidInputError, match="ttl or an expiry"):
        cache.put("a", key(1))
    wiped = key(1)
    wiped.wipe()
    with pytest.raises(InvalidInputError, match="wiped"):
        cache.put("a", wiped, ttl=10)


def test_expiry_heap_stays_bounded_under_churn() -> None:
    cache = KeyCache(8, clock=Clock())
    for n in range(5000):
        cache.put(n % 3, key(n % 256), ttl=100)
    assert len(cache._expiries) <= 2 * 8 + 64 + 1
