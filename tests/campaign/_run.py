"""Scenarios, the oracle and the figures of the retirement campaign.

Each scenario draws from its own ``random.Random(f"{seed}:{index}")`` a mix of: rotations
(one or two in a row), applications writing DEKs and blobs under the newest, a stale or a
retired version (and, when the stores match spellings, under another spelling of the key
id), blob overwrites that snapshot first (when the stores report immutable copies), rotation
events duplicated and out of order, worker slices, crashes at the engine's probe points,
pinning and unpinning a key-dependent resource, retire calls (up to three at once, sometimes
beside a worker slice or an application still writing under that version), verdicts, and
blob owners deleting the snapshots a verdict names. Whenever a verdict says "safe to disable" for an
enabled version, the operator disables it at once, and the oracle checks that every DEK,
blob and snapshot the applications wrote still decrypts (blobs through azure-storage-blob)
and no pinned resource's version was disabled. A scenario ends by draining the queue,
retiring every old version it can, acting on the verdict and checking again.
"""

from __future__ import annotations

import asyncio
import random
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric import rsa

from devtools.emulator.process import RunningEmulator
from shared.errors import KeywardError, RetirementBlockedError, RetirementRaceError
from shared.rewrap import (
    ENGINE_POINTS,
    BlockerKind,
    RetirementReport,
    RewrapEngine,
    RewrapTargetError,
)
from tests.campaign._vaults import EmulatorVault, LocalVault, Vault, VaultKek
from tests.campaign._world import SETTINGS, World


class Crash(BaseException):
    """Unwinds the engine as a killed process would (no cleanup writes)."""


@dataclass(frozen=True)
class Features:
    """What the stores can show today (probed once per run, see ``_probe``)."""

    spellings: bool
    immutable_copies: bool


@dataclass
class Figures:
    scenarios: int = 0
    steps: int = 0
    verdicts_checked: int = 0
    safe_verdicts_acted_on: int = 0
    deks_checked: int = 0
    deks_lost: int = 0
    retire_done: int = 0
    retire_refused: int = 0
    retire_races: int = 0
    crashes: int = 0
    copies_deleted: int = 0
    #: Previous wraps found under a version after its retire said "done" (must be 0).
    retired_writes: int = 0
    #: DEKs under a retired version the engine reported instead of rewriting.
    refused_under_retired: int = 0
    lost: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"scenarios={self.scenarios} steps={self.steps} "
            f"verdicts_checked={self.verdicts_checked} "
            f"safe_verdicts_acted_on={self.safe_verdicts_acted_on} "
            f"retire_done={self.retire_done} retire_refused={self.retire_refused} "
            f"retire_races={self.retire_races} crashes={self.crashes} "
            f"copies_deleted_by_owner={self.copies_deleted} "
            f"deks_checked={self.deks_checked} deks_lost={self.deks_lost} "
            f"writes_under_retired={self.retired_writes} "
            f"refused_under_retired={self.refused_under_retired}"
        )


STEPS = ("rotate", "table", "blob", "event", "work", "crash", "retire", "verdict", "pin")
WEIGHTS = (2, 4, 3, 3, 4, 2, 3, 3, 1)


