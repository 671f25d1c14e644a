"""(h) rotation worker: one Key Vault rotation through keyward's pipeline, timed.

This process is one warm Function App instance: it runs ``function_app.app`` in the local
Functions host (``devtools.localhost``, as ``make demo`` does) with keyward's app settings
(managed identity from the emulator, the vault allow-list, Azurite), its queue poller on and
its timers off, and builds the composition root before the clock starts (a warm instance).
The emulator's Event Grid delivers the vault's events to the host's webhook (a validated
subscription). Then the key is rotated through the emulator's control API and the clock runs
from that call: Event Grid delivers ``KeyNewVersionCreated``, ``on_key_vault_event`` plans
and enqueues one message per shard of the registry, ``rewrap_worker`` runs each shard's job.
The figure ends when every shard's job is ``completed`` in the state table (its own
``finished_at``; the poll that sees it is reported too).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from datetime import datetime
from typing import Any

from azure.data.tables.aio import TableClient

from bench._wire import ROOT
from devtools.emulator.client import EmulatorClient
from devtools.emulator.eventgrid_client import EventGridControl
from shared.adapters.table_state import TableJobStore
from shared.composition._context import STATE_TABLE
from shared.rewrap import rewrap_job_id
from shared.settings import SPEC_BY_NAME

#: A schedule that never fires during a run (the host's timers are off as well).
NEVER = "0 0 0 1 1 *"
EVENT_TYPES = ["Microsoft.KeyVault.KeyNewVersionCreated"]
JOB_QUEUE = str(SPEC_BY_NAME["KEYWARD_JOB_QUEUE"].default)
#: How often the state table is read for the jobs' end.
POLL_SECONDS = 0.05


def host_settings(world: dict[str, Any], extra: dict[str, str]) -> dict[str, str]:
    """The Function App's settings for this world (``extra``: the store settings)."""
    settings = {
        "FUNCTIONS_WORKER_RUNTIME": "python",
        "AzureWebJobsStorage": world["connection_string"],
        "KEYWARD_VAULT_ALLOWLIST": f"{world['vault']}={world['vault_url']}",
        "KEYWARD_CA_BUNDLE": world["ca_path"],
        # The queue trigger resolves %KEYWARD_JOB_QUEUE% from the settings: set it explicitly.
        "KEYWARD_JOB_QUEUE": JOB_QUEUE,
        "KEYWARD_SWEEP_SCHEDULE": NEVER,
        "KEYWARD_DEPENDENTS_SWEEP_SCHEDULE": NEVER,
        "KEYWARD_RETENTION_SCHEDULE": NEVER,
        **{k: v for k, v in world["identity"].items() if k.startswith("IDENTITY_")},
        **extra,
    }
    return {k: v for k, v in settings.items() if v}


class InvocationClock:
    """When each function invocation started and ended (wall clock), by function name."""

    def __init__(self, host: Any) -> None:
        self.marks: list[tuple[str, float, float, bool]] = []
        original = host.invoke

        async def timed(spec: Any, argument: Any, **options: Any) -> Any:
            began, ok = time.time(), False
            try:
                result = await original(spec, argument, **options)
                ok = True
                return result
            finally:
                self.marks.append((spec.name, began, time.time(), ok))

        host.invoke = timed

    def first(self, name: str) -> float | None:
        starts = [m[1] for m in self.marks if m[0] == name]
        return min(starts) if starts else None


async def _wait_for_jobs(
    state: TableClient, key_ref: str, version: str, shards: list[str], timeout: float
) -> dict[str, Any]:
    """Poll each shard's job until it ended; their stored states."""
    deadline = time.monotonic() + timeout
    jobs = {shard: TableJobStore(state, shard) for shard in shards}
    ended: dict[str, Any] = {}
    while len(ended) < len(shards):
        for shard, store in jobs.items():
            if shard in ended:
                continue
            stored = await store.get(rewrap_job_id(key_ref, version, shard))
            if stored is not None and stored.state.status.ended:
                ended[shard] = (stored.state, time.time())
        if time.monotonic() > deadline:
            missing = sorted(set(shards) - set(ended))
            raise TimeoutError(f"jobs not ended after {timeout} s: {missing}")
        await asyncio.sleep(POLL_SECONDS)
    return ended


