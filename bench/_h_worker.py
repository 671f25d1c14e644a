"""One job of (h), (i) or (j) in a fresh process: ``python -m bench._h_worker``, spec on stdin.

The twin of ``bench._worker`` for issue 13's figures: the same protocol (the result is one
JSON line after :data:`bench._wire.RESULT_MARKER`), its own kinds: ``seed`` (hierarchy rows
in bulk), ``mode`` (the store's mode row), ``verify`` (every KEK, a record per partition),
``rotate`` (a rotation through keyward's pipeline in the local Functions host), ``reads``
(decrypts through the application API) and ``revocation`` (a reader while the key is
disabled).
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import sys
import time
from typing import Any

from bench._wire import RESULT_MARKER


async def _run(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    if kind == "seed":
        from bench._h_seed import hier_seed_job

        return await hier_seed_job(spec)
    if kind in ("mode", "verify"):
        from bench._h_store import mode_job, verify_job

        return await (mode_job(spec) if kind == "mode" else verify_job(spec))
    if kind == "rotate":
        from bench._h_rotate import rotate_job

        return await rotate_job(spec)
    if kind == "reads":
        from bench._h_reads import reads_job

        return await reads_job(spec)
    if kind == "revocation":
        from bench._h_revocation import revocation_job

        return await revocation_job(spec)
    raise SystemExit(f"unknown kind {kind!r}")


def main() -> int:
    spec: dict[str, Any] = json.loads(sys.stdin.read())
    logging.basicConfig(level=getattr(logging, spec.get("log_level", "WARNING")))
    started = time.perf_counter()
    result = asyncio.run(_run(spec["kind"], spec))
    result["worker_seconds"] = round(time.perf_counter() - started, 3)
    result["max_rss_kib_at_exit"] = int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    print(RESULT_MARKER + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
