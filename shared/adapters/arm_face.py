"""Face accounts in ARM: the inventory and the writer, over azure-mgmt-cognitiveservices (aio).

:class:`ArmFaceInventory` lists every Cognitive Services account of kind ``Face`` whose
``properties.encryption.keySource`` is ``Microsoft.KeyVault`` in the configured subscriptions
(and resource groups, when given). The SDK models are serialized back to ARM's REST shape and
mapped by the pure :func:`shared.face.account_from_arm`, so the same mapping is tested against
the published ARM examples without the SDK.

Why per-subscription listing: it needs only Reader on each subscription and no other SDK. For
thousands of subscriptions Azure Resource Graph answers the same question in one query; it
would replace this class behind the :class:`shared.face.FaceInventory` protocol (see
``docs/face.md``).

:class:`ArmFaceAccountWriter` changes accounts, always through ``begin_update`` (PATCH, a
long-running operation in ARM) and always from a fresh GET:

* ``set_tags`` writes only keyward's own tags (``keyward-*``) over the tags the account has
  *now*, so an owner's tag edit between the sweep's listing and the write is never reverted,
  and skips the PATCH when nothing changes (which also makes a replayed write a no-op);
* ``set_key_version`` rewrites ``properties.encryption`` with only ``keyVersion`` changed
  (ARM replaces ``encryption`` as a whole on PATCH).

SDK errors leave as :mod:`shared.errors` types (``translated``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from azure.core.credentials_async import AsyncTokenCredential
from azure.mgmt.cognitiveservices.aio import CognitiveServicesManagementClient
from azure.mgmt.cognitiveservices.models import Account, AccountProperties, Encryption

from shared.adapters._azure_errors import translated
from shared.errors import InvalidInputError, KeyNotFoundError, ServiceError
from shared.face import FaceAccount, account_from_arm

_LOG = logging.getLogger(__name__)
#: Tags keyward owns on a customer's resource; every other tag belongs to the owner.
KEYWARD_TAG_PREFIX = "keyward-"
#: The real ARM audience, also when ``base_url`` points at a sovereign cloud's ARM host.
ARM_SCOPE_SUFFIX = "/.default"


def management_kwargs(
    arm_endpoint: str, ca_bundle: str | None, *, polling_interval: float | None = None
) -> dict[str, Any]:
    """Keyword arguments shared by every azure-mgmt client keyward builds.

    ``credential_scopes`` is the endpoint's own audience (management.azure.com, or the
    sovereign cloud's); ``connection_verify`` is set only for the emulator's CA bundle.
    """
    endpoint = arm_endpoint.rstrip("/")
    audience = endpoint
    if endpoint.startswith(("https://127.0.0.1", "https://localhost")):
        audience = "https://management.azure.com"  # the emulator checks the real audience
    kwargs: dict[str, Any] = {
        "base_url": endpoint,
        "credential_scopes": [audience + ARM_SCOPE_SUFFIX],
    }
    if ca_bundle:
        kwargs["connection_verify"] = ca_bundle
    if polling_interval is not None:
        kwargs["polling_interval"] = polling_interval
    return kwargs


def parse_account_id(resource_id: str) -> tuple[str, str, str]:
    """(subscription, resource group, account name) of an account's ARM id.

    Raises:
        InvalidInputError: not a ``Microsoft.CognitiveServices/accounts`` id.
    """
    parts = resource_id.strip("/").split("/")
    if (
        len(parts) != 8
        or parts[0].lower() != "subscriptions"
        or parts[2].lower() != "resourcegroups"
        or parts[5].lower() != "microsoft.cognitiveservices"
        or parts[6].lower() != "accounts"
    ):
        raise InvalidInputError(f"not a Cognitive Services account id: {resource_id[:300]!r}")
    return parts[1], parts[3], parts[7]


class _Clients:
    """One management client per subscription, created on first use, closed together."""

    def __init__(self, credential: AsyncTokenCredential, kwargs: Mapping[str, Any]) -> None:
        self._credential = credential
        self._kwargs = dict(kwargs)
        self._clients: dict[str, CognitiveServicesManagementClient] = {}

    def get(self, subscription_id: str) -> CognitiveServicesManagementClient:
        key = subscription_id.lower()
        client = self._clients.get(key)
        if client is None:
            client = CognitiveServicesManagementClient(
                self._credential, subscription_id, **self._kwargs
            )
            self._clients[key] = client
        return client

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()


class ArmFaceInventory:
    """A :class:`shared.face.FaceInventory` over ARM listings."""

    def __init__(
        self,
        credential: AsyncTokenCredential,
        subscriptions: Sequence[str],
        *,
        resource_groups: Sequence[str] = (),
        client_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        self._subscriptions = tuple(subscriptions)
        self._groups = tuple(resource_groups)
        self._clients = _Clients(credential, client_kwargs or {})

    async def list_accounts(self) -> Sequence[FaceAccount]:
        """Every tracked account in the configured scope, sorted by id.

        A resource group that does not exist in a subscription is skipped (the setting names
        groups across subscriptions).

        Raises:
            ServiceError: ARM refused or failed a listing (``transient`` says whether to retry).
        """
        found: dict[str, FaceAccount] = {}
        for subscription in self._subscriptions:
            accounts = self._clients.get(subscription).accounts
            pagers = (
                [accounts.list_by_resource_group(g) for g in self._groups]
                if self._groups
                else [accounts.list()]
            )
            for pager in pagers:
                try:
                    with translated("list Cognitive Services accounts"):
                        async for model in pager:
                            account = account_from_arm(model.serialize(keep_readonly=True))
                            if account is not None:
                                found[account.id.lower()] = account
                except ServiceError as error:
                    if error.status == 404:
                        continue  # that resource group is not in this subscription
                    raise
        return [found[k] for k in sorted(found)]

    async def close(self) -> None:
        await self._clients.close()


class ArmFaceAccountWriter:
    """A :class:`shared.face.FaceAccountWriter`: tags and key version, by PATCH."""

    def __init__(
        self, credential: AsyncTokenCredential, *, client_kwargs: Mapping[str, Any] | None = None
    ) -> None:
        self._clients = _Clients(credential, client_kwargs or {})

    async def _get(self, resource_id: str) -> tuple[Any, str, str, Account]:
        subscription, group, name = parse_account_id(resource_id)
        accounts = self._clients.get(subscription).accounts
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

    async def set_key_version(self, account: FaceAccount, version: str) -> None:
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

    async def close(self) -> None:
        await self._clients.close()
