"""A Face account with a customer-managed key, as keyward needs to see it.

Built by the ARM inventory adapter from a ``Microsoft.CognitiveServices/accounts`` resource
(``account_from_arm`` does the mapping on plain dicts, so it is tested against the published
ARM examples without the SDK). Only accounts of kind ``Face`` whose
``properties.encryption.keySource`` is ``Microsoft.KeyVault`` are tracked: the others cannot
lose access to a key they do not use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from urllib.parse import urlsplit

FACE_KIND = "Face"
KEY_SOURCE_KEY_VAULT = "Microsoft.KeyVault"


def normalize_vault_uri(uri: str) -> str:
    """``https://host[:port]`` lower-case, default port and trailing slash removed.

    ARM returns ``keyVaultUri`` with a trailing slash and Key Vault returns ``kid`` without;
    both must compare equal.
    """
    try:
        parts = urlsplit(uri.strip())
    except ValueError:
        return uri.strip().lower()
    netloc = parts.netloc.lower().removesuffix(":443")
    return f"{parts.scheme.lower()}://{netloc}"


@dataclass(frozen=True)
class AccountIdentity:
    """The managed identity the account uses to reach its key.

    Attributes:
        principal_id: object id of the system-assigned identity (what access policies and
            role assignments name), when known.
        client_id: ``keyVaultProperties.identityClientId`` when a user-assigned identity is
            used for the key; ``None`` for the system-assigned identity.
        user_assigned_principal_id: object id of that user-assigned identity, when resolved.
    """

    principal_id: str | None = None
    client_id: str | None = None
    user_assigned_principal_id: str | None = None

    @property
    def effective_principal_id(self) -> str | None:
        """The object id Key Vault sees: the user-assigned one when the key names it."""
        if self.client_id:
            return self.user_assigned_principal_id
        return self.principal_id

    @property
    def exists(self) -> bool:
        return bool(self.principal_id or self.client_id)


@dataclass(frozen=True)
class FaceAccount:
    """One tracked account.

    Attributes:
        id: the ARM resource id.
        key_vault_uri: normalised (``https://host``), see ``normalize_vault_uri``.
        key_version: the pinned version, or ``None`` when the account follows the latest.
        tags: the owner's tags, read-only; keyward only ever adds ``keyward-cmk-status``.
    """

    id: str
    name: str
    subscription_id: str
    resource_group: str
    kind: str
    sku: str | None
    location: str | None
    key_vault_uri: str
    key_name: str
    key_version: str | None
    identity: AccountIdentity
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key_vault_uri", normalize_vault_uri(self.key_vault_uri))
        object.__setattr__(self, "tags", MappingProxyType(dict(self.tags)))
        if self.key_version is not None:
            object.__setattr__(self, "key_version", self.key_version.strip().lower() or None)

    @property
    def key_ref(self) -> str:
        """The unversioned key id the account points at."""
        return f"{self.key_vault_uri}/keys/{self.key_name}"

    @property
    def key_id(self) -> str:
        """The key id the account uses: versioned when pinned."""
        return f"{self.key_ref}/{self.key_version}" if self.key_version else self.key_ref


def account_from_arm(resource: Mapping[str, object]) -> FaceAccount | None:
    """Map an ARM account resource (the REST JSON shape) to a ``FaceAccount``.

    Returns ``None`` for accounts keyward does not track: other kinds, or Microsoft-managed
    keys. Reads both ``properties.encryption`` and the newer ``identityClientId`` field.
    """
    if str(resource.get("kind", "")).lower() != FACE_KIND.lower():
        return None
    props = _dict(resource.get("properties"))
    encryption = _dict(props.get("encryption"))
    if str(encryption.get("keySource", "")).lower() != KEY_SOURCE_KEY_VAULT.lower():
        return None
    kv = _dict(encryption.get("keyVaultProperties"))
    key_vault_uri, key_name = _text(kv.get("keyVaultUri")), _text(kv.get("keyName"))
    if not key_vault_uri or not key_name:
        return None
    resource_id = _text(resource.get("id")) or ""
    segments = resource_id.split("/")
    identity = _dict(resource.get("identity"))
    client_id = _text(kv.get("identityClientId"))
    user_principal = None
    if client_id:
        for value in _dict(identity.get("userAssignedIdentities")).values():
            entry = _dict(value)
            if str(entry.get("clientId", "")).lower() == client_id.lower():
                user_principal = _text(entry.get("principalId"))
    return FaceAccount(
        id=resource_id,
        name=_text(resource.get("name")) or "",
        subscription_id=segments[2].lower() if len(segments) > 2 else "",
        resource_group=segments[4] if len(segments) > 4 else "",
        kind=str(resource.get("kind")),
        sku=_text(_dict(resource.get("sku")).get("name")),
        location=_text(resource.get("location")),
        key_vault_uri=key_vault_uri,
        key_name=key_name,
        key_version=_text(kv.get("keyVersion")),
        identity=AccountIdentity(
            principal_id=_text(identity.get("principalId")),
            client_id=client_id,
            user_assigned_principal_id=user_principal,
        ),
        tags={str(k): str(v) for k, v in _dict(resource.get("tags")).items()},
    )


def _dict(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


def _text(value: object) -> str | None:
    return value.strip() or None if isinstance(value, str) else None
