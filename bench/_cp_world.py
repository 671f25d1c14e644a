"""(g)'s world: Azurite (in memory, a larger Node heap), the emulator, one vault, N keys.

Unlike ``bench._env.running_world`` (one key, the bench principal), the control plane runs
keyward as the Function App does: its managed identity (served by the emulator) gets the
app's permissions on the vault, the app settings are built here once and handed both to the
``bench._cp_worker`` processes (``AppContext`` in process) and to the local Functions host.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench._env import World
from bench._wire import run_worker_module
from devtools.azurite import run_azurite
from devtools.emulator.auth import ALL_KEY_PERMISSIONS
from devtools.emulator.entra import admin_settings
from devtools.emulator.process import start_emulator, stop_emulator
from shared.settings import SPEC_BY_NAME

VAULT = "kwcontrol"
#: The app's own permissions (as ``make demo`` grants them): nothing more.
APP_KEY_PERMISSIONS = ["get", "list", "wrapKey", "unwrapKey"]
#: Node's heap for Azurite: 1,000,000 entities in memory need more than its default.
AZURITE_HEAP_MIB = 12288
#: A schedule that never fires during a run (timers are also off in the host).
NEVER = "0 0 0 1 1 *"


def kek_table_for(table: str) -> str:
    """The KEK table the bench's Function App pairs with DEK table ``table`` (one per run)."""
    return f"{table}keks"


@dataclass
class ControlWorld:
    world: World
    identity: dict[str, str]
    storage_ports: dict[str, str]
    azurite_pid: int
    keys: dict[str, list[str]] = field(default_factory=dict)  # key_ref -> versions, oldest first

    def to_json(self) -> dict[str, Any]:
        return {
            "world": self.world.to_json(),
            "identity": self.identity,
            "storage_ports": self.storage_ports,
            "azurite_pid": self.azurite_pid,
            "keys": self.keys,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ControlWorld:
        return cls(
            World(**data["world"]),
            data["identity"],
            data["storage_ports"],
            int(data["azurite_pid"]),
            data["keys"],
        )

    def app_settings(self, table: str) -> dict[str, str]:
        """The Function App's settings for DEK table ``table`` (no blob store, no Face)."""
        return {
            "FUNCTIONS_WORKER_RUNTIME": "python",
            "AzureWebJobsStorage": self.world.connection_string,
            "KEYWARD_VAULT_ALLOWLIST": f"{VAULT}={self.world.vault_url}",
            "KEYWARD_DEK_TABLE": table,
            "KEYWARD_KEK_TABLE": kek_table_for(table),
            # Set all the same: the queue trigger resolves ``%KEYWARD_JOB_QUEUE%``.
            "KEYWARD_JOB_QUEUE": str(SPEC_BY_NAME["KEYWARD_JOB_QUEUE"].default),
            "KEYWARD_SWEEP_SCHEDULE": NEVER,
            "KEYWARD_DEPENDENTS_SWEEP_SCHEDULE": NEVER,
            "KEYWARD_CA_BUNDLE": self.world.ca_path,
            "KEYWARD_ARM_ENDPOINT": self.world.emulator_url,
            **{k: v for k, v in self.identity.items() if k.startswith("IDENTITY_")},
            # The admin API trusts the emulator's Entra tenant (the reader's token: _cp_http).
            **admin_settings(self.world.emulator_url),
        }

    def worker(self, spec: dict[str, Any], *, timeout: float = 3600.0) -> dict[str, Any]:
        """Run ``python -m bench._cp_worker`` with ``spec``; its result."""
        return run_worker(
            {"world": self.world.to_json(), "storage_ports": self.storage_ports, **spec},
            timeout=timeout,
        )

    def azurite_rss_mib(self) -> float:
        """Resident memory of Azurite's Node process (its process group's leader's child)."""
        total = 0
        for pid in _group_pids(self.azurite_pid):
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        return round(total / 1024, 1)


def _group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == pgid:
                    pids.append(int(entry.name))
    return pids


def run_worker(payload: dict[str, Any], *, timeout: float) -> dict[str, Any]:
    return run_worker_module(
        "bench._cp_worker", json.dumps(payload), timeout=timeout,
        what=f"(g) worker {payload.get('kind')}",
    )  # fmt: skip


@contextlib.contextmanager
def control_world(key_count: int) -> Iterator[ControlWorld]:
    """Start Azurite and the emulator; a vault with ``key_count`` RSA-2048 keys, each rotated
    once (two versions, as after a rotation); the app identity and a bench principal."""
    heap = f"--max-old-space-size={AZURITE_HEAP_MIB}"
    previous = os.environ.get("NODE_OPTIONS")
    os.environ["NODE_OPTIONS"] = f"{previous or ''} {heap}".strip()
    try:
        with tempfile.TemporaryDirectory(prefix="keyward-gbench-") as tmp, run_azurite() as azurite:
            emu = start_emulator(Path(tmp))
            try:
                yield _populate(emu, azurite, key_count)
            finally:
                stop_emulator(emu)
    finally:
        if previous is None:
            os.environ.pop("NODE_OPTIONS", None)
        else:
            os.environ["NODE_OPTIONS"] = previous


def _populate(emu: Any, azurite: Any, key_count: int) -> ControlWorld:
    client = emu.client
    vault = client.create_vault(VAULT)
    vault_url = str(vault["url"]).rstrip("/")
    principal = client.create_principal(display_name="gbench")
    object_id = str(principal["object_id"])
    client.set_access_policy(VAULT, object_id, ALL_KEY_PERMISSIONS)
    client.set_access_policy(VAULT, emu.identity["object_id"], APP_KEY_PERMISSIONS)
    keys: dict[str, list[str]] = {}
    for index in range(key_count):
        name = f"cp-kek-{index}"
        first = client.create_key(VAULT, name, kty="RSA", size=2048)
        second = client.rotate_key(VAULT, name)
        versions = [str(b["key"]["kid"]).rsplit("/", 1)[-1] for b in (first, second)]
        keys[f"{vault_url}/keys/{name}"] = versions
    world = World(
        connection_string=azurite.connection_string,
        emulator_url=emu.url,
        ca_path=emu.ca_path,
        vault=VAULT,
        vault_url=vault_url,
        object_id=object_id,
        key_ref=next(iter(keys)),
    )
    ports = {
        str(urlsplit(endpoint).port): service
        for service, endpoint in (
            ("table", azurite.table_endpoint),
            ("queue", azurite.queue_endpoint),
            ("blob", azurite.blob_endpoint),
        )
    }
    pid = _azurite_pid()
    return ControlWorld(world, dict(emu.identity), ports, pid, keys)


def _azurite_pid() -> int:
    """The process group of the Azurite this process started (its ``azurite`` child)."""
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == me and "azurite" in (entry / "cmdline").read_text():
                    return int(entry.name)
    return 0


def wait_for(path: Path, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while not path.exists() or not path.read_text().strip():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path} did not appear in {timeout} s")
        time.sleep(0.1)
    data: dict[str, Any] = json.loads(path.read_text())
    return data
