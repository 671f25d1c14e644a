"""Every refusal the emulator answers like the service, seen through the SDK's exceptions.

Sources for codes and messages are in ``docs/emulator.md`` ("Refusals").
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.keyvault.keys.crypto import KeyWrapAlgorithm

from devtools.emulator.pytest_plugin import EmulatorVault, VaultFactory

ALG = KeyWrapAlgorithm.rsa_oaep_256
REMOTE_ONLY = ["wrapKey", "unwrapKey", "encrypt", "decrypt"]


def _refusal(error: pytest.ExceptionInfo[HttpResponseError]) -> tuple[int | None, str, str]:
    """(status, code, innererror code) of an SDK error."""
    odata = error.value.error
    assert odata is not None
    inner = (odata.innererror or {}).get("code", "")
    return error.value.status_code, str(odata.code), str(inner)


def _wrapped(vault: EmulatorVault, name: str, **key_args: object) -> tuple[str, bytes]:
    key = vault.key_client().create_rsa_key(name, **key_args)  # type: ignore[arg-type]
    wrapped = vault.crypto_client(key).wrap_key(ALG, b"\x11" * 32).encrypted_key
    return str(key.id), wrapped


def test_disabled_key_reads_but_refuses_crypto(emulator_vault: EmulatorVault) -> None:
    """GET of a disabled version answers 200 with ``enabled: false`` (keys, unlike secrets);
    the operations that need the private key answer 403 KeyDisabled."""
    key_id, wrapped = _wrapped(emulator_vault, "disabled")
    client = emulator_vault.key_client()
    client.update_key_properties("disabled", enabled=False)
    current = client.get_key("disabled")
    assert current.id == key_id
    assert current.properties.enabled is False
    versioned = client.get_key("disabled", version=key_id.rsplit("/", 1)[-1])
    assert versioned.properties.enabled is False
    assert versioned.key.n == current.key.n
    crypto = emulator_vault.crypto_client(key_id)
    with pytest.raises(HttpResponseError) as unwrap:
        crypto.unwrap_key(ALG, wrapped)
    assert _refusal(unwrap) == (403, "Forbidden", "KeyDisabled")
    assert "Operation unwrapKey is not allowed on a disabled key." in str(unwrap.value.message)
    # A caller without "get" makes the SDK send the wrap to the vault, which refuses it.
    app = emulator_vault.principal(keys=["wrapKey", "unwrapKey"])
    remote = emulator_vault.crypto_client(key_id, object_id=app)
    with pytest.raises(HttpResponseError) as wrap:
        remote.wrap_key(ALG, b"\x01" * 32)
    assert _refusal(wrap) == (403, "Forbidden", "KeyDisabled")
    # Listing shows it, disabled.
    assert [p.enabled for p in client.list_properties_of_key_versions("disabled")] == [False]
    client.update_key_properties("disabled", enabled=True)
    assert crypto.unwrap_key(ALG, wrapped).key == b"\x11" * 32


def test_expired_key_refuses_wrap_but_still_unwraps(emulator_vault: EmulatorVault) -> None:
    key_id, wrapped = _wrapped(emulator_vault, "expired")
    past = datetime.fromtimestamp(int(time.time()) - 60, UTC)
    emulator_vault.key_client().update_key_properties("expired", expires_on=past)
    remote = emulator_vault.crypto_client(
        key_id, object_id=emulator_vault.principal(keys=REMOTE_ONLY)
    )
    with pytest.raises(HttpResponseError) as wrap:
        remote.wrap_key(ALG, b"\x01" * 32)
    assert _refusal(wrap) == (403, "Forbidden", "KeyExpired")
    assert remote.unwrap_key(ALG, wrapped).key == b"\x11" * 32  # no crypto-lock
    # Given the key object, the SDK refuses the same thing locally before asking the vault.
    local = emulator_vault.crypto_client(emulator_vault.key_client().get_key("expired"))
    with pytest.raises(ValueError, match="expired"):
        local.wrap_key(ALG, b"\x01" * 32)


def test_not_yet_valid_key_until_the_clock_reaches_nbf(emulator_vault: EmulatorVault) -> None:
    emulator_now = emulator_vault.client.clock()["now"]
    nbf = datetime.fromtimestamp(int(emulator_now) + 3600, UTC)
    key = emulator_vault.key_client().create_rsa_key("later", not_before=nbf)
    remote = emulator_vault.crypto_client(
        key.id, object_id=emulator_vault.principal(keys=REMOTE_ONLY)
    )
    with pytest.raises(HttpResponseError) as early:
        remote.wrap_key(ALG, b"\x01" * 32)
    assert _refusal(early) == (403, "Forbidden", "KeyNotYetValid")
    emulator_vault.client.advance_clock(3601)
    wrapped = remote.wrap_key(ALG, b"\x01" * 32)
    assert remote.unwrap_key(ALG, wrapped.encrypted_key).key == b"\x01" * 32


def test_operation_not_in_key_ops(emulator_vault: EmulatorVault) -> None:
    key = emulator_vault.key_client().create_rsa_key("wrap-only", key_operations=["wrapKey"])
    crypto = emulator_vault.crypto_client(key)
    wrapped = crypto.wrap_key(ALG, b"\x02" * 32)
    with pytest.raises(HttpResponseError) as unwrap:
        crypto.unwrap_key(ALG, wrapped.encrypted_key)
    assert _refusal(unwrap) == (403, "Forbidden", "KeyOperationForbidden")
    assert unwrap.value.message is not None
    assert "Operation unwrapKey is not permitted on this key." in unwrap.value.message


def test_unknown_key_and_version(emulator_vault: EmulatorVault) -> None:
    client = emulator_vault.key_client()
    with pytest.raises(ResourceNotFoundError) as missing:
        client.get_key("never-made")
    assert _refusal(missing)[:2] == (404, "KeyNotFound")
    key = client.create_rsa_key("known")
    with pytest.raises(ResourceNotFoundError) as version:
        client.get_key("known", version="0" * 32)
    assert _refusal(version)[:2] == (404, "KeyNotFound")
    crypto = emulator_vault.crypto_client(f"{emulator_vault.url}/keys/known/{'0' * 32}")
    with pytest.raises(ResourceNotFoundError):
        crypto.unwrap_key(ALG, b"\x00" * 256)
    assert key.id is not None


def test_deleted_key_refuses_everything(emulator_vault: EmulatorVault) -> None:
    key_id, wrapped = _wrapped(emulator_vault, "deleted")
    client = emulator_vault.key_client()
    client.begin_delete_key("deleted").result()
    with pytest.raises(ResourceNotFoundError):
        client.get_key("deleted")
    crypto = emulator_vault.crypto_client(key_id)
    with pytest.raises(ResourceNotFoundError) as unwrap:
        crypto.unwrap_key(ALG, wrapped)
    assert _refusal(unwrap)[:2] == (404, "KeyNotFound")


def test_access_policy_removed_refuses_the_next_call(emulator_vault: EmulatorVault) -> None:
    key_id, wrapped = _wrapped(emulator_vault, "policy")
    app = emulator_vault.principal(keys=["get", "wrapKey", "unwrapKey"])
    crypto = emulator_vault.crypto_client(key_id, object_id=app)
    assert crypto.unwrap_key(ALG, wrapped).key == b"\x11" * 32
    emulator_vault.client.set_access_policy(emulator_vault.name, app, ["get", "wrapKey"])
    with pytest.raises(HttpResponseError) as narrowed:
        crypto.unwrap_key(ALG, wrapped)
    assert _refusal(narrowed) == (403, "Forbidden", "AccessDenied")
    assert narrowed.value.message is not None
    assert "does not have keys unwrapKey permission" in narrowed.value.message
    emulator_vault.client.delete_access_policy(emulator_vault.name, app)
    with pytest.raises(HttpResponseError) as removed:
        emulator_vault.key_client(object_id=app).get_key("policy")
    assert _refusal(removed) == (403, "Forbidden", "AccessDenied")


def test_rbac_role_deleted_refuses_the_next_call(emulator_vault_factory: VaultFactory) -> None:
    vault = emulator_vault_factory(rbac=True)
    key_id, wrapped = _wrapped(vault, "rbac")
    app = vault.principal()
    assignment = vault.client.create_role_assignment(
        app, "Key Vault Crypto Service Encryption User", vault=vault.name, key="rbac"
    )
    crypto = vault.crypto_client(key_id, object_id=app)
    assert crypto.unwrap_key(ALG, wrapped).key == b"\x11" * 32
    vault.client.delete_role_assignment(assignment["name"])
    with pytest.raises(HttpResponseError) as refused:
        crypto.unwrap_key(ALG, wrapped)
    assert _refusal(refused) == (403, "Forbidden", "ForbiddenByRbac")
    assert refused.value.message is not None
    assert "Microsoft.KeyVault/vaults/keys/unwrap/action" in refused.value.message


def test_rbac_roles_grant_their_data_actions(emulator_vault_factory: VaultFactory) -> None:
    vault = emulator_vault_factory(rbac=True)
    key_id, wrapped = _wrapped(vault, "roles")
    vault.client.create_key(vault.name, "other")

    def can(object_id: str, action: str) -> bool:
        try:
            if action == "get":
                vault.key_client(object_id=object_id).get_key("roles")
            elif action == "create":
                vault.key_client(object_id=object_id).create_rsa_key("roles")
            elif action == "unwrap":
                vault.crypto_client(key_id, object_id=object_id).unwrap_key(ALG, wrapped)
            elif action == "policy":
                vault.key_client(object_id=object_id).get_key_rotation_policy("roles")
            elif action == "other":
                vault.key_client(object_id=object_id).get_key("other")
        except HttpResponseError as refused:
            if refused.status_code != 403:
                raise
            return False
        return True

    reader = vault.principal(role="Key Vault Reader")
    user = vault.principal(role="Key Vault Crypto User")
    officer = vault.principal(role="Key Vault Crypto Officer")
    scoped = vault.principal()
    vault.client.create_role_assignment(
        scoped, "Key Vault Crypto Service Encryption User", vault=vault.name, key="roles"
    )
    assert [can(reader, a) for a in ("get", "unwrap", "create")] == [True, False, False]
    assert [can(user, a) for a in ("get", "unwrap", "create")] == [True, True, False]
    assert [can(officer, a) for a in ("get", "unwrap", "policy", "create")] == [True] * 4
    assert [can(scoped, a) for a in ("get", "unwrap", "other")] == [True, True, False]


def test_access_policy_vault_ignores_role_assignments(emulator_vault: EmulatorVault) -> None:
    app = emulator_vault.principal(role="Key Vault Administrator")
    emulator_vault.client.create_key(emulator_vault.name, "k")
    with pytest.raises(HttpResponseError) as refused:
        emulator_vault.key_client(object_id=app).get_key("k")
    assert _refusal(refused) == (403, "Forbidden", "AccessDenied")


def test_unauthenticated_gets_the_bearer_challenge(emulator_vault_factory: VaultFactory) -> None:
    vault = emulator_vault_factory()
    hsm = emulator_vault_factory(managed_hsm=True)
    ca = vault.emulator.ca_path
    for target, resource in ((vault, "vault"), (hsm, "managedhsm")):
        answer = requests.post(
            f"{target.url}/keys/k/{'0' * 32}/unwrapkey?api-version=2025-07-01", verify=ca
        )
        assert answer.status_code == 401
        assert answer.headers["WWW-Authenticate"] == (
            'Bearer authorization="https://login.microsoftonline.com/'
            '72f988bf-86f1-41af-91ab-2d7cd011db47", '
            f'resource="https://{resource}.azure.net"'
        )
        assert answer.json()["error"]["code"] == "Unauthorized"
    # A token for another audience is no token at all.
    arm_token = vault.credential().get_token("https://management.azure.com/.default").token
    wrong = requests.get(
        f"{vault.url}/keys?api-version=2025-07-01",
        headers={"Authorization": f"Bearer {arm_token}"},
        verify=ca,
    )
    assert wrong.status_code == 401
    # The SDK answers the challenge by itself.
    vault.client.create_key(vault.name, "k")
    assert vault.key_client().get_key("k").name == "k"
    assert vault.client.counters(vault.name)["vault"]["unauthenticated"] >= 2


def test_token_from_another_tenant_is_challenged(emulator_vault_factory: VaultFactory) -> None:
    tenant = "0a0b0c0d-0000-4000-8000-000000000001"
    vault = emulator_vault_factory(tenant_id=tenant)
    vault.client.create_key(vault.name, "k")
    foreign = vault.credential().get_token("https://vault.azure.net/.default").token
    answer = requests.get(
        f"{vault.url}/keys/k?api-version=2025-07-01",
        headers={"Authorization": f"Bearer {foreign}"},
        verify=vault.emulator.ca_path,
    )
    assert answer.status_code == 401
    assert answer.json()["error"]["message"].startswith("AKV10032: Invalid issuer.")
    assert f"login.microsoftonline.com/{tenant}" in answer.headers["WWW-Authenticate"]
    # The SDK follows the challenge's tenant and asks the credential for a token there.
    assert vault.key_client().get_key("k").name == "k"
