"""Differential test: random scripts of scans, rewraps (some stale, some replayed), unreadable
marks and forgotten previous wraps give the same outcomes on every store as on the in-memory
reference, step by step, and leave the same state."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from devtools.seed import seed_deks
from shared.stores import DekRecord, Rewrap
from tests.memory_store import MemoryDekStore
from tests.stores.conftest import KEY_REF, V2, V3, Harness, Keys, MemoryHarness
from tests.stores.test_conformance import rewrap_to, scan_all

STEPS = 40


async def state(store: Any) -> dict[str, tuple[str, str | None]]:
    records = await scan_all(store)
    return {r.ref: (r.key_id, r.previous_key_id) for r in records}


class Lockstep:
    """Applies each step to the store under test and to the reference, comparing outcomes."""

    def __init__(self, store: Any, reference: MemoryDekStore, keys: Keys, rng: random.Random):
        self.stores = (store, reference)
        self.keys = keys
        self.rng = rng
        self.seen: tuple[list[DekRecord], list[DekRecord]] = ([], [])
        self.last: tuple[list[Rewrap], list[Rewrap]] | None = None
        self.tally: Counter[str] = Counter()

    async def scan(self) -> None:
        exclude = self.rng.choice([V2, V3, None])
        size = self.rng.randint(1, 15)
        pages = [await s.scan(KEY_REF, exclude_version=exclude, page_size=size)
                 for s in self.stores]  # fmt: skip
        assert [r.ref for r in pages[0].records] == [r.ref for r in pages[1].records]
        assert (pages[0].continuation is None) == (pages[1].continuation is None)
        self.seen = (list(pages[0].records), list(pages[1].records))

    async def rewrap(self) -> None:
        if not self.seen[0]:
            return
        picks = sorted(
            self.rng.sample(range(len(self.seen[0])), self.rng.randint(1, len(self.seen[0])))
        )
        target = self.rng.choice([self.keys.v2, self.keys.v3])
        batches = tuple(
            [rewrap_to(seen[i], self.keys, target) for i in picks] for seen in self.seen
        )
        await self._write(batches)
        self.last = (batches[0], batches[1])

    async def replay(self) -> None:
        if self.last is not None:
            await self._write(self.last)

    async def _write(self, batches: tuple[list[Rewrap], list[Rewrap]]) -> None:
        results = [await s.replace_batch(b) for s, b in zip(self.stores, batches, strict=True)]
        assert [(r.ref, r.outcome) for r in results[0]] == [(r.ref, r.outcome) for r in results[1]]
        self.tally.update(r.detail or r.outcome.value for r in results[0])

    async def mark(self) -> None:
        if self.seen[0]:
            index = self.rng.randrange(len(self.seen[0]))
            results = [await s.mark_unreadable(seen[index], "refused")
                       for s, seen in zip(self.stores, self.seen, strict=True)]  # fmt: skip
            assert results[0].outcome == results[1].outcome

    async def forget(self) -> None:
        version = self.rng.choice([self.keys.v1, self.keys.v2]).key_id
        counts = [await s.forget_previous(version) for s in self.stores]
        assert counts[0] == counts[1]


def run_script(harness: Harness, keys: Keys, seed: int) -> Counter[str]:
    tally: Counter[str] = Counter()

    async def body(store: Any) -> None:
        reference = MemoryDekStore()
        for target in (store, reference):
            await seed_deks(target, keys.v1, 30, partitions=3)
        steps = Lockstep(store, reference, keys, random.Random(seed))
        actions = [steps.scan, steps.scan, steps.rewrap, steps.replay, steps.mark, steps.forget]
        for _ in range(STEPS):
            await steps.rng.choice(actions)()
        assert await state(store) == await state(reference)
        counts = [sorted((c.key_id, c.current, c.previous, c.unreadable)
                         for c in await s.version_counts(KEY_REF))
                  for s in (store, reference)]  # fmt: skip
        assert counts[0] == counts[1]
        tally.update(steps.tally)

    harness.run(body)
    return tally


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_same_outcomes_as_the_reference(harness: Harness, keys: Keys, seed: int) -> None:
    run_script(harness, keys, seed)


def test_scripts_do_conflict_and_replay(keys: Keys) -> None:
    """The scripts are not vacuous: across the seeds, writes land, lose races and replay."""
    tally: Counter[str] = Counter()
    for seed in (1, 2, 3):
        tally.update(run_script(MemoryHarness(), keys, seed))
    assert min(tally[k] for k in ("written", "etag no longer matches", "already written")) > 0
