"""The ports the Face service needs, and a pure index from keys to accounts.

Adapters implement the protocols: the ARM inventory (``azure-mgmt-cognitiveservices``; Azure
Resource Graph would serve thousands of subscriptions behind the same protocol), the facts
reader (Key Vault + ARM vaults + role assignments), the account writer (re-point, tags), the
flag store and the event publisher. The Face service composes them; tests use in-memory fakes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol, runtime_checkable

from shared.face._facts import KeyAccessFacts
from shared.face._flags import FlagRecord, PublishEvent
from shared.face._models import FaceAccount, normalize_vault_uri


@runtime_checkable
class FaceInventory(Protocol):
    async def list_accounts(self) -> Sequence[FaceAccount]:
        """Every tracked account (kind Face, Key Vault key source) in the configured scope.

        Raises:
            ServiceError: ARM refused or failed (``transient`` says whether to retry).
        """
        ...


@runtime_checkable
class KeyAccessReader(Protocol):
    async def read(self, account: FaceAccount) -> KeyAccessFacts:
        """Gather facts for one account. Throttling and unreachable vaults are reported in
        ``KeyAccessFacts.lookup``, not raised, so one bad vault does not stop a sweep."""
        ...


@runtime_checkable
class FaceAccountWriter(Protocol):
    async def set_key_version(self, account: FaceAccount, version: str) -> None:
        """Set ``properties.encryption.keyVaultProperties.keyVersion`` (PATCH)."""
        ...

    async def set_tags(self, resource_id: str, tags: Mapping[str, str]) -> None:
        """Replace the resource's tags with ``tags`` (already merged with the owner's)."""
        ...


@runtime_checkable
class FlagStore(Protocol):
    async def get(self, account_id: str) -> FlagRecord | None: ...

    async def put(self, record: FlagRecord) -> None: ...

    async def all(self) -> Sequence[FlagRecord]: ...


@runtime_checkable
class FlagPublisher(Protocol):
    async def publish(self, event: PublishEvent) -> None:
        """Send one CloudEvent to the configured Event Grid topic."""
        ...


class AccountIndex:
    """Accounts by key and by vault, so an event finds its accounts without a full scan."""

    def __init__(self, accounts: Iterable[FaceAccount]) -> None:
        self._accounts = tuple(accounts)
        self._by_key: dict[str, list[FaceAccount]] = {}
        self._by_vault: dict[str, list[FaceAccount]] = {}
        for account in self._accounts:
            self._by_key.setdefault(account.key_ref.lower(), []).append(account)
            self._by_vault.setdefault(account.key_vault_uri, []).append(account)

    def __len__(self) -> int:
        return len(self._accounts)

    @property
    def accounts(self) -> tuple[FaceAccount, ...]:
        return self._accounts

    def for_key(self, key_ref: str) -> tuple[FaceAccount, ...]:
        """Accounts pointing at ``key_ref`` (unversioned or versioned key id)."""
        vault, _, rest = key_ref.partition("/keys/")
        name = rest.split("/", 1)[0]
        return tuple(self._by_key.get(f"{normalize_vault_uri(vault)}/keys/{name}".lower(), ()))

    def for_vault(self, vault_uri: str) -> tuple[FaceAccount, ...]:
        return tuple(self._by_vault.get(normalize_vault_uri(vault_uri), ()))

    def pinned_to_other_versions(self, key_ref: str, version: str) -> tuple[FaceAccount, ...]:
        """Accounts pinned to ``key_ref`` at a version other than ``version``."""
        wanted = version.lower()
        return tuple(a for a in self.for_key(key_ref) if a.key_version and a.key_version != wanted)

    def pinned_to(self, key_ref: str, version: str) -> tuple[FaceAccount, ...]:
        """Accounts pinned to exactly ``version`` (the retirement report's question)."""
        wanted = version.lower()
        return tuple(a for a in self.for_key(key_ref) if a.key_version == wanted)
