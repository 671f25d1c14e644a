"""A pure index from keys and vaults to the resources that depend on them.

An event names a key or a vault; the index answers "which resources" without a full ARM
listing, and the retirement report asks it which versions resources are still pinned to.
"""

from __future__ import annotations

from collections.abc import Iterable

from shared.crypto import VaultAllowList
from shared.dependents._models import DependentResource, normalize_vault_uri, vault_name_for
from shared.events import AccessScope


class AccountIndex:
    """Accounts by key and by vault, so an event finds its accounts without a full scan."""

    def __init__(self, accounts: Iterable[DependentResource]) -> None:
        self._accounts = tuple(accounts)
        self._by_key: dict[str, list[DependentResource]] = {}
        self._by_vault: dict[str, list[DependentResource]] = {}
        for account in self._accounts:
            self._by_key.setdefault(account.key_ref.lower(), []).append(account)
            self._by_vault.setdefault(account.key_vault_uri, []).append(account)

    def __len__(self) -> int:
        return len(self._accounts)

    @property
    def accounts(self) -> tuple[DependentResource, ...]:
        return self._accounts

    def for_key(self, key_ref: str) -> tuple[DependentResource, ...]:
        """Accounts pointing at ``key_ref`` (unversioned or versioned key id)."""
        vault, _, rest = key_ref.partition("/keys/")
        name = rest.split("/", 1)[0]
        return tuple(self._by_key.get(f"{normalize_vault_uri(vault)}/keys/{name}".lower(), ()))

    def for_vault(self, vault_uri: str) -> tuple[DependentResource, ...]:
        return tuple(self._by_vault.get(normalize_vault_uri(vault_uri), ()))

    def pinned_to_other_versions(self, key_ref: str, version: str) -> tuple[DependentResource, ...]:
        """Accounts pinned to ``key_ref`` at a version other than ``version``."""
        wanted = version.lower()
        return tuple(a for a in self.for_key(key_ref) if a.key_version and a.key_version != wanted)

    def pinned_to(self, key_ref: str, version: str) -> tuple[DependentResource, ...]:
        """Accounts pinned to exactly ``version`` (the retirement report's question)."""
        wanted = version.lower()
        return tuple(a for a in self.for_key(key_ref) if a.key_version == wanted)

    def in_scope(
        self, scope: AccessScope, allow_list: VaultAllowList
    ) -> tuple[DependentResource, ...]:
        """Accounts an access change in ``scope`` may affect (its vault, named as the
        allow-list names it, and its key when the scope has one; no vault: every account)."""
        return tuple(a for a in self._accounts if _in_scope(a, scope, allow_list))


def _in_scope(account: DependentResource, scope: AccessScope, allow_list: VaultAllowList) -> bool:
    if scope.vault_name is None:
        return True
    if vault_name_for(account.key_vault_uri, allow_list) != scope.vault_name.lower():
        return False
    return scope.key_name is None or scope.key_name.lower() == account.key_name.lower()
