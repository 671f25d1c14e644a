"""The benchmark's world: Azurite and the emulator as subprocesses, one vault, one key.

Nothing measured runs here; this process seeds, configures the vault between runs and
starts the worker subprocesses (``bench._worker``) that do the measured work.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench._wire import run_worker_module
from devtools.azurite import run_azurite
from devtools.emulator.auth import ALL_KEY_PERMISSIONS
from devtools.emulator.client import EmulatorClient
from devtools.emulator.process import start_emulator, stop_emulator
from shared.rewrap import BUDGET_WINDOW_SECONDS, DEFAULT_VAULT_SHARE, vault_budget

VAULT = "kwbench"
KEY = "bench-kek"
#: Key Vault's published budget for the bench key (software RSA-2048, created below).
BUDGET = vault_budget("RSA", 2048)
#: What (a) measures against: keyward's share of that budget (``KEYWARD_VAULT_SHARE``, default
#: 0.5; the rest is the vault's other users'). The engine aims at 0.98 of it (headroom).
CEILING_PER_SECOND = BUDGET.operations_per_second * DEFAULT_VAULT_SHARE
LATENCY_MS = 20.0
#: The Function App's own key permissions (as ``make demo`` grants them): nothing more.
APP_KEY_PERMISSIONS = ["get", "list", "wrapKey", "unwrapKey"]


@dataclass(frozen=True)
class World:
    """What a worker needs to reach the services (passed on stdin, never on argv)."""

    connection_string: str
    emulator_url: str
    ca_path: str
    vault: str
    vault_url: str
    object_id: str
    key_ref: str
    #: The Function App's managed identity the emulator serves (``IDENTITY_ENDPOINT``,
    #: ``IDENTITY_HEADER``, ``object_id``), allowed the app's key permissions on the vault.
    identity: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Bench:
    """A running world plus the control client to shape the vault between runs."""

    def __init__(self, world: World, client: EmulatorClient, workdir: Path) -> None:
        self.world = world
        self.client = client
        self.workdir = workdir

    # -- vault shaping -------------------------------------------------------------------------

    def throttled(self) -> None:
        """Key Vault's RSA-2048 software limit and 20 ms latency; a fresh throttle window."""
        self.client.set_throttle(
            VAULT,
            budget=BUDGET.operations_per_window,
            window_seconds=BUDGET_WINDOW_SECONDS,
            enabled=True,
        )
        self.client.set_latency(VAULT, fixed_ms=LATENCY_MS)

    def unthrottled(self) -> None:
        self.client.set_throttle(VAULT, enabled=False)
        self.client.set_latency(VAULT, fixed_ms=0)

    def rotate(self) -> str:
        """A new key version: every DEK (at an older one) needs a rewrap again."""
        bundle = self.client.rotate_key(VAULT, KEY)
        return str(bundle["key"]["kid"])

    def vault_counts(self) -> dict[str, int]:
        node = self.client.counters(VAULT)["vault"]
        ops = node.get("ops", {})
        return {
            "unwrap_ok": int(ops.get("unwrapKey", 0)),
            "throttled": int(node.get("throttled", 0)),
            "requests": int(sum(ops.values())),
        }

    # -- workers ---------------------------------------------------------------------------------

    def worker(self, spec: dict[str, Any], *, timeout: float = 1800.0) -> dict[str, Any]:
        """Run ``python -m bench._worker`` with ``spec``; its result (a dict)."""
        payload = json.dumps({"world": self.world.to_json(), **spec})
        return run_worker_module(
            "bench._worker", payload, timeout=timeout, what=f"worker {spec.get('kind')}"
        )


@contextlib.contextmanager
def azurite_heap(heap_mib: int | None) -> Iterator[None]:
    """Give the Azurite started inside a larger Node heap (1,000,000 entities in memory need
    more than Node's default); ``None`` changes nothing."""
    if heap_mib is None:
        yield
        return
    previous = os.environ.get("NODE_OPTIONS")
    os.environ["NODE_OPTIONS"] = f"{previous or ''} --max-old-space-size={heap_mib}".strip()
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("NODE_OPTIONS", None)
        else:
            os.environ["NODE_OPTIONS"] = previous


@contextlib.contextmanager
def running_world(*, heap_mib: int | None = None) -> Iterator[Bench]:
    """Start Azurite (in memory) and the emulator, make the vault, principal and key; the
    emulator's managed identity (the Function App's) gets the app's key permissions."""
    with tempfile.TemporaryDirectory(prefix="keyward-bench-") as tmp:
        workdir = Path(tmp)
        with azurite_heap(heap_mib), run_azurite() as azurite:
            emu = start_emulator(workdir)
            try:
                client = emu.client
                vault = client.create_vault(VAULT)
                principal = client.create_principal(display_name="bench")
                object_id = str(principal["object_id"])
                client.set_access_policy(VAULT, object_id, ALL_KEY_PERMISSIONS)
                client.create_key(VAULT, KEY, kty="RSA", size=2048)
                identity = dict(emu.identity)
                if identity.get("object_id"):
                    client.set_access_policy(VAULT, identity["object_id"], APP_KEY_PERMISSIONS)
                world = World(
                    connection_string=azurite.connection_string,
                    emulator_url=emu.url,
                    ca_path=emu.ca_path,
                    vault=VAULT,
                    vault_url=str(vault["url"]).rstrip("/"),
                    object_id=object_id,
                    key_ref=f"{str(vault['url']).rstrip('/')}/keys/{KEY}",
                    identity=identity,
                )
                yield Bench(world, client, workdir)
            finally:
                stop_emulator(emu)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    }


def load_average() -> tuple[float, float, float]:
    one, five, fifteen = os.getloadavg()
    return round(one, 2), round(five, 2), round(fifteen, 2)


def utc_now() -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
