"""The per-vault throttle: 429 + Retry-After past the budget, weighted by key type, and an
accepted rate within 5% of the budget under twice the load."""

from __future__ import annotations

import base64
import time

import pytest
from azure.core.exceptions import HttpResponseError
from azure.keyvault.keys.crypto import KeyWrapAlgorithm

from devtools.emulator.measure_throttle import drive
from devtools.emulator.pytest_plugin import EmulatorVault
from devtools.emulator.throttle import Throttle, operation_weight
from shared.rewrap import BUDGET_WINDOW_SECONDS, RSA_OPERATIONS_PER_WINDOW, vault_budget


def test_published_limits_as_weights() -> None:
    assert operation_weight("RSA", 2048) == 1
    assert operation_weight("RSA-HSM", 2048) == 2
    assert operation_weight("RSA", 3072) == 4
    assert operation_weight("RSA-HSM", 3072) == 8
    assert operation_weight("RSA", 4096) == 8
    assert operation_weight("RSA-HSM", 4096) == 16
    assert operation_weight("oct-HSM", 256) == 16  # no published row: the lowest figure
    assert operation_weight(None, None) == 1


@pytest.mark.parametrize("kty", [None, "RSA", "RSA-HSM", "oct", "oct-HSM", "EC", "EC-HSM"])
@pytest.mark.parametrize("size", [None, 128, 256, 1024, *RSA_OPERATIONS_PER_WINDOW, 8192])
def test_emulator_and_engine_agree_on_every_key_budget(kty: str | None, size: int | None) -> None:
    """Operations of one key type the emulator admits per window = what the engine paces to."""
    throttle = Throttle(clock=lambda: 0.0)
    weight = operation_weight(kty, size)
    admitted = 0
    while throttle.admit(weight) is None:
        admitted += 1
    assert admitted == vault_budget(kty, size).operations_per_window
    assert throttle.window_seconds == BUDGET_WINDOW_SECONDS


def test_sliding_window_never_exceeds_the_budget() -> None:
    now = [0.0]
    throttle = Throttle(budget=10, window_seconds=10, clock=lambda: now[0])
    accepted = []
    for step in range(400):  # 4 requests per second for 100 s: 4x the budget
        now[0] = step * 0.25
        if throttle.admit(1) is None:
            accepted.append(now[0])
    for start in accepted:
        in_window = [t for t in accepted if start <= t < start + 10]
        assert len(in_window) <= 10
    assert len(accepted) == 100  # exactly the budget per window, refusals not counted
    retry_after = throttle.admit(1)
    assert retry_after is not None
    assert 0 < retry_after <= 10


async def test_twice_the_budget_is_held_to_the_budget(emulator_vault: EmulatorVault) -> None:
    client = emulator_vault.client
    bundle = client.create_key(emulator_vault.name, "hot")
    client.set_throttle(emulator_vault.name, budget=100, window_seconds=1)
    key = emulator_vault.key_client().get_key("hot")
    wrapped = (
        emulator_vault.crypto_client(key).wrap_key(KeyWrapAlgorithm.rsa_oaep, b"\x33" * 32)
    ).encrypted_key
    client.reset_counters(emulator_vault.name)
    token = emulator_vault.credential().get_token("https://vault.azure.net/.default").token
    seconds = 4.0
    result = await drive(
        f"{bundle['key']['kid']}/unwrapkey?api-version=2025-07-01",
        {"alg": "RSA-OAEP", "value": base64.urlsafe_b64encode(wrapped).decode()},
        token,
        emulator_vault.emulator.ca_path,
        rate=200,  # 2x the budget of 100 per second
        seconds=seconds,
        connections=16,
    )
    assert result.other == {}
    assert result.throttled > 0
    assert result.retry_after <= {"1"}  # whole seconds, never more than the window
    assert result.accepted_rate_in_windows(1.0) == pytest.approx(100, rel=0.05)
    counters = client.counters(emulator_vault.name)
    assert counters["vault"]["throttled"] == result.throttled
    assert counters["vault"]["ops"]["unwrapKey"] == result.accepted
    assert counters["keys"]["hot"]["throttled"] == result.throttled


def test_sdk_sees_429_with_retry_after(emulator_vault: EmulatorVault) -> None:
    client = emulator_vault.client
    client.create_key(emulator_vault.name, "big", size=4096)
    client.create_key(emulator_vault.name, "small", size=2048)
    client.set_throttle(emulator_vault.name, budget=80, window_seconds=10)
    keys = emulator_vault.key_client(retry_total=0)
    for _ in range(10):  # an RSA-4096 software operation costs 8 of the 80 units
        keys.get_key("big")
    with pytest.raises(HttpResponseError) as refused:
        keys.get_key("big")
    assert refused.value.status_code == 429
    assert refused.value.response is not None
    retry_after = int(refused.value.response.headers["Retry-After"])
    assert 1 <= retry_after <= 10
    with pytest.raises(HttpResponseError):
        keys.get_key("small")  # one budget for the vault, whatever the key
    assert client.get_throttle(emulator_vault.name)["used"] == pytest.approx(80)


def test_sdk_retries_after_retry_after(emulator_vault: EmulatorVault) -> None:
    client = emulator_vault.client
    client.create_key(emulator_vault.name, "k")
    client.set_throttle(emulator_vault.name, budget=2, window_seconds=1)
    keys = emulator_vault.key_client()  # default retry policy honours Retry-After
    started = time.monotonic()
    for _ in range(4):
        keys.get_key("k")
    assert time.monotonic() - started >= 0.9
    assert client.counters(emulator_vault.name)["vault"]["throttled"] >= 1


def test_429_without_retry_after_when_asked(emulator_vault: EmulatorVault) -> None:
    """Key Vault sometimes answers 429 with no ``Retry-After`` (vcsjones/AzureSignTool#219);
    the fault setting ``omit_retry_after_rate`` makes the emulator do the same."""
    client = emulator_vault.client
    client.create_key(emulator_vault.name, "k")
    client.set_throttle(emulator_vault.name, budget=1, window_seconds=10)
    client.set_faults(emulator_vault.name, omit_retry_after_rate=1.0)
    keys = emulator_vault.key_client(retry_total=0)
    keys.get_key("k")
    with pytest.raises(HttpResponseError) as refused:
        keys.get_key("k")
    assert refused.value.status_code == 429
    assert refused.value.response is not None
    assert "Retry-After" not in refused.value.response.headers
    assert refused.value.error is not None
    assert refused.value.error.code == "Throttled"
    assert "VaultRequestTypeLimitReached" in str(refused.value.message)
    client.set_faults(emulator_vault.name, omit_retry_after_rate=0.0)
    with pytest.raises(HttpResponseError) as again:
        keys.get_key("k")
    assert again.value.response is not None
    assert "Retry-After" in again.value.response.headers
