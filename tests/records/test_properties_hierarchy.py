"""The whole life of a store, generated: both modes, Key Vault key rotations (the real rewrap
engine over the format-1 rows and over the KEK table), KEK rotations, migrations both ways,
application writes and reads through the Envelope while jobs are half done, and crashes at
every probe point. Afterwards every record decrypts to its plaintext (0 lost) and the
store's mode agrees with its rows."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.errors import ConfigurationError
from shared.records import (
    MAX_WRITE_SECONDS,
    Envelope,
    EnvelopeSettings,
    RecordFormat,
    StoredRecord,
    StoreMode,
)
from shared.records._migration_probe import JOB_POINTS
from shared.records._migration_state import Checkpoint, JobKind, read_checkpoint
from tests.records.memory import (
    DirectRowsView,
    HeldInserts,
    JobProbe,
    World,
    open_record,
    world,
)
from tests.rewrap.fakes import KEY_REF, engine_for, rsa_key

STORE_POINTS = ("store.after_replace", "mode.before_write", "mode.after_write",
                "keks.after_insert")  # fmt: skip
POINTS = (*JOB_POINTS, *STORE_POINTS)
PARTITIONS = ("t0", "t1", "t2")
STEADY = (StoreMode.HIERARCHY, StoreMode.DIRECT)
#: Vault versions a run may rotate to (V1 and V2 exist from the start).
NEW_VERSIONS = ("3" * 32, "4" * 32)
LEASE_OVER = 120.0
ENVELOPE = EnvelopeSettings(cache_size=64, mode_ttl_seconds=30, kek_cache_seconds=300,
                            dek_cache_seconds=300)  # fmt: skip


class SimulatedCrash(BaseException):
    """The process died here."""


class CrashAt:
    def __init__(self, point: str, nth: int) -> None:
        self.point, self.nth, self.hits, self.fired = point, nth, 0, False

    def __call__(self, name: str) -> None:
        if name == self.point and not self.fired:
            self.hits += 1
            if self.hits == self.nth:
                self.fired = True
                raise SimulatedCrash(f"{self.point}#{self.nth}")


@dataclass
class Life:
    w: World
    apps: list[Envelope] = field(default_factory=list)
    ids: itertools.count[int] = field(default_factory=itertools.count)
    rotations: int = 0
    crashes: int = 0
    #: Writes still in flight: the task, when it lands, the record and its plaintext.
    late: list[tuple[asyncio.Task[StoredRecord], datetime, tuple[str, str], bytes]] = field(
        default_factory=list
    )

    def envelope(self, records: HeldInserts | None = None) -> Envelope:
        return Envelope(records or self.w.records, self.w.keks, self.w.modes, self.w.vault,
                        KEY_REF, settings=ENVELOPE, clock=self.w.time.monotonic,
                        wall_clock=self.w.time.now)  # fmt: skip

    async def late_write(self, app: int, after: float) -> None:
        """A write decided now whose insert lands ``after`` seconds later (within the write
        bound: its decision's TTL has not run out yet), while whatever comes next runs."""
        held = self.apps[app]._records
        assert isinstance(held, HeldInserts)
        key = ("t0", f"late{next(self.ids):04}")
        land_at = self.w.time.now() + timedelta(seconds=after)
        held.holds[f"{key[0]}/{key[1]}"] = land_at
        plain = f"{key[0]}/{key[1]} plaintext".encode()
        task = asyncio.ensure_future(self.apps[app].encrypt(*key, plain, context=b"ctx"))
        self.late.append((task, land_at, key, plain))

    async def land(self) -> None:
        """Let every write in flight land (its time comes)."""
        for task, land_at, key, plain in self.late:
            if self.w.time.now() < land_at:
                self.w.time.advance((land_at - self.w.time.now()).total_seconds())
            await task
            self.w.plaintexts[key] = plain
        self.late.clear()

    async def write(self, app: int, partition: str) -> None:
        record_id = f"r{next(self.ids):04}"
        plain = f"{partition}/{record_id} plaintext".encode()
        await self.apps[app].encrypt(partition, record_id, plain, context=b"ctx")
        self.w.plaintexts[(partition, record_id)] = plain

    async def read(self, app: int, pick: int) -> None:
        if not self.w.plaintexts:
            return
        keys = sorted(self.w.plaintexts)
        partition, record_id = keys[pick % len(keys)]
        got = await self.apps[app].decrypt(partition, record_id, context=b"ctx")
        assert got == self.w.plaintexts[(partition, record_id)]

    async def vault_rotation(self) -> None:
        """A new Key Vault key version; the rewrap engine moves the direct rows and the
        KEKs to it, exactly as the Function App's two shards would."""
        if self.rotations == len(NEW_VERSIONS):
            return
        version = NEW_VERSIONS[self.rotations]
        self.w.source.add_version(KEY_REF, version, rsa_key(2 + self.rotations))
        self.rotations += 1
        for store in (DirectRowsView(self.w.records), self.w.keks):
            report = await engine_for(store, self.w.source, page_size=5).run(KEY_REF, version)
            assert report.consistent

    async def job(self, run: str, option: object, crash: tuple[str, int] | None) -> None:
        await self.read(1, 0)  # the second application now trusts the mode for its TTL
        probe = CrashAt(*crash) if crash else None
        hook: JobProbe = probe or (lambda name: None)
        self.w.records.probe = self.w.keks.probe = self.w.modes.probe = hook
        jobs = self.w.jobs("runner", probe=hook)
        try:
            if run == "migrate":
                if option == "flip":  # to the mode the store is not in (or not going to)
                    now = (await self.w.modes.read_mode()).mode
                    going = StoreMode.HIERARCHY if now.writes is RecordFormat.HIERARCHY else None
                    option = StoreMode.DIRECT if going else StoreMode.HIERARCHY
                assert isinstance(option, StoreMode)
                await jobs.migrate(option, KEY_REF)
            else:
                assert option is None or isinstance(option, str)
                await jobs.rotate_keks(KEY_REF, partition=option)
        except SimulatedCrash:
            self.crashes += 1
            # While the dead runner's lease holds: applications keep writing (the second
            # one may still trust a mode it read before the job changed it) and reading.
            self.w.records.probe = self.w.keks.probe = self.w.modes.probe = lambda name: None
            await self.write(1, "t1")
            await self.read(0, self.crashes)
            self.w.time.advance(LEASE_OVER)
        except ConfigurationError as refused:
            if run != "rotate" or "keyward migrate" not in str(refused):
                raise  # only a KEK rotation during an unfinished migration is refused
        finally:
            self.w.records.probe = self.w.keks.probe = self.w.modes.probe = lambda name: None

    async def finish(self) -> StoreMode:
        """Run whatever job is unfinished to its end; returns the store's mode."""
        checkpoint: Checkpoint | None = read_checkpoint((await self.w.modes.read_mode()).migration)
        jobs = self.w.jobs("finisher")
        if checkpoint is not None and not checkpoint.finished:
            if checkpoint.kind is JobKind.MIGRATE:
                await jobs.migrate(StoreMode(checkpoint.target), KEY_REF)
            else:
                await jobs.rotate_keks(KEY_REF)
        return (await self.w.modes.read_mode()).mode


#: Crashes right after a job changed the mode weigh more: the window in which a writer still
#: trusts the old mode.
crash_at = st.tuples(st.sampled_from((*POINTS, *("job.mode_set",) * 4)), st.integers(1, 3))
crashes = st.one_of(st.none(), crash_at, crash_at)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("write"), st.integers(0, 1), st.sampled_from(PARTITIONS)),
        st.tuples(st.just("read"), st.integers(0, 1), st.integers(0, 1000)),
        st.tuples(st.just("vault"), st.none(), st.none()),
        st.tuples(st.just("late"), st.integers(0, 1), st.floats(0, MAX_WRITE_SECONDS - 1)),
        st.tuples(st.just("rotate"), st.sampled_from([None, "t0"]), crashes),
        st.tuples(st.just("migrate"), st.sampled_from(["flip", "flip", *STEADY]), crashes),
    ),
    min_size=1,
    max_size=8,
)


