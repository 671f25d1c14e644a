"""``storage_from_arm`` against the published ARM example (pure).

The body is the 200 response of Azure/azure-rest-api-specs
``specification/storage/resource-manager/Microsoft.Storage/stable/2023-05-01/examples/
StorageAccountCreateUserAssignedEncryptionIdentityWithCMK.json`` (endpoints trimmed): a
user-assigned identity named by ``encryption.identity.userAssignedIdentity`` (in another
casing than ``identity.userAssignedIdentities``' key) and an empty ``keyversion``.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from shared.adapters.arm_cognitive import cognitive_from_arm
from shared.adapters.arm_storage import storage_from_arm
from shared.composition._dependents import COGNITIVE_KINDS, KINDS, STORAGE_RULES

UAI = (
    "/subscriptions/{subscription-id}/resourceGroups/res9101/providers/"
    "Microsoft.ManagedIdentity/userAssignedIdentities/{managed-identity-name}"
)
EXAMPLE: dict[str, Any] = {
    "identity": {
        "userAssignedIdentities": {
            UAI: {
                "principalId": "8d823284-1060-42a5-9ec4-ed3d831e24d7",
                "clientId": "fbaa6278-1ecc-415c-819f-6e2058d3acb5",
            }
        },
        "type": "UserAssigned",
    },
    "sku": {"name": "Standard_LRS", "tier": "Standard"},
    "kind": "StorageV2",
    "id": "/subscriptions/{subscription-id}/resourceGroups/res9101/providers/"
    "Microsoft.Storage/storageAccounts/sto4445",
    "name": "sto4445",
    "type": "Microsoft.Storage/storageAccounts",
    "location": "eastus",
    "tags": {},
    "properties": {
        "encryption": {
            "identity": {"userAssignedIdentity": UAI.replace("resourceGroups", "resourcegroups")},
            "keyvaultproperties": {
                "keyvaulturi": "https://myvault8569.vault.azure.net",
                "keyname": "wrappingKey",
                "keyversion": "",
                "currentVersionedKeyIdentifier": "https://myvault8569.vault.azure.net/keys/"
                "wrappingKey/0682afdd9c104f4285df20107e956cad",
                "lastKeyRotationTimestamp": "2019-12-13T20:36:23.7023290Z",
            },
            "keySource": "Microsoft.Keyvault",
        },
        "provisioningState": "Succeeded",
    },
}


def test_the_published_example_follows_the_latest_version_with_its_user_assigned_identity() -> None:
    resource = storage_from_arm(EXAMPLE)
    assert resource is not None
    assert resource.key_version is None, "an empty keyversion follows the latest: never pinned"
    assert resource.key_ref == "https://myvault8569.vault.azure.net/keys/wrappingKey"
    assert resource.identity.client_id == "fbaa6278-1ecc-415c-819f-6e2058d3acb5"
    assert resource.identity.effective_principal_id == "8d823284-1060-42a5-9ec4-ed3d831e24d7"
    assert (resource.kind, resource.sku, resource.name) == ("StorageV2", "Standard_LRS", "sto4445")


def test_a_pinned_version_and_microsoft_managed_keys() -> None:
    pinned = copy.deepcopy(EXAMPLE)
    pinned["properties"]["encryption"]["keyvaultproperties"]["keyversion"] = "ABC123"
    resource = storage_from_arm(pinned)
    assert resource is not None
    assert resource.key_version == "abc123"
    managed = copy.deepcopy(EXAMPLE)
    managed["properties"]["encryption"] = {"keySource": "Microsoft.Storage"}
    assert storage_from_arm(managed) is None
    assert cognitive_from_arm(EXAMPLE, COGNITIVE_KINDS) is None, "not a Cognitive account"


def test_every_kind_has_its_own_rules_labels_and_partition() -> None:
    assert [k.name for k in KINDS] == ["face", "cognitive", "storage"]
    assert len({k.labels.flag_partition for k in KINDS}) == len(KINDS)
    assert len({k.labels.event_type_prefix for k in KINDS}) == len(KINDS)
    storage = next(k for k in KINDS if k.name == "storage")
    assert storage.rules is STORAGE_RULES
    assert 4096 in STORAGE_RULES.key_sizes
    for kind in ("OpenAI", "SpeechServices", "TextAnalytics", "FormRecognizer", "AIServices"):
        assert kind in COGNITIVE_KINDS, kind
    assert "Face" not in COGNITIVE_KINDS
    assert "face" not in COGNITIVE_KINDS


def _following(identifier: object) -> dict[str, Any]:
    body = copy.deepcopy(EXAMPLE)
    kv = body["properties"]["encryption"]["keyvaultproperties"]
    if identifier is None:
        del kv["currentVersionedKeyIdentifier"]
    else:
        kv["currentVersionedKeyIdentifier"] = identifier
    return body


def test_following_the_latest_reads_the_version_in_use_from_arm() -> None:
    resource = storage_from_arm(EXAMPLE)
    assert resource is not None
    assert resource.version_in_use == "0682afdd9c104f4285df20107e956cad"
    assert not resource.version_in_use_unknown
    pinned = copy.deepcopy(EXAMPLE)
    pinned["properties"]["encryption"]["keyvaultproperties"]["keyversion"] = "abc123"
    resource = storage_from_arm(pinned)
    assert resource is not None
    assert (resource.key_version, resource.version_in_use) == ("abc123", None)
    assert not resource.version_in_use_unknown, "a pin is its own version in use"


@pytest.mark.parametrize(
    "identifier",
    [
        None,  # missing
        "",
        "https://myvault8569.vault.azure.net/keys/wrappingKey",  # no version
        "https://myvault8569.vault.azure.net/keys/otherKey/0682afdd9c104f4285df20107e956cad",
        "https://elsewhere.vault.azure.net/keys/wrappingKey/0682afdd9c104f4285df20107e956cad",
        "https://myvault8569.vault.azure.net/secrets/wrappingKey/0682afdd9c104f42",
        "not a url at all",
        42,
    ],
)
def test_a_missing_or_unreadable_version_in_use_is_unknown(identifier: object) -> None:
    resource = storage_from_arm(_following(identifier))
    assert resource is not None
    assert (resource.key_version, resource.version_in_use) == (None, None)
    assert resource.version_in_use_unknown


def test_the_identifier_may_spell_the_vault_with_its_port_and_another_case() -> None:
    resource = storage_from_arm(
        _following("https://MYVAULT8569.vault.azure.net:443/keys/WRAPPINGKEY/0682AFDD9C104F42")
    )
    assert resource is not None
    assert resource.version_in_use == "0682afdd9c104f42"
