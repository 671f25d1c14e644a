"""(j) Revocation latency in hierarchy mode: disable the vault key, time the first refusal.

One worker process per repeat (the emulator and Azurite as everywhere, the vault at the
RSA-2048 software budget with 20 ms latency):

1. a writer envelope (hierarchy mode) creates ``records`` records over ``partitions``
   partitions (first repeat only; the store is reused);
2. a fresh reader envelope with ``KEYWARD_KEK_CACHE_SECONDS`` = ``ttl`` (DEK entries expire
   no later than the KEK that unwrapped them) decrypts records round-robin, one call every
   ``period`` seconds, and logs each call's end time and outcome;
3. after a warm-up of 1 s plus a stratified draw over one TTL (repeat ``i`` of ``n``: uniform
   in [``i``, ``i`` + 1) x ``ttl`` / ``n``; so the disables cover the KEKs' whole cache
   lifetime, its worst moment, just after they were fetched, included), the key's current
   version is disabled through the Key Vault SDK (``KeyClient.update_key_properties(
   enabled=False)``, the operator's principal) off the reader's loop; the time its answer
   arrives is the revocation time;
4. the reader runs until every call has been refused for 2 s, then the key is re-enabled.

Figures per repeat: the first refused ``decrypt`` and the last successful one, in seconds
after the revocation time.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench._env import Bench, load_average
from bench._wire import run_worker_module

Say = Callable[[str], None]
TABLE, KEK_TABLE = "revocation", "revocationkeks"


@dataclass
class RevocationConfig:
    ttl: float = 5.0
    repeats: int = 10
    records: int = 100
    partitions: int = 10
    period: float = 0.025


SMOKE_REVOCATION = RevocationConfig(ttl=2.0, repeats=1, records=10, partitions=2)


def _refs(spec: dict[str, Any]) -> list[tuple[str, str]]:
    parts = int(spec["partitions"])
    return [(f"t{i % parts:04d}", f"r{i:06d}") for i in range(int(spec["records"]))]


def _key_client(world: dict[str, Any]) -> Any:
    from azure.keyvault.keys import KeyClient

    from devtools.emulator.credential import EmulatorCredential

    return KeyClient(
        world["vault_url"],
        EmulatorCredential(world["object_id"]),
        connection_verify=world["ca_path"],
        verify_challenge_resource=False,
    )


def _settled(calls: list[tuple[float, bool, str]], at: float, quiet: float = 2.0) -> bool:
    """Whether every call of the last ``quiet`` seconds was refused, after the disable."""
    now = time.time()
    recent = [ok for t, ok, _ in calls if t >= max(at, now - quiet)]
    return now - at > quiet and bool(recent) and not any(recent)


async def revocation_job(spec: dict[str, Any]) -> dict[str, Any]:
    """Spec: ``world``, ``ttl``, ``records``, ``partitions``, ``period``, ``warmup``,
    ``write`` (create the records first)."""
    from bench._h_reads import _open
    from keyward import EnvelopeSettings, KeywardError

    world = spec["world"]
    store = {"table": TABLE, "kek_table": KEK_TABLE, "mode": "hierarchy"}
    refs = _refs(spec)
    if spec.get("write"):
        async with _open(world, store) as writer:
            for index, (partition, record_id) in enumerate(refs):
                await writer.encrypt(partition, record_id, f"data {index}".encode())
    ttl, period = float(spec["ttl"]), float(spec["period"])
    keys = _key_client(world)
    name = world["key_ref"].rsplit("/", 1)[1]
    version = keys.get_key(name).properties.version
    settings = EnvelopeSettings(kek_cache_seconds=ttl)
    calls: list[tuple[float, bool, str]] = []
    disabled: dict[str, float] = {}

    async def disable() -> None:
        await asyncio.sleep(float(spec["warmup"]))
        disabled["sent"] = time.time()
        await asyncio.to_thread(keys.update_key_properties, name, version, enabled=False)
        disabled["at"] = time.time()

    async with _open(world, store, settings) as reader:
        task = asyncio.create_task(disable())
        index = 0
        try:
            while True:
                partition, record_id = refs[index % len(refs)]
                index += 1
                try:
                    await reader.decrypt(partition, record_id)
                    calls.append((time.time(), True, ""))
                except KeywardError as error:
                    calls.append((time.time(), False, type(error).__name__))
                if "at" in disabled and _settled(calls, disabled["at"]):
                    break
                if "at" in disabled and time.time() - disabled["at"] > ttl + 30:
                    break
                await asyncio.sleep(period)
        finally:
            await task
            keys.update_key_properties(name, version, enabled=True)
            keys.close()
        stats = reader.stats
    at = disabled["at"]
    refused = [t for t, ok, _ in calls if not ok]
    good_after = [t for t, ok, _ in calls if ok and t >= at]
    errors = sorted({e for _, ok, e in calls if not ok})
    return {
        "ttl": ttl,
        "warmup": float(spec["warmup"]),
        "calls": len(calls),
        "disable_call_seconds": round(at - disabled["sent"], 3),
        "first_refused": round(refused[0] - at, 3) if refused else None,
        "refused_before_disable": sum(1 for t in refused if t < at),
        "last_success": round(good_after[-1] - at, 3) if good_after else 0.0,
        "successes_after_disable": len(good_after),
        "errors": errors,
        "stats": vars(stats),
    }


def revocation(bench: Bench, config: RevocationConfig, say: Say) -> dict[str, Any]:
    import json

    bench.throttled()
    rng = random.Random(13)
    runs = []
    for repeat in range(config.repeats):
        step = config.ttl / config.repeats
        warmup = round(1.0 + (repeat + rng.random()) * step, 2)
        spec = {"kind": "revocation", **vars(config), "warmup": warmup, "write": repeat == 0}
        load_before = load_average()
        payload = json.dumps({"world": bench.world.to_json(), **spec})
        run = run_worker_module("bench._h_worker", payload, timeout=600.0, what="(j) reader")
        run["load_before"], run["load_after"] = load_before, load_average()
        say(f"(j) #{repeat + 1}: warm-up {warmup} s, first refused {run['first_refused']} s, "
            f"last success {run['last_success']} s after the disable ({run['errors']}), "
            f"load {load_before[0]}")  # fmt: skip
        runs.append(run)
    firsts = [r["first_refused"] for r in runs]
    return {
        "config": vars(config),
        "runs": runs,
        "summary": {
            "ttl": config.ttl,
            "repeats": len(runs),
            "each": firsts,
            "median": statistics.median(firsts),
            "max": max(firsts),
            "last_success_each": [r["last_success"] for r in runs],
            "last_success_median": statistics.median(r["last_success"] for r in runs),
            "last_success_max": max(r["last_success"] for r in runs),
        },
    }
