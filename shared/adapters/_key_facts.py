"""The Key Vault half of a key-dependent resource's facts: its key's versions and attributes.

Read through keyward's Key Vault adapter (:class:`AsyncKeyVaultAdapter`), which owns every
``azure.keyvault`` import, checks the allow-list before any call and maps SDK errors. Three
kinds of request, each as few as the verdict needs:

1. list the key's versions (``enabled``, ``nbf``, ``exp``, ``created`` of each);
2. GET the key's current version (type, size, ``key_ops`` and the ``kid`` the vault answers,
   whose host tells whether the key lives where the account points);
3. GET the pinned version when the account is pinned to an older one.

A key the vault does not know is looked up among deleted keys, so a soft-deleted key reads
``DELETED`` and not just ``MISSING``. Key Vault takes a few seconds to finish a soft delete,
during which the key is in neither collection (the SDKs' delete pollers wait for it by asking
``GET /deletedkeys/{name}`` every 2 s), so a key found in neither is asked about again for
up to ``DELETION_SETTLE_SECONDS`` before it is called missing: a key deleted a moment ago must
not read as MISSING (and from there PURGED). The wait runs once per absence, counted from when
the key was first found in neither (accounts sharing the key share the deadline), so a key
that stays missing costs one look per sweep, not a wait per account.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from shared.adapters.keyvault import AsyncKeyVaultAdapter, KeyVersionProperties, PublicKeyInfo
from shared.dependents import (
    DependentResource,
    KeyFacts,
    KeyPresence,
    KeyVersionFacts,
    LookupStatus,
)
from shared.errors import (
    KeyDisabledError,
    KeyNotFoundError,
    ServiceError,
    ThrottledError,
)

#: How long a key in neither collection is watched for showing up among the deleted keys.
DELETION_SETTLE_SECONDS = 6.0
#: Between two looks (the Azure SDKs' delete pollers use the same interval).
DELETION_POLL_SECONDS = 2.0


@dataclass(frozen=True)
class KeyLookup:
    """The outcome: facts when ``status`` is OK (``key`` may still be ``None``: unknown)."""

    status: LookupStatus
    key: KeyFacts | None = None
    detail: str = ""


def _failed(error: ServiceError) -> KeyLookup | None:
    """The lookup outcome for an error that makes the whole answer unknown, else ``None``."""
    if isinstance(error, ThrottledError):
        return KeyLookup(LookupStatus.THROTTLED, detail=str(error))
    if error.transient:
        return KeyLookup(LookupStatus.UNREACHABLE, detail=str(error))
    return None


class KeyFactsReader:
    """Reads :class:`KeyFacts` for an account's key through the Key Vault adapter."""

    def __init__(
        self,
        keyvault: AsyncKeyVaultAdapter,
        *,
        settle_seconds: float = DELETION_SETTLE_SECONDS,
        poll_seconds: float = DELETION_POLL_SECONDS,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._keyvault = keyvault
        self._settle = settle_seconds
        self._poll = poll_seconds
        self._sleep = sleep
        self._clock = clock
        #: key ref (lower case) -> when it was first found in neither collection.
        self._absent_since: dict[str, float] = {}

    async def read(self, account: DependentResource) -> KeyLookup:
        """The key's facts, or why they could not be learned. Never raises ServiceError."""
        try:
            versions = await self._keyvault.versions(account.key_ref)
        except KeyNotFoundError:
            return await self._absence(account)
        except ServiceError as error:
            return _failed(error) or KeyLookup(LookupStatus.OK, None, f"key unreadable: {error}")
        if not versions:
            return await self._absence(account)
        self._absent_since.pop(account.key_ref.lower(), None)
        try:
            current = await self._info(account.key_ref)
            pinned = None
            pinned_elsewhere = account.key_version is not None and (
                current is None or current.properties.version != account.key_version
            )
            if pinned_elsewhere and any(v.version == account.key_version for v in versions):
                pinned = await self._info(f"{account.key_ref}/{account.key_version}")
        except ServiceError as error:
            return _failed(error) or KeyLookup(LookupStatus.OK, None, f"key unreadable: {error}")
        fetched = {i.properties.version: i for i in (current, pinned) if i is not None}
        current_version = current.properties.version if current else _newest_disabled(versions)
        return KeyLookup(
            LookupStatus.OK,
            KeyFacts(
                presence=KeyPresence.PRESENT,
                kid=current.key_id if current else None,
                current_version=current_version,
                versions=tuple(_version_facts(v, fetched.get(v.version)) for v in versions),
            ),
        )

    async def answers(self, key_ref: str) -> bool:
        """Whether the vault answers for the key: it lists the key's versions, or answers with
        a refusal other than 404 (403, 429, 400: only a live vault answers at all).

        Asked only after ARM answered 404 for the vault's id (a vault that moved where keyward
        does not watch still serves its key, and must not read as gone). A 404 (a deleted
        vault's host, or a live vault without the key: access is lost either way) or a
        transient failure (DNS, connection, 5xx: nothing answered) does not contradict ARM.
        """
        try:
            return bool(await self._keyvault.versions(key_ref))
        except KeyNotFoundError:
            return False
        except ThrottledError:
            return True
        except ServiceError as error:
            return not error.transient

    async def _info(self, key_id: str) -> PublicKeyInfo | None:
        """GET one version (or the current one); ``None`` if refused as disabled (403).

        Key Vault answers a disabled key version with 200 and ``enabled: false``; the 403 is
        tolerated all the same (it is what secrets answer).

        Raises:
            ServiceError: any other refusal or failure.
        """
        try:
            return await self._keyvault.public_key(key_id)
        except KeyDisabledError:
            return None

    async def _absence(self, account: DependentResource) -> KeyLookup:
        """DELETED when the vault holds the key among its soft-deleted keys, else MISSING.

        Asked again every ``poll_seconds`` until ``settle_seconds`` after the key was first
        found in neither collection: a deletion still in progress shows in neither. A
        throttled or transient failure of that look makes the answer unknown (the key is
        absent from ``/keys``, but whether it is deleted or the vault merely hiccuped is not
        known); any other refusal (keyward may not list deleted keys) leaves it at MISSING,
        which is ACCESS_LOST as well.
        """
        key = account.key_ref.lower()
        deadline = self._absent_since.setdefault(key, self._clock()) + self._settle
        while True:
            try:
                deleted = await self._keyvault.is_soft_deleted(account.key_ref)
            except ServiceError as error:
                return _failed(error) or _absent(KeyPresence.MISSING)
            if deleted:
                self._absent_since.pop(key, None)
                return _absent(KeyPresence.DELETED)
            remaining = deadline - self._clock()
            if remaining <= 0 or self._poll <= 0:
                return _absent(KeyPresence.MISSING)
            await self._sleep(min(self._poll, remaining))


def _absent(presence: KeyPresence) -> KeyLookup:
    return KeyLookup(LookupStatus.OK, KeyFacts(presence))


def _newest_disabled(versions: list[KeyVersionProperties]) -> str | None:
    """The current version when its GET was refused as disabled: the newest disabled one."""
    disabled = [v for v in versions if not v.attributes_enabled]
    pool = disabled or versions
    return max(pool, key=lambda v: (v.created, v.version)).version if pool else None


def _version_facts(props: KeyVersionProperties, info: PublicKeyInfo | None) -> KeyVersionFacts:
    """One version's facts; type, size and ``key_ops`` only where the version was fetched."""
    detail = info.properties if info is not None else None
    return KeyVersionFacts(
        version=props.version,
        enabled=props.attributes_enabled,
        nbf=props.not_before,
        exp=props.expires_on,
        key_ops=info.key_ops if info is not None else None,
        kty=info.key_type if info is not None else None,
        key_size=detail.key_size if detail is not None else None,
        created=props.created,
    )
