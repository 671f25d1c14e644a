"""``make demo`` end to end, as a user runs it first: it must pass on every commit.

The demo is the README's first command and touches every part (the local host, Event Grid,
the queue worker, retirement, Face flags, both store modes), so a rule that changes what an
act may do (say, the retirement verdict's wait after a rotation) must not break it unseen.
It starts its own Azurite and emulator on ports they choose, so it runs beside the suite's.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_make_demo_runs_every_act_and_loses_nothing() -> None:
    env = {k: v for k, v in os.environ.items() if k != "KEYWARD_AZURITE_CONNECTION_STRING"}
    env["COLUMNS"] = "200"
    done = subprocess.run(
        [sys.executable, "-m", "devtools.demo"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=280, check=False,
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    assert "Failed invocations: 0." in done.stdout
    assert "Telemetry (OpenTelemetry, collected in process; nothing exported):" in done.stdout
    assert "keyward kept every record and blob readable through a rotation." in done.stdout
