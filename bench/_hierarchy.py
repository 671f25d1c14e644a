"""(h) Rotation in hierarchy mode: 1,000,000 records, 1,000 KEKs, one vault rotation.

The world is ``bench._env``'s (Azurite in memory with a larger Node heap, the emulator with
one RSA-2048 key), the vault at Key Vault's RSA-2048 software budget with 20 ms latency.
Steps, each a fresh worker process (``bench._h_worker``):

1. seed: :data:`SEED_PROCESSES` processes write the hierarchy store in bulk
   (``bench._h_seed``): records in the data table, one KEK per partition in the KEK table;
   then the store's mode row says ``hierarchy`` (written through the product's mode store);
2. rotate, ``repeats`` times: a warm local Functions host, the key rotated, the event
   through keyward's pipeline to every shard's job ``completed`` (``bench._h_rotate``); the
   emulator's counters (reset before) say how many vault operations it took;
3. the same pipeline in direct mode over ``direct_records`` format-1 DEKs (a smaller N,
   measured), and (a)'s published rate, to put 1,000,000 DEKs in direct mode beside it.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from azure.data.tables import TableServiceClient

from bench._env import Bench, load_average
from bench._h_store import DATA_TABLE, KEK_TABLE, store_settings
from bench._wire import run_worker_module

#: Seeding processes (Azurite takes about one of the machine's two cores).
SEED_PROCESSES = 2
#: (a)'s published median (docs/benchmarks.md, run of 2026-12-06 14:52 UTC): DEKs/s of the
#: engine over a Table store at keyward's default share (0.5 of 400/s), 20 ms latency.
A_RATE = 189.4
#: Node heap for Azurite (1,000,000 entities in memory).
HEAP_MIB = 12288


@dataclass
class HierarchyConfig:
    records: int = 1_000_000
    partitions: int = 1000
    repeats: int = 3
    direct_records: int = 10_000
    direct_repeats: int = 1


SMOKE = HierarchyConfig(records=2000, partitions=20, repeats=1, direct_records=200)


def h_worker(bench: Bench, spec: dict[str, Any], *, timeout: float = 3600.0) -> dict[str, Any]:
    import json

    payload = json.dumps({"world": bench.world.to_json(), **spec})
    return run_worker_module(
        "bench._h_worker", payload, timeout=timeout, what=f"(h) worker {spec.get('kind')}"
    )


def vault_ops(bench: Bench) -> dict[str, Any]:
    """The emulator's counters for the vault since the last reset: operations by name."""
    node = bench.client.counters(bench.world.vault)["vault"]
    ops = {name: int(count) for name, count in (node.get("ops") or {}).items()}
    return {"ops": ops, "total": sum(ops.values()), "throttled": int(node.get("throttled", 0))}


def create_tables(bench: Bench, names: list[str]) -> None:
    service = TableServiceClient.from_connection_string(bench.world.connection_string)
    try:
        for name in names:
            service.create_table_if_not_exists(name)
    finally:
        service.close()


Say = Callable[[str], None]


def seed_hierarchy(bench: Bench, config: HierarchyConfig, say: Say) -> dict[str, Any]:
    """Write the hierarchy store; returns its timing (not part of any figure)."""
    if config.records % config.partitions:
        raise ValueError("records must be a multiple of partitions")
    create_tables(bench, [DATA_TABLE, KEK_TABLE])
    per_partition = config.records // config.partitions
    shares = [list(range(i, config.partitions, SEED_PROCESSES)) for i in range(SEED_PROCESSES)]
    load_before = load_average()
    started = time.perf_counter()
    say(
        f"(h) seeding {config.records:,} records in {config.partitions:,} partitions "
        f"({SEED_PROCESSES} processes)"
    )
    with ThreadPoolExecutor(SEED_PROCESSES) as pool:
        results = list(
            pool.map(
                lambda own: h_worker(
                    bench,
                    {
                        "kind": "seed",
                        "data_table": DATA_TABLE,
                        "kek_table": KEK_TABLE,
                        "partitions": config.partitions,
                        "per_partition": per_partition,
                        "own": own,
                    },
                ),
                shares,
            )
        )
    mode = h_worker(bench, {"kind": "mode", "table": DATA_TABLE, "mode": "hierarchy"})
    seconds = time.perf_counter() - started
    inserted = sum(r["inserted"] for r in results)
    say(
        f"(h) seeded {inserted:,} records and {sum(r['keks'] for r in results):,} KEKs in "
        f"{seconds:.1f} s ({inserted / seconds:,.0f} records/s), load {load_average()[0]}"
    )
    return {
        "records": inserted,
        "keks": sum(r["keks"] for r in results),
        "seconds": round(seconds, 1),
        "processes": results,
        "mode_row": mode,
        "load_before": load_before,
        "load_after": load_average(),
    }


