"""One measured job in a fresh process: ``python -m bench._worker`` with a JSON spec on stdin.

A fresh process per measurement means ``time.process_time`` and ``ru_maxrss`` are this job's
alone (Azurite and the emulator are other processes). The result is one JSON line on stdout,
after :data:`bench._env.RESULT_MARKER`. Kinds: ``seed``, ``rewrap``, ``naive``, ``rsa``,
``parts``, ``blob``; for (f): ``budget_seed``, ``budget_worker``, ``budget_app``,
``budget_verify``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from typing import Any

from bench._blob import blob_job
from bench._budget_app import budget_app_job
from bench._budget_verify import budget_seed_job, budget_verify_job
from bench._budget_worker import budget_worker_job
from bench._naive import naive_job
from bench._parts import parts_job
from bench._rewrap import max_rss_kib, rewrap_job, rsa_job, seed_job
from bench._wire import RESULT_MARKER

BUDGET_KINDS = {
    "budget_seed": budget_seed_job,
    "budget_worker": budget_worker_job,
    "budget_app": budget_app_job,
    "budget_verify": budget_verify_job,
}


def main() -> int:
    logging.basicConfig(level=logging.WARNING)
    spec: dict[str, Any] = json.loads(sys.stdin.read())
    kind = spec["kind"]
    started = time.perf_counter()
    if kind == "seed":
        result = asyncio.run(seed_job(spec))
    elif kind == "rewrap":
        result = asyncio.run(rewrap_job(spec))
    elif kind == "naive":
        result = naive_job(spec)
    elif kind == "rsa":
        result = rsa_job(spec)
    elif kind == "parts":
        result = asyncio.run(parts_job(spec))
    elif kind == "blob":
        result = asyncio.run(blob_job(spec))
    elif kind in BUDGET_KINDS:
        result = asyncio.run(BUDGET_KINDS[kind](spec))
    else:
        raise SystemExit(f"unknown kind {kind!r}")
    result["worker_seconds"] = round(time.perf_counter() - started, 3)
    result["max_rss_kib_at_exit"] = max_rss_kib()
    print(RESULT_MARKER + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
