"""The Key Vault adapter against the local emulator, with the real SDK clients (no mocks).

Every behaviour runs through the three wrapper paths the adapter offers: ``sync``
(``KeyVaultAdapter`` over ``CryptographyClient``), ``aio`` (``AsyncKeyVaultAdapter`` over the
``aio`` client) and ``lean`` (``AsyncKeyVaultAdapter(lean_unwrap=True)``: unwrap as one REST
call). The emulator's per-vault counters prove what went over the wire.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from devtools.emulator.credential import AsyncEmulatorCredential, EmulatorCredential
from devtools.emulator.pytest_plugin import (
    ALL_KEY_PERMISSIONS,
    EmulatorVault,
    RunningEmulator,
    VaultFactory,
    start_emulator,
    stop_emulator,
)
from shared.adapters import AsyncKeyVaultAdapter, KeyVaultAdapter
from shared.crypto import (
    DataKey,
    KeyWrapper,
    LocalRsaWrapper,
    VaultAllowList,
    WrapAlgorithm,
    rsa_public_key_from_jwk,
)
from shared.errors import (
    AccessDeniedError,
    ConfigurationError,
    IntegrityError,
    KeyDisabledError,
    KeyIdError,
    KeyNotFoundError,
    ThrottledError,
    TransientServiceError,
    UnsupportedAlgorithmError,
    VaultNotAllowedError,
)

pytestmark = pytest.mark.emulator

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
            allow = _allow_entry(vault)
        if emulator_clock:
            kw.setdefault("clock", lambda: _emulator_now(emulator))
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


def _allow_entry(vault: EmulatorVault) -> str:
    return f"{vault.name}={'hsm:' if vault.managed_hsm else ''}{vault.url}"


def _emulator_now(emulator: RunningEmulator) -> datetime:
    return datetime.fromtimestamp(float(emulator.client.clock()["now"]), UTC)


def _key(vault: EmulatorVault, name: str | None = None, **options: Any) -> dict[str, Any]:
    options.setdefault("kty", "RSA")
    options.setdefault("size", 2048)
    bundle = vault.client.create_key(vault.name, name or f"k-{uuid.uuid4().hex[:8]}", **options)
    return dict(bundle)


def _ops(vault: EmulatorVault) -> dict[str, int]:
    return dict(vault.client.counters(vault.name)["vault"]["ops"])


# --- wrap locally, unwrap remotely, round trips ----------------------------------------------


@pytest.mark.parametrize("algorithm", [WrapAlgorithm.RSA_OAEP_256, WrapAlgorithm.RSA_OAEP])
def test_round_trip_wraps_locally_and_unwraps_in_the_vault(
    kind: str,
    algorithm: WrapAlgorithm,
    emulator_vault: EmulatorVault,
    make_adapter: AdapterFactory,
) -> None:
    bundle = _key(emulator_vault)
    kid = bundle["key"]["kid"]
    adapter = make_adapter(kind, emulator_vault)
    wrapper = adapter.wrapper(kid, algorithm)
    assert wrapper.key_id == kid
    assert wrapper.inner.algorithm is algorithm
    deks = [DataKey.generate() for _ in range(5)]
    wrapped = [wrapper.wrap(dek) for dek in deks]
    assert all(len(w) == 256 for w in wrapped)
    ops = _ops(emulator_vault)
    assert ops.get("wrapKey", 0) == 0, "wrap must run locally with the public key"
    for dek, blob in zip(deks, wrapped, strict=True):
        assert wrapper.unwrap(blob).matches(dek)
    ops = _ops(emulator_vault)
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
    bundle = _key(emulator_vault)
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
    kid = _key(emulator_vault)["key"]["kid"]
    adapter = make_adapter("sync", emulator_vault)
    inner = adapter.adapter.wrapper(kid)
    assert isinstance(inner, KeyWrapper)
    assert adapter.adapter.wrapper(kid) is inner, "one cached wrapper per version"
    assert "kid" not in repr(inner) or kid in repr(inner)


def test_async_adapter_is_the_rewrap_engines_key_source(
    emulator_vault: EmulatorVault, make_adapter: AdapterFactory
) -> None:
    from shared.crypto import AsyncKeyWrapper
    from shared.rewrap import KeyVersionSource

    kid = _key(emulator_vault)["key"]["kid"]
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
    kid = _key(hsm, kty="oct-HSM", size=256)["key"]["kid"]
    wrapper = make_adapter(kind, hsm).wrapper(kid, WrapAlgorithm.A256KW)
    dek = DataKey.generate()
    wrapped = wrapper.wrap(dek)
    assert len(wrapped) == 40  # RFC 3394: 32 bytes + 8
    assert wrapper.unwrap(wrapped).matches(dek)
    # Another process (a fresh adapter) unwraps it too: the wrap was made by the HSM's key.
    assert make_adapter(kind, hsm).wrapper(kid, WrapAlgorithm.A256KW).unwrap(wrapped).matches(dek)
    ops = _ops(hsm)
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
    kid = _key(hsm, kty="oct-HSM", size=256)["key"]["kid"]
    first, second = hsm.crypto_client(kid), hsm.crypto_client(kid)
    wrapped = first.wrap_key(KeyWrapAlgorithm.aes_256, bytes(32)).encrypted_key
    assert _ops(hsm).get("wrapKey", 0) == 0, "the stock SDK did not call the HSM"
    with pytest.raises(HttpResponseError):
        second.unwrap_key(KeyWrapAlgorithm.aes_256, wrapped)


def test_algorithm_must_fit_the_key_type(
    kind: str, emulator_vault_factory: VaultFactory, make_adapter: AdapterFactory
) -> None:
    vault = emulator_vault_factory()
    kid = _key(vault)["key"]["kid"]
    adapter = make_adapter(kind, vault)
    with pytest.raises(UnsupportedAlgorithmError):
        adapter.wrapper(kid, WrapAlgorithm.A256KW).wrap(DataKey.generate())


def test_rsa1_5_refused_for_wrap_and_unless_enabled_for_unwrap(
    kind: str, emulator_vault: EmulatorVault, make_adapter: AdapterFactory
) -> None:
    kid = _key(emulator_vault)["key"]["kid"]
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


# --- error mapping ---------------------------------------------------------------------------


def test_garbage_ciphertext_is_integrity_error(
    kind: str, emulator_vault: EmulatorVault, make_adapter: AdapterFactory
) -> None:
    kid = _key(emulator_vault)["key"]["kid"]
    wrapper = make_adapter(kind, emulator_vault).wrapper(kid)
    with pytest.raises(IntegrityError):
        wrapper.unwrap(bytes(256))
    other = make_adapter(kind, emulator_vault).wrapper(_key(emulator_vault)["key"]["kid"])
    with pytest.raises(IntegrityError):
        other.unwrap(wrapper.wrap(DataKey.generate()))


def test_disabled_key(
    kind: str, emulator_vault: EmulatorVault, make_adapter: AdapterFactory
) -> None:
    bundle = _key(emulator_vault)
    kid = bundle["key"]["kid"]
    name, version = kid.split("/")[-2:]
    adapter = make_adapter(kind, emulator_vault)
    wrapper = adapter.wrapper(kid)
    wrapped = wrapper.wrap(DataKey.generate())
    emulator_vault.key_client().update_key_properties(name, version, enabled=False)
    # Remote unwrap: the vault refuses (403 KeyDisabled).
    with pytest.raises(KeyDisabledError) as caught:
        wrapper.unwrap(wrapped)
    assert caught.value.status == 403
    # A fresh adapter: the key fetch itself is refused; nothing is wrapped locally either.
    fresh = make_adapter(kind, emulator_vault).wrapper(kid)
    with pytest.raises(KeyDisabledError):
        fresh.wrap(DataKey.generate())
    with pytest.raises(KeyDisabledError):
        fresh.unwrap(wrapped)


def test_key_disabled_after_caching_stops_local_wraps_after_refresh(
    kind: str, emulator_vault: EmulatorVault, make_adapter: AdapterFactory
) -> None:
    """The fetched key is trusted for ``key_refresh_seconds``; after that a disabled version
    is noticed even though a local wrap never asks the vault."""
    kid = _key(emulator_vault)["key"]["kid"]
    name, version = kid.split("/")[-2:]
    wrapper = make_adapter(kind, emulator_vault, key_refresh_seconds=0).wrapper(kid)
    wrapper.wrap(DataKey.generate())
    emulator_vault.key_client().update_key_properties(name, version, enabled=False)
    with pytest.raises(KeyDisabledError):
        wrapper.wrap(DataKey.generate())
    assert _ops(emulator_vault).get("wrapKey", 0) == 0


def test_no_per_request_logging_when_the_host_logs_at_info(
    kind: str, emulator_vault: EmulatorVault, make_adapter: AdapterFactory
) -> None:
    import logging

    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    root = logging.getLogger()
    handler, level = Collect(), root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        kid = _key(emulator_vault)["key"]["kid"]
        wrapper = make_adapter(kind, emulator_vault, emulator_clock=False).wrapper(kid)
        wrapped = wrapper.wrap(DataKey.generate())
        for _ in range(10):
            wrapper.unwrap(wrapped)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    assert [r.name for r in records if r.name.startswith(("azure", "keyward"))] == []


def test_created_disabled_key_is_never_wrapped_with(
    kind: str, emulator_vault: EmulatorVault, make_adapter: AdapterFactory
) -> None:
    kid = _key(emulator_vault, enabled=False)["key"]["kid"]
    with pytest.raises(KeyDisabledError):
        make_adapter(kind, emulator_vault).wrapper(kid).wrap(DataKey.generate())
    assert _ops(emulator_vault).get("wrapKey", 0) == 0


def test_expired_key_via_the_clock(
    kind: str, clock_vault: EmulatorVault, make_adapter: AdapterFactory
) -> None:
    emulator_vault, emulator = clock_vault, clock_vault.emulator
    now = float(emulator.client.clock()["now"])
    kid = _key(emulator_vault, exp=now + 60)["key"]["kid"]
    wrapper = make_adapter(kind, emulator_vault).wrapper(kid)
    dek = DataKey.generate()
    wrapped = wrapper.wrap(dek)
    emulator.client.advance_clock(120)
    with pytest.raises(KeyDisabledError) as caught:
        wrapper.wrap(DataKey.generate())
    assert caught.value.code == "KeyExpired"
    # Key Vault keeps unwrap working on expired keys so data is never locked out.
    assert wrapper.unwrap(wrapped).matches(dek)
    assert _ops(emulator_vault).get("wrapKey", 0) == 0


def test_not_yet_valid_key(
    kind: str,
    emulator: RunningEmulator,
    emulator_vault: EmulatorVault,
    make_adapter: AdapterFactory,
) -> None:
    now = float(emulator.client.clock()["now"])
    kid = _key(emulator_vault, nbf=now + 3600)["key"]["kid"]
    with pytest.raises(KeyDisabledError) as caught:
        make_adapter(kind, emulator_vault).wrapper(kid).wrap(DataKey.generate())
    assert caught.value.code == "KeyNotYetValid"


def test_operation_not_permitted_by_key_ops(
    kind: str, emulator_vault: EmulatorVault, make_adapter: AdapterFactory
) -> None:
    """No wrapKey in key_ops: the SDK cannot wrap locally, asks the vault, which refuses."""
    kid = _key(emulator_vault, key_ops=["unwrapKey"])["key"]["kid"]
    wrapper = make_adapter(kind, emulator_vault).wrapper(kid)
    with pytest.raises(KeyDisabledError) as caught:
        wrapper.wrap(DataKey.generate())
    assert caught.value.code == "KeyOperationForbidden"
    only_wrap = _key(emulator_vault, key_ops=["wrapKey"])["key"]["kid"]
    wrapper = make_adapter(kind, emulator_vault).wrapper(only_wrap)
    with pytest.raises(KeyDisabledError):
        wrapper.unwrap(wrapper.wrap(DataKey.generate()))


def test_unknown_version(
    kind: str, emulator_vault: EmulatorVault, make_adapter: AdapterFactory
) -> None:
    kid = _key(emulator_vault)["key"]["kid"]
    unknown = kid.rsplit("/", 1)[0] + "/" + uuid.uuid4().hex
    wrapper = make_adapter(kind, emulator_vault).wrapper(unknown)
    with pytest.raises(KeyNotFoundError) as caught:
        wrapper.wrap(DataKey.generate())
    assert caught.value.status == 404
    with pytest.raises(KeyNotFoundError):
        wrapper.unwrap(bytes(256))


def test_deleted_key(
    kind: str, emulator_vault: EmulatorVault, make_adapter: AdapterFactory
) -> None:
    kid = _key(emulator_vault)["key"]["kid"]
    name = kid.split("/")[-2]
    adapter = make_adapter(kind, emulator_vault)
    wrapper = adapter.wrapper(kid)
    wrapped = wrapper.wrap(DataKey.generate())
    emulator_vault.key_client().begin_delete_key(name).wait()
    with pytest.raises(KeyNotFoundError):
        wrapper.unwrap(wrapped)
    with pytest.raises(KeyNotFoundError):
        adapter.newest_enabled_version(kid.rsplit("/", 1)[0])
    with pytest.raises(KeyNotFoundError):
        make_adapter(kind, emulator_vault).wrapper(kid).wrap(DataKey.generate())


def test_access_policy_removed(
    kind: str, emulator_vault: EmulatorVault, make_adapter: AdapterFactory
) -> None:
    kid = _key(emulator_vault)["key"]["kid"]
    principal = emulator_vault.principal(keys=["get", "list", "wrapKey", "unwrapKey"])
    wrapper = make_adapter(kind, emulator_vault, principal).wrapper(kid)
    dek = DataKey.generate()
    wrapped = wrapper.wrap(dek)
    assert wrapper.unwrap(wrapped).matches(dek)
    emulator_vault.client.delete_access_policy(emulator_vault.name, principal)
    with pytest.raises(AccessDeniedError) as caught:
        wrapper.unwrap(wrapped)
    assert caught.value.status == 403
    assert caught.value.code == "AccessDenied"


def test_unwrap_only_principal_still_unwraps(
    kind: str, emulator_vault: EmulatorVault, make_adapter: AdapterFactory
) -> None:
    """No ``get``: like the SDK, fall back to remote operations (and unwrap works)."""
    kid = _key(emulator_vault)["key"]["kid"]
    dek = DataKey.generate()
    wrapped = make_adapter(kind, emulator_vault).wrapper(kid).wrap(dek)
    principal = emulator_vault.principal(keys=["unwrapKey"])
    wrapper = make_adapter(kind, emulator_vault, principal).wrapper(kid)
    assert wrapper.unwrap(wrapped).matches(dek)
    with pytest.raises(AccessDeniedError):
        wrapper.wrap(DataKey.generate())


def test_rbac_role_removed(
    kind: str, emulator_vault_factory: VaultFactory, make_adapter: AdapterFactory
) -> None:
    vault = emulator_vault_factory(rbac=True)
    kid = _key(vault)["key"]["kid"]
    principal = str(vault.client.create_principal(display_name="rbac-user")["object_id"])
    assignment = vault.client.create_role_assignment(
        principal, "Key Vault Crypto User", vault=vault.name
    )
    wrapper = make_adapter(kind, vault, principal).wrapper(kid)
    dek = DataKey.generate()
    wrapped = wrapper.wrap(dek)
    assert wrapper.unwrap(wrapped).matches(dek)
    vault.client.delete_role_assignment(str(assignment["name"]))
    with pytest.raises(AccessDeniedError) as caught:
        wrapper.unwrap(wrapped)
    assert caught.value.status == 403
    assert caught.value.code == "ForbiddenByRbac"


def test_throttled_with_retry_after(
    kind: str, emulator_vault: EmulatorVault, make_adapter: AdapterFactory
) -> None:
    kid = _key(emulator_vault)["key"]["kid"]
    wrapper = make_adapter(kind, emulator_vault).wrapper(kid)
    wrapped = wrapper.wrap(DataKey.generate())
    emulator_vault.client.set_throttle(emulator_vault.name, budget=3, window_seconds=10)
    caught: ThrottledError | None = None
    for _ in range(20):
        try:
            wrapper.unwrap(wrapped)
        except ThrottledError as exc:
            caught = exc
            break
    assert caught is not None, "the budget of 3 per 10 s was never exceeded"
    assert caught.status == 429
    assert caught.transient
    assert caught.retry_after is not None
    assert 0 < caught.retry_after <= 10


def test_server_errors_are_transient(
    kind: str, emulator_vault: EmulatorVault, make_adapter: AdapterFactory
) -> None:
    kid = _key(emulator_vault)["key"]["kid"]
    wrapper = make_adapter(kind, emulator_vault).wrapper(kid)
    wrapped = wrapper.wrap(DataKey.generate())
    for status in (500, 503):
        emulator_vault.client.set_faults(emulator_vault.name, error_rate=1.0, error_status=status)
        with pytest.raises(TransientServiceError) as caught:
            wrapper.unwrap(wrapped)
        assert caught.value.status == status
        assert caught.value.transient


def test_dropped_connection_is_transient(
    kind: str, emulator_vault: EmulatorVault, make_adapter: AdapterFactory
) -> None:
    kid = _key(emulator_vault)["key"]["kid"]
    wrapper = make_adapter(kind, emulator_vault).wrapper(kid)
    wrapped = wrapper.wrap(DataKey.generate())
    emulator_vault.client.set_faults(emulator_vault.name, drop_rate=1.0)
    with pytest.raises(TransientServiceError):
        wrapper.unwrap(wrapped)


def test_timeout_is_transient(
    kind: str, emulator_vault: EmulatorVault, make_adapter: AdapterFactory
) -> None:
    kid = _key(emulator_vault)["key"]["kid"]
    wrapper = make_adapter(kind, emulator_vault, read_timeout=0.5).wrapper(kid)
    wrapped = wrapper.wrap(DataKey.generate())
    emulator_vault.client.set_faults(emulator_vault.name, slow_rate=1.0, slow_ms=3000)
    with pytest.raises(TransientServiceError):
        wrapper.unwrap(wrapped)


def test_errors_carry_no_sdk_exception_or_key_material(
    kind: str, emulator_vault: EmulatorVault, make_adapter: AdapterFactory
) -> None:
    kid = _key(emulator_vault, key_ops=["unwrapKey"])["key"]["kid"]
    wrapper = make_adapter(kind, emulator_vault).wrapper(kid)
    dek = DataKey.generate()
    with pytest.raises(KeyDisabledError) as caught:
        wrapper.wrap(dek)  # goes remote (no local wrapKey): the request body held the DEK
    error = caught.value
    assert error.__cause__ is None
    assert error.__context__ is None
    text = str(error) + repr(error)
    assert dek.reveal().hex() not in text
    import base64

    assert base64.urlsafe_b64encode(dek.reveal()).decode().rstrip("=") not in text


# --- the allow-list: refused before any request ----------------------------------------------


def test_foreign_vault_refused_without_a_request(
    kind: str, emulator_vault_factory: VaultFactory, make_adapter: AdapterFactory
) -> None:
    ours, theirs = emulator_vault_factory(), emulator_vault_factory()
    foreign_kid = _key(theirs)["key"]["kid"]
    our_kid = _key(ours)["key"]["kid"]
    before = {v.name: v.client.counters(v.name) for v in (ours, theirs)}
    adapter = make_adapter(
        kind, ours, allow=f"{_allow_entry(ours)},contoso-kv", emulator_clock=False
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
    allow = VaultAllowList.parse(_allow_entry(emulator_vault))
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
    kid = _key(emulator_vault)["key"]["kid"]
    allow = VaultAllowList.parse(_allow_entry(emulator_vault))
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
    first = _key(emulator_vault, name="rotating")["key"]["kid"]
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
    adapter = make_adapter(kind, emulator_vault)
    with pytest.raises(KeyNotFoundError):
        adapter.newest_enabled_version(f"{emulator_vault.url}/keys/no-such-key")


@pytest.mark.parametrize("lean", [False, True], ids=["aio", "lean"])
def test_concurrent_first_calls_share_one_challenge_and_token(
    lean: bool, emulator_vault: EmulatorVault, make_adapter: AdapterFactory
) -> None:
    kid = _key(emulator_vault)["key"]["kid"]
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


def test_a_credential_that_cannot_get_a_token_is_access_denied(
    kind: str,
    emulator_vault: EmulatorVault,
    emulator: RunningEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A real azure-identity credential with nothing configured (no mock): the SDK's
    CredentialUnavailableError must come out as keyward's AccessDeniedError on every path."""
    from azure.identity import EnvironmentCredential
    from azure.identity.aio import EnvironmentCredential as AsyncEnvironmentCredential

    for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_USERNAME"):
        monkeypatch.delenv(name, raising=False)
    kid = _key(emulator_vault)["key"]["kid"]
    allow = VaultAllowList.parse(_allow_entry(emulator_vault))
    if kind == "sync":
        with KeyVaultAdapter(EnvironmentCredential(), allow, ca_bundle=emulator.ca_path) as sync:
            with pytest.raises(AccessDeniedError):
                sync.wrapper(kid).unwrap(bytes(256))
        return

    async def attempt() -> None:
        credential = AsyncEnvironmentCredential()
        async with AsyncKeyVaultAdapter(
            credential, allow, ca_bundle=emulator.ca_path, lean_unwrap=kind == "lean"
        ) as adapter:
            wrapper = await adapter.wrapper(kid)
            with pytest.raises(AccessDeniedError):
                await wrapper.unwrap(bytes(256))
        await credential.close()

    asyncio.run(attempt())
