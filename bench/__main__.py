"""``python -m bench [SCENARIO ...] [--quick | --smoke] [options]``; see ``bench/__init__.py``.

``python -m bench control [options]`` runs (g), the flat control plane (``bench._cp_cli``).
``python -m bench hierarchy|reads|revocation [options]`` run issue 13's (h), (i), (j)
(``bench._h_cli``). ``python -m bench inventory [options]``: issue 15's sweep at scale with
Resource Graph beside per-subscription listing (``bench._inventory``). ``python -m bench token
[options]``: issue 14's admin token check per call (``bench._token``).

With every scenario and neither ``--quick`` nor ``--smoke``, the figures are written to
``docs/benchmarks.md`` (``--output`` to write elsewhere, ``--no-write`` to skip). Raw results
always go to ``bench/out/results-<UTC time>.json``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from bench._budget_report import render_budget
from bench._env import load_average, machine, running_world, utc_now
from bench._report import BEGIN, END, render, write_doc
from bench._scenarios import SCENARIOS, Config, run_scenarios
from bench._shared_budget import SMOKE, BudgetConfig, shared_budget
from bench._wire import ROOT

#: Scenarios run only when named (not part of "all").
EXTRA = ("budget",)
DOC = ROOT / "docs" / "benchmarks.md"
OUT = ROOT / "bench" / "out"
SKELETON = f"""# keyward benchmarks

Issue 4's figures, written by `make bench` (`.venv/bin/python -m bench`).

