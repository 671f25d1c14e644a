"""(g) flat control plane: ``python -m bench control [options]`` (``--smoke``: tiny sizes).

One world (Azurite in memory, the emulator, one vault with ``--keys`` keys, each rotated
once) holds a DEK table per size, the DEKs spread evenly over the keys and seeded under each
key's newest version, and a completed job per key, version and shard, as a clean rotation
leaves them. ``--serve FILE`` builds and seeds such a world and keeps it up; ``--world FILE``
measures it (1,000,000 DEKs are then seeded once, not per run).

Then ``--rounds`` rounds, each measuring every size side by side, alternating call by call
(so both sizes see the same moment's load): ``--sweeps`` sweeps per size (``SweepService``
from the composition root: wall time, Storage requests) and ``--calls`` calls of
``AdminService.status`` per size in one process (latency, Storage requests per call), then
``--calls`` ``GET /api/status`` per size through the local Functions host (a host per size,
both up: HTTP latency). In an all-in-one run the
smallest size is also measured once before the larger tables exist. Last, the rows a pass's
scan receives per key (smallest table), and the verification pass over the first key at the
smallest and largest size (``bench._cp_pass``; ``--verify-mode engine``: ``bench._cp_verify``).

Raw results: ``bench/out/control-<UTC time>.json``; the Markdown section (for the
hand-written "(g)" part of ``docs/benchmarks.md``) beside it and on stdout.
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from bench._cp_http import status_over_http
from bench._cp_pass import verification_through_worker
from bench._cp_world import ControlWorld
from bench._env import load_average
from bench._wire import ROOT

OUT = ROOT / "bench" / "out"
#: Before a verification pass, one DEK in this many of the key is written under its older
#: version (what the pass is for); at least one.
STALE_PER = 1000


@dataclass
class ControlConfig:
    sizes: tuple[int, ...] = (10_000, 1_000_000)
    keys: int = 8
    seed_processes: int = 2
    rounds: int = 3
    sweeps: int = 10
    calls: int = 50
    verify_seconds: float = 240.0
    http: bool = True
    #: Seed a world and keep it (``--serve``): nothing measured alone before seeding.
    serve: bool = False
    #: Measure the smallest size alone before the larger tables are seeded.
    alone: bool = True
    #: ``worker`` (sweep, queue, worker: ``bench._cp_pass``) or ``engine`` (a fresh engine
    #: pass in a worker process, time-boxed: ``bench._cp_verify``).
    verify_mode: str = "worker"


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def table_name(size: int) -> str:
    return f"cpdeks{size}"


def seed(world: ControlWorld, size: int, config: ControlConfig) -> dict[str, Any]:
    """Seed ``size`` DEKs over the keys (several processes), then write the jobs."""
    from concurrent.futures import ThreadPoolExecutor

    table, refs = table_name(size), list(world.keys)
    per_key = size // len(refs)
    groups = [refs[i :: config.seed_processes] for i in range(config.seed_processes)]
    specs = [
        {"kind": "seed", "table": table, "per_key": per_key,
         "keys": [[refs.index(r), r] for r in group]}
        for group in groups if group
    ]  # fmt: skip
    load_before, started = load_average(), time.perf_counter()
    done = threading.Event()

    def progress() -> None:  # Azurite's memory grows with the table: a sign of life
        while not done.wait(60):
            say(f"seeding {size:,}: Azurite RSS {world.azurite_rss_mib()} MiB, "
                f"load {load_average()[0]}")  # fmt: skip

    threading.Thread(target=progress, daemon=True).start()
    try:
        with ThreadPoolExecutor(len(specs)) as pool:
            results = list(pool.map(world.worker, specs))
    finally:
        done.set()
    seconds = time.perf_counter() - started
    jobs = world.worker({"kind": "jobs", "table": table, "per_key": per_key,
                         "versions": world.keys})  # fmt: skip
    seeded = {
        "count": sum(r["inserted"] for r in results),
        "seconds": round(seconds, 1),
        "processes": len(specs),
        "per_process_seconds": [r["seconds"] for r in results],
        "retried_transactions": sum(r["retried"] for r in results),
        "jobs_written": jobs["jobs"],
        "load_before": load_before,
        "load_after": load_average(),
        "azurite_rss_mib": world.azurite_rss_mib(),
    }
    rate = seeded["count"] / seconds
    say(
        f"seeded {seeded['count']:,} DEKs in {seeded['seconds']} s ({rate:,.0f}/s), "
        f"Azurite RSS {seeded['azurite_rss_mib']} MiB"
    )
    return seeded


def measure(world: ControlWorld, sizes: list[int], config: ControlConfig) -> dict[str, Any]:
    """One round: every size measured side by side (``bench._cp_measure.paired_job``)."""
    settings = {str(size): world.app_settings(table_name(size)) for size in sizes}
    load_before = load_average()
    paired = world.worker(
        {"kind": "paired", "settings": settings, "sweeps": config.sweeps, "calls": config.calls}
    )
    http = status_over_http(settings, config.calls) if config.http else {}
    load_after = load_average()
    entries: dict[str, Any] = {}
    for size in settings:
        entry = entries[size] = {"size": int(size), **paired[size]}
        entry.update(load_before=load_before, load_after=load_after)
        if size in http:
            entry["status_http"] = http[size]
        warm = entry["sweep"]["runs"][1:] or entry["sweep"]["runs"]
        median_ms = statistics.median(r["seconds"] for r in warm) * 1000
        say(
            f"{int(size):,}: sweep median {median_ms:.1f} ms, Storage requests "
            f"{sorted({r['storage_requests'] for r in warm})}; status "
            f"in process median {entry['status_in_process']['median_ms']} ms "
            f"({entry['status_in_process']['storage_requests_per_call']} requests); HTTP median "
            f"{http.get(size, {}).get('median_ms')} p95 {http.get(size, {}).get('p95_ms')} ms"
        )
    entries[str(sizes[0])]["azurite_rss_mib"] = world.azurite_rss_mib()
    return entries


def seed_all(world: ControlWorld, config: ControlConfig) -> dict[str, Any]:
    """Seed every size; the smallest is also measured alone first (all-in-one runs only)."""
    sizes = sorted(config.sizes)
    seeded: dict[str, Any] = {"seeding": {}}
    seeded["seeding"][str(sizes[0])] = seed(world, sizes[0], config)
    if config.alone and not config.serve:
        say(f"round 0: {sizes[0]:,} alone (before the larger tables exist)")
        seeded["alone"] = measure(world, sizes[:1], config)[str(sizes[0])]
    for size in sizes[1:]:
        seeded["seeding"][str(size)] = seed(world, size, config)
    return seeded


def run(world: ControlWorld, config: ControlConfig, seeded: dict[str, Any]) -> dict[str, Any]:
    sizes = sorted(config.sizes)
    results: dict[str, Any] = {**seeded, "rounds": [], "keys": len(world.keys)}
    for index in range(config.rounds):
        say(f"round {index + 1} of {config.rounds}")
        results["rounds"].append(measure(world, sizes, config))
    # What a pass over each key's scan receives (the smallest table: Azurite evaluates the
    # filter over every entity for each page, so at 1,000,000 this alone would take hours).
    results["ranges"] = {sizes[0]: world.worker(
        {"kind": "ranges", "table": table_name(sizes[0]), "keys": world.keys})["keys"]}  # fmt: skip
    key_ref = next(iter(world.keys))
    results["verify"] = {}
    for size in (sizes[0], sizes[-1]) if config.verify_seconds > 0 else ():
        spec = {
            "kind": "verify",
            "table": table_name(size),
            "key_ref": key_ref,
            "seconds": config.verify_seconds,
            "deks_of_key": size // len(world.keys),
            "stale": max(1, size // len(world.keys) // STALE_PER),
            "older_version": world.keys[key_ref][0],
        }
        load = load_average()
        if config.verify_mode == "worker":
            verify = verification_through_worker(world, size, table_name(size), spec)
        else:
            verify = world.worker(spec)
        verify["load_before"], verify["load_after"] = load, load_average()
        results["verify"][str(size)] = verify
        say(
            f"verification pass over {size:,}: {verify['deks_covered_per_second']} DEKs/s "
            f"({verify['deks_of_key']:,} DEKs in {verify['seconds']} s, {verify['status']}; "
            f"one page {verify.get('page_probe_median_ms')} ms)"
        )
    results["azurite_rss_mib_end"] = world.azurite_rss_mib()
    return results
