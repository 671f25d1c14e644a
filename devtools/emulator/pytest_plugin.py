"""pytest fixtures for keyward's local Azure emulator.

``emulator`` (session): starts ``python -m devtools.emulator`` as a *subprocess* (so CPU
measurements of keyward exclude it) on a free port, waits for its ready file, yields a
:class:`RunningEmulator` (``.url``, ``.ca_path``, ``.client``), and stops it at the end.

``emulator_vault_factory`` (function): makes fresh vaults with unique names, each with an
admin principal that may do everything with keys, and deletes them after the test.
``emulator_vault`` is one such vault with default settings (access-policy mode).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from azure.keyvault.keys import KeyClient
from azure.keyvault.keys.aio import KeyClient as AsyncKeyClient
from azure.keyvault.keys.crypto import CryptographyClient
from azure.keyvault.keys.crypto.aio import CryptographyClient as AsyncCryptographyClient

from devtools.emulator.auth import ALL_KEY_PERMISSIONS
from devtools.emulator.client import EmulatorClient
from devtools.emulator.credential import AsyncEmulatorCredential, EmulatorCredential
from devtools.emulator.process import (
    ROOT,
    RunningEmulator,
    running_emulator,
    start_emulator,
    stop_emulator,
)

# Re-exported: the demo, benchmarks and tests import these from here.
__all__ = [
    "ALL_KEY_PERMISSIONS",
    "ROOT",
    "EmulatorClient",
    "EmulatorVault",
    "RunningEmulator",
    "VaultFactory",
    "running_emulator",
    "start_emulator",
    "stop_emulator",
]


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


@pytest.fixture(scope="session")
def emulator() -> Iterator[RunningEmulator]:
    """The session's emulator process (``.url``, ``.ca_path``, ``.client``)."""
    with running_emulator() as running:
        yield running


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
