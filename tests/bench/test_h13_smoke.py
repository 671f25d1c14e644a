"""Issue 13's figures run end to end on tiny sizes: (h) ``python -m bench hierarchy --smoke``,
(i) ``reads --smoke``, (j) ``revocation --smoke``.

Not speed tests (figures are in ``docs/benchmarks.md``): each proves its harness still runs
against Azurite and the emulator through the product's pipeline and application API, that
nothing is lost, and that the report has a row per target.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.azurite, pytest.mark.emulator]


def _run(figure: str, tmp_path: Path) -> tuple[dict[str, Any], str]:
    doc, raw = tmp_path / f"{figure}.md", tmp_path / f"{figure}.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", figure, "--smoke", "--output", str(doc),
         "--json", str(raw)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(raw.read_text())["results"], doc.read_text()


def test_hierarchy_rotation_smoke(tmp_path: Path) -> None:
    results, text = _run("hierarchy", tmp_path)
    run = results["runs"][0]
    shards = run["shards"]
    assert all(job["status"] == "completed" for job in shards.values())
    assert shards["table:hierdeks"]["scanned"] == 0  # the mode-aware data shard: no scan
    assert shards["table:hierkeks"]["rewrapped"] == 20  # one KEK per partition
    assert results["seeding"]["mode_row"]["mode"] == "hierarchy"
    verified = results["verified"]
    assert verified["keks_at_newest"] == verified["keks_kcv_ok"] == 20
    assert verified["records_opened"] == 20
    assert not verified["problems"]
    assert results["direct"]["runs"][0]["shards"]["table:direct200"]["rewrapped"] == 200
    assert "| wall time, rotation to every shard's job `completed` |" in text


def test_reads_smoke(tmp_path: Path) -> None:
    results, text = _run("reads", tmp_path)
    summary = results["summary"]
    assert summary["direct"]["vault_calls"] == 40  # one per record: the rest from the cache
    assert summary["hierarchy"]["vault_calls"] == 4  # one per KEK touched
    assert summary["rsa_us"] > 0
    assert summary["aes_us"] > 0
    assert "| hierarchy: vault calls for 200 decrypts of 40 records |" in text


def test_revocation_smoke(tmp_path: Path) -> None:
    results, text = _run("revocation", tmp_path)
    run = results["runs"][0]
    assert run["first_refused"] is not None
    assert run["errors"] == ["KeyDisabledError"]
    assert run["refused_before_disable"] == 0
    assert "first refused decrypt" in text
