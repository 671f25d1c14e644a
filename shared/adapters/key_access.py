"""Gather :class:`shared.dependents.KeyAccessFacts` for one key-dependent resource.

The same for every kind (a Face account, later any resource with a customer-managed key):
the key, its vault and the resource's identity are all the facts look at.

Three sources, each asked only what it alone knows:

* **ARM, Key Vault provider** (azure-mgmt-keyvault): does the vault exist, soft delete, purge
  protection, RBAC mode, access policies. The account names its vault by URI only, so vaults
  are found by listing the subscriptions keyward watches (the account's own included) and
  matching ``vaultUri``; the location is cached, the properties are read fresh every time.
* **ARM, authorization** (azure-mgmt-authorization): role assignments of the account's
  identity at the key's scope or any scope above it.
* **Key Vault data plane**, through keyward's Key Vault adapter (the only module allowed to
  import ``azure.keyvault``): versions, attributes, ``key_ops``, type and size; see
  :mod:`shared.adapters._key_facts`. The vault must be on the allow-list first: a vault
  that is not is reported as unknown without any data-plane call.

Why "unknown" is reported rather than raised: one throttled or unreachable vault must not stop
a sweep, and it must never look like OK or LOST. A 429 anywhere gives ``THROTTLED``, a
connection failure or 5xx ``UNREACHABLE``; a vault ARM no longer lists whose host does not
answer either is gone (``VaultFacts(exists=False)``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from azure.mgmt.authorization.aio import AuthorizationManagementClient
from azure.mgmt.keyvault.aio import KeyVaultManagementClient

from shared.adapters._azure_errors import translated
from shared.adapters._key_facts import KeyFactsReader, KeyLookup
from shared.adapters.arm import ArmClients
from shared.adapters.keyvault import AsyncKeyVaultAdapter
from shared.crypto import VaultAllowList
from shared.dependents import (
    DependentResource,
    IdentityAccess,
    KeyAccessFacts,
    LookupStatus,
    VaultFacts,
    normalize_vault_uri,
    vault_name_for,
)
from shared.errors import KeywardError, ServiceError, ThrottledError

_LOG = logging.getLogger(__name__)
#: A vault URI no listing found is not searched for again within this many seconds (accounts
#: on vaults outside the watched subscriptions would otherwise cost a listing each).
MISS_TTL_SECONDS = 60.0


@dataclass(frozen=True)
class _VaultLocation:
    subscription_id: str
    resource_group: str
    name: str
    arm_id: str


class AzureKeyAccessReader:
    """A :class:`shared.dependents.KeyAccessReader` over ARM and the Key Vault adapter.

    ``subscriptions``: where vaults are searched besides the resource's own subscription
    (every subscription a registered kind watches). The ARM clients and the Key Vault
    adapter are the composition root's, shared with everything else.
    """

    def __init__(
        self,
        arm: ArmClients,
        allow_list: VaultAllowList,
        keyvault: AsyncKeyVaultAdapter,
        *,
        subscriptions: Sequence[str],
    ) -> None:
        self._arm = arm
        self._allow_list = allow_list
        self._keys = KeyFactsReader(keyvault)
        self._subscriptions = tuple(subscriptions)
        self._locations: dict[str, _VaultLocation] = {}
        self._by_name: dict[str, _VaultLocation] = {}
        self._listing = asyncio.Lock()
        #: vault URIs no listing found, and when: not listed again for MISS_TTL_SECONDS.
        self._missing: dict[str, float] = {}

    async def read(self, account: DependentResource) -> KeyAccessFacts:
        """Everything :func:`shared.dependents.evaluate` needs; never raises a ServiceError."""
        try:
            return await self._read(account)
        except ThrottledError as error:
            return KeyAccessFacts(lookup=LookupStatus.THROTTLED, detail=str(error))
        except ServiceError as error:
            if error.transient:
                return KeyAccessFacts(lookup=LookupStatus.UNREACHABLE, detail=str(error))
            _LOG.warning("facts for %s incomplete: %s", account.id, error)
            return KeyAccessFacts(detail=str(error))

    async def _read(self, account: DependentResource) -> KeyAccessFacts:
        location = await self._locate(account.key_vault_uri, account.subscription_id)
        vault_model = await self._vault(location) if location is not None else None
        if location is not None and vault_model is None:
            return KeyAccessFacts(vault=VaultFacts(exists=False), detail="ARM: vault not found")
        try:
            self._allow_list.check_key_id(account.key_ref, require_version=False)
        except KeywardError as error:
            # Not allow-listed: no data-plane call at all; the verdict says UNKNOWN.
            return KeyAccessFacts(vault=_vault_facts(vault_model), detail=str(error))
        lookup = await self._keys.read(account)
        if lookup.status is LookupStatus.UNREACHABLE and location is None:
            # ARM lists no such vault and its host does not answer: the vault is gone.
            return KeyAccessFacts(vault=VaultFacts(exists=False), detail=lookup.detail)
        if lookup.status is not LookupStatus.OK:
            return KeyAccessFacts(lookup=lookup.status, detail=lookup.detail)
        access = None
        if location is not None and vault_model is not None:
            access = await self._access(account, location, vault_model)
        return KeyAccessFacts(
            vault=_vault_facts(vault_model),
            key=lookup.key,
            access=access,
            detail=_detail(lookup, location),
        )

    # -- ARM: vaults -------------------------------------------------------------------------

    def _vaults(self, subscription_id: str) -> KeyVaultManagementClient:
        return self._arm.get(KeyVaultManagementClient, subscription_id)

    async def _locate(self, vault_uri: str, subscription_id: str) -> _VaultLocation | None:
        """Where ARM keeps the vault serving ``vault_uri``; listed again on a cache miss.

        Matched by ``vaultUri``, else by name (vault names are unique within a cloud), so an
        account that names its vault by another host still finds the vault's properties.

        Raises:
            ServiceError: a listing failed.
        """
        key = normalize_vault_uri(vault_uri)
        name = vault_name_for(key, self._allow_list)
        async with self._listing:  # one listing at a time: concurrent misses share it
            known = key in self._locations or name in self._by_name
            last_miss = self._missing.get(key)
            missed = last_miss is not None and time.monotonic() - last_miss < MISS_TTL_SECONDS
            if not known and not missed:
                for subscription in dict.fromkeys([subscription_id, *self._subscriptions]):
                    with translated("list key vaults"):
                        pager = self._vaults(subscription).vaults.list_by_subscription()
                        async for vault in pager:
                            self._remember(vault)
            location = self._locations.get(key) or self._by_name.get(name)
            if location is None and not missed:
                self._missing[key] = time.monotonic()  # searched now, found nowhere
        return location

    def _remember(self, vault: Any) -> None:
        uri = vault.properties.vault_uri if vault.properties else None
        parts = (vault.id or "").split("/")
        if uri and len(parts) > 8:
            location = _VaultLocation(parts[2], parts[4], parts[8], vault.id or "")
            self._locations[normalize_vault_uri(uri)] = location
            self._by_name[location.name.lower()] = location

    async def _vault(self, location: _VaultLocation) -> Any | None:
        """The vault's ARM model, or ``None`` when ARM says it no longer exists.

        Raises:
            ServiceError: any other failure.
        """
        client = self._vaults(location.subscription_id)
        try:
            with translated("read key vault"):
                return await client.vaults.get(location.resource_group, location.name)
        except ServiceError as error:
            if error.status != 404:
                raise
        self._locations = {k: v for k, v in self._locations.items() if v != location}
        self._by_name.pop(location.name.lower(), None)
        return None

    # -- ARM: access -------------------------------------------------------------------------

    async def _access(
        self, account: DependentResource, location: _VaultLocation, vault: Any
    ) -> IdentityAccess | None:
        principal = account.identity.effective_principal_id
        if principal is None:
            # No identity: evaluate reports IDENTITY_MISSING. A user-assigned identity whose
            # principal id ARM did not give: unknown.
            return IdentityAccess() if not account.identity.exists else None
        wanted = principal.lower()
        permissions: set[str] = set()
        for entry in vault.properties.access_policies or ():
            if (entry.object_id or "").lower() == wanted and entry.permissions is not None:
                permissions.update(
                    str(getattr(p, "value", p)) for p in entry.permissions.keys_property or ()
                )
        key_scope = f"{location.arm_id}/keys/{account.key_name}"
        roles: set[str] = set()
        client = self._authorization(location.subscription_id)
        with translated("list role assignments"):
            pager = client.role_assignments.list_for_scope(
                key_scope, filter=f"principalId eq '{principal}'"
            )
            async for assignment in pager:
                scope = (assignment.scope or "").rstrip("/").lower()
                if (assignment.principal_id or "").lower() == wanted and _covers(scope, key_scope):
                    roles.add(str(assignment.role_definition_id))
        return IdentityAccess(frozenset(permissions), frozenset(roles))

    def _authorization(self, subscription_id: str) -> AuthorizationManagementClient:
        return self._arm.get(AuthorizationManagementClient, subscription_id)


def _covers(scope: str, key_scope: str) -> bool:
    """Whether an assignment at ``scope`` applies to ``key_scope`` (same or a parent)."""
    target = key_scope.rstrip("/").lower()
    return bool(scope) and (target == scope or target.startswith(scope + "/"))


def _vault_facts(vault: Any | None) -> VaultFacts | None:
    if vault is None or vault.properties is None:
        return None
    props = vault.properties
    return VaultFacts(
        exists=True,
        # Azure leaves enableSoftDelete / enablePurgeProtection null when off.
        soft_delete=bool(props.enable_soft_delete),
        purge_protection=bool(props.enable_purge_protection),
        rbac=bool(props.enable_rbac_authorization),
    )


def _detail(lookup: KeyLookup, location: _VaultLocation | None) -> str:
    if location is None:
        return "the vault is not listed in the watched subscriptions; vault facts unknown"
    return lookup.detail
