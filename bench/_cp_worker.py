"""One (g) job in a fresh process: ``python -m bench._cp_worker`` with a JSON spec on stdin.

The (g) twin of ``bench._worker`` (which the other scenarios use): the same protocol (the
result is one JSON line after :data:`bench._wire.RESULT_MARKER`), its own kinds: ``seed``,
``jobs``, ``paired``, ``verify``, ``ranges``, ``age``, ``await_pass``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from typing import Any

from bench._wire import RESULT_MARKER


async def _run(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    if kind == "seed":
        from bench._cp_seed import seed_keys_job

        return await seed_keys_job(spec)
    if kind == "jobs":
        from bench._cp_seed import write_jobs_job

        return await write_jobs_job(spec)
    if kind == "paired":
        from bench._cp_measure import paired_job

        return await paired_job(spec)
    if kind in ("age", "await_pass"):
        from bench._cp_pass import age_job, await_pass

        return await (age_job(spec) if kind == "age" else await_pass(spec))
    if kind in ("verify", "ranges"):
        from bench._cp_verify import ranges_job, verify_job

        return await (verify_job(spec) if kind == "verify" else ranges_job(spec))
    raise SystemExit(f"unknown kind {kind!r}")


def main() -> int:
    logging.basicConfig(level=logging.WARNING)
    spec: dict[str, Any] = json.loads(sys.stdin.read())
    started = time.perf_counter()
    result = asyncio.run(_run(spec["kind"], spec))
    result["worker_seconds"] = round(time.perf_counter() - started, 3)
    print(RESULT_MARKER + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
