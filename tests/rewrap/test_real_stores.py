"""The engine over the real stores (SQLite file; Table on Azurite): crash, resume, every
sealed record still opens under the new version, a second run changes nothing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from devtools.seed import open_sealed, seed_deks
from shared.crypto import LocalRsaWrapper
from shared.rewrap import InMemoryJobStore, JobStatus
from shared.stores import SqliteDekStore
from tests.rewrap.fakes import KEY_REF, V1, V2, engine_for, key_source, rsa_key
from tests.rewrap.test_crash_resume import CrashAt, SimulatedCrash

COUNT = 60
StoreFactory = Callable[[], Awaitable[Any]]


@pytest.fixture(params=["sqlite", pytest.param("table", marks=pytest.mark.azurite)])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    if request.param == "sqlite":
        path = tmp_path / "deks.sqlite"

        async def sqlite() -> Any:
            return SqliteDekStore(path)

        return sqlite
    from shared.adapters.dek_table import TableDekStore

    connection = request.getfixturevalue("azurite").connection_string
    table = f"rewrap{uuid.uuid4().hex[:16]}"

    async def table_store() -> Any:
        store = TableDekStore.from_connection_string(connection, table)
        await store.create_table()
        return store

    return table_store


def _wrapper(version: str, index: int) -> LocalRsaWrapper:
    return LocalRsaWrapper(f"{KEY_REF}/{version}", private_key=rsa_key(index))


def _record(index: int) -> bytes:
    return f"sealed record {index}".encode()


@pytest.mark.parametrize(
    "crash_point", ["item.after_unwrap", "batch.after_write", "checkpoint.after"]
)
def test_crash_resume_over_a_real_store(open_store: StoreFactory, crash_point: str) -> None:
    source = key_source(V1, V2)
    jobs = InMemoryJobStore()

    async def go() -> None:
        store = await open_store()
        await seed_deks(store, _wrapper(V1, 0), COUNT, partitions=4, plaintext=_record)
        engine = engine_for(
            store,
            source,
            jobs,
            page_size=8,
            workers=4,
            owner="same-worker",
            probe=CrashAt(crash_point, 2),
        )
        with pytest.raises(SimulatedCrash):
            await engine.run(KEY_REF, V2)
        await store.close()

        store = await open_store()
        report = await engine_for(store, source, jobs, page_size=8, owner="same-worker").run(
            KEY_REF, V2
        )
        assert report.status is JobStatus.COMPLETED
        assert report.consistent
        assert report.counters.failed == {}
        opened = []
        page = await store.scan(KEY_REF, exclude_version=None, page_size=1000)
        assert len(page.records) == COUNT
        for record in page.records:
            assert record.key_id == f"{KEY_REF}/{V2}"
            details = await store.get(record.ref)
            opened.append(open_sealed(details, _wrapper(V2, 1)))
        assert sorted(opened) == sorted(_record(i) for i in range(COUNT))

        again = await engine_for(store, source, jobs).run(KEY_REF, V2, restart=True)
        assert again.counters.rewrapped == 0
        await store.close()

    asyncio.run(go())


def test_engine_rewraps_deks_written_under_other_spellings(open_store: StoreFactory) -> None:
    """Key Vault names are case-insensitive: DEKs an application wrote under an upper-case
    vault host or key name are the key's DEKs, rewrapped onto the canonical key id."""
    source = key_source(V1, V2)
    host, name = KEY_REF.removeprefix("https://").split("/keys/")
    spellings = [KEY_REF, f"https://{host.upper()}/keys/{name.upper()}",
                 f"https://{host}/keys/{name.title()}"]  # fmt: skip

    async def go() -> None:
        store = await open_store()
        for index, spelling in enumerate(spellings):
            wrapper = LocalRsaWrapper(f"{spelling}/{V1}", private_key=rsa_key(0))
            await seed_deks(store, wrapper, 10, partitions=2, prefix=f"s{index}",
                            plaintext=_record)  # fmt: skip
        [before] = await store.version_counts(KEY_REF)
        assert (before.key_id, before.current) == (f"{KEY_REF}/{V1}", 30)

        report = await engine_for(store, source, InMemoryJobStore(), page_size=7).run(KEY_REF, V2)
        assert report.status is JobStatus.COMPLETED
        assert report.counters.rewrapped == 30
        assert report.counters.failed == {}
        page = await store.scan(KEY_REF, exclude_version=None, page_size=1000)
        assert {r.key_id for r in page.records} == {f"{KEY_REF}/{V2}"}
        opened = [open_sealed(await store.get(r.ref), _wrapper(V2, 1)) for r in page.records]
        assert len(opened) == 30
        counts = {c.key_id: (c.current, c.previous) for c in await store.version_counts(KEY_REF)}
        assert counts == {f"{KEY_REF}/{V1}": (0, 30), f"{KEY_REF}/{V2}": (30, 0)}
        await store.close()

    asyncio.run(go())
