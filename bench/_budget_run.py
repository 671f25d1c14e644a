"""One measured run of (f): the application, keyward's worker processes, the vault's counters.

The orchestrating process (this one) rotates the key (a new rotation: every DEK of every
shard is one version behind), gives the vault Key Vault's RSA-2048 software budget and 20 ms
latency with a fresh throttle window, starts the application process and lets it run alone
for ``app_warmup_seconds`` (it was there before the rotation: its traffic fills the window
first), then starts the keyward worker processes together. While they run it reads the
emulator's counters every ``POLL_SECONDS`` (accepted operations and 429s per key, the
throttle's use of its 10-second window); with ``kill_at_fraction`` it SIGKILLs worker 0 once
keyward has unwrapped that fraction of all DEKs. When every surviving worker has exited, it
stops the application and collects every process's result.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from bench._budget_machine import prioritize, service_cpu
from bench._budget_stamps import read_stamps
from bench._env import KEY, Bench
from bench._wire import ROOT, result_from, worker_env

APP_KEY = "app-kek"
POLL_SECONDS = 0.5


@dataclass
class RunPlan:
    """One run's shape."""

    label: str
    tables: list[str]
    deks_per_shard: int
    processes: int
    share: float
    app_rate: float
    budget_lease_seconds: float
    job_lease_seconds: float
    app_warmup_seconds: float = 10.0
    kill_at_fraction: float | None = None
    stop_after_seconds: float | None = None
    timeout_seconds: float = 900.0
    #: Nice value for the application process (another machine in production; 0: as is).
    app_nice: int = 0


class Proc:
    """A ``bench._worker`` subprocess with its output in files (no pipe can fill up)."""

    def __init__(self, bench: Bench, name: str, spec: dict[str, Any]) -> None:
        self.name = name
        self.out_path = bench.workdir / f"{name}.out"
        self.err_path = bench.workdir / f"{name}.err"
        env = worker_env()
        payload = json.dumps({"world": bench.world.to_json(), **spec})
        self._out: TextIO = self.out_path.open("w")
        self._err: TextIO = self.err_path.open("w")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "bench._worker"],
            stdin=subprocess.PIPE, stdout=self._out, stderr=self._err, text=True, cwd=ROOT,
            env=env,
        )  # fmt: skip
        assert self.popen.stdin is not None
        self.popen.stdin.write(payload)
        self.popen.stdin.close()
        self.spawned = time.time()

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> float:
        """SIGKILL: no handler, no cleanup, no lease given back."""
        os.kill(self.popen.pid, signal.SIGKILL)
        self.popen.wait()
        return time.time()

    def result(self, timeout: float = 120.0) -> dict[str, Any]:
        self.popen.wait(timeout=timeout)
        self._out.close()
        self._err.close()
        return result_from(
            self.out_path.read_text(), self.err_path.read_text(),
            what=self.name, returncode=self.popen.returncode,
        )  # fmt: skip

    def close(self) -> None:
        if self.alive():
            self.popen.kill()
            self.popen.wait()
        for handle in (self._out, self._err):
            with contextlib.suppress(Exception):
                handle.close()


def sample(bench: Bench) -> dict[str, Any]:
    """The emulator's counters now: keyward's key, the application's key, the window."""
    counters = bench.client.counters(bench.world.vault)
    keys = counters.get("keys", {})
    ours, theirs = keys.get(KEY, {}), keys.get(APP_KEY, {})
    throttle = bench.client.get_throttle(bench.world.vault)
    return {
        "t": round(time.time(), 3),
        "k_unwrap": int(ours.get("ops", {}).get("unwrapKey", 0)),
        "k_ops": int(sum(ours.get("ops", {}).values())),
        "k_429": int(ours.get("throttled", 0)),
        "a_ok": int(theirs.get("ops", {}).get("unwrapKey", 0)),
        "a_429": int(theirs.get("throttled", 0)),
        "window_used": round(float(throttle.get("used", 0.0)), 1),
    }


