"""A writer's insert that reaches the store late (a slow network, an SDK retry after a
timeout) never escapes the store jobs' counts: it lands within ``MAX_WRITE_SECONDS`` of its
decision's TTL (``shared/records/_write_bound.py``), and the jobs count, flip the mode and
delete KEK versions only after the switch plus that TTL plus ``MAX_WRITE_SECONDS``.

Each test: an ``Envelope`` (the application writer) decides its format or its current KEK
just before the job's switch; its insert is held and lands 40 s after that decision's TTL
ran out (abandoned by the client at 30 s, applied by the service within its 30 s grace),
while the job runs on a fake clock. Before the bound, the job counted at once after its wait
and flipped (or deleted the KEK); the late row was then invisible to the key scans (a
format-1 row in a ``hierarchy`` store) or unreadable (a format-2 row under a deleted KEK).
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta

import pytest

from shared.crypto import AsyncKeyWrapper, WrapAlgorithm
from shared.errors import TransientServiceError
from shared.records import (
    MAX_WRITE_SECONDS,
    WRITE_DEADLINE_SECONDS,
    Envelope,
    EnvelopeSettings,
    ModeRecord,
    RecordFormat,
    StoreMode,
)
from shared.records._write_bound import SERVICE_GRACE_SECONDS
from tests.records.memory import MODE_TTL, HeldInserts, World, world
from tests.rewrap.fakes import KEY_REF

KEK_TTL = EnvelopeSettings().kek_cache_seconds
#: After the decision's TTL: past the client's deadline, within the service's grace.
LATE = WRITE_DEADLINE_SECONDS + SERVICE_GRACE_SECONDS / 3


def writer(w: World, records: HeldInserts) -> Envelope:
    return Envelope(
        records, w.keks, w.modes, w.vault, KEY_REF,
        settings=EnvelopeSettings(mode_ttl_seconds=MODE_TTL, kek_cache_seconds=KEK_TTL),
        clock=w.time.monotonic, wall_clock=w.time.now,
    )  # fmt: skip


async def _late_write_during(
    w: World, envelope: Envelope, late: HeldInserts, ttl: float, job: asyncio.Task[object]
) -> None:
    """The writer's insert, decided now (its cached decision trusted ``ttl`` more), lands
    ``LATE`` after that TTL; if the job ended first, the test lets time reach it then."""
    land_at = w.time.now() + timedelta(seconds=ttl + LATE)
    late.holds["t0/late"] = land_at
    write = asyncio.create_task(envelope.encrypt("t0", "late", b"late record"))
    await job
    if w.time.now() < land_at:
        w.time.advance((land_at - w.time.now()).total_seconds())
    await write
    w.plaintexts[("t0", "late")] = b"late record"


def _settled_after(w: World, since: datetime, ttl: float) -> bool:
    return w.time.now() >= since + timedelta(seconds=ttl + MAX_WRITE_SECONDS)


@pytest.fixture
def w() -> World:
    return world()


def test_a_late_direct_write_is_converted_before_the_store_becomes_hierarchy(w: World) -> None:
    async def scenario() -> None:
        await w.seed(12)
        late = HeldInserts(w)
        envelope = writer(w, late)
        assert await envelope.mode() is StoreMode.DIRECT  # cached for the mode TTL
        switch = w.time.now()
        job = asyncio.create_task(w.jobs().migrate(StoreMode.HIERARCHY, KEY_REF))
        await _late_write_during(w, envelope, late, MODE_TTL, job)
        run = job.result()
        assert late.landed[0].format is RecordFormat.DIRECT  # written as direct, late
        assert run.mode is StoreMode.HIERARCHY
        # The mode says hierarchy only if no format-1 row exists: the late one was counted
        # (it landed before the count began) and converted.
        assert w.formats() == {RecordFormat.HIERARCHY}
        assert _settled_after(w, switch, MODE_TTL)
        w.check_all_open()
        await envelope.aclose()

    asyncio.run(scenario())


def test_a_late_hierarchy_write_is_converted_before_the_kek_rows_go(w: World) -> None:
    async def scenario() -> None:
        await w.seed(12)
        await w.jobs().migrate(StoreMode.HIERARCHY, KEY_REF)
        late = HeldInserts(w)
        envelope = writer(w, late)
        await envelope.encrypt("t0", "warm", b"warm")  # mode and t0's KEK cached
        w.plaintexts[("t0", "warm")] = b"warm"
        job = asyncio.create_task(w.jobs().migrate(StoreMode.DIRECT, KEY_REF))
        await _late_write_during(w, envelope, late, MODE_TTL, job)
        run = job.result()
        assert late.landed[-1].format is RecordFormat.HIERARCHY
        assert run.mode is StoreMode.DIRECT
        # Counted before the flip: converted to direct, so deleting the KEKs lost nothing.
        assert w.formats() == {RecordFormat.DIRECT}
        assert not w.keks.rows
        w.check_all_open()
        await envelope.aclose()

    asyncio.run(scenario())


def test_a_late_write_under_the_old_kek_keeps_it_until_rewrapped(w: World) -> None:
    async def scenario() -> None:
        await w.seed(12)
        await w.jobs().migrate(StoreMode.HIERARCHY, KEY_REF)
        late = HeldInserts(w)
        envelope = writer(w, late)
        await envelope.encrypt("t0", "warm", b"warm")  # t0's current KEK remembered
        w.plaintexts[("t0", "warm")] = b"warm"
        old = late.landed[-1].kek_version
        job = asyncio.create_task(w.jobs().rotate_keks(KEY_REF, partition="t0"))
        await _late_write_during(w, envelope, late, KEK_TTL, job)
        assert late.landed[-1].kek_version == old  # wrapped under the old version, late
        versions = [v for (p, v) in w.keks.rows if p == "t0"]
        row = w.records.rows[("t0", "late")]
        # The old version went only after the late record was rewrapped to the new one.
        assert row.kek_version in versions
        assert old not in versions
        w.check_all_open()
        await envelope.aclose()

    asyncio.run(scenario())


def test_the_bound_adds_up() -> None:
    # Two attempts of (connect 5 s + read 10 s), then the service's 30 s grace.
    assert WRITE_DEADLINE_SECONDS == 30.0
    assert MAX_WRITE_SECONDS == 60.0


# ---- the writer's side: decisions trusted from their read's start, the insert deadline ----


class SlowModes:
    """A mode row whose read takes ``seconds`` on the fake clock."""

    def __init__(self, w: World, seconds: float) -> None:
        self.w, self.seconds = w, seconds

    async def read_mode(self) -> ModeRecord:
        self.w.time.advance(self.seconds)
        return await self.w.modes.read_mode()

    async def write_mode(self, record: ModeRecord) -> ModeRecord:
        return await self.w.modes.write_mode(record)


class SlowVault:
    """A vault whose wraps take ``seconds`` on the fake clock (a slow key refresh)."""

    def __init__(self, w: World, seconds: float) -> None:
        self.w, self.seconds = w, seconds

    async def newest(self, key_ref: str) -> AsyncKeyWrapper:
        self.w.time.advance(self.seconds)
        return await self.w.vault.newest(key_ref)

    async def version(self, key_id: str, algorithm: WrapAlgorithm | None = None) -> AsyncKeyWrapper:
        return await self.w.vault.version(key_id, algorithm)


def test_the_mode_is_trusted_from_when_its_read_was_sent(w: World) -> None:
    async def scenario() -> None:
        envelope = Envelope(
            w.records, w.keks, SlowModes(w, 20.0), w.vault, KEY_REF,
            settings=EnvelopeSettings(mode_ttl_seconds=MODE_TTL),
            clock=w.time.monotonic, wall_clock=w.time.now,
        )  # fmt: skip
        await envelope.encrypt("t0", "a", b"a")
        w.time.advance(MODE_TTL - 20.0)  # the TTL since the read was sent has run out
        await envelope.encrypt("t0", "b", b"b")
        assert envelope.stats.mode_reads == 2
        await envelope.aclose()

    asyncio.run(scenario())


def test_a_decision_gone_stale_during_the_vault_work_is_made_again(w: World) -> None:
    async def scenario() -> None:
        envelope = Envelope(
            w.records, w.keks, w.modes, SlowVault(w, MODE_TTL + 1), KEY_REF,
            settings=EnvelopeSettings(mode_ttl_seconds=MODE_TTL),
            clock=w.time.monotonic, wall_clock=w.time.now,
        )  # fmt: skip
        await envelope.encrypt("t0", "a", b"a")
        stats = envelope.stats
        assert (stats.mode_reads, stats.vault_wraps) == (2, 2)
        await envelope.aclose()

    asyncio.run(scenario())


def test_an_insert_is_abandoned_at_its_deadline_and_none_starts_past_it(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("shared.records._envelope.WRITE_DEADLINE_SECONDS", 0.05)

    async def scenario() -> None:
        late = HeldInserts(w)
        late.holds["t0/a"] = w.time.now() + timedelta(days=1)  # never, in this test
        settings = EnvelopeSettings(mode_ttl_seconds=0.0, kek_cache_seconds=0.0)
        envelope = Envelope(
            late, w.keks, w.modes, w.vault, KEY_REF, settings=settings, clock=time.monotonic
        )
        with pytest.raises(TransientServiceError, match="abandoned at its deadline"):
            await envelope.encrypt("t0", "a", b"a")
        assert not w.records.rows
        slow = Envelope(
            w.records, w.keks, w.modes, SlowVault(w, 10.0), KEY_REF, settings=settings,
            clock=w.time.monotonic,
        )  # fmt: skip
        with pytest.raises(TransientServiceError, match="nothing written"):
            await slow.encrypt("t0", "b", b"b")
        assert not w.records.rows
        await envelope.aclose()
        await slow.aclose()

    asyncio.run(scenario())


class HangingKeks:
    """The world's KEK store, except that an insert never returns (a stalled request)."""

    def __init__(self, w: World) -> None:
        self.w = w
        self.name = w.keks.name

    def __getattr__(self, name: str) -> object:
        return getattr(self.w.keks, name)

    async def insert_kek(self, kek: object) -> object:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")


