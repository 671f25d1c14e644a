"""How a worker process is run and hands its result back: one line on stdout after
:data:`RESULT_MARKER`, then JSON. The one home for both sides of that exchange."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

RESULT_MARKER = "BENCH_RESULT "
ROOT = Path(__file__).resolve().parent.parent


def worker_env() -> dict[str, str]:
    """The environment a worker process needs: this one, with the checkout importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def result_from(stdout: str, stderr: str, *, what: str, returncode: int | None) -> dict[str, Any]:
    """The worker's result (the last line after the marker), or an error naming ``what``
    with the tail of its stderr."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            result: dict[str, Any] = json.loads(line[len(RESULT_MARKER) :])
            return result
    tail = "\n".join(stderr.splitlines()[-30:])
    raise RuntimeError(f"{what} failed (rc={returncode}):\n{tail}")


def run_worker_module(module: str, payload: str, *, timeout: float, what: str) -> dict[str, Any]:
    """Run ``python -m module`` with ``payload`` on stdin (never on argv: it may hold
    connection strings) and return its result."""
    done = subprocess.run(
        [sys.executable, "-m", module],
        input=payload,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=worker_env(),
        timeout=timeout,
        check=False,
    )
    return result_from(done.stdout, done.stderr, what=what, returncode=done.returncode)
