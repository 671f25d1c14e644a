"""pytest fixtures for keyward's local Azure emulator.

``emulator`` (session): starts ``python -m devtools.emulator`` as a *subprocess* (so CPU
measurements of keyward exclude it) on a free port, waits for its ready file, yields a
:class:`RunningEmulator` (``.url``, ``.ca_path``, ``.client``), and stops it at the end.

``emulator_vault_factory`` (function): makes fresh vaults with unique names, each with an
admin principal that may do everything with keys, and deletes them after the test.
``emulator_vault`` is one such vault with default settings (access-policy mode).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from azure.keyvault.keys import KeyClient
from azure.keyvault.keys.aio import KeyClient as AsyncKeyClient
from azure.keyvault.keys.crypto import CryptographyClient
from azure.keyvault.keys.crypto.aio import CryptographyClient as AsyncCryptographyClient

from devtools.emulator.client import EmulatorClient
from devtools.emulator.credential import AsyncEmulatorCredential, EmulatorCredential

ROOT = Path(__file__).resolve().parents[2]
_START_TIMEOUT_SECONDS = 60.0
#: Every key permission an access policy can grant (the admin principal gets all of them).
ALL_KEY_PERMISSIONS = [
    "get", "list", "update", "create", "import", "delete", "recover", "backup", "restore",
    "decrypt", "encrypt", "unwrapKey", "wrapKey", "verify", "sign", "purge", "release",
    "rotate", "getrotationpolicy", "setrotationpolicy",
]  # fmt: skip


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


@dataclass
class EmulatorVault:
    """A vault made for one test, with helpers that build real SDK clients for it."""

    name: str
    url: str
    port: int
    arm_id: str
    managed_hsm: bool
    rbac: bool
    admin_id: str
    emulator: RunningEmulator
    _closers: list[Callable[[], Any]] = field(default_factory=list, repr=False)

    @property
    def client(self) -> EmulatorClient:
        return self.emulator.client

    def credential(self, object_id: str | None = None) -> EmulatorCredential:
        return EmulatorCredential(object_id or self.admin_id)

    def token(self, object_id: str | None = None) -> str:
        """A bearer token for this vault's audience (raw REST calls)."""
        resource = "https://managedhsm.azure.net" if self.managed_hsm else "https://vault.azure.net"
        return self.credential(object_id).get_token(f"{resource}/.default").token

    def async_credential(self, object_id: str | None = None) -> AsyncEmulatorCredential:
        return AsyncEmulatorCredential(object_id or self.admin_id)

    def key_client(self, object_id: str | None = None, **kwargs: Any) -> KeyClient:
        client = KeyClient(
            self.url, self.credential(object_id), **{**self.emulator.sdk_kwargs, **kwargs}
        )
        self._closers.append(client.close)
        return client

    def crypto_client(
        self, key: Any, object_id: str | None = None, **kwargs: Any
    ) -> CryptographyClient:
        """``key`` is a KeyVaultKey or a key id string."""
        client = CryptographyClient(
            key, self.credential(object_id), **{**self.emulator.sdk_kwargs, **kwargs}
        )
        self._closers.append(client.close)
        return client

    def async_key_client(self, object_id: str | None = None, **kwargs: Any) -> AsyncKeyClient:
        return AsyncKeyClient(
            self.url, self.async_credential(object_id), **{**self.emulator.sdk_kwargs, **kwargs}
        )

    def async_crypto_client(
        self, key: Any, object_id: str | None = None, **kwargs: Any
    ) -> AsyncCryptographyClient:
        return AsyncCryptographyClient(
            key, self.async_credential(object_id), **{**self.emulator.sdk_kwargs, **kwargs}
        )

    def principal(self, *, keys: list[str] | None = None, role: str | None = None) -> str:
        """A new principal; with ``keys`` it gets that access policy, with ``role`` that role
        at vault scope. Returns its object id."""
        object_id = str(self.client.create_principal(display_name=f"test-{self.name}")["object_id"])
        if keys is not None:
            self.client.set_access_policy(self.name, object_id, keys)
        if role is not None:
            self.client.create_role_assignment(object_id, role, vault=self.name)
        return object_id

    def close(self) -> None:
        for closer in self._closers:
            closer()
        self._closers.clear()


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


@pytest.fixture(scope="session")
def emulator() -> Iterator[RunningEmulator]:
    """The session's emulator process (``.url``, ``.ca_path``, ``.client``)."""
    with tempfile.TemporaryDirectory(prefix="keyward-emulator-") as workdir:
        running = start_emulator(Path(workdir))
        try:
            yield running
        finally:
            stop_emulator(running)


VaultFactory = Callable[..., EmulatorVault]


@pytest.fixture
def emulator_vault_factory(emulator: RunningEmulator) -> Iterator[VaultFactory]:
    """``make(managed_hsm=False, rbac=False, soft_delete=True, purge_protection=True, ...)``
    -> a fresh :class:`EmulatorVault` with a unique name and an all-powerful admin principal.
    """
    made: list[EmulatorVault] = []

    def make(**options: Any) -> EmulatorVault:
        name = "kw" + uuid.uuid4().hex[:14]
        info = emulator.client.create_vault(name, **options)
        admin = str(emulator.client.create_principal(display_name=f"admin-{name}")["object_id"])
        if info["rbac"]:
            emulator.client.create_role_assignment(admin, "Key Vault Administrator", vault=name)
        else:
            emulator.client.set_access_policy(name, admin, ALL_KEY_PERMISSIONS)
        vault = EmulatorVault(
            name=name,
            url=info["url"],
            port=int(info["port"]),
            arm_id=info["arm_id"],
            managed_hsm=bool(info["managed_hsm"]),
            rbac=bool(info["rbac"]),
            admin_id=admin,
            emulator=emulator,
        )
        made.append(vault)
        return vault

    yield make
    for vault in made:
        vault.close()
        emulator.client.delete_vault(vault.name)


@pytest.fixture
def emulator_vault(emulator_vault_factory: VaultFactory) -> EmulatorVault:
    """A fresh access-policy vault; ``.admin_id`` may do everything with keys."""
    return emulator_vault_factory()