def test_a_first_kek_insert_is_bounded_like_a_record_insert(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A partition's first KEK is wrapped under the vault's newest version as the writer
    last saw it: its insert lands within the write bound or never, so retirement's wait
    for a superseded version covers it (a KEK insert had no deadline of its own)."""
    monkeypatch.setattr("shared.records._kek_ring.WRITE_DEADLINE_SECONDS", 0.05)

    async def scenario() -> None:
        await w.modes.write_mode(ModeRecord(StoreMode.HIERARCHY))
        settings = EnvelopeSettings(mode_ttl_seconds=0.0, kek_cache_seconds=0.0)
        stalled = Envelope(
            w.records, HangingKeks(w), w.modes, w.vault, KEY_REF,  # type: ignore[arg-type]
            settings=settings, clock=time.monotonic,
        )  # fmt: skip
        with pytest.raises(TransientServiceError, match="abandoned at its deadline"):
            await stalled.encrypt("t0", "a", b"a")
        slow = Envelope(
            w.records, w.keks, w.modes, SlowVault(w, 10.0), KEY_REF, settings=settings,
            clock=w.time.monotonic,
        )  # fmt: skip
        with pytest.raises(TransientServiceError, match="nothing written"):
            await slow.encrypt("t1", "b", b"b")
        assert not await w.keks.list_keks("t1")
        assert not w.records.rows
        await stalled.aclose()
        await slow.aclose()

    asyncio.run(scenario())
