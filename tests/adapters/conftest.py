"""Fixtures for the Key Vault adapter tests (the emulator fixtures come from devtools)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from devtools.emulator.pytest_plugin import (
    ALL_KEY_PERMISSIONS,
    EmulatorVault,
    RunningEmulator,
    start_emulator,
    stop_emulator,
)
from shared.crypto import VaultAllowList
from tests.adapters.keyvault_harness import (
    KINDS,
    Adapter,
    AdapterFactory,
    allow_entry,
    emulator_now,
)


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_adapter() -> Iterator[AdapterFactory]:
    made: list[Adapter] = []

    def make(
        kind: str,
        vault: EmulatorVault,
        object_id: str | None = None,
        *,
        allow: str | None = None,
        emulator_clock: bool = True,
        **kw: Any,
    ) -> Adapter:
        emulator = vault.emulator
        if allow is None:
            allow = allow_entry(vault)
        if emulator_clock:
            kw.setdefault("clock", lambda: emulator_now(emulator))
        adapter = Adapter(
            kind, object_id or vault.admin_id, VaultAllowList.parse(allow), emulator.ca_path, **kw
        )
        made.append(adapter)
        return adapter

    yield make
    for adapter in made:
        adapter.close()


@pytest.fixture(scope="module")
def clock_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    """A private emulator for the tests that move the clock forward, so the session's
    emulator keeps a clock near real time for every other test (the clock never goes back)."""
    running = start_emulator(tmp_path_factory.mktemp("clock-emulator"))
    try:
        yield running
    finally:
        stop_emulator(running)


@pytest.fixture
def clock_vault(clock_emulator: RunningEmulator) -> Iterator[EmulatorVault]:
    """A fresh access-policy vault on the private clock emulator, with an admin principal."""
    client = clock_emulator.client
    name = "kw" + uuid.uuid4().hex[:14]
    info = client.create_vault(name)
    admin = str(client.create_principal(display_name=f"admin-{name}")["object_id"])
    client.set_access_policy(name, admin, ALL_KEY_PERMISSIONS)
    vault = EmulatorVault(
        name=name,
        url=info["url"],
        port=int(info["port"]),
        arm_id=info["arm_id"],
        managed_hsm=False,
        rbac=False,
        admin_id=admin,
        emulator=clock_emulator,
    )
    yield vault
    vault.close()
    client.delete_vault(name)
