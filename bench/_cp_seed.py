"""(g) worker jobs that build the world: seed a DEK table over several keys, write job states.

Seeding is not measured as part of (g) (its time is reported apart): each worker process
takes some of the keys and runs several ``seed_deks`` streams per key, each inserting
through the product's ``TableDekStore.insert_batch`` (transactions of 100 per partition, up
to ``MAX_CONCURRENT_REQUESTS`` in flight per store). DEKs are wrapped locally with the
public half of each key's newest version, so seeding costs no vault operation.

Job states are written the way the worker leaves them after a rotation ran to its end: one
``COMPLETED`` job per key, version and shard, through ``TableJobStore`` (the state table the
composition root uses), with the counters a clean pass over that key's DEKs records.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench._rewrap import _adapter
from devtools.seed import seed_deks
from shared.adapters.dek_table import TableDekStore
from shared.adapters.table_state import TableJobStore
from shared.composition._context import STATE_TABLE
from shared.crypto import LocalRsaWrapper
from shared.rewrap import JobCounters, JobState, JobStatus, rewrap_job_id

#: Concurrent ``seed_deks`` streams per key in one seeding process.
STREAMS_PER_KEY = 2
#: Partitions per key (a tenant's DEKs): the key index is the partition prefix.
PARTITIONS_PER_KEY = 16


def key_prefix(index: int) -> str:
    """Partition and DEK id prefix of the ``index``-th key's DEKs."""
    return f"k{index:02d}"


async def seed_keys_job(spec: dict[str, Any]) -> dict[str, Any]:
    """Seed ``spec["per_key"]`` DEKs for each key of ``spec["keys"]`` (``[index, key_ref]``)
    into table ``spec["table"]``, under each key's newest version."""
    world, per_key = spec["world"], int(spec["per_key"])
    adapter = _adapter(world, lean=True)
    table = spec["table"]
    store = TableDekStore.from_connection_string(world["connection_string"], table)
    started = time.perf_counter()
    try:
        await store.create_table()
        streams = []
        share = -(-per_key // STREAMS_PER_KEY)
        for index, key_ref in spec["keys"]:
            version = await adapter.newest_enabled_version(key_ref)
            kid = f"{key_ref}/{version}"
            public = await adapter.public_key(kid)
            wrapper = LocalRsaWrapper(kid, public_key=public.rsa_public_key)
            for first in range(0, per_key, share):
                streams.append(
                    seed_deks(
                        store,
                        wrapper,
                        min(share, per_key - first),
                        partitions=PARTITIONS_PER_KEY,
                        prefix=key_prefix(int(index)),
                        start=first,
                    )
                )
        inserted = sum(await asyncio.gather(*streams))
    finally:
        await store.close()
        await adapter.close()
    return {"inserted": inserted, "seconds": round(time.perf_counter() - started, 2)}


async def write_jobs_job(spec: dict[str, Any]) -> dict[str, Any]:
    """One ``COMPLETED`` job per key and version of ``spec["versions"]`` (``{key_ref:
    [version, ...]}``, oldest first) for shard ``table:<spec["table"]>``, as a clean
    rotation leaves it: the newest version's job scanned and rewrapped the key's DEKs."""
    from azure.data.tables.aio import TableServiceClient

    world, per_key = spec["world"], int(spec["per_key"])
    shard = f"table:{spec['table']}"
    service = TableServiceClient.from_connection_string(world["connection_string"])
    written = 0
    try:
        await service.create_table_if_not_exists(STATE_TABLE)
        jobs = TableJobStore(service.get_table_client(STATE_TABLE), shard)
        base = datetime.now(UTC) - timedelta(hours=1)
        for key_ref, versions in spec["versions"].items():
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
    finally:
        await service.close()
    return {"jobs": written}
