"""Worker jobs for the Table scenarios: seed a table, rewrap it with the engine, time RSA.

Each runs in its own ``bench._worker`` process; only :func:`rewrap_job`'s call to
``engine.run`` is inside the measured window (CPU by ``time.process_time``, which counts
every thread of this process and nothing else; wall by ``time.perf_counter``).
"""

from __future__ import annotations

import asyncio
import os
import resource
import statistics
import time
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from devtools.emulator.credential import AsyncEmulatorCredential
from devtools.seed import seed_deks
from shared.adapters import AsyncKeyVaultAdapter
from shared.adapters.dek_table import TableDekStore
from shared.crypto import LocalRsaWrapper, VaultAllowList
from shared.rewrap import (
    AimdRateLimiter,
    EngineSettings,
    InMemoryJobStore,
    JobState,
    JobStatus,
    RewrapEngine,
)

#: Concurrent ``seed_deks`` calls while seeding (each inserts batches of 2,000).
SEED_STREAMS = 4
SEED_PARTITIONS = 16


def max_rss_kib() -> int:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _adapter(world: dict[str, Any], *, lean: bool) -> AsyncKeyVaultAdapter:
    return AsyncKeyVaultAdapter(
        AsyncEmulatorCredential(world["object_id"]),
        VaultAllowList.parse(f"{world['vault']}={world['vault_url']}"),
        ca_bundle=world["ca_path"],
        lean_unwrap=lean,
    )


