"""Worker jobs for (f) around the measured runs: seed the shards, then check every DEK.

``budget_seed``: one Table store per shard, ``count`` DEKs each under the key's newest
version (the orchestrator then rotates the key: every DEK is one version behind).

``budget_verify``: after a run, every DEK of every shard is read (a full scan of each
table) and unwrapped by the vault under the version it is now wrapped with; its KCV (written
when it was seeded, and carried over by each verified rewrap) must match. Counted per shard:
DEKs found, DEKs at the target version, DEKs whose unwrap gives the recorded KCV, and
anything else (below the target, KCV mismatch, unwrap refused). Run with the throttle off:
this is the check, not the measurement.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

from bench._rewrap import _adapter, seed_job
from shared.adapters.dek_table import TableDekStore
from shared.errors import KeywardError
from shared.stores import DekRecord

#: Unwraps in flight while verifying.
VERIFY_IN_FLIGHT = 32


async def budget_seed_job(spec: dict[str, Any]) -> dict[str, Any]:
    """Spec: ``world``, ``tables``, ``count`` (per table)."""
    seeded = {}
    for table in spec["tables"]:
        job = {"world": spec["world"], "table": table, "count": spec["count"]}
        seeded[table] = await seed_job(job)
    return {"tables": seeded}


async def _verify_table(
    world: dict[str, Any], adapter: Any, table: str, target_version: str
) -> dict[str, Any]:
    store = TableDekStore.from_connection_string(world["connection_string"], table)
    counts: collections.Counter[str] = collections.Counter()
    gate = asyncio.Semaphore(VERIFY_IN_FLIGHT)

    async def check(record: DekRecord) -> None:
        async with gate:
            try:
                unwrapper = await adapter.wrapper(record.key_id)
                with await unwrapper.unwrap(record.wrapped) as dek:
                    good = record.kcv is not None and dek.kcv == record.kcv
            except KeywardError as error:
                counts[f"unwrap_refused:{type(error).__name__}"] += 1
                return
        counts["kcv_ok" if good else "kcv_mismatch"] += 1

    try:
        continuation = None
        pending: list[asyncio.Task[None]] = []
        while True:
            page = await store.scan(
                world["key_ref"], exclude_version=None, continuation=continuation, page_size=500
            )
            for record in page.records:
                counts["found"] += 1
                at_target = record.key_id.rstrip("/").rsplit("/", 1)[-1] == target_version
                counts["at_target" if at_target else "below_target"] += 1
                pending.append(asyncio.create_task(check(record)))
            continuation = page.continuation
            if continuation is None:
                break
        await asyncio.gather(*pending)
    finally:
        await store.close()
    return dict(counts)


async def budget_verify_job(spec: dict[str, Any]) -> dict[str, Any]:
    """Spec: ``world``, ``tables``, ``target_version``."""
    world = spec["world"]
    adapter = _adapter(world, lean=True)
    try:
        shards = {
            table: await _verify_table(world, adapter, table, spec["target_version"])
            for table in spec["tables"]
        }
    finally:
        await adapter.close()
    total: collections.Counter[str] = collections.Counter()
    for counts in shards.values():
        total.update(counts)
    return {"shards": shards, "total": dict(total)}
