"""Gather :class:`shared.dependents.KeyAccessFacts` for one key-dependent resource.

The same for every kind (a Face account, later any resource with a customer-managed key):
the key, its vault and the resource's identity are all the facts look at.

Three sources, each asked only what it alone knows:

* **ARM, Key Vault provider** (azure-mgmt-keyvault): does the vault exist, soft delete, purge
  protection, RBAC mode, access policies. The account names its vault by URI only, so vaults
  are found by listing the subscriptions keyward watches (the account's own included) and
  matching ``vaultUri``; the location is cached, the properties are read fresh every time.
* **ARM, authorization** (azure-mgmt-authorization): every role assignment at the key's
  scope or above it, for any principal (``atScope()`` at the key, once per key and pass;
  ARM includes management groups), the deny assignments at the vault or above (once per
  vault), and the definitions of the roles the account's identity or a group holds
  (``get_by_id``, built-in and custom alike, once per role). The verdict judges them
  (:mod:`shared.dependents._grants`).
* **Key Vault data plane**, through keyward's Key Vault adapter (the only module allowed to
  import ``azure.keyvault``): versions, attributes, ``key_ops``, type and size; see
  :mod:`shared.adapters._key_facts`. The vault must be on the allow-list first: a vault
  that is not is reported as unknown without any data-plane call.

Per pass (a sweep, or the accounts one event touches; :meth:`AzureKeyAccessReader.begin_pass`)
the vault's properties (network rules included) and deny assignments, each key's assignments
and each role definition are read once and shared by every account using them, concurrent
readers waiting for the one request in flight: a sweep costs a few ARM requests per vault,
key and role, not per account, and the next pass reads everything fresh.

Why "unknown" is reported rather than raised: one throttled or unreachable vault must not stop
a sweep, and it must never look like OK or LOST. A 429 anywhere gives ``THROTTLED``, a
connection failure or 5xx ``UNREACHABLE``; a vault ARM no longer lists whose host does not
answer either is gone (``VaultFacts(exists=False)``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from azure.mgmt.authorization.aio import AuthorizationManagementClient
from azure.mgmt.keyvault.aio import KeyVaultManagementClient

from shared.adapters._azure_errors import translated
from shared.adapters._key_facts import KeyFactsReader, KeyLookup
from shared.adapters.arm import ArmClients
from shared.adapters.keyvault import AsyncKeyVaultAdapter
from shared.crypto import VaultAllowList
from shared.dependents import (
    DenyAssignmentFacts,
    DependentResource,
    IdentityAccess,
    KeyAccessFacts,
    LookupStatus,
    RbacFacts,
    RoleAssignmentFacts,
    RoleDefinitionFacts,
    VaultFacts,
    assignment_from_arm,
    definition_from_arm,
    deny_from_arm,
    network_from_arm,
    normalize_vault_uri,
    vault_name_for,
)
from shared.errors import KeywardError, ServiceError, ThrottledError

_LOG = logging.getLogger(__name__)
#: A vault URI no listing found is not searched for again within this many seconds (accounts
#: on vaults outside the watched subscriptions would otherwise cost a listing each).
MISS_TTL_SECONDS = 60.0
_T = TypeVar("_T")


class _PassCache(Generic[_T]):
    """Values read once per pass; concurrent callers share the one request in flight.

    A failure is shared too (every account on a throttled vault reads THROTTLED in this pass,
    rather than each asking again), and forgotten with the pass.
    """

    def __init__(self) -> None:
        self._entries: dict[str, asyncio.Task[_T]] = {}

    def clear(self) -> None:
        self._entries = {}

    async def get(self, key: str, load: Callable[[], Awaitable[_T]]) -> _T:
        task = self._entries.get(key)
        if task is not None and task.get_loop() is not asyncio.get_running_loop():
            task = None  # made on another event loop (a host that runs one per invocation)
        if task is None:
            task = asyncio.ensure_future(load())
            self._entries[key] = task
        return await asyncio.shield(task)


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
        self._vault_props: _PassCache[Any | None] = _PassCache()
        self._assignments: _PassCache[tuple[RoleAssignmentFacts, ...]] = _PassCache()
        self._denies: _PassCache[tuple[DenyAssignmentFacts, ...] | None] = _PassCache()
        self._definitions: _PassCache[RoleDefinitionFacts | None] = _PassCache()
        #: ARM requests made, by kind (vault, assignments, denies, definition): measured.
        self.requests: dict[str, int] = {}

    def begin_pass(self) -> None:
        """Forget what the previous pass read: the next reads ask ARM again."""
        for cache in (self._vault_props, self._assignments, self._denies, self._definitions):
            cache.clear()

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
        """The vault's ARM model (read once per pass), or ``None`` when ARM says it no
        longer exists.

        Raises:
            ServiceError: any other failure.
        """
        return await self._vault_props.get(
            location.arm_id.lower(), lambda: self._read_vault(location)
        )

    async def _read_vault(self, location: _VaultLocation) -> Any | None:
        self._count("vault")
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
            # No identity, or a user-assigned one whose principal id is unknown: evaluate
            # says which (IDENTITY_MISSING, or UNKNOWN with the reason).
            return IdentityAccess()
        wanted = principal.lower()
        permissions: set[str] = set()
        for entry in vault.properties.access_policies or ():
            if (entry.object_id or "").lower() == wanted and entry.permissions is not None:
                permissions.update(
                    str(getattr(p, "value", p)) for p in entry.permissions.keys_property or ()
                )
        if not vault.properties.enable_rbac_authorization:
            return IdentityAccess(frozenset(permissions))  # access policies only: no RBAC read
        key_scope = f"{location.arm_id}/keys/{account.key_name}"
        rbac = await self._rbac(location, key_scope, wanted)
        roles = frozenset(
            a.role_definition_id for a in rbac.assignments or () if a.principal_id.lower() == wanted
        )
        return IdentityAccess(frozenset(permissions), roles, rbac)

    async def _rbac(self, location: _VaultLocation, key_scope: str, principal: str) -> RbacFacts:
        """What applies at ``key_scope`` for ``principal`` (and any group).

        Raises:
            ServiceError: listing the assignments failed (deny assignments and role
                definitions that cannot be read are reported as such, not raised).
        """
        vault_key = location.arm_id.lower()
        listed = await self._assignments.get(
            key_scope.lower(), lambda: self._list_assignments(location, key_scope)
        )
        relevant = tuple(
            a
            for a in listed
            if _applies(a.scope, location.arm_id, key_scope)
            and (a.principal_id.lower() == principal or a.principal_type.lower() == "group")
        )
        denies = await self._denies.get(vault_key, lambda: self._list_denies(location))
        applying = (
            None
            if denies is None
            else tuple(
                d
                for d in denies
                if _applies(d.scope, location.arm_id, key_scope)
                and (d.applies_to_children or d.scope.rstrip("/").lower() == key_scope.lower())
            )
        )
        definitions: dict[str, RoleDefinitionFacts] = {}
        for role_id in dict.fromkeys(a.role_definition_id for a in relevant):
            guid = _guid(role_id)
            found = await self._definitions.get(guid, functools.partial(self._definition, role_id))
            if found is not None:
                definitions[guid] = found
        return RbacFacts(relevant, definitions, applying)

    async def _list_assignments(
        self, location: _VaultLocation, key_scope: str
    ) -> tuple[RoleAssignmentFacts, ...]:
        """Every assignment at the key's scope or above it (``atScope()``, documented as "at
        or above the scope"; management groups included), for any principal."""
        self._count("assignments")
        client = self._authorization(location.subscription_id)
        found: list[RoleAssignmentFacts] = []
        with translated("list role assignments"):
            pager = client.role_assignments.list_for_scope(key_scope, filter="atScope()")
            async for assignment in pager:
                found.append(assignment_from_arm(assignment.serialize(keep_readonly=True)))
        return tuple(found)

    async def _list_denies(
        self, location: _VaultLocation
    ) -> tuple[DenyAssignmentFacts, ...] | None:
        """Deny assignments at the vault's scope or above (``atScope()``), once per vault: Azure
        makes them for managed applications and blueprints, at resource-group or resource
        scope, never on a single key. ``None`` when ARM refuses (keyward may lack
        ``denyAssignments/read``): unknown."""
        self._count("denies")
        client = self._authorization(location.subscription_id)
        found: list[DenyAssignmentFacts] = []
        try:
            with translated("list deny assignments"):
                pager = client.deny_assignments.list_for_scope(location.arm_id, filter="atScope()")
                async for deny in pager:
                    found.append(deny_from_arm(deny.serialize(keep_readonly=True)))
        except ServiceError as error:
            if error.transient:
                raise
            _LOG.warning("deny assignments at %s unreadable: %s", location.arm_id, error)
            return None
        return tuple(found)

    async def _definition(self, role_definition_id: str) -> RoleDefinitionFacts | None:
        """The role definition, or ``None`` when ARM refuses or does not know it."""
        self._count("definition")
        client = self._authorization(self._subscription_of(role_definition_id))
        try:
            with translated("read role definition"):
                model = await client.role_definitions.get_by_id(role_definition_id)
        except ServiceError as error:
            if error.transient:
                raise
            _LOG.warning("role definition %s unreadable: %s", role_definition_id, error)
            return None
        return definition_from_arm(model.serialize(keep_readonly=True))

    def _subscription_of(self, arm_id: str) -> str:
        parts = arm_id.strip("/").split("/")
        if len(parts) > 1 and parts[0].lower() == "subscriptions":
            return parts[1]
        return self._subscriptions[0] if self._subscriptions else ""

    def _count(self, what: str) -> None:
        self.requests[what] = self.requests.get(what, 0) + 1

    def _authorization(self, subscription_id: str) -> AuthorizationManagementClient:
        return self._arm.get(AuthorizationManagementClient, subscription_id)


def _guid(role_definition_id: str) -> str:
    """The GUID of a role definition id (the cache key shared by every scope's spelling)."""
    return role_definition_id.strip().rstrip("/").rsplit("/", 1)[-1].lower()


def _applies(scope: str, vault_scope: str, key_scope: str) -> bool:
    """Whether an assignment ARM listed (``atScope()``: at or above) applies to the key.

    The key's own scope and its parents by id apply; anything below the vault that is not the
    key (another key: ARM would not list it, but a sanity check costs nothing) does not;
    anything else was listed as inherited from above (a management group's id is no prefix
    of the key's, yet it applies).
    """
    own = scope.rstrip("/").lower()
    if _covers(own, key_scope):
        return True
    return bool(own) and not own.startswith(vault_scope.rstrip("/").lower() + "/")


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
        network=network_from_arm(props.as_dict()),
    )


def _detail(lookup: KeyLookup, location: _VaultLocation | None) -> str:
    if location is None:
        return "the vault is not listed in the watched subscriptions; vault facts unknown"
    return lookup.detail