{BEGIN}
{END}
"""


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "scenarios",
        nargs="*",
        metavar="SCENARIO",
        help=f"{', '.join(SCENARIOS)} or all (default); {', '.join(EXTRA)} only when named",
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes (< 3 minutes)")
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes, proves the harness runs (beats --quick)"
    )
    parser.add_argument("--deks", type=int, help="DEKs for (a) and (c) (default 10000)")
    parser.add_argument("--naive-deks", type=int, help="DEKs for the naive loop (default 300)")
    parser.add_argument(
        "--memory-sizes", help="comma-separated DEK counts for (d) (default 10000,100000)"
    )
    parser.add_argument("--blob-mib", type=float, help="size of the (e) blob (default 64)")
    parser.add_argument("--repeats", type=int, help="repeats per figure (default 3)")
    parser.add_argument("--workers", type=int, help="EngineSettings.workers for every run")
    parser.add_argument(
        "--also-workers", type=int, help="also run (a) with this many workers, interleaved"
    )
    parser.add_argument(
        "--also-burst", type=float, help="also run (a) with this limiter burst credit (s)"
    )
    parser.add_argument("--pages-in-flight", type=int, help="EngineSettings.pages_in_flight")
    parser.add_argument("--profile", action="store_true", help="also profile (c) (pyinstrument)")
    parser.add_argument("--budget-deks", type=int, help="(f) DEKs per shard (default 3000)")
    parser.add_argument("--budget-processes", type=int, help="(f) worker processes (default 3)")
    parser.add_argument("--budget-shards", type=int, help="(f) shards, Table stores (default 6)")
    parser.add_argument(
        "--budget-overload-seconds", type=float, help="(f) length of the overload run (60)"
    )
    parser.add_argument(
        "--budget-job-lease", type=float, help="(f) the engines' job lease in s (default 30)"
    )
    parser.add_argument(
        "--budget-nice",
        type=int,
        help="(f) nice value of the emulator, Azurite and the application (default -10; 0: none)",
    )
    parser.add_argument("--output", type=Path, help="write the Markdown report here")
    parser.add_argument("--no-write", action="store_true", help="write no Markdown report")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument(
        "--render", type=Path, metavar="RESULTS_JSON", help="no run: render saved raw results"
    )
    args = parser.parse_args(argv)
    unknown = set(args.scenarios) - {*SCENARIOS, *EXTRA, "all"}
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    return args


def config_from(args: argparse.Namespace) -> Config:
    if args.smoke:
        config = Config(
            deks=50, naive_deks=20, memory_sizes=(50, 100), blob_mib=1, repeats=1, parts_calls=256
        )
    elif args.quick:
        config = Config(
            deks=2000, naive_deks=100, memory_sizes=(2000, 10_000), blob_mib=16, repeats=1
        )
    else:
        config = Config()
    if args.deks:
        config.deks = args.deks
    if args.naive_deks:
        config.naive_deks = args.naive_deks
    if args.memory_sizes:
        config.memory_sizes = tuple(int(s) for s in args.memory_sizes.split(","))
    if args.blob_mib:
        config.blob_mib = args.blob_mib
    if args.repeats:
        config.repeats = args.repeats
    if args.profile:
        config.profile_dir = OUT
    config.workers = args.workers
    config.pages_in_flight = args.pages_in_flight
    config.also_workers = args.also_workers
    config.also_burst = args.also_burst
    return config


def budget_config_from(args: argparse.Namespace) -> BudgetConfig:
    config = BudgetConfig(**vars(SMOKE)) if args.smoke else BudgetConfig()
    for name, option in (
        ("deks_per_shard", args.budget_deks),
        ("processes", args.budget_processes),
        ("shards", args.budget_shards),
        ("overload_seconds", args.budget_overload_seconds),
        ("job_lease_seconds", args.budget_job_lease),
        ("repeats", args.repeats),
    ):
        if option:
            setattr(config, name, option)
    if args.budget_nice is not None:
        config.service_nice = args.budget_nice
    return config


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["control"]:  # (g) flat control plane: its own world and options
        from bench._cp_cli import main as control_main

        return control_main(argv[1:])
    if argv[:1] == ["token"]:  # issue 14: the admin API's token check
        from bench._token import main as token_main

        return token_main(argv[1:])
    if argv[:1] == ["inventory"]:  # issue 15: key-dependent inventory at scale
        from bench._inventory import main as inventory_main

        return inventory_main(argv[1:])
    if argv[:1] and argv[0] in ("hierarchy", "reads", "revocation"):  # issue 13's figures
        from bench._h_cli import main as figure_main

        return figure_main(argv[0], argv[1:])
    args = parse_args(argv)
    if args.render:
        text = render(json.loads(args.render.read_text()))
        print(text)
        if args.output:
            write_doc(args.output, text, SKELETON)
        return 0
    chosen = [s for s in SCENARIOS if not args.scenarios or "all" in args.scenarios
              or s in args.scenarios]  # fmt: skip
    extra = [s for s in EXTRA if s in args.scenarios]
    config = config_from(args)
    command = " ".join([".venv/bin/python -m bench", *map(shlex.quote, argv)])
    meta: dict[str, Any] = {
        "command": command,
        "started": utc_now(),
        "machine": machine(),
        "load_before": load_average(),
        "mode": "smoke" if args.smoke else "quick" if args.quick else "full",
        "config": {
            "deks": config.deks,
            "naive_deks": config.naive_deks,
            "memory_sizes": list(config.memory_sizes),
            "large_repeats": config.large_repeats,
            "blob_mib": config.blob_mib,
            "repeats": config.repeats,
            "workers": config.workers,
            "pages_in_flight": config.pages_in_flight,
            "also_workers": config.also_workers,
            "also_burst": config.also_burst,
        },
        "scenarios": chosen + extra,
    }
    budget_config = budget_config_from(args) if "budget" in extra else None
    started = time.perf_counter()
    with running_world() as bench:
        results = run_scenarios(bench, config, chosen) if chosen else {}
        if budget_config is not None:
            results["budget"] = shared_budget(bench, budget_config, config.say)
    meta["load_after"] = load_average()
    meta["finished"] = utc_now()
    meta["seconds"] = round(time.perf_counter() - started, 1)
    everything = {"meta": meta, "results": results}
    OUT.mkdir(parents=True, exist_ok=True)
    raw = OUT / f"results-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    raw.write_text(json.dumps(everything, indent=1))
    if args.json:
        args.json.write_text(raw.read_text())
    text = render(everything) if chosen else ""
    if budget_config is not None:
        section = render_budget(everything)
        (OUT / raw.name.replace("results-", "budget-").replace(".json", ".md")).write_text(section)
        text += section
        if args.output and not chosen:
            args.output.write_text(section)
    print(text)
    target = args.output
    if target is None and not (args.no_write or args.quick or args.smoke):
        target = DOC if set(chosen) == set(SCENARIOS) else None
    if target is not None and not args.no_write and chosen:
        write_doc(target, text, SKELETON)
        print(f"wrote {target}", file=sys.stderr)
    print(f"raw results: {raw}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
