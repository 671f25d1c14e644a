"""Azure AI services (Cognitive Services) accounts of every kind: mapping, inventory, writer.

Every Cognitive Services account kind (Face, OpenAI, SpeechServices, TextAnalytics/Language,
FormRecognizer, ComputerVision, AIServices...) has the same customer-managed-key shape,
``properties.encryption`` with ``keySource`` ``Microsoft.KeyVault`` and ``keyVaultProperties``
``{keyVaultUri, keyName, keyVersion, identityClientId}``, so one adapter serves them all; a
registry entry chooses which account kinds it tracks (:class:`AccountKinds`): the ``face``
kind tracks ``Face`` only, the ``cognitive`` kind every other account kind. The account's
ARM kind is kept on :class:`DependentResource` (``kind``) for display and reports.

:func:`cognitive_from_arm` maps ARM's REST JSON (also a Resource Graph row, see
``resource_graph``) to a ``DependentResource``; it is pure, so it is tested against the
published ARM examples. :class:`ArmCognitiveInventory` lists accounts per subscription (and
resource group): the fallback where Resource Graph is refused, and what
``KEYWARD_RESOURCE_GRAPH=false`` uses. :class:`ArmCognitiveAccountWriter` changes accounts,
always through ``begin_update`` (PATCH, a long-running operation in ARM) and always from a
fresh GET:

* ``set_tags`` writes only keyward's own tags (``keyward-*``) over the tags the account has
  *now*, so an owner's tag edit between the inventory and the write is never reverted, and
  skips the PATCH when nothing changes (which also makes a replayed write a no-op);
* ``set_key_version`` rewrites ``properties.encryption`` with only ``keyVersion`` changed
  (ARM replaces ``encryption`` as a whole on PATCH).

SDK errors leave as :mod:`shared.errors` types (``translated``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from azure.mgmt.cognitiveservices.aio import CognitiveServicesManagementClient
from azure.mgmt.cognitiveservices.models import Account, AccountProperties, Encryption

from shared.adapters._arm_listing import list_in_scope
from shared.adapters._azure_errors import translated
from shared.adapters.arm import ArmClients
from shared.dependents import AccountIdentity, DependentResource, identity_from_arm
from shared.errors import InvalidInputError, KeyNotFoundError
from shared.events import parse_resource_id

_LOG = logging.getLogger(__name__)
#: Tags keyward owns on a customer's resource; every other tag belongs to the owner.
KEYWARD_TAG_PREFIX = "keyward-"
RESOURCE_TYPE = "Microsoft.CognitiveServices/accounts"
KEY_SOURCE_KEY_VAULT = "Microsoft.KeyVault"


@dataclass(frozen=True)
class AccountKinds:
    """Which Cognitive Services account kinds a registry entry tracks (case-insensitive).

    Attributes:
        only: track these kinds alone (``{"Face"}``); empty: every kind not in ``excluded``.
        excluded: kinds another entry tracks (``{"Face"}`` for the ``cognitive`` entry).
    """

    only: frozenset[str] = frozenset()
    excluded: frozenset[str] = frozenset()

    def __contains__(self, kind: object) -> bool:
        wanted = str(kind).strip().lower()
        if not wanted:
            return False
        if self.only:
            return wanted in {k.lower() for k in self.only}
        return wanted not in {k.lower() for k in self.excluded}


def parse_account_id(resource_id: str) -> tuple[str, str, str]:
    """(subscription, resource group, account name) of an account's ARM id.

    Raises:
        InvalidInputError: not a ``Microsoft.CognitiveServices/accounts`` id.
    """
    found = parse_resource_id(resource_id, "Microsoft.CognitiveServices", "accounts")
    if found is None:
        raise InvalidInputError(f"not a Cognitive Services account id: {resource_id[:300]!r}")
    return found


def cognitive_from_arm(
    resource: Mapping[str, object], kinds: AccountKinds = AccountKinds()
) -> DependentResource | None:
    """Map an ARM account resource (the REST JSON shape) to a ``DependentResource``.

    Pure (plain dicts in, no SDK), so it is tested against the published ARM examples.

    Returns ``None`` for accounts keyward does not track: another resource type, account
    kinds not in ``kinds``, or Microsoft-managed keys. The identity used for the key
    (``identityClientId``, else the system-assigned one) is read by the domain's
    ``identity_from_arm``.
    """
    kind = str(resource.get("kind") or "")
    resource_type = str(resource.get("type") or RESOURCE_TYPE)
    if resource_type.lower() != RESOURCE_TYPE.lower() or kind not in kinds:
        return None
    props = as_dict(resource.get("properties"))
    encryption = as_dict(props.get("encryption"))
    if str(encryption.get("keySource", "")).lower() != KEY_SOURCE_KEY_VAULT.lower():
        return None
    kv = as_dict(encryption.get("keyVaultProperties"))
    key_vault_uri, key_name = text(kv.get("keyVaultUri")), text(kv.get("keyName"))
    if not key_vault_uri or not key_name:
        return None
    return resource_from_arm(
        resource,
        key_vault_uri=key_vault_uri,
        key_name=key_name,
        key_version=text(kv.get("keyVersion")),
        identity=identity_from_arm(as_dict(resource.get("identity")), kv),
    )


def resource_from_arm(
    resource: Mapping[str, object],
    *,
    key_vault_uri: str,
    key_name: str,
    key_version: str | None,
    identity: AccountIdentity,
) -> DependentResource:
    """The fields every kind reads the same way (id, name, scope, kind, sku, tags)."""
    resource_id = text(resource.get("id")) or ""
    segments = resource_id.split("/")
    return DependentResource(
        id=resource_id,
        name=text(resource.get("name")) or "",
        subscription_id=segments[2].lower() if len(segments) > 2 else "",
        resource_group=segments[4] if len(segments) > 4 else "",
        kind=str(resource.get("kind") or ""),
        sku=text(as_dict(resource.get("sku")).get("name")),
        location=text(resource.get("location")),
        key_vault_uri=key_vault_uri,
        key_name=key_name,
        key_version=key_version,
        identity=identity,
        tags={str(k): str(v) for k, v in as_dict(resource.get("tags")).items()},
    )


def as_dict(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


def text(value: object) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


class ArmCognitiveInventory:
    """A :class:`shared.dependents.DependentInventory` over per-subscription ARM listings."""

    def __init__(
        self,
        arm: ArmClients,
        subscriptions: Sequence[str],
        *,
        resource_groups: Sequence[str] = (),
        kinds: AccountKinds = AccountKinds(),
    ) -> None:
        self._subscriptions = tuple(subscriptions)
        self._groups = tuple(resource_groups)
        self._arm = arm
        self._kinds = kinds

    async def list_accounts(self) -> Sequence[DependentResource]:
        """Every tracked account in the configured scope, sorted by id.

        A resource group that does not exist in a subscription is skipped (the setting names
        groups across subscriptions).

        Raises:
            ServiceError: ARM refused or failed a listing (``transient`` says whether to retry).
        """
        return await list_in_scope(
            lambda subscription: (
                self._arm.get(CognitiveServicesManagementClient, subscription).accounts
            ),
            self._subscriptions,
            self._groups,
            "list Cognitive Services accounts",
            lambda model: cognitive_from_arm(model.serialize(keep_readonly=True), self._kinds),
        )


class ArmCognitiveAccountWriter:
    """A :class:`shared.dependents.DependentWriter`: tags and key version, by PATCH."""

    def __init__(self, arm: ArmClients) -> None:
        self._arm = arm

    async def _get(self, resource_id: str) -> tuple[Any, str, str, Account]:
        subscription, group, name = parse_account_id(resource_id)
        accounts = self._arm.get(CognitiveServicesManagementClient, subscription).accounts
        with translated("read Cognitive Services account"):
            current = await accounts.get(group, name)
        return accounts, group, name, current

    async def set_tags(self, resource_id: str, tags: Mapping[str, str]) -> None:
        """Write keyward's tags from ``tags`` over the account's current tags.

        Only ``keyward-*`` entries of ``tags`` are applied; the owner's tags are taken from a
        fresh GET, not from ``tags``. Nothing is sent when the account already carries them.

        Raises:
            InvalidInputError: ``resource_id`` is not an account id.
            ServiceError: ARM refused or failed the read or the update.
        """
        accounts, group, name, current = await self._get(resource_id)
        now = dict(current.tags or {})
        wanted = {**now, **{k: v for k, v in tags.items() if k.startswith(KEYWARD_TAG_PREFIX)}}
        if wanted == now:
            return
        with translated("tag Cognitive Services account"):
            poller = await accounts.begin_update(group, name, Account(tags=wanted))
            await poller.result()
        _LOG.info("tagged %s: %s", resource_id, sorted(set(wanted.items()) - set(now.items())))

    async def set_key_version(self, account: DependentResource, version: str) -> None:
        """Point ``account`` at ``version`` of the key it already uses.

        Raises:
            KeyNotFoundError: the account no longer uses a Key Vault key.
            ServiceError: ARM refused or failed the read or the update.
        """
        accounts, group, name, current = await self._get(account.id)
        encryption = current.properties.encryption if current.properties else None
        kv = encryption.key_vault_properties if encryption else None
        if encryption is None or kv is None or not kv.key_name:
            raise KeyNotFoundError(f"{account.id} no longer uses a Key Vault key")
        if (kv.key_version or "").lower() == version.lower():
            return
        kv.key_version = version
        body = Account(
            properties=AccountProperties(
                encryption=Encryption(key_source=encryption.key_source, key_vault_properties=kv)
            )
        )
        with translated("re-point Cognitive Services account"):
            poller = await accounts.begin_update(group, name, body)
            await poller.result()
        _LOG.info("re-pointed %s to key version %s", account.id, version)
