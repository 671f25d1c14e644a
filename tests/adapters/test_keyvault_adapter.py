"""The Key Vault adapter against the local emulator, with the real SDK clients (no mocks):
round trips, the allow-list, TLS, key metadata. Error mapping: ``test_keyvault_adapter_errors``.

Every behaviour runs through the three wrapper paths the adapter offers: ``sync``
(``KeyVaultAdapter`` over ``CryptographyClient``), ``aio`` (``AsyncKeyVaultAdapter`` over the
``aio`` client) and ``lean`` (``AsyncKeyVaultAdapter(lean_unwrap=True)``: unwrap as one REST
call); the ``kind`` fixture (``conftest``) parametrizes them. The emulator's per-vault counters
prove what went over the wire.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from devtools.emulator.credential import AsyncEmulatorCredential, EmulatorCredential
from devtools.emulator.pytest_plugin import EmulatorVault, RunningEmulator, VaultFactory
from devtools.keyvault_sync import KeyVaultAdapter
from shared.adapters import AsyncKeyVaultAdapter
from shared.crypto import (
    DataKey,
    KeyWrapper,
    LocalRsaWrapper,
    VaultAllowList,
    WrapAlgorithm,
    rsa_public_key_from_jwk,
)
from shared.errors import (
    ConfigurationError,
    KeyIdError,
    KeyNotFoundError,
    TransientServiceError,
    UnsupportedAlgorithmError,
    VaultNotAllowedError,
)
from tests.adapters.keyvault_harness import (
    Adapter,
    AdapterFactory,
    allow_entry,
    make_key,
    vault_ops,
)

pytestmark = pytest.mark.emulator


# --- wrap locally, unwrap remotely, round trips ----------------------------------------------


def test_unwrap_bodies_are_base64url(
    kind: str, emulator_vault: EmulatorVault, make_adapter: AdapterFactory
) -> None:
    """Key Vault refuses a standard-base64 ``value`` (400 BadParameter); the emulator does too,
    so these unwraps only succeed because every path sends base64url."""
    import base64

    kid = make_key(emulator_vault)["key"]["kid"]
    wrapper = make_adapter(kind, emulator_vault).wrapper(kid)
    deks = [DataKey.generate() for _ in range(8)]
    wrapped = [wrapper.wrap(dek) for dek in deks]
    assert any({"+", "/"} & set(base64.b64encode(w).decode()) for w in wrapped)
    for dek, blob in zip(deks, wrapped, strict=True):
        assert wrapper.unwrap(blob).matches(dek)
    assert vault_ops(emulator_vault)["unwrapKey"] == len(deks)


@pytest.mark.parametrize("algorithm", [WrapAlgorithm.RSA_OAEP_256, WrapAlgorithm.RSA_OAEP])
def test_round_trip_wraps_locally_and_unwraps_in_the_vault(
    kind: str,
    algorithm: WrapAlgorithm,
    emulator_vault: EmulatorVault,
    make_adapter: AdapterFactory,
) -> None:
    bundle = make_key(emulator_vault)
    kid = bundle["key"]["kid"]
    adapter = make_adapter(kind, emulator_vault)
    wrapper = adapter.wrapper(kid, algorithm)
    assert wrapper.key_id == kid
    assert wrapper.inner.algorithm is algorithm
    deks = [DataKey.generate() for _ in range(5)]
    wrapped = [wrapper.wrap(dek) for dek in deks]
    assert all(len(w) == 256 for w in wrapped)
    ops = vault_ops(emulator_vault)
    assert ops.get("wrapKey", 0) == 0, "wrap must run locally with the public key"
    for dek, blob in zip(deks, wrapped, strict=True):
        assert wrapper.unwrap(blob).matches(dek)
    ops = vault_ops(emulator_vault)
    assert ops.get("wrapKey", 0) == 0
    assert ops["unwrapKey"] == 5
    # The key is fetched at most once per version (the lean path needs it only for wrap).
    assert ops.get("get", 0) == 1


@pytest.mark.parametrize("algorithm", [WrapAlgorithm.RSA_OAEP_256, WrapAlgorithm.RSA_OAEP])
def test_wrapped_bytes_are_what_key_vault_expects(
    kind: str,
    algorithm: WrapAlgorithm,
    emulator_vault: EmulatorVault,
    make_adapter: AdapterFactory,
) -> None:
    """Interop with keyward's local wrapper on the key's public JWK."""
    bundle = make_key(emulator_vault)
    kid = bundle["key"]["kid"]
    public = rsa_public_key_from_jwk(bundle["key"]["n"], bundle["key"]["e"])
    local = LocalRsaWrapper(kid, public_key=public, algorithm=algorithm)
    adapter = make_adapter(kind, emulator_vault)
    wrapper = adapter.wrapper(kid, algorithm)
    dek = DataKey.generate()
    assert wrapper.unwrap(local.wrap(dek)).matches(dek)
    info = adapter.public_key(kid)
    assert info.rsa_public_key.public_numbers() == public.public_numbers()
    assert "unwrapKey" in info.key_ops


def test_sync_wrapper_satisfies_key_wrapper_protocol(
    emulator_vault: EmulatorVault, make_adapter: AdapterFactory
) -> None:
    kid = make_key(emulator_vault)["key"]["kid"]
    adapter = make_adapter("sync", emulator_vault)
    inner = adapter.adapter.wrapper(kid)
    assert isinstance(inner, KeyWrapper)
    assert adapter.adapter.wrapper(kid) is inner, "one cached wrapper per version"
    assert repr(inner) == f"KeyVaultKeyWrapper(key_id={kid!r}, algorithm=RSA-OAEP-256)"


def test_async_adapter_is_the_rewrap_engines_key_source(
    emulator_vault: EmulatorVault, make_adapter: AdapterFactory
) -> None:
    from shared.crypto import AsyncKeyWrapper
    from shared.rewrap import KeyVersionSource

    kid = make_key(emulator_vault)["key"]["kid"]
    for kind in ("aio", "lean"):
        adapter = make_adapter(kind, emulator_vault)
        assert isinstance(adapter.adapter, KeyVersionSource)
        inner = adapter.run(adapter.adapter.wrapper(kid, WrapAlgorithm.RSA_OAEP_256))
        assert isinstance(inner, AsyncKeyWrapper)
        assert adapter.run(adapter.adapter.wrapper(kid, WrapAlgorithm.RSA_OAEP_256)) is inner


def test_a256kw_round_trip_on_managed_hsm(
    kind: str, emulator_vault_factory: VaultFactory, make_adapter: AdapterFactory
) -> None:
    hsm = emulator_vault_factory(managed_hsm=True)
    kid = make_key(hsm, kty="oct-HSM", size=256)["key"]["kid"]
    wrapper = make_adapter(kind, hsm).wrapper(kid, WrapAlgorithm.A256KW)
    dek = DataKey.generate()
    wrapped = wrapper.wrap(dek)
    assert len(wrapped) == 40  # RFC 3394: 32 bytes + 8
    assert wrapper.unwrap(wrapped).matches(dek)
    # Another process (a fresh adapter) unwraps it too: the wrap was made by the HSM's key.
    assert make_adapter(kind, hsm).wrapper(kid, WrapAlgorithm.A256KW).unwrap(wrapped).matches(dek)
    ops = vault_ops(hsm)
    assert ops.get("wrapKey") == 1, "an AES key has no public half: wrap runs in the HSM"
    assert ops.get("unwrapKey") == 2


def test_stock_sdk_wraps_aes_keys_with_a_random_local_key(
    emulator_vault_factory: VaultFactory,
) -> None:
    """Canary for why the adapter never lets the SDK touch an AES key "locally".

    azure-keyvault-keys 4.11.3 fetches the oct-HSM key (no ``k``: never exported), builds
    ``SymmetricKey(key_bytes=None)``, which draws a random AES key, and wraps with it without
    calling the HSM. Only the same client object can undo that wrap. If this test fails, the
    SDK has changed: re-check ``_keyvault_common.is_symmetric`` and this test.
    """
    from azure.core.exceptions import HttpResponseError
    from azure.keyvault.keys.crypto import KeyWrapAlgorithm

    hsm = emulator_vault_factory(managed_hsm=True)
    kid = make_key(hsm, kty="oct-HSM", size=256)["key"]["kid"]
    first, second = hsm.crypto_client(kid), hsm.crypto_client(kid)
    wrapped = first.wrap_key(KeyWrapAlgorithm.aes_256, bytes(32)).encrypted_key
    assert vault_ops(hsm).get("wrapKey", 0) == 0, "the stock SDK did not call the HSM"
    with pytest.raises(HttpResponseError):
        second.unwrap_key(KeyWrapAlgorithm.aes_256, wrapped)


def test_algorithm_must_fit_the_key_type(
    kind: str, emulator_vault_factory: VaultFactory, make_adapter: AdapterFactory
) -> None:
    vault = emulator_vault_factory()
    kid = make_key(vault)["key"]["kid"]
    adapter = make_adapter(kind, vault)
    with pytest.raises(UnsupportedAlgorithmError):
        adapter.wrapper(kid, WrapAlgorithm.A256KW).wrap(DataKey.generate())


def test_rsa1_5_refused_for_wrap_and_unless_enabled_for_unwrap(
    kind: str, emulator_vault: EmulatorVault, make_adapter: AdapterFactory
) -> None:
    kid = make_key(emulator_vault)["key"]["kid"]
    strict = make_adapter(kind, emulator_vault)
    with pytest.raises(UnsupportedAlgorithmError):
        strict.wrapper(kid, WrapAlgorithm.RSA1_5)
    legacy = make_adapter(kind, emulator_vault, allow_legacy_rsa1_5=True)
    wrapper = legacy.wrapper(kid, WrapAlgorithm.RSA1_5)
    with pytest.raises(UnsupportedAlgorithmError):
        wrapper.wrap(DataKey.generate())
    from cryptography.hazmat.primitives.asymmetric import padding

    info = legacy.public_key(kid)
    dek = DataKey.generate()
    old = info.rsa_public_key.encrypt(dek.reveal(), padding.PKCS1v15())
    assert wrapper.unwrap(old).matches(dek)


# --- the allow-list: refused before any request ----------------------------------------------


def test_foreign_vault_refused_without_a_request(
    kind: str, emulator_vault_factory: VaultFactory, make_adapter: AdapterFactory
) -> None:
    ours, theirs = emulator_vault_factory(), emulator_vault_factory()
    foreign_kid = make_key(theirs)["key"]["kid"]
    our_kid = make_key(ours)["key"]["kid"]
    before = {v.name: v.client.counters(v.name) for v in (ours, theirs)}
    adapter = make_adapter(
        kind, ours, allow=f"{allow_entry(ours)},contoso-kv", emulator_clock=False
    )
    # Another emulator origin is an untrusted host (KeyIdError); an Azure vault that is not
    # on the list is VaultNotAllowedError (a KeyIdError too). Neither reaches the network.
    with pytest.raises(KeyIdError):
        adapter.wrapper(foreign_kid)
    with pytest.raises(KeyIdError):
        adapter.versions(foreign_kid.rsplit("/", 1)[0])
    with pytest.raises(KeyIdError):
        adapter.public_key(foreign_kid)
    azure_foreign = f"https://fabrikam-kv.vault.azure.net/keys/k/{uuid.uuid4().hex}"
    with pytest.raises(VaultNotAllowedError):
        adapter.wrapper(azure_foreign)
    with pytest.raises(VaultNotAllowedError):
        adapter.newest_enabled_version(azure_foreign.rsplit("/", 1)[0])
    # Malformed or lookalike ids are refused the same way, before any I/O.
    for bad in (
        foreign_kid.replace("https://", "http://"),
        our_kid.replace("127.0.0.1", "localhost"),
        f"https://{ours.name}.vault.azure.net.evil.com/keys/k/{uuid.uuid4().hex}",
        our_kid.rsplit("/", 1)[0],  # unversioned: a wrapper needs a version
    ):
        with pytest.raises(KeyIdError):
            adapter.wrapper(bad)
    after = {v.name: v.client.counters(v.name) for v in (ours, theirs)}
    assert after == before
    assert adapter.tokens_requested == 0


def test_tls_verification_cannot_be_disabled(emulator_vault: EmulatorVault) -> None:
    allow = VaultAllowList.parse(allow_entry(emulator_vault))
    for bad in (False, "", 0):
        with pytest.raises(ConfigurationError):
            KeyVaultAdapter(EmulatorCredential("x"), allow, ca_bundle=bad)  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError):
            AsyncKeyVaultAdapter(AsyncEmulatorCredential("x"), allow, ca_bundle=bad)  # type: ignore[arg-type]


def test_without_the_emulator_ca_tls_fails(
    kind: str, emulator_vault: EmulatorVault, emulator: RunningEmulator
) -> None:
    """The system CAs do not trust the emulator: the call fails (transiently), it never
    proceeds unverified."""
    kid = make_key(emulator_vault)["key"]["kid"]
    allow = VaultAllowList.parse(allow_entry(emulator_vault))
    adapter = Adapter(kind, emulator_vault.admin_id, allow, emulator.ca_path)
    adapter.close()
    if kind == "sync":
        plain: Any = KeyVaultAdapter(EmulatorCredential(emulator_vault.admin_id), allow)
        with pytest.raises(TransientServiceError):
            plain.wrapper(kid).wrap(DataKey.generate())
        plain.close()
        return

    async def attempt() -> None:
        async with AsyncKeyVaultAdapter(
            AsyncEmulatorCredential(emulator_vault.admin_id), allow, lean_unwrap=kind == "lean"
        ) as plain:
            wrapper = await plain.wrapper(kid)
            with pytest.raises(TransientServiceError):
                await wrapper.unwrap(bytes(256))

    asyncio.run(attempt())


# --- key metadata ----------------------------------------------------------------------------


def test_versions_and_newest_enabled_version(
    kind: str, clock_vault: EmulatorVault, make_adapter: AdapterFactory
) -> None:
    emulator_vault, emulator = clock_vault, clock_vault.emulator
    first = make_key(emulator_vault, name="rotating")["key"]["kid"]
    second = emulator_vault.client.rotate_key(emulator_vault.name, "rotating")["key"]["kid"]
    key_ref = first.rsplit("/", 1)[0]
    adapter = make_adapter(kind, emulator_vault)
    versions = {v.version: v for v in adapter.versions(key_ref)}
    assert set(versions) == {first.rsplit("/", 1)[1], second.rsplit("/", 1)[1]}
    assert all(v.enabled for v in versions.values())
    assert adapter.newest_enabled_version(key_ref) == second.rsplit("/", 1)[1]
    # Disable the newest: the previous one is the newest enabled version again.
    emulator_vault.key_client().update_key_properties(
        "rotating", second.rsplit("/", 1)[1], enabled=False
    )
    assert adapter.newest_enabled_version(key_ref) == first.rsplit("/", 1)[1]
    # A version that expires (by the emulator's clock) stops counting as enabled.
    now = float(emulator.client.clock()["now"])
    emulator_vault.key_client().update_key_properties(
        "rotating",
        first.rsplit("/", 1)[1],
        expires_on=datetime.fromtimestamp(now + 30, UTC),
    )
    emulator.client.advance_clock(60)
    versions = {v.version: v for v in adapter.versions(key_ref)}
    assert not any(v.enabled for v in versions.values())
    assert versions[first.rsplit("/", 1)[1]].attributes_enabled
    with pytest.raises(KeyNotFoundError):
        adapter.newest_enabled_version(key_ref)


def test_versions_of_unknown_key(
    kind: str, emulator_vault: EmulatorVault, make_adapter: AdapterFactory
) -> None:
    """Key Vault lists an unknown or deleted key's versions as an empty page (200, not 404);
    keyward still reads that as "no such key"."""
    adapter = make_adapter(kind, emulator_vault)
    with pytest.raises(KeyNotFoundError):
        adapter.newest_enabled_version(f"{emulator_vault.url}/keys/no-such-key")
    with pytest.raises(KeyNotFoundError):
        adapter.versions(f"{emulator_vault.url}/keys/no-such-key")
    kid = make_key(emulator_vault, name="dropped")["key"]["kid"]
    assert len(adapter.versions(kid.rsplit("/", 1)[0])) == 1
    emulator_vault.key_client().begin_delete_key("dropped").result()
    with pytest.raises(KeyNotFoundError):
        adapter.versions(kid.rsplit("/", 1)[0])
    # No 404 on the way: every "not found" here came from an empty page of versions.
    assert emulator_vault.client.counters(emulator_vault.name)["vault"]["ops"]["listversions"] >= 4


def test_public_key_of_a_disabled_version(
    kind: str, emulator_vault: EmulatorVault, make_adapter: AdapterFactory
) -> None:
    """GET of a disabled key version answers 200 with ``enabled: false``: read, not raised."""
    kid = make_key(emulator_vault, name="resting")["key"]["kid"]
    emulator_vault.key_client().update_key_properties(
        "resting", kid.rsplit("/", 1)[1], enabled=False
    )
    adapter = make_adapter(kind, emulator_vault)
    for key_id in (kid, kid.rsplit("/", 1)[0]):
        info = adapter.public_key(key_id)
        assert info.key_id == kid
        assert info.properties.attributes_enabled is False
        assert info.properties.enabled is False


@pytest.mark.parametrize("lean", [False, True], ids=["aio", "lean"])
def test_concurrent_first_calls_share_one_challenge_and_token(
    lean: bool, emulator_vault: EmulatorVault, make_adapter: AdapterFactory
) -> None:
    kid = make_key(emulator_vault)["key"]["kid"]
    dek = DataKey.generate()
    wrapped = make_adapter("sync", emulator_vault).wrapper(kid).wrap(dek)
    emulator_vault.client.reset_counters(emulator_vault.name)
    adapter = make_adapter("lean" if lean else "aio", emulator_vault, emulator_clock=False)
    inner = adapter.wrapper(kid).inner

    async def many() -> list[DataKey]:
        return list(await asyncio.gather(*(inner.unwrap(wrapped) for _ in range(50))))

    results = adapter.run(many())
    assert all(r.matches(dek) for r in results)
    counters = emulator_vault.client.counters(emulator_vault.name)["vault"]
    assert counters["ops"]["unwrapKey"] == 50
    assert adapter.async_credential.requests <= 2
    if lean:
        assert counters["unauthenticated"] == 1
