"""Gather :class:`shared.dependents.KeyAccessFacts` for one key-dependent resource.

The same for every kind (a Face account, later any resource with a customer-managed key):
the key, its vault and the resource's identity are all the facts look at.

The allow-list is checked first: an account whose key is in a vault that is not on it is
reported as unknown without any ARM or data-plane call.

Three sources, each asked only what it alone knows:

* **ARM, Key Vault provider** (azure-mgmt-keyvault): does the vault exist, soft delete, purge
  protection, RBAC mode, access policies. The account names its vault by URI only, so vaults
  are found by listing the subscriptions keyward watches (the account's own included) and
  matching ``vaultUri``; the location is cached, the properties are read fresh every pass.
  Each subscription is listed at most once per pass, however many vaults are looked for,
  and a vault found nowhere is not looked for again for ``MISS_TTL_SECONDS``.
* **ARM, authorization** (azure-mgmt-authorization): every role assignment at the key's
  scope or above it, for any principal (``atScope()`` at the key, once per key and pass;
  ARM includes management groups), the deny assignments at the vault or above (once per
  vault), and the definitions of the roles the account's identity or a group holds
  (``get_by_id``, built-in and custom alike, once per role). The verdict judges them
  (:mod:`shared.dependents._grants`).
* **Key Vault data plane**, through keyward's Key Vault adapter (the only module allowed to
  import ``azure.keyvault``): versions, attributes, ``key_ops``, type and size; see
  :mod:`shared.adapters._key_facts`, once per key (and pinned version) and pass.

Per pass (a sweep, or the accounts one event touches; :meth:`AzureKeyAccessReader.begin_pass`)
the vault's properties (network rules included) and deny assignments, each key's assignments
and each role definition are read once and shared by every account using them, concurrent
readers waiting for the one request in flight: a sweep costs a few ARM requests per vault,
key and role, not per account, and the next pass reads everything fresh.

Why "unknown" is reported rather than raised: one throttled or unreachable vault must not stop
a sweep, and it must never look like OK or LOST. A 429 anywhere gives ``THROTTLED``, a
connection failure, DNS failure or 5xx ``UNREACHABLE``. A vault is gone
(``VaultFacts(exists=False)``, ACCESS_LOST) only on positive evidence: ARM answered 404 for
the vault's own resource id, a fresh listing of the watched subscriptions does not find it
under another id (a vault moved to another resource group is found again), and Key Vault
does not serve the key (a vault moved where keyward does not watch still does). A vault ARM
never listed is never "gone", whatever its host answers.
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
#: A vault URI no listing found is not searched for again within this many seconds: three
#: dependents sweeps at the default schedule (``KEYWARD_DEPENDENTS_SWEEP_SCHEDULE``, every
#: 5 minutes), and never less than one sweep of a schedule up to every 15 minutes. Within a
#: pass the listing is bounded anyway (one per subscription, :meth:`AzureKeyAccessReader.
#: _locate`); this keeps passes that meet only known misses from listing at all.
MISS_TTL_SECONDS = 900.0
_GONE = (
    "ARM: the vault's resource id answers 404 and no watched subscription lists it; "
    "Key Vault does not serve the key either"
)
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
        miss_ttl_seconds: float = MISS_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._arm = arm
        self._allow_list = allow_list
        self._keys = KeyFactsReader(keyvault)
        self._subscriptions = tuple(subscriptions)
        self._locations: dict[str, _VaultLocation] = {}
        self._by_name: dict[str, _VaultLocation] = {}
        self._miss_ttl = miss_ttl_seconds
        self._clock = clock
        #: vault URIs no listing found, and when: not listed again for ``miss_ttl_seconds``.
        self._missing: dict[str, float] = {}
        #: vault URIs ARM answered 404 for at their own id and no listing found since.
        self._gone: set[str] = set()
        #: per pass: subscriptions whose vaults were listed; whether a gone vault still
        #: serves its key; each key's data-plane facts (by key id and pinned version).
        self._listings: _PassCache[None] = _PassCache()
        self._answers: _PassCache[bool] = _PassCache()
        self._lookups: _PassCache[KeyLookup] = _PassCache()
        self._vault_props: _PassCache[Any | None] = _PassCache()
        self._assignments: _PassCache[tuple[RoleAssignmentFacts, ...]] = _PassCache()
        self._denies: _PassCache[tuple[DenyAssignmentFacts, ...] | None] = _PassCache()
        self._definitions: _PassCache[RoleDefinitionFacts | None] = _PassCache()
        #: ARM requests made, by kind (vault, assignments, denies, definition): measured.
        self.requests: dict[str, int] = {}

    def begin_pass(self) -> None:
        """Forget what the previous pass read: the next reads ask ARM again."""
        caches: tuple[_PassCache[Any], ...] = (
            self._vault_props,
            self._assignments,
            self._denies,
            self._definitions,
            self._listings,
            self._answers,
            self._lookups,
        )
        for cache in caches:
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
        try:
            self._allow_list.check_key_id(account.key_ref, require_version=False)
        except KeywardError as error:
            # Not allow-listed: no ARM and no data-plane call at all; the verdict says UNKNOWN.
            return KeyAccessFacts(detail=str(error))
        uri = normalize_vault_uri(account.key_vault_uri)
        location = await self._locate(account.key_vault_uri, account.subscription_id)
        vault_model = await self._vault(location) if location is not None else None
        if location is not None and vault_model is None:
            # ARM: no vault at the id keyward had (its cache entry is dropped). Moved to another
            # resource group or subscription? Look again (this pass's one listing round).
            location = await self._locate(account.key_vault_uri, account.subscription_id)
            vault_model = await self._vault(location) if location is not None else None
            if vault_model is None:
                location = None
                self._gone.add(uri)
        if location is not None:
            self._gone.discard(uri)
        elif uri in self._gone:
            if not await self._answers.get(uri, lambda: self._keys.answers(account.key_ref)):
                # Positive evidence (docs/dependents-access.md): ARM answered 404 for the
                # vault's own id, no watched subscription lists it elsewhere, and Key Vault
                # does not serve the key either.
                return KeyAccessFacts(vault=VaultFacts(exists=False), detail=_GONE)
            self._gone.discard(uri)  # it serves the key: moved where keyward does not watch
        lookup = await self._lookups.get(
            f"{account.key_ref}#{account.key_version or ''}".lower(),
            lambda: self._keys.read(account),
        )
        if lookup.status is not LookupStatus.OK:
            # Throttled, or a transient failure (5xx, timeout, DNS): unknown, never "gone".
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
        """Where ARM keeps the vault serving ``vault_uri``, or ``None`` if no watched
        subscription lists it.

        Matched by ``vaultUri``, else by name (vault names are unique within a cloud), so an
        account that names its vault by another host still finds the vault's properties.
        A vault not yet known lists the watched subscriptions (and the account's own), each
        at most once per pass whatever the number of vaults looked up (:meth:`_list_vaults`);
        one found in none is not looked for again for ``miss_ttl_seconds``.

        Raises:
            ServiceError: a listing failed and no other listing found the vault.
        """
        key = normalize_vault_uri(vault_uri)
        name = vault_name_for(key, self._allow_list)
        location = self._locations.get(key) or self._by_name.get(name)
        if location is not None:
            return location
        last_miss = self._missing.get(key)
        if last_miss is not None and self._clock() - last_miss < self._miss_ttl:
            return None
        failure: ServiceError | None = None
        for subscription in dict.fromkeys(
            s.lower() for s in (subscription_id, *self._subscriptions)
        ):
            try:
                await self._listings.get(
                    subscription, functools.partial(self._list_vaults, subscription)
                )
            except ServiceError as error:
                failure = failure or error
        location = self._locations.get(key) or self._by_name.get(name)
        if location is not None:
            self._missing.pop(key, None)
            return location
        if failure is not None:
            raise failure  # the vault may be in the subscription that could not be listed
        self._missing[key] = self._clock()  # searched now, found nowhere
        return None

    async def _list_vaults(self, subscription: str) -> None:
        """List one subscription's vaults into the location cache (once per pass, shared)."""
        with translated("list key vaults"):
            pager = self._vaults(subscription).vaults.list_by_subscription()
            async for vault in pager:
                self._remember(vault)

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
