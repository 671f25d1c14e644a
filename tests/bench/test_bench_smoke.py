"""The benchmark harness runs end to end on tiny sizes (``python -m bench --quick --smoke``).

Not a speed test: speed is measured by ``python -m bench`` and written to
``docs/benchmarks.md``. This proves every scenario still runs against Azurite and the
emulator, the rewraps complete, and the report is rendered with a figure per target.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.azurite, pytest.mark.emulator]


def test_smoke_run_produces_every_figure(tmp_path: Path) -> None:
    doc, raw = tmp_path / "benchmarks.md", tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--smoke", "--output", str(doc),
         "--json", str(raw)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]

    results = json.loads(raw.read_text())["results"]
    table = results["throughput"]["engine"][0]
    assert table["completed"]
    assert table["rewrapped"] == 50
    assert table["failed"] == 0
    assert table["verified"]["left_below_target"] == 0
    assert table["verified"]["opened"] == table["verified"]["sample"] > 0
    assert results["throughput"]["naive"][0]["rewrapped"] == 20
    cpu = results["cpu"]["rounds"][0]
    assert cpu["rsa"]["decrypt_cpu_ms"] > 0
    assert cpu["lean"]["rewrapped"] == cpu["sdk"]["rewrapped"] == 50
    assert {int(size) for size in results["memory"]["sizes"]} == {50, 100}
    blob = results["blob"]
    assert blob["keyward"][0]["requests"] > 0
    assert blob["baseline"][0]["received"] > blob["size_bytes"]

    text = doc.read_text()
    for figure in ("(a)", "(b)", "(c)", "(d)", "(e)"):
        assert f"| {figure} " in text
    assert "python -m bench --quick --smoke" in text
