"""What a customer-managed key must be and allow: roles, permissions, key types.

A kind whose service accepts other keys registers its own :class:`VerdictRules`; everything
else here holds for every resource that uses a Key Vault key as its CMK. A CMK needs
``get``, ``wrapKey`` and ``unwrapKey``. Roles are identified by their
role definition GUIDs (names can be localised or duplicated by custom roles; GUIDs cannot)
and judged from their definitions' data actions, built-in and custom alike, by
:mod:`shared.dependents._grants`; :data:`KEY_USE_ROLES` is kept for callers that only have
GUIDs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

KEY_VAULT_ADMINISTRATOR = "00482a5a-887f-4fb3-b363-3b7fe8e74483"
KEY_VAULT_CRYPTO_OFFICER = "14b46e9e-c2b7-41b4-b07b-48a6ebf60603"
KEY_VAULT_CRYPTO_USER = "12338af0-0e69-4776-bea7-57ae8d297424"
KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER = "e147488a-f6f5-4113-8e2d-b22465e65bf6"
KEY_VAULT_READER = "21090545-7ca7-4776-b22c-e363652d74d2"

#: Built-in roles granting get + wrapKey + unwrapKey on keys. Reader is deliberately absent.
KEY_USE_ROLES = frozenset(
    {
        KEY_VAULT_ADMINISTRATOR,
        KEY_VAULT_CRYPTO_OFFICER,
        KEY_VAULT_CRYPTO_USER,
        KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER,
    }
)
#: The access-policy key permissions a CMK needs.
REQUIRED_KEY_PERMISSIONS = ("get", "wrapKey", "unwrapKey")


def role_guid(role_definition_id: str) -> str:
    """The GUID of ``/subscriptions/.../roleDefinitions/{guid}`` (or of a bare GUID)."""
    return role_definition_id.strip().rstrip("/").rsplit("/", 1)[-1].lower()


def grants_key_use(role_definition_ids: Iterable[str]) -> bool:
    return any(role_guid(r) in KEY_USE_ROLES for r in role_definition_ids)


def missing_permissions(key_permissions: Iterable[str]) -> tuple[str, ...]:
    have = {p.strip().lower() for p in key_permissions}
    if "all" in have:
        return ()
    return tuple(p for p in REQUIRED_KEY_PERMISSIONS if p.lower() not in have)


@dataclass(frozen=True)
class VerdictRules:
    """The keys a kind's service accepts as its CMK (the verdict's ``UNSUPPORTED_KEY_TYPE``).

    Attributes:
        key_types: accepted ``kty`` values.
        key_sizes: accepted RSA sizes in bits.
        accepted: how the finding's detail names what is accepted.
        trusted_service: see the field.
    """

    key_types: frozenset[str] = frozenset({"RSA", "RSA-HSM"})
    key_sizes: frozenset[int] = frozenset({2048})
    accepted: str = "RSA 2048"
    #: Whether the kind's service is on Key Vault's trusted-services list (passes a closed
    #: firewall with ``bypass: AzureServices``); see :mod:`shared.dependents._network`.
    trusted_service: bool = True


#: Azure AI services (Face included) accept only RSA keys of 2048 bits for CMK; see docs/events.md.
CMK_RULES = VerdictRules()
