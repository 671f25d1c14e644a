"""Builders: a healthy account and healthy facts, to be broken one fact at a time."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.dependents import (
    KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER,
    AccountIdentity,
    DependentResource,
    IdentityAccess,
    KeyAccessFacts,
    KeyFacts,
    KeyPresence,
    KeyVersionFacts,
    VaultFacts,
)

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
VAULT_URI = "https://contoso-kv.vault.azure.net/"
OLD = "0123456789abcdef0123456789abcdef"
NEW = "fedcba9876543210fedcba9876543210"
ACCOUNT_ID = (
    "/subscriptions/0f5a3c2e-1111-4222-8333-944455556666/resourceGroups/rg-face/providers/"
    "Microsoft.CognitiveServices/accounts/face-west"
)


def account(**changes: Any) -> DependentResource:
    base = DependentResource(
        id=ACCOUNT_ID,
        name="face-west",
        subscription_id="0f5a3c2e-1111-4222-8333-944455556666",
        resource_group="rg-face",
        kind="Face",
        sku="E0",
        location="westus",
        key_vault_uri=VAULT_URI,
        key_name="face-cmk",
        key_version=None,
        identity=AccountIdentity(principal_id="b5cf119e-a5c2-42c7-802f-592e0efb169f"),
        tags={"owner": "team-vision"},
    )
    return replace(base, **changes)


def version(v: str = NEW, **changes: Any) -> KeyVersionFacts:
    base = KeyVersionFacts(
        version=v,
        enabled=True,
        nbf=NOW - timedelta(days=100),
        exp=NOW + timedelta(days=365),
        key_ops=("wrapKey", "unwrapKey", "encrypt", "decrypt"),
        kty="RSA",
        key_size=2048,
        created=NOW - timedelta(days=100),
    )
    return replace(base, **changes)


def key(*versions: KeyVersionFacts, current: str = NEW) -> KeyFacts:
    return KeyFacts(
        presence=KeyPresence.PRESENT,
        kid=f"https://contoso-kv.vault.azure.net/keys/face-cmk/{current}",
        current_version=current,
        versions=versions or (version(OLD, created=NOW - timedelta(days=400)), version(NEW)),
    )


def facts(**changes: Any) -> KeyAccessFacts:
    base = KeyAccessFacts(
        vault=VaultFacts(exists=True, soft_delete=True, purge_protection=True, rbac=True),
        key=key(),
        access=IdentityAccess(
            role_definition_ids=frozenset(
                {
                    "/subscriptions/0f5a3c2e-1111-4222-8333-944455556666/providers/"
                    f"Microsoft.Authorization/roleDefinitions/{KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER}"
                }
            )
        ),
    )
    return replace(base, **changes)
