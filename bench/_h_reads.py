"""(i) Application reads: 10,000 ``decrypt`` calls over 1,000 records, in each mode.

Everything goes through the application API an application imports
(``from keyward import open_envelope``), over Azurite and the emulator (the vault at Key
Vault's RSA-2048 software budget with 20 ms latency). Per mode, one worker process:

1. a writer envelope creates ``records`` records (``encrypt``) spread over ``partitions``
   partitions (hierarchy: one KEK per partition);
2. each repeat opens a *fresh* envelope (an application instance starting: empty cache, the
   default cache settings) and decrypts every record ``calls / records`` times in a shuffled
   order, one call after another; the emulator's counters (reset before) and the envelope's
   own ``stats`` count the vault calls; CPU is ``time.process_time()`` of the process over
   the calls (the envelope's work, the SDK's and the HTTP client's; Azurite and the emulator
   are other processes);
3. the same process times one AES-256-GCM open of a record's size and one RSA-2048 OAEP-256
   private-key decrypt (``cryptography``), median of several rounds, as the yardsticks.
"""

from __future__ import annotations

import os
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench._env import Bench, load_average
from bench._wire import run_worker_module

Say = Callable[[str], None]
#: Bytes of application data per record.
PAYLOAD_BYTES = 256


@dataclass
class ReadsConfig:
    records: int = 1000
    calls: int = 10_000
    partitions: int = 100
    repeats: int = 3


SMOKE_READS = ReadsConfig(records=40, calls=200, partitions=4, repeats=1)


def _payload(index: int) -> bytes:
    return (f"record {index:06d} ".encode() * 32)[:PAYLOAD_BYTES]


def _refs(config: dict[str, Any]) -> list[tuple[str, str]]:
    parts = int(config["partitions"])
    return [(f"t{i % parts:04d}", f"r{i:06d}") for i in range(int(config["records"]))]


def _open(world: dict[str, Any], spec: dict[str, Any], settings: Any = None) -> Any:
    from devtools.emulator.credential import AsyncEmulatorCredential
    from keyward import open_envelope

    return open_envelope(
        world["key_ref"],
        connection_string=world["connection_string"],
        table=spec["table"],
        kek_table=spec["kek_table"],
        mode=spec["mode"],
        credential=AsyncEmulatorCredential(world["object_id"]),
        allow_list=f"{world['vault']}={world['vault_url']}",
        ca_bundle=world["ca_path"],
        settings=settings,
    )


def aes_open_us(rounds: int = 5, n: int = 2000) -> float:
    """CPU microseconds of one ``shared.crypto.open_envelope`` (AES-256-GCM) of a record's
    size: median of ``rounds`` rounds of ``n``."""
    from shared.crypto import DataKey, open_envelope, seal

    with DataKey.generate() as dek:
        sealed = seal(dek, _payload(0), dek_id="t0000/r000000")
        samples = []
        for _ in range(rounds):
            cpu = time.process_time()
            for _ in range(n):
                open_envelope(dek, sealed, dek_id="t0000/r000000")
            samples.append((time.process_time() - cpu) / n * 1e6)
    return statistics.median(samples)


async def table_read_us(
    world: dict[str, Any], table: str, refs: list[tuple[str, str]], rounds: int = 3
) -> float:
    """CPU microseconds of one ``TableClient.get_entity`` of a record row (the store read
    every ``decrypt`` makes): median of ``rounds`` passes over up to 500 rows."""
    from azure.data.tables.aio import TableClient

    sample = refs[:500]
    samples = []
    async with TableClient.from_connection_string(world["connection_string"], table) as client:
        for partition, record_id in sample[:20]:  # warm the connection
            await client.get_entity(partition, record_id)
        for _ in range(rounds):
            cpu = time.process_time()
            for partition, record_id in sample:
                await client.get_entity(partition, record_id)
            samples.append((time.process_time() - cpu) / len(sample) * 1e6)
    return statistics.median(samples)


