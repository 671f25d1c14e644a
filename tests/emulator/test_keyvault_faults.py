"""Latency and seeded fault injection on one vault's data plane."""

from __future__ import annotations

import asyncio
import time

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

from devtools.emulator.client import EmulatorError
from devtools.emulator.pytest_plugin import EmulatorVault


def _get(vault: EmulatorVault, token: str, name: str = "k") -> int:
    answer = requests.get(
        f"{vault.url}/keys/{name}?api-version=2025-07-01",
        headers={"Authorization": f"Bearer {token}"},
        verify=vault.emulator.ca_path,
        timeout=10,
    )
    return answer.status_code


def _token(vault: EmulatorVault) -> str:
    return vault.credential().get_token("https://vault.azure.net/.default").token


def test_fixed_latency_is_added(emulator_vault: EmulatorVault) -> None:
    emulator_vault.client.create_key(emulator_vault.name, "k")
    token = _token(emulator_vault)
    _get(emulator_vault, token)  # connection set up
    emulator_vault.client.set_latency(emulator_vault.name, fixed_ms=250, jitter_ms=50)
    started = time.monotonic()
    assert _get(emulator_vault, token) == 200
    assert 0.25 <= time.monotonic() - started < 2.0


async def test_latency_does_not_serialise_requests(emulator_vault: EmulatorVault) -> None:
    emulator_vault.client.create_key(emulator_vault.name, "k")
    emulator_vault.client.set_latency(emulator_vault.name, fixed_ms=300)
    async with emulator_vault.async_key_client() as client:
        await client.get_key("k")  # challenge answered, connection open
        started = time.monotonic()
        await asyncio.gather(*(client.get_key("k") for _ in range(20)))
        elapsed = time.monotonic() - started
    assert elapsed < 2.0  # 20 x 300 ms one after another would take 6 s


def test_injected_5xx(emulator_vault: EmulatorVault) -> None:
    emulator_vault.client.create_key(emulator_vault.name, "k")
    client = emulator_vault.key_client(retry_total=0)
    client.get_key("k")
    emulator_vault.client.set_faults(emulator_vault.name, error_rate=1.0, error_status=503)
    with pytest.raises(HttpResponseError) as failed:
        client.get_key("k")
    assert failed.value.status_code == 503
    assert emulator_vault.client.counters(emulator_vault.name)["vault"]["status"]["5xx"] == 1
    emulator_vault.client.set_faults(emulator_vault.name, error_rate=0.0)
    assert client.get_key("k").name == "k"


def test_dropped_connection(emulator_vault: EmulatorVault) -> None:
    emulator_vault.client.create_key(emulator_vault.name, "k")
    client = emulator_vault.key_client(retry_total=0)
    client.get_key("k")
    emulator_vault.client.set_faults(emulator_vault.name, drop_rate=1.0)
    with pytest.raises((ServiceRequestError, ServiceResponseError)):
        client.get_key("k")
    assert emulator_vault.client.counters(emulator_vault.name)["vault"]["dropped"] >= 1
    emulator_vault.client.set_faults(emulator_vault.name, drop_rate=0.0)
    assert client.get_key("k").name == "k"


def test_slow_responses(emulator_vault: EmulatorVault) -> None:
    emulator_vault.client.create_key(emulator_vault.name, "k")
    token = _token(emulator_vault)
    _get(emulator_vault, token)
    emulator_vault.client.set_faults(emulator_vault.name, slow_rate=1.0, slow_ms=400)
    started = time.monotonic()
    assert _get(emulator_vault, token) == 200
    assert time.monotonic() - started >= 0.4


def test_same_seed_same_faults(emulator_vault: EmulatorVault) -> None:
    emulator_vault.client.create_key(emulator_vault.name, "k")
    token = _token(emulator_vault)

    def run() -> list[int]:
        emulator_vault.client.set_faults(
            emulator_vault.name, error_rate=0.4, error_status=500, seed=7
        )
        return [_get(emulator_vault, token) for _ in range(30)]

    first = run()
    assert run() == first
    assert set(first) == {200, 500}


def test_fault_settings_are_validated(emulator_vault: EmulatorVault) -> None:
    with pytest.raises(EmulatorError) as refused:
        emulator_vault.client.set_faults(emulator_vault.name, error_rate=2)
    assert refused.value.status == 400
    with pytest.raises(EmulatorError):
        emulator_vault.client.set_faults(emulator_vault.name, error_status=404)
    with pytest.raises(EmulatorError):
        emulator_vault.client.set_faults(emulator_vault.name, bogus=1)
