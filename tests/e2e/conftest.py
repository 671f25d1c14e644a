"""The local stack for end-to-end tests: Azurite, the emulator, and the local Functions host
running ``function_app.app`` in-process with its production credential code (the emulator's
App Service managed identity endpoint stands in for Azure's)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from azure.keyvault.keys import KeyClient

from devtools.azurite import AzuriteInfo
from devtools.emulator.entra import admin_headers as emulator_admin_headers
from devtools.emulator.entra import admin_settings
from devtools.emulator.pytest_plugin import EmulatorVault, RunningEmulator
from devtools.localhost.host import LocalFunctionsHost
from shared.composition import reset_contexts
from tests.conftest import ROOT, indexed_functions

#: What the function app's identity needs on a vault for rewrap (least privilege).
APP_KEY_PERMISSIONS = ["get", "list", "wrapKey", "unwrapKey"]


@dataclass
class Stack:
    host: LocalFunctionsHost
    vault: EmulatorVault
    emulator: RunningEmulator
    azurite: AzuriteInfo
    settings: dict[str, str]
    key_client: KeyClient

    @property
    def dek_table(self) -> str:
        return self.settings["KEYWARD_DEK_TABLE"]

    @property
    def kek_table(self) -> str:
        """The KEK table's name (never created here: a direct-mode store reads it as empty)."""
        return self.settings["KEYWARD_KEK_TABLE"]

    def admin_headers(self, role: str | None = "operator", **claims: Any) -> dict[str, str]:
        """``Authorization: Bearer`` for the admin API: a token the emulator's tenant signs,
        with app role ``role`` (``"reader"``, ``"operator"``, ``None``: no role) and any
        other claims (``oid``, ``tenant``, ``audience``, ``expired``, ``name``, ``kind``)."""
        return emulator_admin_headers(self.emulator.client, role, **claims)


#: The running stack's operator headers (``operator_auth``); set by the stack fixtures.
_OPERATOR_AUTH: dict[str, str] = {}


def operator_auth() -> dict[str, str]:
    """``Authorization`` headers with an operator token for the running stack, for tests that
    build ``func.HttpRequest`` themselves (a copy: callers may add headers)."""
    assert _OPERATOR_AUTH, "no stack is running"
    return dict(_OPERATOR_AUTH)


@pytest.fixture
def admin_headers(emulator: RunningEmulator) -> Any:
    """``admin_headers(role="operator", **claims)``: admin API headers with an emulator-signed
    token (the same as ``Stack.admin_headers``, for tests without a stack)."""

    def make(role: str | None = "operator", **claims: Any) -> dict[str, str]:
        return emulator_admin_headers(emulator.client, role, **claims)

    return make


@pytest.fixture
async def stack(
    azurite: AzuriteInfo,
    emulator: RunningEmulator,
    emulator_vault: EmulatorVault,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Stack]:
    """The stack with the host's queue pollers on: queued work runs as it would in Azure."""
    async with _running_stack(azurite, emulator, emulator_vault, monkeypatch, queues=True) as s:
        yield s


@pytest.fixture
async def quiet_stack(
    azurite: AzuriteInfo,
    emulator: RunningEmulator,
    emulator_vault: EmulatorVault,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Stack]:
    """The stack whose host polls no queue: for tests that look at (peek, receive) keyward's
    job queue. With a poller on, the host takes the very messages such a test looks for, and
    the test fails or passes by a race; here the queue holds exactly what the app put on it
    until the test takes it."""
    async with _running_stack(azurite, emulator, emulator_vault, monkeypatch, queues=False) as s:
        yield s


@asynccontextmanager
async def _running_stack(
    azurite: AzuriteInfo,
    emulator: RunningEmulator,
    emulator_vault: EmulatorVault,
    monkeypatch: pytest.MonkeyPatch,
    *,
    queues: bool,
) -> AsyncIterator[Stack]:
    app_identity = emulator.identity["object_id"]
    await asyncio.to_thread(
        emulator.client.set_access_policy, emulator_vault.name, app_identity, APP_KEY_PERMISSIONS
    )
    suffix = uuid.uuid4().hex[:10]
    settings = {
        "KEYWARD_VAULT_ALLOWLIST": f"{emulator_vault.name}={emulator_vault.url}",
        "AzureWebJobsStorage": azurite.connection_string,
        "KEYWARD_DEK_TABLE": f"deks{suffix}",
        "KEYWARD_KEK_TABLE": f"keks{suffix}",
        "KEYWARD_JOB_QUEUE": f"keyward-{suffix}",
        "KEYWARD_SWEEP_SCHEDULE": "0 0 0 1 1 *",
        "KEYWARD_DEPENDENTS_SWEEP_SCHEDULE": "30 0 0 1 1 *",
        "KEYWARD_RETENTION_SCHEDULE": "0 30 0 1 1 *",
        "KEYWARD_CA_BUNDLE": emulator.ca_path,
        "KEYWARD_REWRAP_SLICE_SECONDS": "10",
        # The emulator's versions are created as the tests run, on a clock earlier tests may
        # have moved ahead (its `created` then lies in keyward's future): the verdict's wait
        # after a rotation (155 s by default) is taken back a day here, which only an
        # emulator-only allow-list permits (tests/test_settings.py: a real vault refuses it).
        "KEYWARD_SUPERSEDED_WAIT_SECONDS": "-86400",
        "IDENTITY_ENDPOINT": emulator.identity["IDENTITY_ENDPOINT"],
        "IDENTITY_HEADER": emulator.identity["IDENTITY_HEADER"],
        # The admin API trusts the emulator's Entra tenant (devtools/emulator/entra.py).
        **admin_settings(emulator.url),
    }
    for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "MSI_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    reset_contexts()
    host_json = json.loads((ROOT / "host.json").read_text())
    host = LocalFunctionsHost(
        indexed_functions().values(),
        settings=settings,
        host_json=host_json,
        run_timers=False,
        run_queues=queues,
    )
    await host.start()
    key_client = emulator_vault.key_client()
    stack = Stack(host, emulator_vault, emulator, azurite, settings, key_client)
    _OPERATOR_AUTH.update(await asyncio.to_thread(stack.admin_headers, "operator"))
    try:
        yield stack
    finally:
        _OPERATOR_AUTH.clear()
        await host.stop()
        for context in reset_contexts():
            await context.aclose()


async def call(function: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a blocking control-plane call off the loop the local host serves on."""
    return await asyncio.to_thread(function, *args, **kwargs)
