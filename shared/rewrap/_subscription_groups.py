"""Which of keyward's vaults share a subscription's budget (``KEYWARD_VAULT_SUBSCRIPTIONS``).

Key Vault throttles a subscription too: all its vaults together get five times one vault's
budget (``shared.rewrap._budget.SUBSCRIPTION_BUDGET_FACTOR``). A vault's URL does not say
which subscription holds it, so keyward is told, as *groups*: vaults in one group are
counted against one subscription budget (a second scope of the same board,
``shared.rewrap._vault_share``). Every vault the setting does not name is in
:data:`DEFAULT_SUBSCRIPTION_GROUP`: by default all of keyward's vaults share one subscription
budget, which is conservative (vaults that are in fact in several subscriptions only go slower
than they could, never faster than they should).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from shared.crypto import VaultAllowList, is_valid_vault_name

#: The group of every vault ``KEYWARD_VAULT_SUBSCRIPTIONS`` does not name. A mapping may name
#: it too (its vaults then share the unmapped ones' subscription budget).
DEFAULT_SUBSCRIPTION_GROUP = "default"
#: A group's name: a letter or digit, then letters, digits, ``.``, ``_`` or ``-``; at most 63
#: characters (it becomes part of a Table PartitionKey). Compared in lower case.
_GROUP_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")


@dataclass(frozen=True)
class SubscriptionGroups:
    """Vault host -> subscription group, for the vaults a setting named (the rest: default).

    Attributes:
        by_host: ``(vault host, group)`` pairs, hosts in lower case as
            ``shared.rewrap._vault_share.vault_host`` names them.
    """

    by_host: tuple[tuple[str, str], ...] = ()

    def group_of(self, vault: str) -> str:
        """The group of the vault at host ``vault`` (:data:`DEFAULT_SUBSCRIPTION_GROUP` when
        unnamed)."""
        return dict(self.by_host).get(vault.lower(), DEFAULT_SUBSCRIPTION_GROUP)

    @classmethod
    def parse(cls, text: str, allow_list: VaultAllowList) -> SubscriptionGroups:
        """Read ``vault=group;vault=group`` (vault names as on the allow-list; empty: all in
        the default group).

        Raises:
            ValueError: an entry is not ``vault=group``, names an invalid vault or group, a
                vault not on the allow-list, or a vault twice.
        """
        pairs: dict[str, str] = {}
        for raw in text.split(";"):
            entry = raw.strip()
            if not entry:
                continue
            name, sep, group = (part.strip().lower() for part in entry.partition("="))
            if not sep or not name or not group:
                raise ValueError(f"entry {entry!r} is not vault=group (e.g. kv-a=sub1;kv-b=sub1)")
            if not is_valid_vault_name(name):
                raise ValueError(f"entry {entry!r}: {name!r} is not a vault name")
            if not _GROUP_NAME.fullmatch(group):
                raise ValueError(
                    f"entry {entry!r}: group {group!r} must be 1-63 letters, digits, '.', '_' "
                    "or '-', starting with a letter or digit"
                )
            if not allow_list.allows_name(name):
                raise ValueError(
                    f"entry {entry!r}: vault {name!r} is not on KEYWARD_VAULT_ALLOWLIST"
                )
            host = urlsplit(allow_list.by_name(name).url).netloc.lower()
            if host in pairs:
                raise ValueError(f"vault {name!r} is named twice")
            pairs[host] = group
        return cls(tuple(sorted(pairs.items())))
