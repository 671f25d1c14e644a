"""Scenario (f), the shared vault budget: ``python -m bench budget``.

One emulated vault at Key Vault's RSA-2048 software budget (4,000 operations per 10 s, 429 +
``Retry-After`` past it, 20 ms latency), Azurite, ``shards`` Table DEK stores of
``deks_per_shard`` DEKs each, ``processes`` keyward worker processes
(:mod:`bench._budget_worker`: the product's composition root, engine and budget board) each
running its shards of one rotation, and one application process (:mod:`bench._budget_app`)
unwrapping with its own key in the same vault. Two runs, each on a fresh rotation:

1. **shared** (``repeats`` times): the application at ``1 - share`` of the budget; worker 0
   is SIGKILLed once keyward has unwrapped ``kill_at_fraction`` of the DEKs; the survivors
   finish their own shards, then resume the killed worker's once its job leases lapse. Then
   every DEK of every shard is checked (:mod:`bench._budget_verify`).
2. **overload**: the application alone above its part (``overload_fraction`` of the budget);
   the engines are told to stop (checkpoint and pause) after ``overload_seconds``; every DEK
   is checked again (at the new version or still at the previous one, and opening to its KCV).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from bench._budget_figures import figures
from bench._budget_machine import prioritize, service_pids
from bench._budget_run import APP_KEY, RunPlan, run_once
from bench._env import BUDGET, VAULT, Bench, load_average, utc_now


@dataclass
class BudgetConfig:
    deks_per_shard: int = 3000
    shards: int = 6
    processes: int = 3
    share: float = 0.5
    budget_lease_seconds: float = 15.0
    #: The engine's job lease in the bench (production: 300 s); see ``bench._budget_worker``.
    job_lease_seconds: float = 30.0
    kill_at_fraction: float = 0.3
    overload_fraction: float = 0.7
    overload_seconds: float = 60.0
    app_warmup_seconds: float = 10.0
    #: Runs of the shared shape (each a fresh rotation of every shard); one overload run.
    repeats: int = 3
    #: Nice value for the emulator, Azurite and the application (``bench._budget_machine``).
    service_nice: int = -10


SMOKE = BudgetConfig(
    deks_per_shard=40,
    budget_lease_seconds=5.0,
    job_lease_seconds=5.0,
    overload_seconds=6.0,
    app_warmup_seconds=1.0,
    repeats=1,
)


def _plan(config: BudgetConfig, tables: list[str], label: str, **shape: Any) -> RunPlan:
    return RunPlan(
        label=label,
        tables=tables,
        deks_per_shard=config.deks_per_shard,
        processes=config.processes,
        share=config.share,
        budget_lease_seconds=config.budget_lease_seconds,
        job_lease_seconds=config.job_lease_seconds,
        app_warmup_seconds=config.app_warmup_seconds,
        app_nice=config.service_nice,
        **shape,
    )


def _verify(bench: Bench, tables: list[str], target: str) -> dict[str, Any]:
    bench.unthrottled()
    spec = {"kind": "budget_verify", "tables": tables, "target_version": target}
    return bench.worker(spec)


def shared_budget(bench: Bench, config: BudgetConfig, say: Any) -> dict[str, Any]:
    per_second = BUDGET.operations_per_second
    services = service_pids()
    prioritize([pid for pids in services.values() for pid in pids], config.service_nice)
    bench.client.create_key(VAULT, APP_KEY, kty="RSA", size=2048)
    tables = [f"budgetshard{i}" for i in range(config.shards)]
    say(f"(f) seeding {config.shards} x {config.deks_per_shard} DEKs")
    seeded = bench.worker({"kind": "budget_seed", "tables": tables, "count": config.deks_per_shard})
    runs: dict[str, Any] = {}
    shared = {
        "app_rate": (1 - config.share) * per_second,
        "kill_at_fraction": config.kill_at_fraction,
    }
    shapes = {f"shared{i + 1}": shared for i in range(config.repeats)}
    shapes["overload"] = {
        "app_rate": config.overload_fraction * per_second,
        "stop_after_seconds": config.overload_seconds,
    }
    for label, shape in shapes.items():
        load_before = load_average()
        started = utc_now()
        clock = time.perf_counter()
        run = run_once(bench, _plan(config, tables, label, **shape), say)
        load_after = load_average()
        run["figures"] = figures(run, per_second)
        run["verify"] = _verify(bench, tables, run["target_version"])
        run.update(load_before=load_before, load_after=load_after, started_utc=started,
                   seconds=round(time.perf_counter() - clock, 1))  # fmt: skip
        fig = run["figures"]
        say(
            f"(f) {label}: keyward {fig['steady_rate']}/s steady (target "
            f"{fig['target_rate']:.0f}), app 429s {fig['app_429_emulator']}, keyward 429s "
            f"{fig['keyward_429_emulator']}, recovery {fig.get('recovery_seconds')} s, "
            f"verify {run['verify']['total']}, load {load_after[0]}"
        )
        runs[label] = run
    return {
        "config": asdict(config),
        "budget_per_second": per_second,
        "seeding": seeded,
        "services": services,
        "runs": runs,
    }