async def live(start_in: StoreMode, plan: list[tuple[str, object, object]]) -> None:
    life = Life(world())
    life.apps = [life.envelope(HeldInserts(life.w)), life.envelope(HeldInserts(life.w))]
    for index in range(6):
        await life.write(index % 2, PARTITIONS[index % 3])
    if start_in is StoreMode.HIERARCHY:
        await life.job("migrate", StoreMode.HIERARCHY, None)
    for op, first, second in plan:
        if op == "write":
            assert isinstance(first, int)
            assert isinstance(second, str)
            await life.write(first, second)
        elif op == "read":
            assert isinstance(first, int)
            assert isinstance(second, int)
            await life.read(first, second)
        elif op == "vault":
            await life.vault_rotation()
        elif op == "late":
            assert isinstance(first, int)
            assert isinstance(second, float)
            await life.late_write(first, second)
        else:
            crash = second if isinstance(second, tuple) else None
            await life.job(op, first, crash)
    await life.land()
    mode = await life.finish()
    w = life.w
    rows = w.records.rows
    assert len(rows) == len(w.plaintexts)  # 0 lost
    if mode is StoreMode.HIERARCHY:
        assert {row.format for row in rows.values()} <= {RecordFormat.HIERARCHY}
        assert all((p, row.kek_version) in w.keks.rows for (p, _), row in rows.items())
    else:
        assert mode is StoreMode.DIRECT
        assert {row.format for row in rows.values()} <= {RecordFormat.DIRECT}
        assert not w.keks.rows
    for (partition, record_id), plain in w.plaintexts.items():
        assert (
            open_record(w.records, w.keks, w.source, partition, record_id, context=b"ctx") == plain
        )
    fresh = life.envelope()
    for (partition, record_id), plain in w.plaintexts.items():
        assert await fresh.decrypt(partition, record_id, context=b"ctx") == plain
    for app in (*life.apps, fresh):
        await app.aclose()


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # fmt: skip
@given(start_in=st.sampled_from([StoreMode.DIRECT, StoreMode.HIERARCHY]), plan=operations)
def test_any_life_of_a_store_loses_no_record(
    start_in: StoreMode, plan: list[tuple[str, object, object]]
) -> None:
    asyncio.run(live(start_in, plan))