def _worker_spec(plan: RunPlan, index: int, target: str, files: Path) -> dict[str, Any]:
    own = plan.tables[index :: plan.processes]
    return {
        "kind": "budget_worker",
        "ready_file": str(files / f"ready-{plan.label}-{index}"),
        "stamp_file": str(files / f"stamps-{plan.label}-{index}"),
        "go_file": str(files / f"go-{plan.label}"),
        "tables": own,
        "adopt": [t for t in plan.tables if t not in own],
        "target_version": target,
        "share": plan.share,
        "budget_lease_seconds": plan.budget_lease_seconds,
        "job_lease_seconds": plan.job_lease_seconds,
        "adopt_poll_seconds": max(1.0, plan.job_lease_seconds / 6),
        "adopt_give_up_seconds": plan.job_lease_seconds * 4 + 60,
        "stop_after_seconds": plan.stop_after_seconds,
    }


def run_once(bench: Bench, plan: RunPlan, say: Any) -> dict[str, Any]:
    """Run ``plan``; the raw material for :mod:`bench._budget_figures`."""
    target = bench.rotate().rstrip("/").rsplit("/", 1)[-1]
    bench.throttled()
    bench.client.reset_counters()
    stop_file = bench.workdir / f"stop-{plan.label}"
    total = plan.deks_per_shard * len(plan.tables)
    app_key = f"{bench.world.key_ref.rsplit('/', 1)[0]}/{APP_KEY}"
    app = Proc(bench, f"app-{plan.label}", {
        "kind": "budget_app", "app_key": app_key, "rate": plan.app_rate,
        "stop_file": str(stop_file), "max_seconds": plan.timeout_seconds + 60,
    })  # fmt: skip
    prioritize([app.popen.pid], plan.app_nice)
    workers: list[Proc] = []
    samples: list[dict[str, Any]] = []
    killed: dict[str, Any] | None = None
    try:
        workers = [
            Proc(bench, f"worker{i}-{plan.label}", _worker_spec(plan, i, target, bench.workdir))
            for i in range(plan.processes)
        ]
        ready = [Path(_worker_spec(plan, i, target, bench.workdir)["ready_file"])
                 for i in range(plan.processes)]  # fmt: skip
        deadline = time.time() + plan.app_warmup_seconds
        while time.time() < deadline or not all(r.exists() for r in ready):
            dead = [w for w in workers if not w.alive()]
            if dead:  # a worker died while starting: its error
                dead[0].result()
                raise RuntimeError(f"{dead[0].name} exited before the start")
            samples.append(sample(bench))
            time.sleep(POLL_SECONDS)
        (bench.workdir / f"go-{plan.label}").touch()
        launched = time.time()
        cpu_before = service_cpu()
        say(f"(f) {plan.label}: {plan.processes} workers go, target {target[:8]}")
        give_up = launched + plan.timeout_seconds
        while any(w.alive() for w in workers) and time.time() < give_up:
            now = sample(bench)
            samples.append(now)
            if (
                plan.kill_at_fraction is not None
                and killed is None
                and now["k_unwrap"] >= plan.kill_at_fraction * total
            ):
                victim = workers[0]
                at = victim.kill()
                killed = {"worker": 0, "pid": victim.popen.pid, "at": round(at, 3),
                          "k_unwrap_at_kill": now["k_unwrap"]}  # fmt: skip
                say(f"(f) {plan.label}: SIGKILL worker 0 after {now['k_unwrap']} unwraps")
            time.sleep(POLL_SECONDS)
        ended = time.time()
        cpu_after = service_cpu()
        for _ in range(4):  # the tail after the workers: the app alone again
            samples.append(sample(bench))
            time.sleep(POLL_SECONDS)
        Path(stop_file).touch()
        app_result = app.result()
        results = []
        for index, worker in enumerate(workers):
            if killed is not None and index == killed["worker"]:
                results.append({"killed": True})
            else:
                results.append(worker.result())
        samples.append(sample(bench))
    finally:
        Path(stop_file).touch()
        for proc in [app, *workers]:
            proc.close()
    return {
        "label": plan.label,
        "plan": dict(vars(plan)),
        "target_version": target,
        "launched": round(launched, 3),
        "workers_ended": round(ended, 3),
        "killed": killed,
        "service_cores": {
            name: round((cpu_after[name] - cpu_before.get(name, 0.0)) / (ended - launched), 3)
            for name in cpu_after
        },
        "samples": samples,
        # Unwraps sent per 0.1 s bin, every worker's (the killed one's up to its last second).
        "sent_bins": read_stamps(
            [bench.workdir / f"stamps-{plan.label}-{i}" for i in range(plan.processes)]
        ),
        "app": app_result,
        "workers": results,
    }
