"""Start and stop the emulator as a subprocess (the pytest fixture, the demo, benchmarks).

A subprocess rather than a thread: CPU measurements of keyward then exclude the emulator, and
the emulator's event loop never competes with the code under test for the GIL.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtools.emulator.client import EmulatorClient

ROOT = Path(__file__).resolve().parents[2]
_START_TIMEOUT_SECONDS = 60.0


@dataclass
class RunningEmulator:
    """A started emulator process."""

    url: str
    ca_path: str
    port: int
    client: EmulatorClient
    process: subprocess.Popen[bytes]
    log_path: Path
    #: The function app's managed identity: IDENTITY_ENDPOINT, IDENTITY_HEADER, object_id.
    identity: dict[str, str] = field(default_factory=dict)

    @property
    def sdk_kwargs(self) -> dict[str, Any]:
        """What every Key Vault SDK client needs here: the CA, and no resource check (the
        challenge names vault.azure.net while the host is 127.0.0.1)."""
        return {"connection_verify": self.ca_path, "verify_challenge_resource": False}


def start_emulator(workdir: Path, extra_args: list[str] | None = None) -> RunningEmulator:
    """Start the emulator subprocess (files under ``workdir``) and wait until it is ready."""
    ready_file = workdir / "ready.json"
    log_path = workdir / "emulator.log"
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "devtools.emulator",
                "--port",
                "0",
                "--ready-file",
                str(ready_file),
                "--tls-dir",
                str(workdir / "tls"),
                *(extra_args or []),
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + _START_TIMEOUT_SECONDS
    while not ready_file.exists():
        if process.poll() is not None:
            raise RuntimeError(f"emulator exited early:\n{log_path.read_text()}")
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"emulator not ready in time:\n{log_path.read_text()}")
        time.sleep(0.05)
    info = json.loads(ready_file.read_text())
    client = EmulatorClient(info["url"], info["ca_path"])
    return RunningEmulator(
        url=info["url"],
        ca_path=info["ca_path"],
        port=int(info["port"]),
        client=client,
        process=process,
        log_path=log_path,
        identity=dict(info.get("identity") or {}),
    )


def stop_emulator(running: RunningEmulator) -> None:
    running.client.close()
    running.process.terminate()
    try:
        running.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        running.process.kill()
        running.process.wait(timeout=10)


@contextlib.contextmanager
def running_emulator(extra_args: list[str] | None = None) -> Iterator[RunningEmulator]:
    """``with running_emulator() as emulator:`` a started emulator, stopped on exit."""
    with tempfile.TemporaryDirectory(prefix="keyward-emulator-") as workdir:
        emulator = start_emulator(Path(workdir), extra_args)
        try:
            yield emulator
        finally:
            stop_emulator(emulator)
