"""``python -m bench control``'s command line: options, ``--serve``, ``--world``, ``--render``.

See ``bench._control_plane`` for what is measured and how.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench._control_plane import OUT, ControlConfig, run, say, seed_all
from bench._cp_report import render
from bench._cp_world import ControlWorld, control_world
from bench._env import load_average, machine, utc_now


def serve(config: ControlConfig, path: Path) -> None:
    """Build and seed a world, describe it in ``path``, keep it up until SIGTERM / Ctrl-C:
    measurement runs (``--world path``) then skip seeding 1,000,000 DEKs each time."""
    with control_world(config.keys) as world:
        seeded = seed_all(world, config)
        data = {**world.to_json(), "sizes": list(config.sizes), "seeded": seeded,
                "served_since": utc_now()}  # fmt: skip
        path.write_text(json.dumps(data, indent=1))
        say(f"world ready, described in {path}; stop with SIGTERM (pid {os.getpid()})")
        with contextlib.suppress(KeyboardInterrupt, SystemExit):
            while True:
                time.sleep(3600)


def parse(argv: list[str]) -> tuple[ControlConfig, argparse.Namespace]:
    parser = argparse.ArgumentParser(prog="python -m bench control", description=__doc__)
    parser.add_argument("--sizes", help="comma-separated DEK counts (default 10000,1000000)")
    parser.add_argument("--keys", type=int, help="keys in the vault (default 8)")
    parser.add_argument("--rounds", type=int, help="rounds (default 3)")
    parser.add_argument("--sweeps", type=int, help="sweeps per size and round (default 10)")
    parser.add_argument("--calls", type=int, help="status calls per size and round (50)")
    parser.add_argument("--verify-seconds", type=float, help="verification time box (240)")
    parser.add_argument("--verify-mode", choices=("engine", "worker"), help="(worker)")
    parser.add_argument("--no-http", action="store_true", help="status in process only")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, proves it runs")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--render", type=Path, metavar="JSON", help="no run: render results")
    parser.add_argument("--serve", type=Path, metavar="FILE", help="seed a world, keep it up")
    parser.add_argument("--world", type=Path, metavar="FILE", help="measure a served world")
    args = parser.parse_args(argv)
    config = ControlConfig()
    if args.smoke:
        config = ControlConfig(sizes=(40, 80), keys=2, seed_processes=1, rounds=1, sweeps=2,
                               calls=5, verify_seconds=30, alone=False)  # fmt: skip
    if args.sizes:
        config.sizes = tuple(int(s) for s in args.sizes.split(","))
    for name in ("keys", "rounds", "sweeps", "calls", "verify_seconds", "verify_mode"):
        if getattr(args, name) is not None:
            setattr(config, name, getattr(args, name))
    config.http = not args.no_http
    config.serve = args.serve is not None
    return config, args


def main(argv: list[str]) -> int:
    # SIGTERM must unwind through the world's cleanup, or Azurite would outlive this run.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    config, args = parse(argv)
    if args.serve:
        serve(config, args.serve)
        return 0
    if args.render:
        print(render(json.loads(args.render.read_text())))
        return 0
    meta: dict[str, Any] = {
        "command": " ".join([".venv/bin/python -m bench control", *map(shlex.quote, argv)]),
        "started": utc_now(),
        "machine": machine(),
        "load_before": load_average(),
        "config": asdict(config),
    }
    started = time.perf_counter()
    if args.world:
        served = json.loads(args.world.read_text())
        config.sizes = tuple(served["sizes"])
        meta["world"] = f"served since {served['served_since']} (seeded once, see seeding)"
        results = run(ControlWorld.from_json(served), config, served["seeded"])
    else:
        with control_world(config.keys) as world:
            results = run(world, config, seed_all(world, config))
    meta.update(finished=utc_now(), load_after=load_average(),
                seconds=round(time.perf_counter() - started, 1))  # fmt: skip
    everything = {"meta": meta, "results": results}
    OUT.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    raw = OUT / f"control-{stamp}.json"
    raw.write_text(json.dumps(everything, indent=1))
    if args.json:
        args.json.write_text(raw.read_text())
    text = render(everything)
    (OUT / f"control-{stamp}.md").write_text(text)
    print(text)
    print(f"raw results: {raw}", file=sys.stderr)
    return 0