async def seed_job(spec: dict[str, Any]) -> dict[str, Any]:
    """Create table ``spec["table"]`` with ``spec["count"]`` DEKs under the key's newest
    version (wrapped locally with its public key), several insert streams at once."""
    world, count = spec["world"], int(spec["count"])
    adapter = _adapter(world, lean=True)
    store = TableDekStore.from_connection_string(world["connection_string"], spec["table"])
    started = time.perf_counter()
    try:
        await store.create_table()
        version = await adapter.newest_enabled_version(world["key_ref"])
        kid = f"{world['key_ref']}/{version}"
        public = await adapter.public_key(kid)
        wrapper = LocalRsaWrapper(kid, public_key=public.rsa_public_key)
        share = -(-count // SEED_STREAMS)
        await asyncio.gather(
            *(
                seed_deks(
                    store,
                    wrapper,
                    max(0, min(share, count - first)),
                    partitions=SEED_PARTITIONS,
                    start=first,
                )
                for first in range(0, count, share)
            )
        )
    finally:
        await store.close()
        await adapter.close()
    return {"count": count, "seconds": round(time.perf_counter() - started, 2)}


async def rewrap_job(spec: dict[str, Any]) -> dict[str, Any]:
    """Rewrap every DEK of table ``spec["table"]`` to the key's newest version, measured.

    Spec: ``table``, ``lean`` (bool), optional ``rate_ceiling``, ``workers``, ``page_size``,
    ``pages_in_flight``, ``vault_share``, ``profile`` (a path: profile with pyinstrument; its
    CPU figure is then not representative).
    """
    world = spec["world"]
    overrides = {
        name: spec[name]
        for name in ("rate_ceiling", "workers", "page_size", "pages_in_flight", "vault_share")
        if spec.get(name) is not None
    }
    settings = EngineSettings(**overrides)
    if spec.get("burst_seconds") is not None:
        # Experiment hook (--also-burst): the limiter's burst credit is not an engine setting.
        defaults = AimdRateLimiter.__init__.__kwdefaults__
        assert defaults is not None
        defaults["burst_seconds"] = float(spec["burst_seconds"])
    adapter = _adapter(world, lean=bool(spec["lean"]))
    store = TableDekStore.from_connection_string(world["connection_string"], spec["table"])
    marks: list[tuple[float, int]] = []

    def progress(state: JobState) -> None:
        marks.append((time.perf_counter(), state.counters.rewrapped))

    engine = RewrapEngine(
        store=store,
        keys=adapter,
        jobs=InMemoryJobStore(),
        settings=settings,
        progress=progress,
    )
    profiler = None
    if spec.get("profile"):
        from pyinstrument import Profiler

        profiler = Profiler(async_mode="disabled", interval=0.0005)
    try:
        rss_before = max_rss_kib()
        if profiler is not None:
            profiler.start()
        cpu, wall = time.process_time(), time.perf_counter()
        report = await engine.run(world["key_ref"], restart=True)
        cpu, wall, began = time.process_time() - cpu, time.perf_counter() - wall, wall
        if profiler is not None:
            profiler.stop()
            with open(spec["profile"], "w", encoding="utf-8") as out:
                out.write(profiler.output_text(unicode=False, color=False, show_all=False))
            with open(str(spec["profile"]) + ".flat.txt", "w", encoding="utf-8") as out:
                out.write(profiler.output_text(flat=True, show_all=True))
            with open(str(spec["profile"]) + ".html", "w", encoding="utf-8") as out:
                out.write(profiler.output_html())
        rss_after = max_rss_kib()
        verified = await _verify(store, adapter, world["key_ref"], report.state.target_key_id)
    finally:
        await store.close()
        await adapter.close()
    counters = report.counters
    return {
        "completed": report.status is JobStatus.COMPLETED,
        "consistent": report.consistent,
        "scanned": counters.scanned,
        "rewrapped": counters.rewrapped,
        "failed": sum(counters.failed.values()),
        "unreadable": counters.unreadable_total,
        "conflicts": counters.conflicts,
        "throttled": counters.throttled,
        "rate_decreases": report.rate_decreases,
        "final_rate": round(report.final_rate, 1),
        "engine_seconds": round(report.elapsed_seconds, 3),
        "wall_seconds": round(wall, 3),
        "cpu_seconds": round(cpu, 3),
        "rss_before_kib": rss_before,
        "rss_peak_kib": rss_after,
        "settings": {
            "workers": settings.workers,
            "page_size": settings.page_size,
            "pages_in_flight": settings.pages_in_flight,
            "rate_ceiling": settings.rate_ceiling,
            "headroom": settings.headroom,
            "lean_unwrap": bool(spec["lean"]),
            "burst_seconds": spec.get("burst_seconds"),
        },
        "verified": verified,
        "first_checkpoint_seconds": round(marks[0][0] - began, 3) if marks else None,
        "steady_deks_per_second": _steady_rate(marks),
    }


def _steady_rate(marks: list[tuple[float, int]]) -> float | None:
    """DEKs/s between the checkpoints at 10% and 90% of the run's rewraps (no start-up and
    no tail): what the pipeline sustains once it is full."""
    if len(marks) < 4 or marks[-1][1] == 0:
        return None
    total = marks[-1][1]
    low = next(m for m in marks if m[1] >= total * 0.1)
    high = next(m for m in marks if m[1] >= total * 0.9)
    if high[0] <= low[0]:
        return None
    return round((high[1] - low[1]) / (high[0] - low[0]), 1)


async def _verify(
    store: TableDekStore, adapter: AsyncKeyVaultAdapter, key_ref: str, target_kid: str
) -> dict[str, Any]:
    """After the measured window: nothing is left below the target, and a sample of DEKs
    unwraps under the target to their recorded KCV."""
    target_version = target_kid.rstrip("/").rsplit("/", 1)[-1]
    left = await store.scan(key_ref, exclude_version=target_version, page_size=10)
    sample = await store.scan(key_ref, exclude_version=None, page_size=5)
    unwrapper = await adapter.wrapper(target_kid)
    opened = 0
    for record in sample.records:
        if record.key_id != target_kid:
            continue
        with await unwrapper.unwrap(record.wrapped) as dek:
            opened += int(record.kcv is None or dek.kcv == record.kcv)
    return {"left_below_target": len(left.records), "sample": len(sample.records), "opened": opened}


def rsa_job(spec: dict[str, Any]) -> dict[str, Any]:
    """CPU time of one RSA-2048 OAEP-256 private-key decrypt (and public encrypt), with
    ``cryptography``: median over ``rounds`` rounds of ``n`` operations."""
    n, rounds = int(spec.get("n", 500)), int(spec.get("rounds", 5))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    public = key.public_key()
    ciphertext = public.encrypt(os.urandom(32), oaep)
    for _ in range(50):
        key.decrypt(ciphertext, oaep)
    decrypt_cpu, decrypt_wall, encrypt_cpu = [], [], []
    for _ in range(rounds):
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(n):
            key.decrypt(ciphertext, oaep)
        decrypt_cpu.append((time.process_time() - cpu) / n * 1000)
        decrypt_wall.append((time.perf_counter() - wall) / n * 1000)
        cpu = time.process_time()
        for _ in range(n):
            public.encrypt(b"k" * 32, oaep)
        encrypt_cpu.append((time.process_time() - cpu) / n * 1000)
    return {
        "decrypt_cpu_ms": round(statistics.median(decrypt_cpu), 4),
        "decrypt_wall_ms": round(statistics.median(decrypt_wall), 4),
        "encrypt_cpu_ms": round(statistics.median(encrypt_cpu), 4),
        "n": n,
        "rounds": rounds,
    }