class Scenario:
    def __init__(self, world: World, rng: random.Random, features: Features, figures: Figures):
        self.world, self.rng, self.features, self.figures = world, rng, features, figures
        self.retired: set[str] = set()
        #: Versions a retire call answered "done" for: keyward must never write under them.
        self.retired_done: set[str] = set()
        self.retired_writes: set[str] = set()
        self.lost: set[str] = set()

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
            await self._check_no_writes_under_retired()

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
        await self._check_no_writes_under_retired()

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
            self.retired_done.add(version)
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
            await self.check()

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
        await self.check()
        for shard in self.world.stores:
            for state in await self.world.job_store(shard).list_jobs(self.world.key_ref):
                refused = state.counters.failed.get("retired_version", 0)
                self.figures.refused_under_retired += refused

    async def check(self) -> None:
        """The oracle: everything the applications wrote still opens."""
        world = self.world
        for ref, plain in world.table_plain.items():
            self.figures.deks_checked += 1
            details = await world.table_store.get(ref)
            if details is None or not await self._opens(
                details.record.key_id, details.record.wrapped, plain
            ):
                self._lose(f"table {ref}")
        for name, content in world.blob_content.items():
            self.figures.deks_checked += 1
            if self._download(name, None) != content:
                self._lose(f"blob {name}")
        for (name, snapshot), content in world.snapshot_content.items():
            self.figures.deks_checked += 1
            if self._download(name, snapshot) != content:
                self._lose(f"snapshot {name}@{snapshot}")
        await self._check_no_writes_under_retired()
        for version, resources in world.dependents.pinned.items():
            if resources and version in world.disabled:
                self._lose(f"pinned resource on {version}")

    async def _check_no_writes_under_retired(self) -> None:
        """After a retire said "done", no store holds a previous wrap under that version:
        only keyward writes previous wraps, and it must not write under a retired version."""
        if not self.retired_done:
            return
        for shard, store in self.world.stores.items():
            for count in await store.version_counts(self.world.key_ref):
                version = count.key_id.rsplit("/", 1)[1].lower()
                what = f"{shard}: previous wraps under retired {version}"
                if (
                    version in self.retired_done
                    and count.previous
                    and what not in self.retired_writes
                ):
                    self.retired_writes.add(what)
                    self.figures.retired_writes += 1
                    self.figures.lost.append(what)

    def _lose(self, what: str) -> None:
        if what not in self.lost:
            self.lost.add(what)
            self.figures.deks_lost += 1
            self.figures.lost.append(what)

    async def _opens(self, key_id: str, wrapped: bytes, plain: bytes) -> bool:
        return self.world.vault.unwrap(key_id, wrapped, "RSA-OAEP-256") == plain

    def _download(self, name: str, snapshot: str | None) -> bytes | None:
        world = self.world

        def resolve(kid: str) -> VaultKek:
            return VaultKek(world.vault, kid)

        blob = world.sync_container.get_blob_client(name, snapshot=snapshot)
        blob.require_encryption = True
        blob.key_resolver_function = resolve
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return bytes(blob.download_blob().readall())
        except Exception:
            return None


def key_pool(size: int = 4) -> list[rsa.RSAPrivateKey]:
    return [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(size)]


VaultFactory = Callable[[], Vault]


async def probe_features(connection_string: str, make_vault: VaultFactory) -> Features:
    """Ask the stores, by behaviour, what they can see today (not by version numbers)."""
    world = World(connection_string, make_vault())
    await world.open()
    try:
        version = world.rotate()
        await world.write_table(version, world.spellings[2], 1)
        counts = await world.table_store.version_counts(world.key_ref)
        spellings = sum(c.current for c in counts) == 1
        world.write_blob("probe", version, world.key_ref, snapshot_first=False)
        world.snapshot("probe")
        counts = await world.blob_store.version_counts(world.key_ref)
        immutable = sum(getattr(c, "immutable", 0) for c in counts) == 1
        return Features(spellings=spellings, immutable_copies=immutable)
    finally:
        await world.close()


async def campaign(
    connection_string: str,
    *,
    scenarios: int,
    seed: int,
    steps: int = 14,
    first: int = 0,
    force: Features | None = None,
    emulator: RunningEmulator | None = None,
) -> tuple[Figures, Features]:
    """Run scenarios ``first .. first + scenarios - 1`` of campaign ``seed``.

    ``emulator``: run the key's vault in keyward's emulator (the real Key Vault adapter)
    instead of in-process local keys. ``force`` switches scenario kinds on whatever the
    stores can show (to prove the oracle catches what the verdict cannot see yet: expect
    losses).
    """
    pool = key_pool()

    def make_vault() -> Vault:
        return EmulatorVault(emulator) if emulator is not None else LocalVault(pool)

    features = force or await probe_features(connection_string, make_vault)
    figures = Figures()
    for index in range(first, first + scenarios):
        world = World(connection_string, make_vault())
        await world.open()
        try:
            rng = random.Random(f"{seed}:{index}")
            await Scenario(world, rng, features, figures).run(steps)
            figures.scenarios += 1
        finally:
            await world.close()
    return figures, features
