"""(f)'s harness runs end to end on tiny sizes (``python -m bench budget --smoke``).

Not a speed test: the shared-budget figures are measured by ``python -m bench budget`` and
written up in ``docs/benchmarks.md``. This proves the three worker processes, the
application process, the SIGKILL of one worker and the resumption of its shards, the
overload run and the check of every DEK still run against Azurite and the emulator, and that
every figure the write-up quotes is in the raw results and the rendered table.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.azurite, pytest.mark.emulator]

FIGURES = (
    "steady_rate",
    "steady_median_bin",
    "max_keyward_ops_per_window",
    "max_keyward_sent_per_window",
    "max_window_used",
    "keyward_429_emulator",
    "app_429_emulator",
    "keyward_429_engines",
    "rate_decreases",
)


def test_budget_smoke_run_reports_every_figure(tmp_path: Path) -> None:
    doc, raw = tmp_path / "budget.md", tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "budget", "--smoke", "--output", str(doc),
         "--json", str(raw)],
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]

    budget = json.loads(raw.read_text())["results"]["budget"]
    seeded = budget["config"]["shards"] * budget["config"]["deks_per_shard"]
    shared, overload = budget["runs"]["shared1"], budget["runs"]["overload"]

    # One worker was killed; every DEK of every shard still ended at the new version and
    # opens to its KCV (the killed worker's shards were resumed by a survivor).
    assert shared["killed"]["worker"] == 0
    assert shared["workers"][0] == {"killed": True}
    assert shared["verify"]["total"] == {"found": seeded, "at_target": seeded, "kcv_ok": seeded}
    survivors = shared["workers"][1:]
    assert len(survivors) == budget["config"]["processes"] - 1
    resumed = {a["shard"] for w in survivors for a in w["adopted"] if a["ran"]}
    assert resumed <= {f"table:budgetshard{i}" for i in range(0, budget["config"]["shards"], 3)}

    # The overload run checkpointed and paused or finished; nothing lost or corrupted.
    total = overload["verify"]["total"]
    assert total["found"] == total["kcv_ok"] == seeded
    assert overload["app"]["rate"] > shared["app"]["rate"]

    for run in (shared, overload):
        assert set(FIGURES) <= set(run["figures"])
        assert run["app"]["accepted"] > 0
        assert run["figures"]["max_keyward_sent_per_window"] > 0  # the workers' own stamps
        assert run["samples"]
        assert len(run["load_before"]) == len(run["load_after"]) == 3
    assert "recovery_seconds" in shared["figures"]

    text = doc.read_text()
    assert "### (f) Shared vault budget" in text
    assert "Summary of the 1 shared runs" in text
    assert "python -m bench budget --smoke" in text
    for row in ("application's 429s", "SIGKILL of worker 0", "every DEK of every shard",
                "application asks 280"):  # fmt: skip
        assert row in text