def rotate(
    bench: Bench, settings: dict[str, str], label: str, say: Callable[[str], None]
) -> dict[str, Any]:
    """One rotation through the pipeline, at the budget with 20 ms latency, counted."""
    bench.throttled()
    bench.client.reset_counters()
    load_before = load_average()
    run = h_worker(bench, {"kind": "rotate", "settings": settings}, timeout=1800.0)
    run["vault"] = vault_ops(bench)
    run["load_before"], run["load_after"] = load_before, load_average()
    rewrapped = {s: j["rewrapped"] for s, j in run["shards"].items()}
    say(
        f"{label}: completed {run['completed_seconds']} s after the rotation "
        f"({run['completed_after_event_seconds']} s after the event reached keyward); vault "
        f"ops {run['vault']['total']} ({run['vault']['ops']}), 429s {run['vault']['throttled']}; "
        f"rewrapped {rewrapped}; load {load_before[0]} -> {run['load_after'][0]}"
    )
    return run


def seed_direct(bench: Bench, count: int, say: Callable[[str], None]) -> tuple[str, dict[str, Any]]:
    table = f"direct{count}"
    say(f"(h) seeding {count:,} format-1 DEKs into {table} for the direct-mode comparison")
    seeded = bench.worker({"kind": "seed", "table": table, "count": count})
    return table, seeded


def hierarchy(bench: Bench, config: HierarchyConfig, say: Callable[[str], None]) -> dict[str, Any]:
    seeding = seed_hierarchy(bench, config, say)
    runs = [
        rotate(bench, store_settings(DATA_TABLE, KEK_TABLE), f"(h) hierarchy #{i + 1}", say)
        for i in range(config.repeats)
    ]
    bench.unthrottled()
    verified = h_worker(
        bench,
        {
            "kind": "verify",
            "data_table": DATA_TABLE,
            "kek_table": KEK_TABLE,
            "partitions": config.partitions,
        },
    )
    say(f"(h) verified: {verified}")
    direct_table, direct_seed = seed_direct(bench, config.direct_records, say)
    direct = [
        rotate(
            bench,
            store_settings(direct_table, f"{direct_table}keks"),
            f"(h) direct {config.direct_records:,} #{i + 1}",
            say,
        )
        for i in range(config.direct_repeats)
    ]
    return {
        "config": vars(config),
        "seeding": seeding,
        "runs": runs,
        "verified": verified,
        "direct": {"table": direct_table, "seeding": direct_seed, "runs": direct},
        "summary": summarize(config, runs, direct),
    }


def summarize(
    config: HierarchyConfig, runs: list[dict[str, Any]], direct: list[dict[str, Any]]
) -> dict[str, Any]:
    """Medians, the direct-mode extrapolation and the verdicts."""
    seconds = statistics.median(r["completed_seconds"] for r in runs)
    unwraps = statistics.median(r["vault"]["ops"].get("unwrapKey", 0) for r in runs)
    rewraps = statistics.median(sum(j["rewrapped"] for j in r["shards"].values()) for r in runs)
    total = statistics.median(r["vault"]["total"] for r in runs)
    keks = config.partitions
    direct_seconds = statistics.median(r["completed_seconds"] for r in direct)
    direct_rate = config.direct_records / direct_seconds
    extrapolated_a = config.records / A_RATE
    extrapolated_pipeline = config.records / direct_rate
    return {
        "keks": keks,
        "completed_seconds": seconds,
        "completed_each": [r["completed_seconds"] for r in runs],
        "unwraps": unwraps,
        "rewraps": rewraps,
        "rewraps_pass": rewraps <= min(keks, 1000),
        "vault_ops_total": total,
        "ops_pass": total <= min(keks, 1000),
        "unwraps_pass": unwraps <= min(keks, 1000),
        "time_pass": seconds < 10.0,
        "direct_measured_seconds": direct_seconds,
        "direct_measured_rate": round(direct_rate, 1),
        "direct_from_a_seconds": round(extrapolated_a, 1),
        "direct_from_pipeline_seconds": round(extrapolated_pipeline, 1),
        "ratio_from_a": round(extrapolated_a / seconds, 1),
        "ratio_from_pipeline": round(extrapolated_pipeline / seconds, 1),
        "vault_ops_ratio": round(config.records / max(unwraps, 1), 1),
    }
