"""The Face adapter's account_from_arm against the published ARM examples (pure: no SDK call)."""

from __future__ import annotations

import json
from typing import Any

from shared.adapters.arm_face import account_from_arm
from tests.conftest import REFERENCE

ARM = REFERENCE / "specs" / "arm" / "cognitiveservices"


def create_account_example() -> dict[str, Any]:
    example = json.loads((ARM / "2024-10-01_CreateAccount.json").read_text())
    return dict(example["responses"]["200"]["body"])


def test_the_published_example_is_not_face_so_it_is_not_tracked() -> None:
    assert account_from_arm(create_account_example()) is None


def test_the_published_example_as_a_face_account() -> None:
    body = create_account_example()
    body["kind"] = "Face"
    body["tags"] = {"owner": "team"}
    acct = account_from_arm(body)
    assert acct is not None
    assert acct.name == "testCreate1"
    assert acct.subscription_id == "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
    assert acct.resource_group == "myResourceGroup"
    assert acct.key_vault_uri == "https://pltfrmscrts-use-pc-dev.vault.azure.net"
    assert acct.key_name == "FakeKeyName"
    assert acct.key_version == "891cf236-d241-4738-9462-d506af493dfa"
    assert acct.identity.principal_id == "b5cf119e-a5c2-42c7-802f-592e0efb169f"
    assert acct.identity.effective_principal_id == acct.identity.principal_id
    assert acct.sku == "S0"
    assert acct.location == "West US"
    assert dict(acct.tags) == {"owner": "team"}


def test_user_assigned_identity_from_identity_client_id() -> None:
    scope = json.loads((ARM / "2025-12-01_GetEncryptionScope.json").read_text())
    kv = scope["responses"]["200"]["body"]["properties"]["keyVaultProperties"]
    body = create_account_example()
    body["kind"] = "face"
    body["properties"]["encryption"]["keyVaultProperties"] = kv
    body["identity"] = {
        "type": "UserAssigned",
        "userAssignedIdentities": {
            "/subscriptions/x/resourceGroups/y/providers/Microsoft.ManagedIdentity/"
            "userAssignedIdentities/face-id": {
                "principalId": "11111111-2222-3333-4444-555555555555",
                "clientId": kv["identityClientId"],
            }
        },
    }
    acct = account_from_arm(body)
    assert acct is not None
    assert acct.identity.client_id == kv["identityClientId"]
    assert acct.identity.effective_principal_id == "11111111-2222-3333-4444-555555555555"
    assert acct.key_version == "9f85549d7bf14ff4bf178c10d3bdca95"


def test_microsoft_managed_keys_are_not_tracked() -> None:
    body = create_account_example()
    body["kind"] = "Face"
    body["properties"]["encryption"] = {"keySource": "Microsoft.CognitiveServices"}
    assert account_from_arm(body) is None


def test_empty_key_version_means_unpinned() -> None:
    body = create_account_example()
    body["kind"] = "Face"
    body["properties"]["encryption"]["keyVaultProperties"]["keyVersion"] = ""
    acct = account_from_arm(body)
    assert acct is not None
    assert acct.key_version is None
    assert acct.key_id == acct.key_ref
