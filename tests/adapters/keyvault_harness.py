"""Test harness for the Key Vault adapter: one synchronous face on its three wrapper paths
(``sync``, ``aio``, ``lean``) and small helpers over the emulator's control API."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from devtools.emulator.credential import AsyncEmulatorCredential, EmulatorCredential
from devtools.emulator.pytest_plugin import EmulatorVault, RunningEmulator
from devtools.keyvault_sync import KeyVaultAdapter
from shared.adapters import AsyncKeyVaultAdapter
from shared.crypto import DataKey, VaultAllowList, WrapAlgorithm

KINDS = ("sync", "aio", "lean")


class Wrapper:
    """A synchronous face on any of the three wrapper kinds."""

    def __init__(self, adapter: Adapter, inner: Any) -> None:
        self._adapter = adapter
        self.inner = inner

    @property
    def key_id(self) -> str:
        return str(self.inner.key_id)

    def wrap(self, dek: DataKey) -> bytes:
        return bytes(self._adapter.run(self.inner.wrap(dek)))

    def unwrap(self, wrapped: bytes) -> DataKey:
        result = self._adapter.run(self.inner.unwrap(wrapped))
        assert isinstance(result, DataKey)
        return result


class Adapter:
    """``KeyVaultAdapter`` or ``AsyncKeyVaultAdapter`` (on a private loop), one interface."""

    def __init__(self, kind: str, object_id: str, allow: VaultAllowList, ca: str, **kw: Any):
        self.kind = kind
        self.credential = EmulatorCredential(object_id)
        self.async_credential = AsyncEmulatorCredential(object_id)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.adapter: Any
        if kind == "sync":
            self.adapter = KeyVaultAdapter(self.credential, allow, ca_bundle=ca, **kw)
        else:
            self.loop = asyncio.new_event_loop()
            self.adapter = AsyncKeyVaultAdapter(
                self.async_credential, allow, ca_bundle=ca, lean_unwrap=kind == "lean", **kw
            )

    def run(self, value: Any) -> Any:
        if self.loop is None:
            return value
        return self.loop.run_until_complete(value)

    @property
    def tokens_requested(self) -> int:
        return self.credential.requests + self.async_credential.requests

    def wrapper(
        self, key_id: str, algorithm: WrapAlgorithm = WrapAlgorithm.RSA_OAEP_256
    ) -> Wrapper:
        return Wrapper(self, self.run(self.adapter.wrapper(key_id, algorithm)))

    def versions(self, key_ref: str) -> Any:
        return self.run(self.adapter.versions(key_ref))

    def newest_enabled_version(self, key_ref: str) -> str:
        return str(self.run(self.adapter.newest_enabled_version(key_ref)))

    def public_key(self, key_id: str) -> Any:
        return self.run(self.adapter.public_key(key_id))

    def close(self) -> None:
        if self.loop is None:
            self.adapter.close()
        else:
            self.loop.run_until_complete(self.adapter.close())
            self.loop.close()


AdapterFactory = Callable[..., Adapter]


def allow_entry(vault: EmulatorVault) -> str:
    return f"{vault.name}={'hsm:' if vault.managed_hsm else ''}{vault.url}"


def emulator_now(emulator: RunningEmulator) -> datetime:
    return datetime.fromtimestamp(float(emulator.client.clock()["now"]), UTC)


def make_key(vault: EmulatorVault, name: str | None = None, **options: Any) -> dict[str, Any]:
    options.setdefault("kty", "RSA")
    options.setdefault("size", 2048)
    bundle = vault.client.create_key(vault.name, name or f"k-{uuid.uuid4().hex[:8]}", **options)
    return dict(bundle)


def vault_ops(vault: EmulatorVault) -> dict[str, int]:
    return dict(vault.client.counters(vault.name)["vault"]["ops"])