def _epoch(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment is not None else None


async def rotate_job(spec: dict[str, Any]) -> dict[str, Any]:
    """Spec: ``world``, ``settings`` (store settings: ``KEYWARD_DEK_TABLE``, ...),
    optional ``timeout``. Rotates the key once; returns the timings, the shards' jobs and
    the host's invocations."""
    from devtools.localhost.host import LocalFunctionsHost
    from shared.composition import context_for_current_loop, reset_contexts

    world = spec["world"]
    settings = host_settings(world, spec.get("settings", {}))
    for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET"):
        os.environ.pop(name, None)
    os.environ.update(settings)
    reset_contexts()
    sys.path.insert(0, str(ROOT))
    from function_app import app

    host_json = json.loads((ROOT / "host.json").read_text())
    host = LocalFunctionsHost(app, settings=settings, host_json=host_json, run_timers=False)
    clock = InvocationClock(host)
    control = EmulatorClient(world["emulator_url"], world["ca_path"])
    grid = EventGridControl(world["emulator_url"], world["ca_path"])
    state = TableClient.from_connection_string(world["connection_string"], STATE_TABLE)
    await host.start()
    try:
        context = await context_for_current_loop()  # a warm instance: clients built
        shards = list(context.shards)
        await context.queue.ensure_exists()
        vault = await asyncio.to_thread(control.get_vault, world["vault"])
        await asyncio.to_thread(
            grid.subscribe,
            "keyward-bench",
            topic=vault["arm_id"],
            endpoint=host.event_grid_webhook_url("on_key_vault_event"),
            included_event_types=EVENT_TYPES,
        )
        await asyncio.to_thread(control.reset_counters, world["vault"])
        cpu_before = time.process_time()
        rotated_at = time.time()
        key_name = world["key_ref"].rsplit("/", 1)[1]
        bundle = await asyncio.to_thread(control.rotate_key, world["vault"], key_name)
        version = str(bundle["key"]["kid"]).rstrip("/").rsplit("/", 1)[1]
        try:
            ended = await _wait_for_jobs(
                state, world["key_ref"], version, shards, float(spec.get("timeout", 600))
            )
        except TimeoutError as error:
            marks = [(n, round(b - rotated_at, 2), ok) for n, b, _, ok in clock.marks]
            raise TimeoutError(f"{error}; invocations {marks}") from None
        seen_at = time.time()
        cpu = time.process_time() - cpu_before
        await asyncio.sleep(0.5)  # let the follow-up message and any last beat finish
        await asyncio.to_thread(grid.unsubscribe, "keyward-bench")
    finally:
        await host.stop()
        for built in reset_contexts():
            await built.aclose()
        await state.close()
    finished = [_epoch(s.finished_at) for s, _ in ended.values()]
    event_at = clock.first("on_key_vault_event")
    return {
        "target_version": version,
        "shards": {
            shard: {
                "status": s.status.value,
                "scanned": s.counters.scanned,
                "rewrapped": s.counters.rewrapped,
                "failed": sum(s.counters.failed.values()),
                "created_at": _epoch(s.created_at),
                "finished_at": _epoch(s.finished_at),
                "seen_at": seen,
            }
            for shard, (s, seen) in ended.items()
        },
        "rotated_at": rotated_at,
        "event_at": event_at,
        "completed_seconds": round(max(f for f in finished if f is not None) - rotated_at, 3)
        if all(finished)
        else None,
        "completed_after_event_seconds": round(
            max(f for f in finished if f is not None) - event_at, 3
        )
        if all(finished) and event_at
        else None,
        "seen_seconds": round(seen_at - rotated_at, 3),
        "cpu_seconds": round(cpu, 3),
        "invocations": [
            [name, round(began - rotated_at, 3), round(end - rotated_at, 3), ok]
            for name, began, end, ok in clock.marks
        ],
    }
