"""``python -m bench hierarchy|reads|revocation [options]``: issue 13's figures (h), (i), (j).

Each starts its own world (``bench._env.running_world``), runs, prints a Markdown section and
writes the raw results to ``bench/out/<figure>-<UTC time>.json`` and the section to
``bench/out/<figure>-<UTC time>.md`` (docs/benchmarks.md quotes them; it is not rewritten).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench._env import load_average, machine, running_world, utc_now
from bench._wire import ROOT

OUT = ROOT / "bench" / "out"
FIGURES = ("hierarchy", "reads", "revocation")


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse_args(figure: str, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"python -m bench {figure}", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: proves the harness")
    parser.add_argument("--repeats", type=int, help="measured repeats")
    if figure == "hierarchy":
        parser.add_argument("--records", type=int, help="records (default 1,000,000)")
        parser.add_argument("--partitions", type=int, help="partitions = KEKs (default 1,000)")
        parser.add_argument("--direct-records", type=int, help="direct-mode N (default 10,000)")
    if figure == "reads":
        parser.add_argument("--records", type=int, help="records (default 1,000)")
        parser.add_argument("--calls", type=int, help="decrypt calls (default 10,000)")
        parser.add_argument("--partitions", type=int, help="partitions (default 100)")
    if figure == "revocation":
        parser.add_argument("--ttl", type=float, help="KEK cache TTL in s (default 5)")
    parser.add_argument("--output", type=Path, help="also write the Markdown section here")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    return parser.parse_args(argv)


Render = Callable[[dict[str, Any]], str]


def _run(figure: str, args: argparse.Namespace) -> tuple[dict[str, Any], Render]:
    if figure == "hierarchy":
        from bench._h_report import render_hierarchy
        from bench._hierarchy import HEAP_MIB, SMOKE, HierarchyConfig, hierarchy

        config = HierarchyConfig(**vars(SMOKE)) if args.smoke else HierarchyConfig()
        for name in ("records", "partitions", "direct_records", "repeats"):
            if getattr(args, name, None):
                setattr(config, name, getattr(args, name))
        with running_world(heap_mib=HEAP_MIB) as bench:
            result = hierarchy(bench, config, say)
        return result, render_hierarchy
    if figure == "reads":
        from bench._h_reads import SMOKE_READS, ReadsConfig, reads
        from bench._h_report import render_reads

        rconfig = ReadsConfig(**vars(SMOKE_READS)) if args.smoke else ReadsConfig()
        for name in ("records", "calls", "partitions", "repeats"):
            if getattr(args, name, None):
                setattr(rconfig, name, getattr(args, name))
        with running_world() as bench:
            result = reads(bench, rconfig, say)
        return result, render_reads
    from bench._h_report import render_revocation
    from bench._h_revocation import SMOKE_REVOCATION, RevocationConfig, revocation

    vconfig = RevocationConfig(**vars(SMOKE_REVOCATION)) if args.smoke else RevocationConfig()
    if args.ttl:
        vconfig.ttl = args.ttl
    if args.repeats:
        vconfig.repeats = args.repeats
    with running_world() as bench:
        result = revocation(bench, vconfig, say)
    return result, render_revocation


def main(figure: str, argv: list[str]) -> int:
    args = parse_args(figure, argv)
    meta: dict[str, Any] = {
        "command": " ".join([".venv/bin/python -m bench", figure, *map(shlex.quote, argv)]),
        "started": utc_now(),
        "machine": machine(),
        "load_before": load_average(),
    }
    started = time.perf_counter()
    result, render = _run(figure, args)
    meta.update(
        finished=utc_now(),
        load_after=load_average(),
        seconds=round(time.perf_counter() - started, 1),
    )
    everything = {"meta": meta, "results": result}
    OUT.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    raw = OUT / f"{figure}-{stamp}.json"
    raw.write_text(json.dumps(everything, indent=1, default=str))
    text = render(everything)
    (OUT / f"{figure}-{stamp}.md").write_text(text)
    if args.output:
        args.output.write_text(text)
    if args.json:
        args.json.write_text(raw.read_text())
    print(text)
    print(f"raw results: {raw}", file=sys.stderr)
    return 0
