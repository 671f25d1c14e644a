"""(g)'s harness runs end to end on tiny sizes (``python -m bench control --smoke``).

Not a speed test: (g)'s figures are measured by ``python -m bench control`` and written to
``docs/benchmarks.md`` by hand. This proves the world is built (keys, seeded tables, jobs),
every measurement reports its fields, the sweep finds every key's job (it queues nothing),
and the report has a row per figure.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.azurite, pytest.mark.emulator]


def test_control_plane_smoke_reports_every_figure(tmp_path: Path) -> None:
    raw = tmp_path / "control.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "control", "--smoke", "--json", str(raw)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]

    results = json.loads(raw.read_text())["results"]
    assert {int(s) for s in results["seeding"]} == {40, 80}
    assert all(s["count"] == int(size) for size, s in results["seeding"].items())
    # Two versions per key, on each of the Table kind's two shards (DEK table, KEK table).
    assert all(s["jobs_written"] == 4 * results["keys"] for s in results["seeding"].values())
    for size, entry in results["rounds"][0].items():
        assert entry["size"] == int(size)
        for run in entry["sweep"]["runs"]:
            assert run["keys_checked"] == results["keys"]
            assert run["jobs_started"] == run["jobs_resumed"] == run["jobs_retried"] == 0
            assert run["storage_requests"] > 0
            assert run["vault_requests"] > 0
        for way in ("status_in_process", "status_http"):
            status = entry[way]
            assert status["calls"] == len(status["all_ms"]) == 5
            assert 0 < status["median_ms"] <= status["p95_ms"] <= status["max_ms"]
            assert "jobs" in status["body_keys"]
        assert entry["status_http"]["status_codes"] == [200]
    for size, verify in results["verify"].items():
        assert verify["completed"], verify
        assert verify["mode"] == "worker"
        assert verify["record"]["verification"] is True
        assert verify["stale_inserted"] == verify["rewrapped"] == 1
        assert verify["deks_of_key"] == int(size) // results["keys"] + 1
        assert verify["deks_covered_per_second"] > 0

    text = done.stdout
    for figure in ("sweep: Storage requests", "sweep: wall time", "over HTTP, median",
                   "over HTTP, p95", "verification pass"):  # fmt: skip
        assert figure in text
    assert "python -m bench control --smoke" in text
