"""The five scenarios, run side by side against one world (see ``bench/__init__.py``).

Every measured run is a fresh worker process; between runs this process rotates the key (so
the whole table needs a rewrap again: one seeded table serves every repeat), shapes the
vault (throttle, latency), resets and reads the emulator's counters.
"""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench._env import CEILING_PER_SECOND, Bench, load_average

#: Rate ceiling for the unthrottled runs: far above anything reachable, so pacing never waits.
UNPACED = 1_000_000.0
SCENARIOS = ("table", "naive", "cpu", "memory", "blob")


@dataclass
class Config:
    deks: int = 10_000
    naive_deks: int = 300
    memory_sizes: tuple[int, ...] = (10_000, 100_000)
    #: Repeats of the 100,000-DEK memory run (each takes minutes on this machine).
    large_repeats: int = 1
    blob_mib: float = 64.0
    repeats: int = 3
    #: Calls per round for each piece of (c)'s breakdown.
    parts_calls: int = 2000
    profile_dir: Path | None = None
    #: ``EngineSettings`` overrides for every engine run (``None``: the defaults).
    workers: int | None = None
    pages_in_flight: int | None = None
    #: Also run (a) with this many workers, interleaved (a tuning check under the same load).
    also_workers: int | None = None
    #: Also run (a) with this limiter burst credit in seconds (an experiment hook).
    also_burst: float | None = None
    log: Any = field(default=sys.stderr)

    def say(self, message: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        print(f"[bench {stamp}] {message}", file=self.log, flush=True)


class Runner:
    def __init__(self, bench: Bench, config: Config) -> None:
        self.bench = bench
        self.config = config
        self.seeded: dict[str, dict[str, Any]] = {}

    # -- helpers -----------------------------------------------------------------------------

    def table(self, count: int) -> str:
        """A table of ``count`` DEKs, seeded once per run and reused by every scenario."""
        name = f"deks{count}"
        if name not in self.seeded:
            self.config.say(f"seeding {count} DEKs into table {name}")
            self.seeded[name] = self.bench.worker({"kind": "seed", "table": name, "count": count})
            self.config.say(f"seeded in {self.seeded[name]['seconds']} s")
        return name

    def rewrap(self, table: str, *, lean: bool = True, **options: Any) -> dict[str, Any]:
        self.bench.rotate()
        self.bench.client.reset_counters()
        tuning = {"workers": self.config.workers, "pages_in_flight": self.config.pages_in_flight}
        spec = {"kind": "rewrap", "table": table, "lean": lean, **tuning, **options}
        result = self.bench.worker(spec)
        result["vault"] = self.bench.vault_counts()
        if not (result["completed"] and result["verified"]["left_below_target"] == 0):
            raise RuntimeError(f"rewrap of {table} did not complete: {result}")
        return result

    # -- (a) and (b) -----------------------------------------------------------------------------

    def throughput(self, *, table: bool, naive: bool) -> dict[str, Any]:
        """(a) and (b) interleaved, repeat by repeat, at 4,000 ops / 10 s and 20 ms."""
        config = self.config
        big = self.table(config.deks) if table else None
        small = self.table(config.naive_deks) if naive else None
        engine_runs: list[dict[str, Any]] = []
        variant_runs: list[dict[str, Any]] = []
        burst_runs: list[dict[str, Any]] = []
        naive_runs: list[dict[str, Any]] = []
        whole_vault_runs: list[dict[str, Any]] = []
        load_before = load_average()
        for index in range(config.repeats):
            if big is not None:
                engine_runs.append(self._paced_run(big, f"(a) #{index + 1}"))
                if config.also_burst is not None:
                    label = f"(a) burst={config.also_burst}s #{index + 1}"
                    burst_runs.append(self._paced_run(big, label, burst_seconds=config.also_burst))
                if config.also_workers:
                    label = f"(a) workers={config.also_workers} #{index + 1}"
                    variant_runs.append(self._paced_run(big, label, workers=config.also_workers))
            if big is not None and small is not None:
                # (b) compares the engine's design with a naive loop, not keyward's share of
                # the vault: the engine takes the whole vault here, as it did when (b) was set.
                label = f"(b) engine at share 1.0 #{index + 1}"
                whole_vault_runs.append(self._paced_run(big, label, vault_share=1.0))
            if small is not None:
                self.bench.rotate()
                self.bench.throttled()
                self.bench.client.reset_counters()
                run = self.bench.worker({"kind": "naive", "table": small})
                run["vault"] = self.bench.vault_counts()
                naive_runs.append(run)
                config.say(f"(b) #{index + 1}: {run['deks_per_second']} DEKs/s")
        self.bench.throttled()
        throttle = self.bench.client.get_throttle(self.bench.world.vault)
        faults = self.bench.client.get_faults(self.bench.world.vault)
        return {
            "emulator": {
                "throttle": {k: throttle.get(k) for k in ("budget", "window_seconds", "enabled")},
                "latency_ms": faults.get("fixed_ms"),
            },
            "engine": engine_runs,
            "variant": variant_runs,
            "burst": burst_runs,
            "naive": naive_runs,
            "engine_whole_vault": whole_vault_runs,
            "load_before": load_before,
            "load_after": load_average(),
        }

    def _paced_run(self, table: str, label: str, **options: Any) -> dict[str, Any]:
        self.bench.throttled()
        run = self.rewrap(table, lean=True, **options)
        run["deks_per_second"] = round(run["rewrapped"] / run["engine_seconds"], 1)
        run["fraction_of_ceiling"] = round(run["deks_per_second"] / CEILING_PER_SECOND, 4)
        run["load_after"] = load_average()
        self.config.say(
            f"{label}: {run['deks_per_second']} DEKs/s "
            f"({run['fraction_of_ceiling']:.3f} of ceiling; steady "
            f"{run['steady_deks_per_second']}), "
            f"429s {run['throttled']}/{run['vault']['throttled']}, load {run['load_after'][0]}"
        )
        return run

    # -- (c) --------------------------------------------------------------------------------------

    def cpu(self) -> dict[str, Any]:
        """(c) keyward's CPU per DEK, unthrottled and unpaced, over one RSA decrypt."""
        config = self.config
        table = self.table(config.deks)
        self.bench.unthrottled()
        load_before = load_average()
        rounds: list[dict[str, Any]] = []
        for index in range(config.repeats):
            rsa = self.bench.worker({"kind": "rsa"})
            parts = self.bench.worker({"kind": "parts", "n": config.parts_calls})
            entry: dict[str, Any] = {"rsa": rsa, "parts": parts}
            for lean in (True, False):
                run = self.rewrap(table, lean=lean, rate_ceiling=UNPACED)
                run["cpu_ms_per_dek"] = round(run["cpu_seconds"] / run["rewrapped"] * 1000, 4)
                run["ratio"] = round(run["cpu_ms_per_dek"] / rsa["decrypt_cpu_ms"], 3)
                entry["lean" if lean else "sdk"] = run
                rate = run["rewrapped"] / run["wall_seconds"]
                config.say(
                    f"(c) #{index + 1} {'lean' if lean else 'sdk '}: "
                    f"{run['cpu_ms_per_dek']:.3f} ms/DEK = {run['ratio']:.2f} x RSA decrypt "
                    f"({rsa['decrypt_cpu_ms']:.3f} ms); {rate:.0f} DEKs/s"
                )
            rounds.append(entry)
        profile = None
        if config.profile_dir is not None:
            config.profile_dir.mkdir(parents=True, exist_ok=True)
            path = config.profile_dir / "profile-cpu-lean.txt"
            self.rewrap(table, lean=True, rate_ceiling=UNPACED, profile=str(path))
            profile = str(path)
            config.say(f"(c) profile written to {path}")
        return {
            "rounds": rounds,
            "profile": profile,
            "load_before": load_before,
            "load_after": load_average(),
        }

    # -- (d) --------------------------------------------------------------------------------------

    def memory(self) -> dict[str, Any]:
        """(d) peak RSS of a fresh rewrap process per size, unthrottled."""
        config = self.config
        self.bench.unthrottled()
        load_before = load_average()
        sizes: dict[str, list[dict[str, Any]]] = {}
        largest = max(config.memory_sizes)
        for size in config.memory_sizes:
            table = self.table(size)
            repeats = config.large_repeats if size == largest and size > 10_000 else config.repeats
            runs = []
            for index in range(repeats):
                run = self.rewrap(table, lean=True, rate_ceiling=UNPACED)
                runs.append(run)
                config.say(
                    f"(d) {size} #{index + 1}: peak RSS {run['rss_peak_kib'] / 1024:.1f} MiB "
                    f"(before run {run['rss_before_kib'] / 1024:.1f} MiB), "
                    f"{run['rewrapped'] / run['wall_seconds']:.0f} DEKs/s"
                )
            sizes[str(size)] = runs
        return {"sizes": sizes, "load_before": load_before, "load_after": load_average()}

    # -- (e) --------------------------------------------------------------------------------------

    def blob(self) -> dict[str, Any]:
        config = self.config
        self.bench.unthrottled()
        load_before = load_average()
        result = self.bench.worker(
            {"kind": "blob", "size_mib": config.blob_mib, "repeats": config.repeats}
        )
        keyward = statistics.median(r["sent"] + r["received"] for r in result["keyward"])
        baseline = statistics.median(r["sent"] + r["received"] for r in result["baseline"])
        config.say(f"(e) keyward {keyward:.0f} B/blob, download+re-upload {baseline:.0f} B/blob")
        result["load_before"] = load_before
        result["load_after"] = load_average()
        return result


def run_scenarios(bench: Bench, config: Config, chosen: list[str]) -> dict[str, Any]:
    runner = Runner(bench, config)
    results: dict[str, Any] = {}
    if "table" in chosen or "naive" in chosen:
        results["throughput"] = runner.throughput(table="table" in chosen, naive="naive" in chosen)
    if "cpu" in chosen:
        results["cpu"] = runner.cpu()
    if "memory" in chosen:
        results["memory"] = runner.memory()
    if "blob" in chosen:
        results["blob"] = runner.blob()
    results["seeding"] = runner.seeded
    return results
