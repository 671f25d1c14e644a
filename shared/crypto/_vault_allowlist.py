"""Which vaults keyward may talk to. Checked before any network call is made.

Entries come from the ``KEYWARD_VAULT_ALLOWLIST`` setting, comma separated:

* ``contoso-kv``: a vault name in the public cloud (``https://contoso-kv.vault.azure.net``).
* ``https://contoso-kv.vault.azure.cn``: a vault URL (any Azure cloud, or a Managed HSM).
* ``name=https://127.0.0.1:8443`` or ``name=hsm:https://127.0.0.1:8444``: a development
  origin (the local emulator) standing for vault ``name``. Only such an explicit entry ever
  admits a non-Azure host.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from shared.crypto._key_id import (
    DevVaultEndpoint,
    KeyId,
    is_valid_vault_name,
    parse_key_id,
    parse_vault_url,
)
from shared.errors import KeyIdError, VaultNotAllowedError

# A development origin: https, a plain host name or IPv4 address, an optional port; no user
# information, path, query or fragment (the key id parser compares origins as strings).
_DEV_ORIGIN = re.compile(
    r"https://[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?(?::(?P<port>[0-9]{1,5}))?"
)


@dataclass(frozen=True)
class AllowedVault:
    name: str
    url: str
    managed_hsm: bool = False


@dataclass(frozen=True)
class VaultAllowList:
    """An immutable set of trusted vaults, looked up by name or URL."""

    vaults: tuple[AllowedVault, ...]
    _dev_origins: Mapping[str, DevVaultEndpoint] = field(default_factory=dict, repr=False)

    @classmethod
    def parse(cls, entries: str | Iterable[str]) -> VaultAllowList:
        """Build from the setting's text (comma separated) or a list of entries.

        Raises:
            KeyIdError: an entry is neither a valid vault name, an Azure vault URL nor a
                ``name=https://origin`` development entry.
        """
        items = entries.split(",") if isinstance(entries, str) else list(entries)
        vaults: list[AllowedVault] = []
        dev: dict[str, DevVaultEndpoint] = {}
        for raw in items:
            entry = raw.strip()
            if not entry:
                continue
            if "=" in entry:
                name, _, target = entry.partition("=")
                name = name.strip().lower()
                target = target.strip()
                managed_hsm = target.startswith("hsm:")
                origin = target[len("hsm:") :] if managed_hsm else target
                if not is_valid_vault_name(name):
                    raise KeyIdError(f"allow-list entry {entry!r}: {name!r} is not a vault name")
                origin = origin.strip().rstrip("/").lower()
                match = _DEV_ORIGIN.fullmatch(origin)
                if not match or not 0 < int(match.group("port") or 443) < 65536:
                    raise KeyIdError(
                        f"allow-list entry {entry!r}: origin must be https://host:port"
                    )
                dev[origin] = DevVaultEndpoint(name, managed_hsm)
                vaults.append(AllowedVault(name, origin, managed_hsm))
            elif entry.lower().startswith("https://"):
                url, name, managed_hsm = parse_vault_url(entry.rstrip("/"))
                vaults.append(AllowedVault(name, url, managed_hsm))
            else:
                name = entry.lower()
                if not is_valid_vault_name(name):
                    raise KeyIdError(f"allow-list entry {entry!r} is not a valid vault name")
                vaults.append(AllowedVault(name, f"https://{name}.vault.azure.net"))
        return cls(tuple(vaults), MappingProxyType(dev))

    @property
    def dev_origins(self) -> Mapping[str, DevVaultEndpoint]:
        """The explicitly trusted development origins (read-only)."""
        return MappingProxyType(dict(self._dev_origins))

    def __bool__(self) -> bool:
        return bool(self.vaults)

    def by_name(self, vault_name: str) -> AllowedVault:
        """The allowed vault called ``vault_name``.

        Raises:
            VaultNotAllowedError: no such vault on the list.
        """
        wanted = vault_name.strip().lower()
        for vault in self.vaults:
            if vault.name == wanted:
                return vault
        raise VaultNotAllowedError(f"vault {vault_name!r} is not on the keyward vault allow-list")

    def allows_name(self, vault_name: str) -> bool:
        return any(v.name == vault_name.strip().lower() for v in self.vaults)

    def check_key_id(self, value: str, *, require_version: bool = True) -> KeyId:
        """Parse ``value`` and confirm its vault is allowed.

        Raises:
            KeyIdError: malformed key id or untrusted host.
            VaultNotAllowedError: well formed, but the vault is not on the list.
        """
        key_id = parse_key_id(value, require_version=require_version, dev_origins=self._dev_origins)
        if not any(v.url == key_id.vault_url for v in self.vaults):
            raise VaultNotAllowedError(
                f"vault {key_id.vault_url} is not on the keyward vault allow-list"
            )
        return key_id
