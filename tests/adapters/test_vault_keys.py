"""The envelope's ``VaultKeys`` over the Key Vault adapter, on the emulator: the newest enabled
version is asked for once per period (one list call, shared by concurrent writers), a
rotation is seen after it, and a vault off the allow-list is refused before any call."""

from __future__ import annotations

import asyncio

import pytest

from devtools.emulator.pytest_plugin import EmulatorVault, VaultFactory
from shared.adapters import AsyncKeyVaultAdapter
from shared.adapters.vault_keys import VaultKeysAdapter
from shared.crypto import DataKey, VaultAllowList, WrapAlgorithm
from shared.errors import UnsupportedAlgorithmError, VaultNotAllowedError

pytestmark = pytest.mark.emulator


def _list_calls(vault: EmulatorVault) -> int:
    return int(vault.client.counters(vault.name)["vault"]["ops"].get("listversions", 0))


async def test_newest_is_cached_for_its_period_and_sees_a_rotation(
    emulator_vault: EmulatorVault,
) -> None:
    vault = emulator_vault
    vault.client.create_key(vault.name, "k", kty="RSA", size=2048)
    key_ref = f"{vault.url}/keys/k"
    clock = [0.0]
    adapter = AsyncKeyVaultAdapter(vault.async_credential(),
                                   VaultAllowList.parse(f"{vault.name}={vault.url}"),
                                   ca_bundle=vault.emulator.ca_path)  # fmt: skip
    keys = VaultKeysAdapter(adapter, newest_seconds=60, monotonic=lambda: clock[0])
    try:
        vault.client.reset_counters(vault.name)
        first = await asyncio.gather(*(keys.newest(key_ref) for _ in range(5)))
        assert len({w.key_id for w in first}) == 1
        assert _list_calls(vault) == 1  # concurrent writers share one call
        vault.client.reset_counters(vault.name)
        vault.client.rotate_key(vault.name, "k")
        assert (await keys.newest(key_ref)).key_id == first[0].key_id  # still cached
        assert _list_calls(vault) == 0
        clock[0] = 60.0
        rotated = await keys.newest(key_ref)
        assert rotated.key_id != first[0].key_id
        assert _list_calls(vault) == 1
        # A DEK wrapped under the newest version opens under exactly that version.
        with DataKey.generate() as dek:
            wrapped = await rotated.wrap(dek)
            with await (await keys.version(rotated.key_id)).unwrap(wrapped) as opened:
                assert opened.kcv == dek.kcv
    finally:
        await adapter.close()


async def test_a_vault_off_the_allow_list_is_refused_before_any_call(
    emulator_vault: EmulatorVault,
) -> None:
    adapter = AsyncKeyVaultAdapter(emulator_vault.async_credential(),
                                   VaultAllowList.parse("contoso-kv"))  # fmt: skip
    keys = VaultKeysAdapter(adapter)
    try:
        with pytest.raises(VaultNotAllowedError):
            await keys.newest("https://fabrikam-kv.vault.azure.net/keys/k")
        with pytest.raises(VaultNotAllowedError):
            await keys.version(f"https://fabrikam-kv.vault.azure.net/keys/k/{'a' * 32}")
    finally:
        await adapter.close()


@pytest.mark.parametrize(
    ("managed_hsm", "kty", "size", "algorithm"),
    [(False, "RSA", 2048, WrapAlgorithm.RSA_OAEP), (True, "oct-HSM", 256, WrapAlgorithm.A256KW)],
)
async def test_version_unwraps_with_the_rows_algorithm(
    emulator_vault_factory: VaultFactory,
    managed_hsm: bool,
    kty: str,
    size: int,
    algorithm: WrapAlgorithm,
) -> None:
    """A format-1 row names its algorithm (RSA-OAEP from an older writer, A256KW under an
    oct-HSM key); ``version`` unwraps with it. RSA1_5 stays refused (no legacy opt-in)."""
    vault = emulator_vault_factory(managed_hsm=managed_hsm)
    kid = vault.client.create_key(vault.name, "k", kty=kty, size=size)["key"]["kid"]
    adapter = AsyncKeyVaultAdapter(vault.async_credential(),
                                   VaultAllowList.parse(f"{vault.name}={vault.url}"),
                                   ca_bundle=vault.emulator.ca_path)  # fmt: skip
    keys = VaultKeysAdapter(adapter)
    try:
        with DataKey.generate() as dek:
            wrapped = await (await adapter.wrapper(kid, algorithm)).wrap(dek)
            wrapper = await keys.version(kid, algorithm)
            assert wrapper.algorithm is algorithm
            with await wrapper.unwrap(wrapped) as opened:
                assert opened.matches(dek)
        assert (await keys.version(kid)).algorithm is WrapAlgorithm.RSA_OAEP_256
        with pytest.raises(UnsupportedAlgorithmError, match="RSA1_5"):
            await keys.version(kid, WrapAlgorithm.RSA1_5)
    finally:
        await adapter.close()
