"""A resource that depends on a customer-managed key, as keyward needs to see it.

Every kind (Face and every other Azure AI services account kind, storage accounts) is mapped
to this one shape by its adapter's pure mapper (``shared.adapters.arm_cognitive
.cognitive_from_arm``, ``shared.adapters.arm_storage.storage_from_arm``; the same mapper
reads an ARM GET and a Resource Graph row), so verdicts, flags, rotation
follow-up and the index below work for any kind. Only resources whose key lives in Key Vault
are tracked: the others cannot lose access to a key they do not use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from urllib.parse import urlsplit

from shared.crypto import VaultAllowList


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
    """The managed identity the resource uses to reach its key.

    Attributes:
        principal_id: object id of the system-assigned identity (what access policies and
            role assignments name), when known.
        client_id: ``keyVaultProperties.identityClientId`` when a user-assigned identity is
            used for the key; ``None`` for the system-assigned identity.
        user_assigned_principal_id: object id of that user-assigned identity, when resolved.
        type: ARM's ``identity.type`` (``SystemAssigned``, ``UserAssigned``, both), if known.
        user_assigned: every user-assigned identity attached to the resource as
            (client id lower case, principal id) pairs; see ``shared.dependents._identity``.
    """

    principal_id: str | None = None
    client_id: str | None = None
    user_assigned_principal_id: str | None = None
    type: str | None = None
    user_assigned: tuple[tuple[str, str | None], ...] = ()

    @property
    def effective_principal_id(self) -> str | None:
        """The object id Key Vault sees: the user-assigned one when the key names it."""
        if self.client_id:
            return self.user_assigned_principal_id
        return self.principal_id

    @property
    def exists(self) -> bool:
        return bool(self.principal_id or self.client_id or self.user_assigned)


@dataclass(frozen=True)
class DependentResource:
    """One tracked resource (an "account": a Face, OpenAI, Speech... or storage account).

    Attributes:
        id: the ARM resource id.
        kind: the resource's kind as ARM names it (``Face``, ``OpenAI``, ``StorageV2``), for
            display and the retirement report.
        key_vault_uri: normalised (``https://host``), see ``normalize_vault_uri``.
        key_version: the pinned version, or ``None`` when the account follows the latest
            (a storage account's empty ``keyversion``): such a resource pins no version.
        tags: the owner's tags, read-only; keyward only ever adds ``keyward-cmk-status``.
        version_in_use: for a resource that follows the latest version, the version its
            service reports using now (a storage account's ``currentVersionedKeyIdentifier``:
            Azure Storage moves to a new version only within a day, so after a rotation it
            may still use the old one); ``None`` for a pinned resource or when not reported.
        version_in_use_unknown: the resource follows the latest version but its service
            did not say (or said unreadably) which version it uses: every older version may
            still be in use, so none of them may be called safe to disable.
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
    version_in_use: str | None = None
    version_in_use_unknown: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "key_vault_uri", normalize_vault_uri(self.key_vault_uri))
        object.__setattr__(self, "tags", MappingProxyType(dict(self.tags)))
        if self.key_version is not None:
            object.__setattr__(self, "key_version", self.key_version.strip().lower() or None)
        if self.version_in_use is not None:
            object.__setattr__(self, "version_in_use", self.version_in_use.strip().lower() or None)

    @property
    def key_ref(self) -> str:
        """The unversioned key id the account points at."""
        return f"{self.key_vault_uri}/keys/{self.key_name}"

    @property
    def key_id(self) -> str:
        """The key id the account uses: versioned when pinned."""
        return f"{self.key_ref}/{self.key_version}" if self.key_version else self.key_ref


def vault_name_for(vault_uri: str, allow_list: VaultAllowList) -> str:
    """The name of the vault at ``vault_uri``: from the allow-list (the only way to name a
    development origin), else the host's first label (``contoso`` of contoso.vault.azure.net).

    Access-change events name vaults this way, so scoping an event to resources needs it.
    """
    uri = normalize_vault_uri(vault_uri)
    for vault in allow_list.vaults:
        if normalize_vault_uri(vault.url) == uri:
            return vault.name
    host = uri.split("://", 1)[-1]
    return host.split(".", 1)[0].split(":", 1)[0].lower()