async def reads_job(spec: dict[str, Any]) -> dict[str, Any]:
    """Spec: ``world``, ``mode``, ``table``, ``kek_table``, ``records``, ``partitions``,
    ``calls``, ``repeats``. Writes the records, then measures ``repeats`` fresh readers."""
    from bench._rewrap import rsa_job
    from devtools.emulator.client import EmulatorClient

    world = spec["world"]
    control = EmulatorClient(world["emulator_url"], world["ca_path"])
    refs = _refs(spec)
    started = time.perf_counter()
    async with _open(world, spec) as writer:
        for index, (partition, record_id) in enumerate(refs):
            await writer.encrypt(partition, record_id, _payload(index))
        written = writer.stats
    write_seconds = time.perf_counter() - started
    per_record = max(1, int(spec["calls"]) // len(refs))
    order = [i for i in range(len(refs)) for _ in range(per_record)]
    rounds = []
    for repeat in range(int(spec["repeats"])):
        random.Random(repeat).shuffle(order)
        control.reset_counters(world["vault"])
        async with _open(world, spec) as reader:
            await reader.mode()  # the mode row read (a Table call) before the clock starts
            cpu, wall = time.process_time(), time.perf_counter()
            for i in order:
                partition, record_id = refs[i]
                if await reader.decrypt(partition, record_id) != _payload(i):
                    raise AssertionError(f"{partition}/{record_id} did not open to its data")
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            # A second pass on the same (now warm) reader: every key from the cache.
            warm_cpu = time.process_time()
            for i in order:
                partition, record_id = refs[i]
                await reader.decrypt(partition, record_id)
            warm_cpu = time.process_time() - warm_cpu
            stats = reader.stats
        ops = control.counters(world["vault"])["vault"].get("ops", {})
        rounds.append({
            "calls": len(order),
            "cpu_us": round(cpu / len(order) * 1e6, 2),
            "warm_cpu_us": round(warm_cpu / len(order) * 1e6, 2),
            "wall_seconds": round(wall, 3),
            "vault_unwraps_emulator": int(ops.get("unwrapKey", 0)),
            "vault_ops_emulator": {k: int(v) for k, v in ops.items()},
            "stats": vars(stats),
        })  # fmt: skip
    rsa = rsa_job({"n": 300, "rounds": 5})
    return {
        "mode": spec["mode"],
        "records": len(refs),
        "partitions": int(spec["partitions"]),
        "write_seconds": round(write_seconds, 2),
        "write_stats": vars(written),
        "rounds": rounds,
        "aes_open_us": round(aes_open_us(), 3),
        "table_read_us": round(await table_read_us(world, spec["table"], refs), 1),
        "rsa_decrypt_us": round(rsa["decrypt_cpu_ms"] * 1000, 1),
        "pid": os.getpid(),
    }


def reads(bench: Bench, config: ReadsConfig, say: Say) -> dict[str, Any]:
    import json

    bench.throttled()
    results: dict[str, Any] = {}
    for mode in ("direct", "hierarchy"):
        load_before = load_average()
        spec = {
            "kind": "reads", "mode": mode, "table": f"reads{mode}", "kek_table": f"reads{mode}keks",
            **vars(config),
        }  # fmt: skip
        payload = json.dumps({"world": bench.world.to_json(), **spec})
        run = run_worker_module("bench._h_worker", payload, timeout=1800.0, what=f"(i) {mode}")
        run["load_before"], run["load_after"] = load_before, load_average()
        for r in run["rounds"]:
            say(f"(i) {mode}: {r['calls']:,} decrypts, vault unwraps {r['vault_unwraps_emulator']} "
                f"(envelope says {r['stats']['vault_unwraps']}), CPU {r['cpu_us']:.1f} us/decrypt "
                f"(warm {r['warm_cpu_us']:.1f}), wall {r['wall_seconds']} s")  # fmt: skip
        results[mode] = run
    return {"config": vars(config), "modes": results, "summary": summarize(config, results)}


def summarize(config: ReadsConfig, results: dict[str, Any]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for mode, run in results.items():
        rounds = run["rounds"]
        touched = len({i % config.partitions for i in range(config.records)})
        summary[mode] = {
            "calls": rounds[0]["calls"],
            "records": run["records"],
            "vault_calls": int(statistics.median(r["vault_unwraps_emulator"] for r in rounds)),
            "vault_calls_each": [r["vault_unwraps_emulator"] for r in rounds],
            "bound": config.records if mode == "direct" else touched,
            "bound_text": "records" if mode == "direct" else "KEKs touched",
            "cpu_us": statistics.median(r["cpu_us"] for r in rounds),
            "warm_cpu_us": statistics.median(r["warm_cpu_us"] for r in rounds),
            "cpu_each": [r["cpu_us"] for r in rounds],
            "wall_seconds": statistics.median(r["wall_seconds"] for r in rounds),
            "load": [run["load_before"][0], run["load_after"][0]],
        }
    summary["aes_us"] = statistics.median(r["aes_open_us"] for r in results.values())
    summary["rsa_us"] = statistics.median(r["rsa_decrypt_us"] for r in results.values())
    summary["table_read_us"] = statistics.median(r["table_read_us"] for r in results.values())
    return summary
