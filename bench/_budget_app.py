"""Worker job for (f): the vault's own application, steady unwraps beside keyward.

It unwraps one DEK (wrapped under its own key, ``app_key``, in the same vault: the vault's
budget is per vault, and a key of its own lets the emulator's counters tell its traffic from
keyward's) at a steady ``rate`` per second through the product's lean REST unwrap
(``AsyncKeyVaultAdapter(lean_unwrap=True)``: one POST per unwrap, no SDK retry policy, so a
429 reaches this code and is counted, never retried or hidden).

Pacing never catches up: each request's slot is ``1/rate`` after the previous slot or now,
whichever is later, so a stalled process sends less, never a burst (a burst would be the
application's own fault, not keyward's). Requests run as tasks, at most ``MAX_IN_FLIGHT`` at
once. It stops when ``stop_file`` appears and reports, per second of its own wall clock,
how many unwraps were accepted and how many were refused with 429.
"""

from __future__ import annotations

import asyncio
import collections
import os
import time
from typing import Any

from devtools.emulator.credential import AsyncEmulatorCredential
from shared.adapters import AsyncKeyVaultAdapter
from shared.crypto import DataKey, LocalRsaWrapper, VaultAllowList
from shared.errors import ServiceError, ThrottledError

#: An application with many callers: enough in flight that 200-280/s is not capped by the
#: vault's latency even when a loaded emulator answers in a second or two.
MAX_IN_FLIGHT = 512


async def budget_app_job(spec: dict[str, Any]) -> dict[str, Any]:
    """Spec: ``world``, ``app_key`` (its key's unversioned id), ``rate``, ``stop_file``,
    optional ``max_seconds`` (a backstop)."""
    world = spec["world"]
    rate = float(spec["rate"])
    adapter = AsyncKeyVaultAdapter(
        AsyncEmulatorCredential(world["object_id"]),
        VaultAllowList.parse(f"{world['vault']}={world['vault_url']}"),
        ca_bundle=world["ca_path"],
        lean_unwrap=True,
    )
    ok: collections.Counter[int] = collections.Counter()
    throttled: collections.Counter[int] = collections.Counter()
    errors: collections.Counter[str] = collections.Counter()
    retry_after: collections.Counter[str] = collections.Counter()
    gate = asyncio.Semaphore(MAX_IN_FLIGHT)
    late = 0
    latencies: list[float] = []
    try:
        version = await adapter.newest_enabled_version(spec["app_key"])
        kid = f"{spec['app_key']}/{version}"
        public = (await adapter.public_key(kid)).rsa_public_key
        assert public is not None
        with DataKey.generate() as dek:
            wrapped = LocalRsaWrapper(kid, public_key=public).wrap(dek)
        unwrapper = await adapter.wrapper(kid)

        async def one() -> None:
            sent = time.perf_counter()
            try:
                with await unwrapper.unwrap(wrapped):
                    ok[int(time.time())] += 1
                    latencies.append(time.perf_counter() - sent)
            except ThrottledError as error:
                throttled[int(time.time())] += 1
                retry_after[str(error.retry_after)] += 1
            except ServiceError as error:
                errors[type(error).__name__] += 1
            finally:
                gate.release()

        tasks: set[asyncio.Task[None]] = set()
        started = time.time()
        backstop = started + float(spec.get("max_seconds", 3600))
        slot = time.monotonic()
        while not os.path.exists(spec["stop_file"]) and time.time() < backstop:
            now = time.monotonic()
            slot = max(slot + 1.0 / rate, now)
            if slot > now:
                await asyncio.sleep(slot - now)
            else:
                late += 1
            if gate.locked():
                late += 1
            await gate.acquire()
            task = asyncio.create_task(one())
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        ended = time.time()
        await asyncio.gather(*tasks)
    finally:
        await adapter.close()
    seconds = max(ended - started, 1e-9)
    latencies.sort()

    def quantile(q: float) -> float | None:
        return round(latencies[int(q * (len(latencies) - 1))] * 1000, 1) if latencies else None

    return {
        "rate": rate,
        "started": round(started, 3),
        "ended": round(ended, 3),
        "accepted": sum(ok.values()),
        "throttled": sum(throttled.values()),
        "errors": dict(errors),
        "retry_after": dict(retry_after),
        "achieved_per_second": round(sum(ok.values()) / seconds, 2),
        "late_slots": late,
        "latency_ms": {"median": quantile(0.5), "p95": quantile(0.95), "max": quantile(1.0)},
        "cpu_seconds": round(time.process_time(), 2),
        "ok_by_second": sorted(ok.items()),
        "throttled_by_second": sorted(throttled.items()),
    }
