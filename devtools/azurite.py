"""Start Azurite (the Azure Storage emulator, pinned in package.json) for tests and the demo.

Two faces:

* ``python -m devtools.azurite``: run Azurite in the foreground and print its connection string.
* a pytest plugin (``pytest_plugins = ["devtools.azurite"]``): the session fixture ``azurite``
  yields :class:`AzuriteInfo` and stops the emulator at the end of the session.

Why these flags: Azurite 3.37 refuses azure-storage-blob 12.31's API version unless started
with ``--skipApiVersionCheck``, and ``--disableTelemetry`` stops it from calling its telemetry
host. Ports are chosen by Azurite itself (``0``) and read back from its startup lines, so
parallel sessions never race for a port. When ``KEYWARD_AZURITE_CONNECTION_STRING`` is set,
that Azurite (or real account) is used and nothing is started.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

ROOT = Path(__file__).resolve().parent.parent
AZURITE_BIN = ROOT / "node_modules" / ".bin" / "azurite"
#: Environment variable naming an already running Azurite (or account) to use instead.
CONNECTION_STRING_ENV = "KEYWARD_AZURITE_CONNECTION_STRING"
#: Azurite's well-known development account (public, documented by Microsoft; not a secret).
DEV_ACCOUNT = "devstoreaccount1"
DEV_ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
#: How long Azurite may take to listen on all three services.
STARTUP_TIMEOUT_SECONDS = 60.0
#: How long a polite stop may take before the process is killed.
STOP_TIMEOUT_SECONDS = 10.0
#: Output lines kept for the startup error message (the rest is read and dropped).
MAX_KEPT_OUTPUT_LINES = 200
FLAGS = ("--skipApiVersionCheck", "--disableTelemetry", "--silent")
_LISTENING = re.compile(r"Azurite (Blob|Queue|Table) service is successfully listening at (\S+)")


@dataclass(frozen=True)
class AzuriteInfo:
    """Where a running Azurite listens; ``connection_string`` works for every Storage client."""

    connection_string: str
    blob_endpoint: str | None = None
    queue_endpoint: str | None = None
    table_endpoint: str | None = None

    @classmethod
    def from_endpoints(cls, endpoints: dict[str, str]) -> AzuriteInfo:
        blob, queue, table = (
            f"{endpoints[s].rstrip('/')}/{DEV_ACCOUNT}" for s in ("Blob", "Queue", "Table")
        )
        connection_string = (
            f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};"
            f"AccountKey={DEV_ACCOUNT_KEY};BlobEndpoint={blob};QueueEndpoint={queue};"
            f"TableEndpoint={table};"
        )
        return cls(connection_string, blob, queue, table)

    @classmethod
    def from_connection_string(cls, connection_string: str) -> AzuriteInfo:
        parts = dict(item.split("=", 1) for item in connection_string.split(";") if "=" in item)
        return cls(
            connection_string,
            parts.get("BlobEndpoint"),
            parts.get("QueueEndpoint"),
            parts.get("TableEndpoint"),
        )


def _drain(stream: IO[str], lines: list[str], ready: threading.Event) -> None:
    """Read Azurite's output until it closes, so its pipe never fills and blocks it; set
    ``ready`` once all three services listen (or the output ends: it failed)."""
    listening = 0
    for line in iter(stream.readline, ""):
        if len(lines) < MAX_KEPT_OUTPUT_LINES:
            lines.append(line.rstrip())
        listening += bool(_LISTENING.search(line))
        if listening == 3:
            ready.set()
    ready.set()


@contextmanager
def run_azurite(location: Path | None = None) -> Iterator[AzuriteInfo]:
    """Start Azurite, wait until all three services listen, yield, then stop it.

    Args:
        location: persist data there; ``None`` keeps everything in memory.

    Raises:
        RuntimeError: the binary is missing (run ``npm ci``), or Azurite did not start in time.
    """
    if not AZURITE_BIN.exists():
        raise RuntimeError(f"{AZURITE_BIN} is missing: run `npm ci` (or `make bootstrap`)")
    ports = ["--blobPort", "0", "--queuePort", "0", "--tablePort", "0"]
    storage = ["--location", str(location)] if location else ["--inMemoryPersistence"]
    with tempfile.TemporaryDirectory(prefix="keyward-azurite-") as workdir:
        process = subprocess.Popen(
            [str(AZURITE_BIN), *FLAGS, *ports, *storage],
            cwd=workdir,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        lines: list[str] = []
        ready = threading.Event()
        threading.Thread(target=_drain, args=(process.stdout, lines, ready), daemon=True).start()
        try:
            if not ready.wait(STARTUP_TIMEOUT_SECONDS) or process.poll() is not None:
                raise RuntimeError("Azurite did not start:\n" + "\n".join(lines[-20:]))
            endpoints = {m[1]: m[2] for m in map(_LISTENING.search, lines) if m}
            yield AzuriteInfo.from_endpoints(endpoints)
        finally:
            _stop(process)


def _stop(process: subprocess.Popen[str]) -> None:
    """Stop the Azurite this module started (its own process group), killing it if it lingers."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(STOP_TIMEOUT_SECONDS)


@contextmanager
def azurite_connection() -> Iterator[AzuriteInfo]:
    """The Azurite named by ``KEYWARD_AZURITE_CONNECTION_STRING``, or a fresh one."""
    configured = os.environ.get(CONNECTION_STRING_ENV)
    if configured:
        yield AzuriteInfo.from_connection_string(configured)
        return
    with run_azurite() as info:
        yield info


@pytest.fixture(scope="session")
def azurite() -> Iterator[AzuriteInfo]:
    """A running Azurite for the whole test session (in memory, on ports it picked)."""
    with azurite_connection() as info:
        yield info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--location", type=Path, help="persist data here (default: in memory)")
    args = parser.parse_args(argv)
    if args.location:
        args.location.mkdir(parents=True, exist_ok=True)
    # SIGTERM must unwind through run_azurite's cleanup, or Azurite would outlive us.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with run_azurite(args.location) as info:
        print(info.connection_string, flush=True)
        try:
            while True:
                time.sleep(3600)
        except (KeyboardInterrupt, SystemExit):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
