"""Fixtures for the application API: a vault key on the emulator, fresh tables on Azurite, and
``open`` — ``keyward.open_envelope`` with the emulator's credential, allow-list and CA (what
an application in Azure gets from ``DefaultAzureCredential`` and its key URL)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from azure.data.tables.aio import TableServiceClient

from devtools.azurite import AzuriteInfo
from devtools.emulator.pytest_plugin import EmulatorVault

KEY_NAME = "app-key"
#: The rewrap engine proves its target with one wrap/unwrap round trip through the vault per
#: run, before its first write (``shared/rewrap/_target_proof.py``).
PROOF_UNWRAPS_PER_RUN = 1


@dataclass
class AppWorld:
    """One application's world: its vault key and its two tables."""

    vault: EmulatorVault
    key_ref: str
    connection_string: str
    table: str
    kek_table: str

    @property
    def allow_list(self) -> str:
        return f"{self.vault.name}={self.vault.url}"

    def options(self, **overrides: Any) -> dict[str, Any]:
        return {
            "connection_string": self.connection_string,
            "table": self.table,
            "kek_table": self.kek_table,
            "credential": self.vault.async_credential(),
            "allow_list": self.allow_list,
            "ca_bundle": self.vault.emulator.ca_path,
            **overrides,
        }

    def unwraps(self) -> int:
        ops = self.vault.client.counters(self.vault.name)["vault"]["ops"]
        return int(ops.get("unwrapKey", 0))

    def reset_counters(self) -> None:
        self.vault.client.reset_counters(self.vault.name)


@pytest.fixture
async def world(emulator_vault: EmulatorVault, azurite: AzuriteInfo) -> AsyncIterator[AppWorld]:
    vault = emulator_vault
    vault.client.create_key(vault.name, KEY_NAME, kty="RSA", size=2048)
    suffix = uuid.uuid4().hex[:12]
    made = AppWorld(vault, f"{vault.url}/keys/{KEY_NAME}", azurite.connection_string,
                    f"data{suffix}", f"keks{suffix}")  # fmt: skip
    try:
        yield made
    finally:
        service = TableServiceClient.from_connection_string(azurite.connection_string)
        async with service:
            for name in (made.table, made.kek_table):
                await service.delete_table(name)


OpenEnvelope = Callable[..., Any]
