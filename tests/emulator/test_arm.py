"""The emulator's ARM surface through the real management SDKs.

azure-mgmt-keyvault (vaults, access policies, the RBAC switch), azure-mgmt-authorization
(role assignments) and azure-mgmt-cognitiveservices (accounts, long-running create/update) are
pointed at the emulator with ``base_url``; every change made through them is checked where it
matters: on the Key Vault data plane (403 after a permission goes) and in the events the
emulator publishes (compared key for key with Azure's samples).
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.cognitiveservices import CognitiveServicesManagementClient
from azure.mgmt.keyvault import KeyVaultManagementClient

from devtools.emulator.arm_client import ArmControl, cmk_encryption, management_client_kwargs
from devtools.emulator.auth import mint_token
from devtools.emulator.credential import EmulatorCredential
from devtools.emulator.eventgrid_client import EventGridControl
from devtools.emulator.pytest_plugin import EmulatorVault, RunningEmulator, VaultFactory
from devtools.emulator.state import (
    DEFAULT_RESOURCE_GROUP,
    DEFAULT_SUBSCRIPTION_ID,
    DEFAULT_TENANT_ID,
    ROLE_KEY_VAULT_CRYPTO_USER,
)

SUB = DEFAULT_SUBSCRIPTION_ID
RG = DEFAULT_RESOURCE_GROUP
SUB_TOPIC = f"/subscriptions/{SUB}"
POLICY_CHANGED = "Microsoft.KeyVault.VaultAccessPolicyChanged"
WRITE = "Microsoft.Resources.ResourceWriteSuccess"
DELETE = "Microsoft.Resources.ResourceDeleteSuccess"


@pytest.fixture
def operator(emulator: RunningEmulator) -> str:
    """A principal that calls ARM (ARM itself does not check its permissions here)."""
    return str(emulator.client.create_principal(display_name="arm-operator")["object_id"])


@pytest.fixture
def grid(emulator: RunningEmulator) -> EventGridControl:
    return EventGridControl(emulator.url, emulator.ca_path)


@pytest.fixture
def arm(emulator: RunningEmulator) -> Iterator[ArmControl]:
    control = ArmControl(emulator.url, emulator.ca_path)
    control.set_lro(seconds=0.0, retry_after="0.05")
    yield control
    control.set_lro(seconds=0.0, retry_after="1")


def _kwargs(emulator: RunningEmulator) -> dict[str, Any]:
    return management_client_kwargs(emulator.url, emulator.ca_path)


@pytest.fixture
def kv_mgmt(emulator: RunningEmulator, operator: str) -> KeyVaultManagementClient:
    return KeyVaultManagementClient(EmulatorCredential(operator), SUB, **_kwargs(emulator))


@pytest.fixture
def auth_mgmt(emulator: RunningEmulator, operator: str) -> AuthorizationManagementClient:
    return AuthorizationManagementClient(EmulatorCredential(operator), SUB, **_kwargs(emulator))


@pytest.fixture
def cog_mgmt(
    emulator: RunningEmulator, operator: str, arm: ArmControl
) -> CognitiveServicesManagementClient:
    return CognitiveServicesManagementClient(EmulatorCredential(operator), SUB, **_kwargs(emulator))


def _raw(
    emulator: RunningEmulator, method: str, path: str, token: str | None, body: Any = None
) -> tuple[int, dict[str, str], Any]:
    request = urllib.request.Request(
        emulator.url + path,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    context = ssl.create_default_context(cafile=emulator.ca_path)
    try:
        with urllib.request.urlopen(request, context=context) as response:
            return response.status, dict(response.headers), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or b"null")


def _arm_token(object_id: str) -> str:
    return mint_token(object_id, "https://management.azure.com")[0]


def _sample(reference_dir: Path, *parts: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(reference_dir.joinpath("specs", *parts).read_text())
    return loaded


def _events(grid: EventGridControl, topic: str, event_type: str) -> list[dict[str, Any]]:
    return grid.published(topic=topic, event_type=event_type)


# --- authentication and protocol ------------------------------------------------------------


def test_requests_without_a_token_get_arms_401(emulator: RunningEmulator) -> None:
    status, headers, body = _raw(
        emulator, "GET", f"/subscriptions/{SUB}/providers/Microsoft.KeyVault/vaults"
        "?api-version=2026-05-15", None
    )  # fmt: skip
    assert status == 401
    assert body["error"]["code"] == "AuthenticationFailed"
    assert headers["WWW-Authenticate"].startswith("Bearer ")


def test_a_vault_token_is_not_an_arm_token(emulator: RunningEmulator, operator: str) -> None:
    vault_token = mint_token(operator, "https://vault.azure.net")[0]
    status, _, body = _raw(
        emulator, "GET", f"/subscriptions/{SUB}/providers/Microsoft.KeyVault/vaults"
        "?api-version=2026-05-15", vault_token
    )  # fmt: skip
    assert status == 401
    assert body["error"]["code"] == "InvalidAuthenticationToken"


def test_sdk_maps_the_401_to_client_authentication_error(emulator: RunningEmulator) -> None:
    class NoScopeCredential(EmulatorCredential):
        def get_token_info(self, *scopes: str, options: Any = None) -> Any:
            return super().get_token_info("https://vault.azure.net/.default", options=options)

    client = KeyVaultManagementClient(NoScopeCredential("x"), SUB, **_kwargs(emulator))
    with pytest.raises(ClientAuthenticationError):
        list(client.vaults.list_by_subscription())


def test_api_version_is_required_and_checked(emulator: RunningEmulator, operator: str) -> None:
    path = f"/subscriptions/{SUB}/providers/Microsoft.KeyVault/vaults"
    status, _, body = _raw(emulator, "GET", path, _arm_token(operator))
    assert (status, body["error"]["code"]) == (400, "MissingApiVersionParameter")
    status, _, body = _raw(emulator, "GET", path + "?api-version=1999-01-01", _arm_token(operator))
    assert (status, body["error"]["code"]) == (400, "NoRegisteredProviderFound")


# --- Microsoft.KeyVault/vaults ----------------------------------------------------------------


def test_vault_get_and_lists_show_the_emulated_vault(
    kv_mgmt: KeyVaultManagementClient, emulator_vault_factory: VaultFactory
) -> None:
    vault = emulator_vault_factory(rbac=False, purge_protection=True)
    got = kv_mgmt.vaults.get(RG, vault.name)
    assert got.id == vault.arm_id
    assert got.properties.vault_uri == vault.url + "/"
    assert got.properties.enable_soft_delete is True
    assert got.properties.enable_purge_protection is True
    assert got.properties.enable_rbac_authorization is False
    assert [p.object_id for p in got.properties.access_policies] == [vault.admin_id]
    assert "wrapKey" in got.properties.access_policies[0].permissions.keys_property

    assert vault.name in {v.name for v in kv_mgmt.vaults.list_by_subscription()}
    assert vault.name in {v.name for v in kv_mgmt.vaults.list_by_resource_group(RG)}
    assert vault.name in {v.name for v in kv_mgmt.vaults.list()}
    with pytest.raises(ResourceNotFoundError):
        kv_mgmt.vaults.get("another-group", vault.name)


def test_vault_json_has_the_shape_of_the_published_example(
    emulator: RunningEmulator,
    operator: str,
    emulator_vault: EmulatorVault,
    reference_dir: Path,
) -> None:
    sample = _sample(reference_dir, "arm", "keyvault", "2025-05-01_getVault.json")
    expected = sample["responses"]["200"]["body"]
    status, _, body = _raw(
        emulator,
        "GET",
        f"{emulator_vault.arm_id}?api-version=2026-05-15",
        _arm_token(operator),
    )
    assert status == 200
    assert set(body) == set(expected)
    # hsmPoolResourceId is a retired property Azure still echoes in that example.
    assert set(expected["properties"]) - {"hsmPoolResourceId"} <= set(body["properties"])
    assert set(body["properties"]["accessPolicies"][0]) == set(
        expected["properties"]["accessPolicies"][0]
    )


def test_switching_to_rbac_takes_effect_on_the_data_plane_and_is_announced(
    kv_mgmt: KeyVaultManagementClient,
    emulator_vault: EmulatorVault,
    grid: EventGridControl,
) -> None:
    emulator_vault.client.create_key(emulator_vault.name, "k1")
    assert emulator_vault.key_client().get_key("k1").name == "k1"

    updated = kv_mgmt.vaults.update(
        RG, emulator_vault.name, {"properties": {"enableRbacAuthorization": True}}
    )
    assert updated.properties.enable_rbac_authorization is True
    with pytest.raises(HttpResponseError) as refused:
        emulator_vault.key_client().get_key("k1")
    assert refused.value.status_code == 403

    (changed,) = _events(grid, emulator_vault.arm_id, POLICY_CHANGED)
    assert changed["subject"] == emulator_vault.name
    assert changed["data"]["ObjectType"] == "Vault"
    assert changed["data"]["VaultName"] == emulator_vault.name
    writes = [e for e in _events(grid, SUB_TOPIC, WRITE) if e["subject"] == emulator_vault.arm_id]
    assert writes[-1]["data"]["operationName"] == "Microsoft.KeyVault/vaults/write"

    # A tag-only update changes no access: no new VaultAccessPolicyChanged.
    kv_mgmt.vaults.update(RG, emulator_vault.name, {"tags": {"team": "keyward"}})
    assert len(_events(grid, emulator_vault.arm_id, POLICY_CHANGED)) == 1
    assert kv_mgmt.vaults.get(RG, emulator_vault.name).tags == {"team": "keyward"}


def test_access_policy_add_replace_remove(
    kv_mgmt: KeyVaultManagementClient,
    emulator: RunningEmulator,
    emulator_vault: EmulatorVault,
    grid: EventGridControl,
) -> None:
    emulator_vault.client.create_key(emulator_vault.name, "k1")
    reader = str(emulator.client.create_principal(display_name="reader")["object_id"])
    with pytest.raises(HttpResponseError) as refused:
        emulator_vault.key_client(reader).get_key("k1")
    assert refused.value.status_code == 403

    def policy(*keys: str) -> dict[str, Any]:
        return {
            "properties": {
                "accessPolicies": [
                    {
                        "tenantId": DEFAULT_TENANT_ID,
                        "objectId": reader,
                        "permissions": {"keys": list(keys)},
                    }
                ]
            }
        }

    kv_mgmt.vaults.update_access_policy(RG, emulator_vault.name, "add", policy("get"))
    assert emulator_vault.key_client(reader).get_key("k1").name == "k1"
    kv_mgmt.vaults.update_access_policy(RG, emulator_vault.name, "add", policy("list"))
    kv_mgmt.vaults.update_access_policy(RG, emulator_vault.name, "replace", policy("wrapKey"))
    got = kv_mgmt.vaults.get(RG, emulator_vault.name)
    mine = [p for p in got.properties.access_policies if p.object_id == reader]
    assert mine[0].permissions.keys_property == ["wrapKey"]
    with pytest.raises(HttpResponseError) as refused:
        emulator_vault.key_client(reader).get_key("k1")
    assert refused.value.status_code == 403

    kv_mgmt.vaults.update_access_policy(RG, emulator_vault.name, "remove", policy("wrapKey"))
    got = kv_mgmt.vaults.get(RG, emulator_vault.name)
    assert reader not in {p.object_id for p in got.properties.access_policies}
    assert len(_events(grid, emulator_vault.arm_id, POLICY_CHANGED)) == 4


def test_purge_protection_cannot_be_switched_off(
    kv_mgmt: KeyVaultManagementClient, emulator_vault_factory: VaultFactory
) -> None:
    vault = emulator_vault_factory(purge_protection=True)
    with pytest.raises(HttpResponseError) as refused:
        kv_mgmt.vaults.update(RG, vault.name, {"properties": {"enablePurgeProtection": False}})
    assert refused.value.status_code == 400


def test_vault_create_serves_its_data_plane_and_delete_is_announced(
    kv_mgmt: KeyVaultManagementClient,
    emulator: RunningEmulator,
    operator: str,
    grid: EventGridControl,
) -> None:
    name = "kwarm" + uuid.uuid4().hex[:10]
    created = kv_mgmt.vaults.begin_create_or_update(
        RG,
        name,
        {
            "location": "westeurope",
            "properties": {
                "tenantId": DEFAULT_TENANT_ID,
                "sku": {"family": "A", "name": "standard"},
                "accessPolicies": [],
                "enableRbacAuthorization": True,
                "enablePurgeProtection": True,
            },
        },
    ).result()
    try:
        assert created.properties.enable_rbac_authorization is True
        assert created.properties.enable_purge_protection is True
        assert created.properties.vault_uri.startswith("https://127.0.0.1:")
        assert emulator.client.get_vault(name)["url"] + "/" == created.properties.vault_uri
        # The new vault's own port answers the data plane (the bearer challenge).
        context = ssl.create_default_context(cafile=emulator.ca_path)
        with pytest.raises(urllib.error.HTTPError) as challenge:
            urllib.request.urlopen(
                created.properties.vault_uri + "keys?api-version=2025-07-01", context=context
            )
        assert challenge.value.code == 401
    finally:
        kv_mgmt.vaults.delete(RG, name)
    with pytest.raises(ResourceNotFoundError):
        kv_mgmt.vaults.get(RG, name)
    # Its data plane is gone with it.
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(
            created.properties.vault_uri + "keys?api-version=2025-07-01",
            context=ssl.create_default_context(cafile=emulator.ca_path),
            timeout=5,
        )
    deletes = [e for e in _events(grid, SUB_TOPIC, DELETE) if e["subject"].endswith(f"/{name}")]
    assert deletes[0]["data"]["operationName"] == "Microsoft.KeyVault/vaults/delete"


# --- Microsoft.Authorization/roleAssignments --------------------------------------------------


def _role_id(guid: str) -> str:
    return f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{guid}"


def test_role_assignment_at_key_scope_create_list_delete(
    auth_mgmt: AuthorizationManagementClient,
    operator: str,
    emulator: RunningEmulator,
    emulator_vault_factory: VaultFactory,
    grid: EventGridControl,
) -> None:
    from azure.keyvault.keys.crypto import KeyWrapAlgorithm

    vault = emulator_vault_factory(rbac=True)
    vault.client.create_key(vault.name, "k1")
    face = str(emulator.client.create_principal(display_name="face")["object_id"])
    scope = f"{vault.arm_id}/keys/k1"
    name = str(uuid.uuid4())

    created = auth_mgmt.role_assignments.create(
        scope,
        name,
        {"role_definition_id": _role_id(ROLE_KEY_VAULT_CRYPTO_USER), "principal_id": face},
    )
    assert created.scope == scope
    assert created.principal_id == face
    key = vault.key_client(face).get_key("k1")
    assert (
        vault.crypto_client(key, face)
        .unwrap_key(
            KeyWrapAlgorithm.rsa_oaep_256,
            vault.crypto_client(key, face)
            .wrap_key(KeyWrapAlgorithm.rsa_oaep_256, b"k" * 32)
            .encrypted_key,
        )
        .key
        == b"k" * 32
    )

    assert auth_mgmt.role_assignments.get(scope, name).role_definition_id.endswith(
        ROLE_KEY_VAULT_CRYPTO_USER
    )
    at_key = {a.name for a in auth_mgmt.role_assignments.list_for_scope(scope, filter="atScope()")}
    assert name in at_key
    at_vault = {
        a.name for a in auth_mgmt.role_assignments.list_for_scope(vault.arm_id, filter="atScope()")
    }
    assert name not in at_vault  # atScope() is at or above, never below
    below = {a.name for a in auth_mgmt.role_assignments.list_for_scope(vault.arm_id)}
    assert name in below
    mine = list(auth_mgmt.role_assignments.list_for_subscription(filter=f"principalId eq '{face}'"))
    assert [a.name for a in mine] == [name]

    deleted = auth_mgmt.role_assignments.delete(scope, name)
    assert deleted is not None
    assert deleted.name == name
    with pytest.raises(HttpResponseError) as refused:
        vault.key_client(face).get_key("k1")
    assert refused.value.status_code == 403
    with pytest.raises(ResourceNotFoundError):
        auth_mgmt.role_assignments.get(scope, name)

    uri = f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}"
    (write,) = [e for e in _events(grid, SUB_TOPIC, WRITE) if e["subject"] == uri]
    (delete,) = [e for e in _events(grid, SUB_TOPIC, DELETE) if e["subject"] == uri]
    assert write["data"]["operationName"] == "Microsoft.Authorization/roleAssignments/write"
    assert delete["data"]["operationName"] == "Microsoft.Authorization/roleAssignments/delete"
    assert (
        write["data"]["claims"]["http://schemas.microsoft.com/identity/claims/objectidentifier"]
        == auth_mgmt._config.credential.object_id
    )  # type: ignore[attr-defined]


def test_role_assignment_refusals(
    auth_mgmt: AuthorizationManagementClient,
    emulator: RunningEmulator,
    emulator_vault_factory: VaultFactory,
) -> None:
    vault = emulator_vault_factory(rbac=True)
    role = _role_id(ROLE_KEY_VAULT_CRYPTO_USER)
    stranger = str(uuid.uuid4())
    with pytest.raises(HttpResponseError) as refused:
        auth_mgmt.role_assignments.create(
            vault.arm_id, str(uuid.uuid4()), {"role_definition_id": role, "principal_id": stranger}
        )
    assert refused.value.error is not None
    assert refused.value.error.code == "PrincipalNotFound"
    # With principalType, ARM skips the directory lookup (the replication-delay escape).
    auth_mgmt.role_assignments.create(
        vault.arm_id,
        str(uuid.uuid4()),
        {
            "role_definition_id": role,
            "principal_id": stranger,
            "principal_type": "ServicePrincipal",
        },
    )
    with pytest.raises(ResourceExistsError) as duplicate:
        auth_mgmt.role_assignments.create(
            vault.arm_id,
            str(uuid.uuid4()),
            {"role_definition_id": role, "principal_id": stranger, "principal_type": "User"},
        )
    assert duplicate.value.status_code == 409
    with pytest.raises(HttpResponseError) as bad_role:
        auth_mgmt.role_assignments.create(
            vault.arm_id,
            str(uuid.uuid4()),
            {
                "role_definition_id": _role_id(str(uuid.uuid4())),
                "principal_id": stranger,
                "principal_type": "User",
            },
        )
    assert bad_role.value.error is not None
    assert bad_role.value.error.code == "RoleDefinitionDoesNotExist"


def test_role_definitions_say_what_the_data_plane_enforces(
    auth_mgmt: AuthorizationManagementClient, emulator_vault: EmulatorVault
) -> None:
    """A caller can learn from ARM which data actions a role grants (keyward's RBAC check)."""
    from devtools.emulator.state import ROLE_KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER as CSEU

    role = auth_mgmt.role_definitions.get(emulator_vault.arm_id, CSEU)
    assert role.role_name == "Key Vault Crypto Service Encryption User"
    assert role.role_type == "BuiltInRole"
    (permission,) = role.permissions
    assert set(permission.data_actions) == {
        "Microsoft.KeyVault/vaults/keys/read",
        "Microsoft.KeyVault/vaults/keys/wrap/action",
        "Microsoft.KeyVault/vaults/keys/unwrap/action",
    }
    by_id = auth_mgmt.role_definitions.get_by_id(_role_id(CSEU))
    assert by_id.id == _role_id(CSEU)
    tenant_level = auth_mgmt.role_definitions.get_by_id(
        f"/providers/Microsoft.Authorization/roleDefinitions/{CSEU}"
    )
    assert tenant_level.role_name == role.role_name
    (named,) = auth_mgmt.role_definitions.list(
        emulator_vault.arm_id, filter="roleName eq 'Key Vault Crypto User'"
    )
    assert named.name == ROLE_KEY_VAULT_CRYPTO_USER
    with pytest.raises(ResourceNotFoundError):
        auth_mgmt.role_definitions.get(emulator_vault.arm_id, str(uuid.uuid4()))


# --- Microsoft.CognitiveServices/accounts -----------------------------------------------------


def test_seeded_face_account_lists_and_gets(
    cog_mgmt: CognitiveServicesManagementClient,
    arm: ArmControl,
    emulator_vault: EmulatorVault,
    reference_dir: Path,
) -> None:
    name = "face" + uuid.uuid4().hex[:8]
    seeded = arm.seed_account(
        name,
        identity="SystemAssigned",
        encryption=cmk_encryption(emulator_vault.url + "/", "cmk", "v1"),
        tags={"env": "test"},
    )
    principal = seeded["identity"]["principalId"]
    assert principal

    got = cog_mgmt.accounts.get(RG, name)
    assert got.kind == "Face"
    assert got.identity.principal_id == principal
    assert got.properties.encryption.key_source == "Microsoft.KeyVault"
    assert got.properties.encryption.key_vault_properties.key_name == "cmk"
    assert got.properties.encryption.key_vault_properties.key_version == "v1"
    assert got.properties.provisioning_state == "Succeeded"
    assert got.tags == {"env": "test"}
    assert name in {a.name for a in cog_mgmt.accounts.list()}
    assert name in {a.name for a in cog_mgmt.accounts.list_by_resource_group(RG)}

    sample = _sample(reference_dir, "arm", "cognitiveservices", "2024-10-01_CreateAccount.json")
    expected = sample["responses"]["200"]["body"]
    assert set(expected) <= set(seeded)
    assert set(expected["properties"]) - {"userOwnedStorage"} <= set(seeded["properties"])
    assert set(seeded["properties"]["encryption"]["keyVaultProperties"]) == set(
        expected["properties"]["encryption"]["keyVaultProperties"]
    )
    # The system identity is a principal the vault can grant access to.
    emulator_vault.client.set_access_policy(emulator_vault.name, principal, ["get", "wrapKey"])


def test_create_and_update_are_long_running_operations(
    cog_mgmt: CognitiveServicesManagementClient,
    emulator_vault: EmulatorVault,
    grid: EventGridControl,
) -> None:
    name = "face" + uuid.uuid4().hex[:8]
    created = cog_mgmt.accounts.begin_create(
        RG,
        name,
        {
            "location": "westeurope",
            "kind": "Face",
            "sku": {"name": "S0"},
            "identity": {"type": "SystemAssigned"},
            "tags": {"owner": "keyward"},
            "properties": {
                "customSubDomainName": name,
                "encryption": cmk_encryption(emulator_vault.url + "/", "cmk", "v1"),
            },
        },
    ).result()
    assert created.properties.provisioning_state == "Succeeded"
    assert created.properties.endpoint == f"https://{name}.cognitiveservices.azure.com/"
    assert created.identity.principal_id

    poller = cog_mgmt.accounts.begin_update(
        RG,
        name,
        {
            "tags": {"owner": "keyward", "keyward.flag": "stale"},
            "properties": {
                "encryption": cmk_encryption(emulator_vault.url + "/", "cmk", "v2"),
            },
        },
    )
    updated = poller.result()
    assert poller.status() == "Succeeded"
    assert updated.tags == {"owner": "keyward", "keyward.flag": "stale"}
    assert updated.properties.encryption.key_vault_properties.key_version == "v2"
    assert updated.identity.principal_id == created.identity.principal_id
    assert updated.properties.custom_sub_domain_name == name

    writes = [e for e in _events(grid, SUB_TOPIC, WRITE) if e["subject"].endswith(f"/{name}")]
    assert len(writes) == 2
    assert writes[0]["data"]["operationName"] == "Microsoft.CognitiveServices/accounts/write"
    cog_mgmt.accounts.begin_delete(RG, name).result()
    with pytest.raises(ResourceNotFoundError):
        cog_mgmt.accounts.get(RG, name)


def test_update_is_visible_only_when_the_operation_ends(
    cog_mgmt: CognitiveServicesManagementClient, arm: ArmControl
) -> None:
    name = "face" + uuid.uuid4().hex[:8]
    arm.seed_account(name, tags={"v": "1"})
    arm.set_lro(seconds=0.5)
    poller = cog_mgmt.accounts.begin_update(RG, name, {"tags": {"v": "2"}})
    during = cog_mgmt.accounts.get(RG, name)
    assert during.properties.provisioning_state == "Accepted"
    assert during.tags == {"v": "1"}
    assert poller.result().tags == {"v": "2"}
    assert cog_mgmt.accounts.get(RG, name).properties.provisioning_state == "Succeeded"


def test_a_write_during_an_operation_is_a_conflict(
    cog_mgmt: CognitiveServicesManagementClient, arm: ArmControl
) -> None:
    """Two quick updates of one account: ARM refuses the second until the first ends."""
    name = "face" + uuid.uuid4().hex[:8]
    arm.seed_account(name)
    arm.set_lro(seconds=0.5)
    first = cog_mgmt.accounts.begin_update(RG, name, {"tags": {"v": "1"}})
    with pytest.raises(ResourceExistsError) as conflict:
        cog_mgmt.accounts.begin_update(RG, name, {"tags": {"v": "2"}})
    assert conflict.value.status_code == 409
    assert conflict.value.error is not None
    assert conflict.value.error.code == "RequestConflict"
    assert first.result().tags == {"v": "1"}
    assert cog_mgmt.accounts.begin_update(RG, name, {"tags": {"v": "2"}}).result().tags == {
        "v": "2"
    }


def test_customer_managed_key_needs_an_identity(
    cog_mgmt: CognitiveServicesManagementClient, arm: ArmControl
) -> None:
    name = "face" + uuid.uuid4().hex[:8]
    arm.seed_account(name)
    with pytest.raises(HttpResponseError) as refused:
        cog_mgmt.accounts.begin_update(
            RG,
            name,
            {"properties": {"encryption": cmk_encryption("https://v/", "k", "1")}},
        )
    assert refused.value.status_code == 400


def test_user_assigned_identity_client_id(
    cog_mgmt: CognitiveServicesManagementClient, arm: ArmControl
) -> None:
    name = "face" + uuid.uuid4().hex[:8]
    uai = (
        f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/"
        f"Microsoft.ManagedIdentity/userAssignedIdentities/{name}-id"
    )
    seeded = arm.seed_account(
        name, identity={"type": "UserAssigned", "userAssignedIdentities": {uai: {}}}
    )
    client_id = seeded["identity"]["userAssignedIdentities"][uai]["clientId"]
    updated = cog_mgmt.accounts.begin_update(
        RG,
        name,
        {"properties": {"encryption": cmk_encryption("https://v/", "k", "1", client_id)}},
    ).result()
    assert updated.properties.encryption.key_vault_properties.identity_client_id == client_id
