"""(g) worker jobs that build the world: seed a DEK table over several keys, write job states.

Seeding is not measured as part of (g) (its time is reported apart): each worker process
takes some of the keys and inserts their DEKs (``devtools.seed.new_dek``, the layout of
``seed_deks``) through the product's ``TableDekStore.insert_batch``, one transaction of 100
DEKs of one partition per call, several in flight, each retried on a dropped connection.
DEKs are wrapped locally with the public half of each key's newest version, so seeding
costs no vault operation.

Job states are written the way the worker leaves them after a rotation ran to its end: one
``COMPLETED`` job per key, version and shard, through ``TableJobStore`` (the state table the
composition root uses), with the counters a clean pass over that key's DEKs records.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from bench._cp_world import kek_table_for
from bench._rewrap import _adapter
from devtools.seed import new_dek
from devtools.seed._deks import seed_layout
from shared.adapters.dek_table import TableDekStore
from shared.adapters.dek_table._upkeep import MAX_TRANSACTION_OPERATIONS
from shared.adapters.table_state import TableJobStore
from shared.composition._context import STATE_TABLE
from shared.crypto import LocalRsaWrapper
from shared.errors import ConflictError, TransientServiceError
from shared.rewrap import JobCounters, JobState, JobStatus, rewrap_job_id
from shared.stores._model import NewDek

#: Transactions in flight per seeding process.
IN_FLIGHT = 8
#: Partitions per key (a tenant's DEKs): the key index is the partition prefix.
PARTITIONS_PER_KEY = 16
#: Attempts per transaction: Azurite at 1,000,000 entities on a loaded machine sometimes
#: drops a connection; a transaction is atomic, so a retry that meets 409 had landed.
ATTEMPTS = 6


def key_prefix(index: int) -> str:
    """Partition and DEK id prefix of the ``index``-th key's DEKs."""
    return f"k{index:02d}"


def _chunks(per_key: int) -> Iterator[tuple[int, list[int]]]:
    """(partition, DEK indexes) of each transaction: 100 DEKs of one partition."""
    for partition in range(PARTITIONS_PER_KEY):
        indexes = list(range(partition, per_key, PARTITIONS_PER_KEY))
        for first in range(0, len(indexes), MAX_TRANSACTION_OPERATIONS):
            yield partition, indexes[first : first + MAX_TRANSACTION_OPERATIONS]


async def _insert(store: TableDekStore, deks: list[NewDek]) -> int:
    """Insert one transaction; how many retries it took."""
    for attempt in range(ATTEMPTS):
        try:
            await store.insert_batch(deks)
            return attempt
        except ConflictError:
            if attempt == 0:
                raise
            return attempt  # an earlier attempt landed (transactions are all or nothing)
        except TransientServiceError:
            if attempt == ATTEMPTS - 1:
                raise
            await asyncio.sleep(2.0 * (attempt + 1))
    raise AssertionError("unreachable")


async def seed_keys_job(spec: dict[str, Any]) -> dict[str, Any]:
    """Seed ``spec["per_key"]`` DEKs for each key of ``spec["keys"]`` (``[index, key_ref]``)
    into table ``spec["table"]``, under each key's newest version: transactions of 100 DEKs
    of one partition through ``TableDekStore.insert_batch``, :data:`IN_FLIGHT` at once."""
    world, per_key = spec["world"], int(spec["per_key"])
    adapter = _adapter(world, lean=True)
    store = TableDekStore.from_connection_string(world["connection_string"], spec["table"])
    started = time.perf_counter()
    inserted, retried = 0, 0
    try:
        await store.create_table()
        work: list[tuple[Any, str, list[int]]] = []
        for index, key_ref in spec["keys"]:
            version = await adapter.newest_enabled_version(key_ref)
            kid = f"{key_ref}/{version}"
            public = await adapter.public_key(kid)
            wrapper = LocalRsaWrapper(kid, public_key=public.rsa_public_key)
            prefix = key_prefix(int(index))
            work += [(wrapper, prefix, chunk) for _, chunk in _chunks(per_key)]
        pending = iter(work)

        async def stream() -> None:
            nonlocal inserted, retried
            for wrapper, prefix, chunk in pending:
                deks = [
                    new_dek(wrapper, *seed_layout(i, PARTITIONS_PER_KEY, prefix)) for i in chunk
                ]
                retried += await _insert(store, deks)
                inserted += len(deks)

        await asyncio.gather(*(stream() for _ in range(IN_FLIGHT)))
    finally:
        await store.close()
        await adapter.close()
    return {"inserted": inserted, "retried": retried,
            "seconds": round(time.perf_counter() - started, 2)}  # fmt: skip


async def write_jobs_job(spec: dict[str, Any]) -> dict[str, Any]:
    """One ``COMPLETED`` job per key and version of ``spec["versions"]`` (``{key_ref:
    [version, ...]}``, oldest first) for each of the Table kind's two shards (the DEK table
    ``table:<spec["table"]>`` and its KEK table, ``kek_table_for``), as a clean rotation
    leaves them: the newest version's job scanned and rewrapped the key's DEKs (the KEK
    table of a direct-mode store is empty, but it is a shard all the same)."""
    from azure.data.tables.aio import TableServiceClient

    world, per_key = spec["world"], int(spec["per_key"])
    shards = (f"table:{spec['table']}", f"table:{kek_table_for(spec['table'])}")
    service = TableServiceClient.from_connection_string(world["connection_string"])
    written = 0
    try:
        await service.create_table_if_not_exists(STATE_TABLE)
        for shard in shards:
            written += await _write_jobs(service, shard, spec["versions"], per_key)
    finally:
        await service.close()
    return {"jobs": written}


async def _write_jobs(
    service: Any, shard: str, versions_by_key: dict[str, list[str]], per_key: int
) -> int:
    written = 0
    jobs = TableJobStore(service.get_table_client(STATE_TABLE), shard)
    base = datetime.now(UTC) - timedelta(hours=1)
    for key_ref, versions in versions_by_key.items():
        for age, version in enumerate(reversed(versions)):
            created = base - timedelta(days=30 * age)
            finished = created + timedelta(seconds=max(1.0, per_key / 380))
            counters = JobCounters(scanned=per_key, rewrapped=per_key if age == 0 else 0)
            state = JobState(
                job_id=rewrap_job_id(key_ref, version, shard),
                key_ref=key_ref,
                target_version=version,
                target_key_id=f"{key_ref}/{version}",
                status=JobStatus.COMPLETED,
                created_at=created,
                updated_at=finished,
                scope=shard,
                pass_number=2,
                counters=counters,
                pages=-(-per_key // 100),
                finished_at=finished,
                attempts=1,
            )
            await jobs.put(state, expected_etag=None)
            written += 1
    return written
