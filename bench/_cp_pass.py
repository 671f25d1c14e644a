"""(g) the verification pass the way production runs it: sweep -> queue -> worker slices.

Used once the job state records its passes (the retention branch's ``passes``). Steps:

1. ``age`` (a worker process): write ``spec["stale"]`` DEKs of the key under its older
   version (an application writing after the job ended), and move the key's newest job's
   ``finished_at`` back past ``KEYWARD_VERIFY_INTERVAL_HOURS`` (ETag-conditional, as any
   job write): as if its last pass ended yesterday. Not measured.
2. The local Functions host (queue pollers on) runs the ``sweep`` timer on demand
   (``POST /admin/functions/sweep``): the real sweep finds that job due and queues its
   verification; the host's queue trigger runs the pass in slices, paced like any job.
3. ``await_pass`` (a worker process) polls the job until its pass record appears, and
   returns it: DEKs scanned (returned by the store's scan), rewrapped and seconds (the
   time workers held the job, as the job records it), plus the wall time since step 2.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench._cp_http import invoke_timer, local_host
from bench._cp_verify import insert_stale
from bench._rewrap import _adapter
from shared.adapters.dek_table import TableDekStore
from shared.adapters.table_state import TableJobStore
from shared.composition._context import STATE_TABLE
from shared.rewrap import rewrap_job_id

#: How long the pass may take before the measurement gives up.
PASS_TIMEOUT_SECONDS = 1800.0


def _jobs(connection_string: str, shard: str) -> tuple[Any, TableJobStore]:
    from azure.data.tables.aio import TableServiceClient

    service = TableServiceClient.from_connection_string(connection_string)
    return service, TableJobStore(service.get_table_client(STATE_TABLE), shard)


def _passes(state: Any) -> list[dict[str, Any]]:
    return list(state.to_dict().get("passes") or [])


async def age_job(spec: dict[str, Any]) -> dict[str, Any]:
    world, key_ref, table = spec["world"], spec["key_ref"], spec["table"]
    shard = f"table:{table}"
    job_id = rewrap_job_id(key_ref, spec["newest_version"], shard)
    adapter = _adapter(world, lean=True)
    store = TableDekStore.from_connection_string(world["connection_string"], table)
    service, jobs = _jobs(world["connection_string"], shard)
    try:
        stale = await insert_stale(store, adapter, spec)
        stored = await jobs.get(job_id)
        if stored is None:
            raise RuntimeError(f"no job {job_id}")
        earlier = datetime.now(UTC) - timedelta(hours=float(spec["age_hours"]))
        aged = stored.state.evolve(finished_at=earlier, updated_at=earlier)
        await jobs.put(aged, expected_etag=stored.etag)
        before = len(_passes(stored.state))
    finally:
        await store.close()
        await adapter.close()
        await service.close()
    return {"job_id": job_id, "stale_inserted": stale, "passes_before": before}


async def await_pass(spec: dict[str, Any]) -> dict[str, Any]:
    world, started = spec["world"], float(spec["started"])
    service, jobs = _jobs(world["connection_string"], f"table:{spec['table']}")
    try:
        while True:
            stored = await jobs.get(spec["job_id"])
            passes = _passes(stored.state) if stored else []
            if len(passes) > int(spec["passes_before"]):
                break
            if time.time() - started > PASS_TIMEOUT_SECONDS:
                raise RuntimeError(f"no pass recorded in {PASS_TIMEOUT_SECONDS} s")
            await asyncio.sleep(0.5)
    finally:
        await service.close()
    assert stored is not None
    return {
        "record": passes[-1],
        "wall_seconds": round(time.time() - started, 2),
        "status": stored.state.status.value,
    }


def verification_through_worker(
    world: Any, size: int, table: str, spec: dict[str, Any]
) -> dict[str, Any]:
    """Steps 1-3 for the first key of ``world`` over ``table``; the figures."""
    key_ref = spec["key_ref"]
    versions = world.keys[key_ref]
    age = {**spec, "kind": "age", "table": table, "newest_version": versions[-1],
           "age_hours": 48, "older_version": versions[0]}  # fmt: skip
    prepared = world.worker(age)
    with local_host(world.app_settings(table)) as info:
        started = time.time()
        invoke_timer(info, "sweep")
        done = world.worker({"kind": "await_pass", "table": table, "started": started,
                             "job_id": prepared["job_id"],
                             "passes_before": prepared["passes_before"]})  # fmt: skip
    record = done["record"]
    covered = int(spec["deks_of_key"]) + prepared["stale_inserted"]
    seconds = float(record.get("seconds") or 0)
    return {
        "mode": "worker",
        "key_ref": key_ref,
        "completed": record.get("status") == "completed",
        "status": record.get("status"),
        "record": record,
        "scanned": int(record.get("scanned", 0)),
        "rewrapped": int(record.get("rewrapped", 0)),
        "stale_inserted": prepared["stale_inserted"],
        "deks_of_key": covered,
        "seconds": round(seconds, 2),
        "wall_seconds": done["wall_seconds"],
        "deks_covered_per_second": round(covered / seconds, 1) if seconds > 0 else None,
        "deks_per_second": round(int(record.get("scanned", 0)) / seconds, 1) if seconds else None,
        "size": size,
    }
