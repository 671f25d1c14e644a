"""Issue 15's figure runs end to end on a tiny world: ``python -m bench inventory``.

Not a speed test (figures are in ``docs/benchmarks.md``): it proves the harness still seeds,
sweeps in both modes and counts requests, and that the report has a row per mode.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.azurite, pytest.mark.emulator]


def test_inventory_smoke() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "inventory", "--resources", "8", "--repeats", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith(("| Resource", "| per-"))]
    assert len(rows) == 2
    graph, listing = (row.split(" | ") for row in rows)
    assert (graph[1], listing[1]) == ("2", "9"), (
        "the resources query and the subscriptions check against kinds x subscriptions"
    )
    assert graph[4] == listing[4] == "8 / 8", "every resource found and judged in both modes"
