"""The ``storage`` kind's adapter: storage accounts with a customer-managed key in Key Vault.

A storage account's CMK is ``properties.encryption`` with ``keySource`` ``Microsoft.Keyvault``
and ``keyvaultproperties`` ``{keyvaulturi, keyname, keyversion}`` (lower-case names, unlike
Cognitive Services). An empty ``keyversion`` means the account follows the key's latest
version: Azure Storage picks a new version up by itself, but only within a day, so such an
account is never pinned and never re-pointed, yet until it has moved it still uses the older
version. ARM says which version it uses now in ``keyvaultproperties
.currentVersionedKeyIdentifier`` (the SDK's ``current_versioned_key_identifier``, read-only;
beside ``lastKeyRotationTimestamp``): :func:`storage_from_arm` reads that version as
``version_in_use``, which the retirement report counts like a pin (a blocker). When the field
is missing or does not name a version of the account's key, ``version_in_use_unknown`` is set
and the report blocks every older version of the key ("version in use unknown") rather than
call one safe. The identity used for
the key is ``encryption.identity.userAssignedIdentity`` (an ARM id) when set, else the
system-assigned one.

:func:`storage_from_arm` maps ARM's REST JSON (also a Resource Graph row) to a
``DependentResource``; it is pure. :class:`ArmStorageInventory` lists per subscription (and
resource group) over azure-mgmt-storage (aio): the fallback where Resource Graph is refused.
:class:`ArmStorageAccountWriter` re-points (``keyversion`` only) and tags, always from a
fresh GET and by PATCH (``StorageAccounts_Update``, synchronous in ARM), writing only
keyward's ``keyward-*`` tags over the owner's current ones.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from azure.mgmt.storage.aio import StorageManagementClient

from shared.adapters._arm_listing import list_in_scope
from shared.adapters._azure_errors import translated
from shared.adapters.arm import ArmClients
from shared.adapters.arm_cognitive import KEYWARD_TAG_PREFIX, as_dict, resource_from_arm, text
from shared.dependents import DependentResource, identity_from_arm, normalize_vault_uri
from shared.errors import InvalidInputError, KeyNotFoundError
from shared.events import parse_resource_id

_LOG = logging.getLogger(__name__)
RESOURCE_TYPE = "Microsoft.Storage/storageAccounts"
KEY_SOURCE_KEY_VAULT = "Microsoft.Keyvault"


def parse_storage_id(resource_id: str) -> tuple[str, str, str]:
    """(subscription, resource group, account name) of a storage account's ARM id.

    Raises:
        InvalidInputError: not a ``Microsoft.Storage/storageAccounts`` id.
    """
    found = parse_resource_id(resource_id, "Microsoft.Storage", "storageAccounts")
    if found is None:
        raise InvalidInputError(f"not a storage account id: {resource_id[:300]!r}")
    return found


def version_from_key_identifier(
    identifier: str | None, key_vault_uri: str, key_name: str
) -> str | None:
    """The version in ``identifier`` (``https://vault/keys/{name}/{version}``) when it names a
    version of ``key_name`` in the vault at ``key_vault_uri``; ``None`` otherwise (missing,
    another key or vault, no version)."""
    if not identifier:
        return None
    try:
        parts = urlsplit(identifier.strip())
    except ValueError:
        return None
    segments = [s for s in parts.path.split("/") if s]
    vault = normalize_vault_uri(f"{parts.scheme}://{parts.netloc}")
    if (
        len(segments) != 3
        or segments[0].lower() != "keys"
        or segments[1].lower() != key_name.lower()
        or vault != normalize_vault_uri(key_vault_uri)
        or not segments[2].isalnum()
    ):
        return None
    return segments[2].lower()


def storage_from_arm(resource: Mapping[str, object]) -> DependentResource | None:
    """Map a storage account (ARM's REST JSON) to a ``DependentResource``; ``None`` when it
    is not a storage account or its key is not in Key Vault."""
    if str(resource.get("type") or "").lower() != RESOURCE_TYPE.lower():
        return None
    encryption = as_dict(as_dict(resource.get("properties")).get("encryption"))
    if str(encryption.get("keySource", "")).lower() != KEY_SOURCE_KEY_VAULT.lower():
        return None
    kv = as_dict(encryption.get("keyvaultproperties"))
    key_vault_uri, key_name = text(kv.get("keyvaulturi")), text(kv.get("keyname"))
    if not key_vault_uri or not key_name:
        return None
    assigned = text(as_dict(encryption.get("identity")).get("userAssignedIdentity"))
    pinned = text(kv.get("keyversion"))
    mapped = resource_from_arm(
        resource,
        key_vault_uri=key_vault_uri,
        key_name=key_name,
        key_version=pinned,
        identity=identity_from_arm(
            as_dict(resource.get("identity")), None, user_assigned_resource_id=assigned
        ),
    )
    if pinned:
        return mapped
    in_use = version_from_key_identifier(
        text(kv.get("currentVersionedKeyIdentifier")), key_vault_uri, key_name
    )
    return replace(mapped, version_in_use=in_use, version_in_use_unknown=in_use is None)


class ArmStorageInventory:
    """A :class:`shared.dependents.DependentInventory` over per-subscription ARM listings."""

    def __init__(
        self, arm: ArmClients, subscriptions: Sequence[str], *, resource_groups: Sequence[str] = ()
    ) -> None:
        self._arm = arm
        self._subscriptions = tuple(subscriptions)
        self._groups = tuple(resource_groups)

    async def list_accounts(self) -> Sequence[DependentResource]:
        """Every storage account with a Key Vault key in the configured scope, sorted by id.

        Raises:
            ServiceError: ARM refused or failed a listing.
        """
        return await list_in_scope(
            lambda subscription: (
                self._arm.get(StorageManagementClient, subscription).storage_accounts
            ),
            self._subscriptions,
            self._groups,
            "list storage accounts",
            lambda model: storage_from_arm(model.as_dict()),
        )


class ArmStorageAccountWriter:
    """A :class:`shared.dependents.DependentWriter` for storage accounts, by PATCH."""

    def __init__(self, arm: ArmClients) -> None:
        self._arm = arm

    async def _get(self, resource_id: str) -> tuple[Any, str, str, dict[str, Any]]:
        subscription, group, name = parse_storage_id(resource_id)
        accounts = self._arm.get(StorageManagementClient, subscription).storage_accounts
        with translated("read storage account"):
            current = await accounts.get_properties(group, name)
        return accounts, group, name, current.as_dict()

    async def set_tags(self, resource_id: str, tags: Mapping[str, str]) -> None:
        """Write keyward's tags from ``tags`` over the account's current tags (nothing is
        sent when it already carries them).

        Raises:
            InvalidInputError: ``resource_id`` is not a storage account id.
            ServiceError: ARM refused or failed the read or the update.
        """
        accounts, group, name, current = await self._get(resource_id)
        now = {str(k): str(v) for k, v in as_dict(current.get("tags")).items()}
        wanted = {**now, **{k: v for k, v in tags.items() if k.startswith(KEYWARD_TAG_PREFIX)}}
        if wanted == now:
            return
        with translated("tag storage account"):
            await accounts.update(group, name, {"tags": wanted})
        _LOG.info("tagged %s: %s", resource_id, sorted(set(wanted.items()) - set(now.items())))

    async def set_key_version(self, account: DependentResource, version: str) -> None:
        """Point ``account`` at ``version`` of the key it already uses (an account that
        follows the latest version is left alone: it needs no re-point).

        Raises:
            KeyNotFoundError: the account no longer uses a Key Vault key.
            ServiceError: ARM refused or failed the read or the update.
        """
        accounts, group, name, current = await self._get(account.id)
        encryption = as_dict(as_dict(current.get("properties")).get("encryption"))
        kv = as_dict(encryption.get("keyvaultproperties"))
        source = str(encryption.get("keySource", ""))
        if source.lower() != KEY_SOURCE_KEY_VAULT.lower() or not kv.get("keyname"):
            raise KeyNotFoundError(f"{account.id} no longer uses a Key Vault key")
        pinned = str(kv.get("keyversion") or "")
        if not pinned or pinned.lower() == version.lower():
            return
        body: dict[str, Any] = {
            "keySource": source,
            "keyvaultproperties": {
                "keyname": kv["keyname"],
                "keyvaulturi": kv.get("keyvaulturi"),
                "keyversion": version,
            },
        }
        if encryption.get("identity"):
            body["identity"] = dict(as_dict(encryption["identity"]))
        with translated("re-point storage account"):
            await accounts.update(group, name, {"properties": {"encryption": body}})
        _LOG.info("re-pointed %s to key version %s", account.id, version)
