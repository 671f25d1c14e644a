"""An application that declared its mode, while the store migrates (SQLite ports, the real
migration job driven step by step between the application's calls).

What ``docs/record-format.md`` (the mode row) documents: during a migration either
declaration is served; reads follow each row's own format, so a declared-direct reader keeps
reading every record, those the job has converted included; writes follow the store's mode
row (format 2 once the reader has seen ``migrating-to-hierarchy``). Once the store reaches
the other steady mode, the declaration contradicts it and is refused, as on any store.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.adapters.sqlite_records import SqliteRecords
from shared.errors import ConfigurationError
from shared.records import Envelope, EnvelopeSettings, Migration, StoreMode
from shared.records._migration_job import JobParts
from tests.records.memory import FakeTime, LocalVaultKeys
from tests.rewrap.fakes import KEY_REF, V1, V2, key_source

MODE_TTL = 30.0
SETTINGS = EnvelopeSettings(mode_ttl_seconds=MODE_TTL, kek_cache_seconds=300)


@pytest.mark.parametrize(
    ("declared", "target"),
    [(StoreMode.DIRECT, StoreMode.HIERARCHY), (StoreMode.HIERARCHY, StoreMode.DIRECT)],
)
async def test_a_declared_application_reads_everything_while_the_store_migrates(
    tmp_path: Path, declared: StoreMode, target: StoreMode
) -> None:
    store = SqliteRecords.open(tmp_path / "records.sqlite")
    time = FakeTime()
    vault = LocalVaultKeys(key_source(V1, V2))

    def envelope(mode: StoreMode | None) -> Envelope:
        return Envelope(store.records, store.keks, store.modes, vault, KEY_REF, mode=mode,
                        settings=SETTINGS, clock=time.monotonic, wall_clock=time.now)  # fmt: skip

    plain: dict[tuple[str, str], bytes] = {}
    async with envelope(declared) as first:  # the store takes the declared mode
        for n in range(9):
            key = (f"t{n % 2}", f"r{n}")
            plain[key] = b"before %d" % n
            assert (await first.encrypt(*key, plain[key])).format is declared.writes
    app = envelope(declared)
    parts = JobParts(store.records, store.keks, store.modes, vault, now=time.now, page_size=2)
    job = Migration(parts, owner="test", key_ref=KEY_REF, target=target,
                    mode_ttl_seconds=MODE_TTL, kek_ttl_seconds=300)  # fmt: skip
    assert await job.claim()
    migrating = StoreMode.TO_HIERARCHY if target is StoreMode.HIERARCHY else StoreMode.TO_DIRECT
    assert (await store.modes.read_mode()).mode is migrating
    written = 0
    while not job.finished:
        time.advance(max(job.wait_seconds(), 1.0))
        await job.step()
        if job.finished:
            break
        for key, data in plain.items():
            assert await app.decrypt(*key) == data
        mode = await app.mode()
        key = ("t0", f"during-{written}")
        plain[key] = b"during %d" % written
        written += 1
        stored = await app.encrypt(*key, plain[key])
        assert stored.format is mode.writes  # the store's mode row, not the declaration
        if mode is migrating:
            assert stored.format is target.writes
    job.close()
    assert (await store.modes.read_mode()).mode is target
    assert written > 0
    time.advance(MODE_TTL)
    with pytest.raises(ConfigurationError, match=f"is in {target.value} mode"):
        await app.decrypt("t0", "r0")
    async with envelope(target) as reader:
        for key, data in plain.items():
            assert await reader.decrypt(*key) == data
    await app.aclose()
    await store.aclose()
