"""Every Key Vault refusal maps onto keyward's error hierarchy, on all three wrapper paths,
against the local emulator (fault injection, throttling, access policies, RBAC, the clock).
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from devtools.emulator.pytest_plugin import EmulatorVault, RunningEmulator, VaultFactory
from devtools.keyvault_sync import KeyVaultAdapter
from shared.adapters import AsyncKeyVaultAdapter
from shared.crypto import (
    DataKey,
    VaultAllowList,
)
from shared.errors import (
    AccessDeniedError,
    IntegrityError,
    KeyDisabledError,
    KeyNotFoundError,
    ThrottledError,
    TransientServiceError,
)
from tests.adapters.keyvault_harness import (
    AdapterFactory,
    allow_entry,
    make_key,
    vault_ops,
)

pytestmark = pytest.mark.emulator


# --- error mapping ---------------------------------------------------------------------------


def test_garbage_ciphertext_is_integrity_error(
    kind: str, emulator_vault: EmulatorVault, make_adapter: AdapterFactory
) -> None:
    kid = make_key(emulator_vault)["key"]["kid"]
    wrapper = make_adapter(kind, emulator_vault).wrapper(kid)
    with pytest.raises(IntegrityError):
        wrapper.unwrap(bytes(256))
    other = make_adapter(kind, emulator_vault).wrapper(make_key(emulator_vault)["key"]["kid"])
    with pytest.raises(IntegrityError):
        other.unwrap(wrapper.wrap(DataKey.generate()))


def test_disabled_key(
    kind: str, emulator_vault: EmulatorVault, make_adapter: AdapterFactory
) -> None:
    bundle = make_key(emulator_vault)
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
    # A fresh adapter: the key fetch answers 200 with ``enabled: false`` (as Key Vault does
    # for keys), and the SDK would wrap locally with it; keyward refuses that itself.
    fresh = make_adapter(kind, emulator_vault).wrapper(kid)
    with pytest.raises(KeyDisabledError) as local:
        fresh.wrap(DataKey.generate())
    assert local.value.code == "KeyDisabled"
    with pytest.raises(KeyDisabledError):
        fresh.unwrap(wrapped)
    assert vault_ops(emulator_vault).get("wrapKey", 0) == 0


def test_key_disabled_after_caching_stops_local_wraps_after_refresh(
    kind: str, emulator_vault: EmulatorVault, make_adapter: AdapterFactory
) -> None:
    """The fetched key is trusted for ``key_refresh_seconds``; after that a disabled version
    is noticed even though a local wrap never asks the vault."""
    kid = make_key(emulator_vault)["key"]["kid"]
    name, version = kid.split("/")[-2:]
    wrapper = make_adapter(kind, emulator_vault, key_refresh_seconds=0).wrapper(kid)
    wrapper.wrap(DataKey.generate())
    emulator_vault.key_client().update_key_properties(name, version, enabled=False)
    with pytest.raises(KeyDisabledError):
        wrapper.wrap(DataKey.generate())
    assert vault_ops(emulator_vault).get("wrapKey", 0) == 0


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
        kid = make_key(emulator_vault)["key"]["kid"]
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
    kid = make_key(emulator_vault, enabled=False)["key"]["kid"]
    with pytest.raises(KeyDisabledError):
        make_adapter(kind, emulator_vault).wrapper(kid).wrap(DataKey.generate())
    assert vault_ops(emulator_vault).get("wrapKey", 0) == 0


def test_expired_key_via_the_clock(
    kind: str, clock_vault: EmulatorVault, make_adapter: AdapterFactory
) -> None:
    emulator_vault, emulator = clock_vault, clock_vault.emulator
    now = float(emulator.client.clock()["now"])
    kid = make_key(emulator_vault, exp=now + 60)["key"]["kid"]
    wrapper = make_adapter(kind, emulator_vault).wrapper(kid)
    dek = DataKey.generate()
    wrapped = wrapper.wrap(dek)
    emulator.client.advance_clock(120)
    with pytest.raises(KeyDisabledError) as caught:
        wrapper.wrap(DataKey.generate())
    assert caught.value.code == "KeyExpired"
    # Key Vault keeps unwrap working on expired keys so data is never locked out.
    assert wrapper.unwrap(wrapped).matches(dek)
    assert vault_ops(emulator_vault).get("wrapKey", 0) == 0


def test_not_yet_valid_key(
    kind: str,
    emulator: RunningEmulator,
    emulator_vault: EmulatorVault,
    make_adapter: AdapterFactory,
) -> None:
    now = float(emulator.client.clock()["now"])
    kid = make_key(emulator_vault, nbf=now + 3600)["key"]["kid"]
    with pytest.raises(KeyDisabledError) as caught:
        make_adapter(kind, emulator_vault).wrapper(kid).wrap(DataKey.generate())
    assert caught.value.code == "KeyNotYetValid"


def test_operation_not_permitted_by_key_ops(
    kind: str, emulator_vault: EmulatorVault, make_adapter: AdapterFactory
) -> None:
    """No wrapKey in key_ops: the SDK cannot wrap locally, asks the vault, which refuses."""
    kid = make_key(emulator_vault, key_ops=["unwrapKey"])["key"]["kid"]
    wrapper = make_adapter(kind, emulator_vault).wrapper(kid)
    with pytest.raises(KeyDisabledError) as caught:
        wrapper.wrap(DataKey.generate())
    assert caught.value.code == "KeyOperationForbidden"
    only_wrap = make_key(emulator_vault, key_ops=["wrapKey"])["key"]["kid"]
    wrapper = make_adapter(kind, emulator_vault).wrapper(only_wrap)
    with pytest.raises(KeyDisabledError):
        wrapper.unwrap(wrapper.wrap(DataKey.generate()))


def test_unknown_version(
    kind: str, emulator_vault: EmulatorVault, make_adapter: AdapterFactory
) -> None:
    kid = make_key(emulator_vault)["key"]["kid"]
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
    kid = make_key(emulator_vault)["key"]["kid"]
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
    kid = make_key(emulator_vault)["key"]["kid"]
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
    kid = make_key(emulator_vault)["key"]["kid"]
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
    kid = make_key(vault)["key"]["kid"]
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
    kid = make_key(emulator_vault)["key"]["kid"]
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


def test_throttled_without_retry_after(
    kind: str, emulator_vault: EmulatorVault, make_adapter: AdapterFactory
) -> None:
    """Key Vault may answer 429 with no Retry-After: a transient ThrottledError without one."""
    kid = make_key(emulator_vault)["key"]["kid"]
    wrapper = make_adapter(kind, emulator_vault).wrapper(kid)
    wrapped = wrapper.wrap(DataKey.generate())
    emulator_vault.client.set_throttle(emulator_vault.name, budget=3, window_seconds=10)
    emulator_vault.client.set_faults(emulator_vault.name, omit_retry_after_rate=1.0)
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
    assert caught.retry_after is None


def test_server_errors_are_transient(
    kind: str, emulator_vault: EmulatorVault, make_adapter: AdapterFactory
) -> None:
    kid = make_key(emulator_vault)["key"]["kid"]
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
    kid = make_key(emulator_vault)["key"]["kid"]
    wrapper = make_adapter(kind, emulator_vault).wrapper(kid)
    wrapped = wrapper.wrap(DataKey.generate())
    emulator_vault.client.set_faults(emulator_vault.name, drop_rate=1.0)
    with pytest.raises(TransientServiceError):
        wrapper.unwrap(wrapped)


def test_timeout_is_transient(
    kind: str, emulator_vault: EmulatorVault, make_adapter: AdapterFactory
) -> None:
    kid = make_key(emulator_vault)["key"]["kid"]
    wrapper = make_adapter(kind, emulator_vault, read_timeout=0.5).wrapper(kid)
    wrapped = wrapper.wrap(DataKey.generate())
    emulator_vault.client.set_faults(emulator_vault.name, slow_rate=1.0, slow_ms=3000)
    with pytest.raises(TransientServiceError):
        wrapper.unwrap(wrapped)


def test_errors_carry_no_sdk_exception_or_key_material(
    kind: str, emulator_vault: EmulatorVault, make_adapter: AdapterFactory
) -> None:
    kid = make_key(emulator_vault, key_ops=["unwrapKey"])["key"]["kid"]
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
    kid = make_key(emulator_vault)["key"]["kid"]
    allow = VaultAllowList.parse(allow_entry(emulator_vault))
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
