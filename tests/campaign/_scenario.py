"""One scenario of the retirement campaign: random steps over one world.

Each scenario draws from its own ``random.Random(f"{seed}:{index}")`` a mix of: rotations
(one or two in a row), applications writing DEKs and blobs under the newest, a stale or a
retired version (and, when the stores match spellings, under another spelling of the key
id), blob overwrites that snapshot first (when the stores report immutable copies), rotation
events duplicated and out of order, worker slices, crashes at the engine's probe points,
pinning and unpinning a key-dependent resource, retire calls (up to three at once, sometimes
beside a worker slice or an application still writing under that version), verdicts, and
blob owners deleting the snapshots a verdict names. Whenever a verdict says "safe to
disable" for an enabled version, the operator disables it (at once, or a step or two later)
and the oracle (``_oracle``) checks that nothing was lost. A scenario ends by draining the
queue, retiring every old version it can, acting on the verdict and checking again.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta

from shared.errors import KeywardError, RetirementBlockedError, RetirementRaceError
from shared.rewrap import (
    ENGINE_POINTS,
    BlockerKind,
    RetirementReport,
    RewrapEngine,
    RewrapTargetError,
)
from tests.campaign._oracle import Features, Figures, Oracle
from tests.campaign._world import SETTINGS, World


class Crash(BaseException):
    """Unwinds the engine as a killed process would (no cleanup writes)."""


STEPS = ("rotate", "table", "blob", "event", "work", "crash", "retire", "verdict", "pin")
WEIGHTS = (2, 4, 3, 3, 4, 2, 3, 3, 1)


class Scenario:
    def __init__(self, world: World, rng: random.Random, features: Features, figures: Figures):
        self.world, self.rng, self.features, self.figures = world, rng, features, figures
        self.retired: set[str] = set()
        self.oracle = Oracle(world, figures)

    def spelling(self) -> str:
        spellings = self.world.spellings
        return self.rng.choice(spellings) if self.features.spellings else spellings[0]

    def pick_version(self) -> str:
        """Newest, a stale one, or a retired one: whatever an application may hold."""
        enabled = self.world.enabled_versions
        retired = [v for v in enabled if v in self.retired]
        choice = self.rng.random()
        if choice < 0.45:
            return enabled[-1]
        if choice < 0.6 and retired:
            return self.rng.choice(retired)  # an application that missed the retirement
        return self.rng.choice(enabled)

    async def run(self, steps: int) -> None:
        self.world.rotate()
        await self.world.write_table(self.world.versions[-1], self.world.key_ref, 3)
        rotation = self.rng.randrange(steps)  # every scenario rotates at least once
        for index in range(steps):
            step = "rotate" if index == rotation else self.rng.choices(STEPS, WEIGHTS)[0]
            self.figures.steps += 1
            await getattr(self, f"step_{step}")()
        await self.finish()

    async def step_rotate(self) -> None:
        for _ in range(self.rng.choice((1, 1, 2))):  # sometimes two in a row
            self.world.rotate()

    async def step_table(self) -> None:
        await self.world.write_table(self.pick_version(), self.spelling(), self.rng.randint(1, 4))

    async def step_blob(self) -> None:
        name = f"blob-{self.rng.randint(0, 4)}"
        snapshot = self.features.immutable_copies and self.rng.random() < 0.5
        self.world.write_blob(name, self.pick_version(), self.spelling(), snapshot_first=snapshot)

    async def step_event(self) -> None:
        """A rotation event, maybe for an older version (reordered), maybe twice."""
        version = self.rng.choice(self.world.versions)
        for _ in range(self.rng.choice((1, 2))):
            try:
                await self.world.planner.plan(self.world.key_ref, version)
            except RewrapTargetError:
                await self.world.planner.plan(self.world.key_ref, None)  # disabled: the newest
        if self.rng.random() < 0.3:
            self.rng.shuffle(self.world.queue.messages)

    async def step_work(self, limit: int | None = None) -> None:
        queue = self.world.queue.messages
        for _ in range(limit or self.rng.randint(1, 6)):
            if not queue:
                return
            message = queue.pop(0)
            try:
                await self.world.worker.handle(
                    message.to_json(), message_id=uuid.uuid4().hex, dequeue_count=1
                )
            except KeywardError:
                queue.append(message)
            await self.oracle.check_no_writes_under_retired()

    async def step_crash(self) -> None:
        """A worker dies at a probe point; its lease has lapsed by the time anyone looks."""
        point, hit = self.rng.choice(ENGINE_POINTS), self.rng.choice((1, 1, 2, 3))
        seen = {"n": 0}

        def probe(name: str) -> None:
            if name == point:
                seen["n"] += 1
                if seen["n"] == hit:
                    raise Crash(name)

        shard = self.rng.choice(list(self.world.stores))
        engine = RewrapEngine(
            store=self.world.stores[shard], keys=self.world.source,
            jobs=self.world.job_store(shard), settings=SETTINGS, probe=probe,
            owner="crashed-worker", now=lambda: datetime.now(UTC) - timedelta(hours=1),
            job_scope=shard, retired=self.world.retired,
        )  # fmt: skip
        try:
            await engine.run(self.world.key_ref)
        except Crash:
            self.figures.crashes += 1
        except KeywardError:
            pass
        await self.oracle.check_no_writes_under_retired()

    async def step_pin(self) -> None:
        pinned = self.world.dependents.pinned
        if pinned and self.rng.random() < 0.5:
            pinned.clear()
        else:
            pinned.setdefault(self.pick_version(), []).append("/subscriptions/s/face-1")

    async def step_retire(self) -> None:
        old = self.world.enabled_versions[:-1]
        if not old:
            return
        version = self.rng.choice(old)
        calls = [self.retire(version) for _ in range(self.rng.randint(1, 3))]
        if self.rng.random() < 0.4:
            calls.append(self.step_work(1))  # a slice beside the retire calls
        if self.rng.random() < 0.3:  # an application still holding that version writes
            calls.insert(self.rng.randint(0, len(calls)), self.late_write(version))
        await asyncio.gather(*calls)

    async def late_write(self, version: str) -> None:
        await asyncio.sleep(self.rng.choice((0, 0.005, 0.02, 0.05)))
        await self.world.write_table(version, self.spelling(), 1)

    async def retire(self, version: str) -> None:
        try:
            await self.world.admin.retire(self.world.key_ref, version=version)
            self.figures.retire_done += 1
            self.retired.add(version)
            self.oracle.retired_done.add(version)
        except RetirementRaceError:
            self.figures.retire_races += 1
            self.retired.add(version)
        except RetirementBlockedError:
            self.figures.retire_refused += 1

    async def step_verdict(self, patience: float = 0.4) -> None:
        """Ask for the verdict and act on "safe to disable" at once (or, with probability
        ``patience``, leave that version enabled a while longer), then check."""
        report = await self.world.admin.verdict(self.world.key_ref)
        if self.rng.random() < 0.5:
            self.owner_deletes_named_copies(report)
            report = await self.world.admin.verdict(self.world.key_ref)
        acted = False
        for entry in report.versions:
            if entry.version not in self.world.enabled_versions or entry.newest:
                continue
            self.figures.verdicts_checked += 1
            if entry.safe_to_disable and self.rng.random() >= patience:
                self.world.disable(entry.version)
                self.figures.safe_verdicts_acted_on += 1
                acted = True
        if acted:
            await self.oracle.check()

    def owner_deletes_named_copies(self, report: RetirementReport) -> None:
        """The blob owner acts on the verdict's names: deletes the snapshots it lists."""
        for entry in report.versions:
            for blocker in entry.blocker_list:
                if blocker.kind is not BlockerKind.IMMUTABLE:
                    continue
                for listed in blocker.names:
                    ref, _, snapshot = listed.split(": ", 1)[1].partition("?snapshot=")
                    name = ref.split("/", 1)[1]
                    self.world.sync_container.get_blob_client(name, snapshot=snapshot).delete_blob()
                    self.world.snapshot_content.pop((name, snapshot), None)
                    self.figures.copies_deleted += 1

    async def finish(self) -> None:
        await self.world.planner.plan(self.world.key_ref, None)
        for _ in range(40):
            if not self.world.queue.messages:
                break
            await self.step_work(10)
        for version in self.world.enabled_versions[:-1]:
            await self.retire(version)
        await self.step_verdict(patience=0.0)
        await self.oracle.check()
        for shard in self.world.stores:
            for state in await self.world.job_store(shard).list_jobs(self.world.key_ref):
                refused = state.counters.failed.get("retired_version", 0)
                self.figures.refused_under_retired += refused
