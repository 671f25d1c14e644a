"""Worker job for (f): one keyward worker process running its shards of one rotation.

A process here is what one Function App instance is in production: it builds the product's
composition root (:class:`shared.composition.AppContext`, from keyward's own settings, with
``KEYWARD_VAULT_SHARE``), and runs one :class:`shared.rewrap.RewrapEngine` per shard it was
given, concurrently, over the context's Key Vault adapter, its state-table job store (lease
and checkpoints) and its shared budget board. Each shard is one Table DEK store
(``table:<name>``), the job keyward's planner would queue for it.

Two bench-only choices, both reported with the figures:

* the engine's job lease is ``job_lease_seconds`` (production: 300 s), so the shards of a
  killed worker are resumed inside the run instead of five minutes later;
* once its own shards are done, the process tries the others' (``adopt``): a shard still
  leased by a live or a dead worker answers ``JobLeaseError`` and is tried again
  ``adopt_poll_seconds`` later (production re-sends the message after 60 s); a completed one
  answers at once. That is how a killed worker's shards get finished.

Its own timestamps go back in the result: every checkpoint (wall clock, rewrapped so far) of
every shard, from the engine's ``progress`` callback.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import time
from pathlib import Path
from typing import Any

from bench._budget_stamps import StampedKeys, StampFile
from devtools.emulator.credential import AsyncEmulatorCredential
from shared.adapters.dek_table import TableDekStore
from shared.composition import AppContext
from shared.rewrap import JobLeaseError, JobReport, JobState, RewrapEngine
from shared.settings import Settings


def settings_for(world: dict[str, Any], share: float, lease_seconds: float) -> Settings:
    """keyward's settings for this world, as a Function App instance would read them."""
    return Settings.from_env({
        "KEYWARD_VAULT_ALLOWLIST": f"{world['vault']}={world['vault_url']}",
        "AzureWebJobsStorage": world["connection_string"],
        "KEYWARD_CA_BUNDLE": world["ca_path"],
        "KEYWARD_VAULT_SHARE": str(share),
        "KEYWARD_BUDGET_LEASE_SECONDS": f"{lease_seconds:g}",
    })  # fmt: skip


def _report(report: JobReport, marks: list[tuple[float, int]]) -> dict[str, Any]:
    counters = report.counters
    return {
        "status": report.status.value,
        "rewrapped": counters.rewrapped,
        "scanned": counters.scanned,
        "failed": sum(counters.failed.values()),
        "unreadable": counters.unreadable_total,
        "conflicts": counters.conflicts,
        "throttled": counters.throttled,
        "rate_decreases": report.rate_decreases,
        "final_rate": round(report.final_rate, 2),
        "elapsed_seconds": round(report.elapsed_seconds, 3),
        "resumed": report.resumed,
        "allotment": round(report.allotment, 2),
        "members": report.members,
        "marks": [(round(t, 3), n) for t, n in marks],
    }


class BoardLog(logging.Handler):
    """Keeps the budget membership's log lines (joins, splits, holds) with their times."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[tuple[float, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((round(record.created, 3), record.getMessage()))


class ShardRunner:
    """Runs shards through the product's engine; one engine per run of a shard."""

    def __init__(self, context: AppContext, spec: dict[str, Any]) -> None:
        self.context = context
        self.world = spec["world"]
        self.target = spec["target_version"]
        lease = float(spec["job_lease_seconds"])
        self.settings = dataclasses.replace(context.engine_settings(), lease_seconds=lease)
        self.stop_at = time.time() + float(spec["stop_after_seconds"]) if spec.get(
            "stop_after_seconds") else None  # fmt: skip
        self.stores: list[TableDekStore] = []
        self.stamps = StampFile(spec["stamp_file"])
        self.keys = StampedKeys(context.keys, self.stamps.bins)
        #: The vaults' budget boards in the state table, as the composition root builds them
        #: for the queue worker (``AppContext.rewrap_worker``).
        self.board = context.budget_board()

    def _should_stop(self) -> bool:
        return self.stop_at is not None and time.time() >= self.stop_at

    async def run(self, table: str) -> dict[str, Any]:
        store = TableDekStore.from_connection_string(self.world["connection_string"], table)
        self.stores.append(store)
        marks: list[tuple[float, int]] = []

        def progress(state: JobState) -> None:
            marks.append((time.time(), state.counters.rewrapped))

        engine = RewrapEngine(
            store=store,
            keys=self.keys,
            jobs=self.context.job_store(store.name),
            settings=self.settings,
            owner=f"bench-{os.getpid()}-{table}",
            progress=progress,
            retired=self.context.retired(),
            board=self.board,
        )
        started = time.time()
        report = await engine.run(self.world["key_ref"], self.target, should_stop=self._should_stop)
        result = _report(report, marks)
        result.update(shard=store.name, started=round(started, 3), ended=round(time.time(), 3))
        return result

    async def adopt(self, table: str, poll: float, give_up_at: float) -> dict[str, Any]:
        """Try ``table``'s job until it is done: busy (leased) means try again later."""
        busy = 0
        while True:
            try:
                result = await self.run(table)
            except JobLeaseError:
                busy += 1
                if time.time() >= give_up_at:
                    return {"shard": f"table:{table}", "status": "gave_up", "busy": busy}
                await asyncio.sleep(poll)
                continue
            result["busy"] = busy
            return result

    async def close(self) -> None:
        for store in self.stores:
            await store.close()


async def _wait_for_go(spec: dict[str, Any]) -> None:
    """Say ready (imports done), then wait for the start: a warm instance, not a cold start
    (three interpreters importing the SDKs at once would take the 2 cores for seconds)."""
    Path(spec["ready_file"]).touch()
    while not Path(spec["go_file"]).exists():
        await asyncio.sleep(0.05)


async def budget_worker_job(spec: dict[str, Any]) -> dict[str, Any]:
    """Spec: ``world``, ``tables`` (its own), ``adopt`` (the others), ``target_version``,
    ``share``, ``budget_lease_seconds``, ``job_lease_seconds``, ``adopt_poll_seconds``,
    ``adopt_give_up_seconds``, ``ready_file``, ``go_file``, optional ``stop_after_seconds``
    (engines pause then)."""
    await _wait_for_go(spec)
    world = spec["world"]
    board_log = BoardLog()
    budget_logger = logging.getLogger("keyward.budget")
    budget_logger.setLevel(logging.INFO)
    budget_logger.addHandler(board_log)
    settings = settings_for(world, float(spec["share"]), float(spec["budget_lease_seconds"]))
    built = time.time()
    credential = AsyncEmulatorCredential(world["object_id"])
    context = await AppContext.build(settings, credential=credential)
    runner = ShardRunner(context, spec)
    runner.stamps.start()
    ready = time.time()
    try:
        own = await asyncio.gather(*(runner.run(t) for t in spec["tables"]))
        give_up_at = time.time() + float(spec["adopt_give_up_seconds"])
        poll = float(spec["adopt_poll_seconds"])
        adopted = (
            await asyncio.gather(*(runner.adopt(t, poll, give_up_at) for t in spec["adopt"]))
            if not runner._should_stop()
            else []
        )
    finally:
        await runner.stamps.stop()
        await runner.close()
        await context.aclose()
    return {
        "pid": os.getpid(),
        "context_seconds": round(ready - built, 3),
        "cpu_seconds": round(time.process_time(), 2),
        "ready": round(ready, 3),
        "own": list(own),
        # A shard another worker finished answers at once (its stored counters, no marks).
        "adopted": [{**a, "ran": bool(a.get("marks"))} for a in adopted],
        "board_log": board_log.lines,
    }
