"""Issue 14's token-check figure runs end to end on a few calls: ``python -m bench token``.

Not a speed test (the figure is in ``docs/benchmarks.md``): it proves the harness starts the
emulator, verifies real tokens of its tenant with keyward's verifier, and reports a row per
figure without writing the doc.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.emulator]


def test_token_smoke() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "token", "--calls", "20", "--rounds", "2"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    assert rows[0] == "| figure | value |"
    checked = next(row for row in rows if row.startswith("| token check, keys cached"))
    assert "over 2 rounds of 20" in checked
    assert any(row.startswith("| first check of a process") for row in rows)
