"""``python -m bench token``: what the admin API's Entra ID check costs a call (issue 14).

Every admin route now verifies a bearer token before it does anything
(``shared/adapters/entra_tokens.py``, docs/admin-auth.md). This measures that check as the
app makes it: the emulator (started here) publishes its tenant's OpenID metadata and signing
keys over HTTPS and mints an operator token; keyward's ``EntraTokenVerifier``, built from the
same settings the Function App gets, verifies it. The first call of a process fetches the
metadata and the keys (reported apart); every later call is one RS256 verification and the
claim checks. Rounds of ``--calls`` verifications, the per-call time of each round, medians.

The baseline it is set against: the admin API's own latency before tokens, the (g) figure of
``GET /api/status`` over HTTP with a function key (docs/benchmarks.md, 8.9 ms median).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

from bench._report import Section, report_figure
from devtools.emulator.client import EmulatorClient
from devtools.emulator.entra import admin_settings, admin_token
from devtools.emulator.process import start_emulator, stop_emulator
from shared.adapters.entra_tokens import EntraTokenVerifier
from shared.composition import OPERATOR_ROLE

BEGIN = "<!-- bench:token:begin (python -m bench token --write) -->"
END = "<!-- bench:token:end -->"
SECTION = Section("token", BEGIN, END, "Issue 14: the admin API's token check")
#: ``GET /api/status`` over HTTP before tokens, median ms ((g), docs/benchmarks.md).
STATUS_BEFORE_TOKENS_MS = 8.9


async def _measure(url: str, ca_path: str, calls: int, rounds: int) -> dict[str, Any]:
    client = EmulatorClient(url, ca_path)
    token = admin_token(client, roles=[OPERATOR_ROLE])
    settings = admin_settings(url)
    verifier = EntraTokenVerifier(
        tenant_id=settings["KEYWARD_ADMIN_TENANT_ID"],
        audiences=[settings["KEYWARD_ADMIN_AUDIENCE"]],
        authority=settings["KEYWARD_ADMIN_AUTHORITY"],
        ca_bundle=ca_path,
    )
    try:
        started = time.perf_counter()
        await verifier.verify(token)  # cold: metadata and keys over HTTPS
        first_ms = (time.perf_counter() - started) * 1000
        per_call_us: list[float] = []
        for _ in range(rounds):
            started = time.perf_counter()
            for _ in range(calls):
                await verifier.verify(token)
            per_call_us.append((time.perf_counter() - started) / calls * 1e6)
    finally:
        await verifier.close()
    return {"first_ms": first_ms, "per_call_us": per_call_us, "calls": calls}


def run(calls: int, rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="kw-bench-token-") as tmp:
        emulator = start_emulator(Path(tmp))
        try:
            return asyncio.run(_measure(emulator.url, str(emulator.ca_path), calls, rounds))
        finally:
            stop_emulator(emulator)


def render(results: dict[str, Any]) -> str:
    meta = results["meta"]
    rounds = results["per_call_us"]
    median = statistics.median(rounds)
    share = median / 1000 / STATUS_BEFORE_TOKENS_MS
    return "\n".join([
        BEGIN,
        "",
        f"Measured {meta['started']} with `{meta['command']}` on {meta['machine']['nproc']} "
        f"cores (Python {meta['machine']['python']}); load average before "
        f"{meta['load_before'][0]}, after {meta['load_after'][0]} (other sessions share the "
        "machine).",
        "",
        "| figure | value |",
        "|---|---|",
        f"| token check, keys cached: median per call over {len(rounds)} rounds of "
        f"{results['calls']} | **{median:.0f} µs** (rounds: "
        f"{', '.join(f'{r:.0f}' for r in rounds)}) |",
        f"| first check of a process (OpenID metadata and keys fetched over HTTPS) | "
        f"{results['first_ms']:.1f} ms |",
        f"| against `GET /api/status` over HTTP before tokens ((g): {STATUS_BEFORE_TOKENS_MS} ms"
        f" median) | +{share:.1%} per call |",
        "",
        END,
    ]) + "\n"  # fmt: skip


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench token", description=__doc__)
    parser.add_argument("--calls", type=int, default=2000, help="checks per round (2000)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (default 5)")
    parser.add_argument("--write", action="store_true", help="rewrite docs/benchmarks.md")
    args = parser.parse_args(argv)
    report_figure(SECTION, argv, partial(run, args.calls, args.rounds), render, write=args.write)
    return 0
