"""Building the CLI's collaborators from its options; SDK-backed ones are imported lazily.

* DEK stores: ``--store kind:...`` is parsed and opened by the DEK-store registry
  (``shared.composition``: ``sqlite:PATH[:keks]``, ``table:CONNSTR:TABLE``,
  ``blob:CONNSTR:CONTAINER``, and whatever kind is registered there). No connection string
  is ever echoed: errors name the kind and the table or container.
* Key source: :func:`open_vault_keys`, ``shared.adapters.keyvault.AsyncKeyVaultAdapter`` with
  ``DefaultAzureCredential`` (it satisfies the engine's ``KeyVersionSource`` port as is).
  :func:`shared.cli.main` takes another :data:`KeySourceOpener` by injection: the development
  mode with local keys (``python -m devtools.cli_local``) is one, and lives in devtools.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from shared.crypto import VaultAllowList, is_valid_key_name
from shared.errors import ConfigurationError
from shared.rewrap import KeyVersionSource, SqliteJobStore

Closer = Callable[[], Awaitable[None]]


def open_jobs(path: Path) -> SqliteJobStore:
    """The SQLite job store at ``path`` (created on first use)."""
    return SqliteJobStore(path)


@dataclass(frozen=True)
class KeyTarget:
    """The key a command acts on: its unversioned id and the allow-list it was checked with."""

    key_ref: str
    allow_list: VaultAllowList


def key_target(vault: str, key: str) -> KeyTarget:
    """Validate ``--vault`` and ``--key``; returns the key's unversioned id.

    Raises:
        KeyIdError: the vault is not a valid name, URL or development entry.
        ConfigurationError: the key name is not valid.
    """
    allow_list = VaultAllowList.parse(vault)
    if len(allow_list.vaults) != 1:
        raise ConfigurationError("--vault takes exactly one vault")
    if not is_valid_key_name(key):
        raise ConfigurationError(f"--key {key!r} is not a valid Key Vault key name")
    return KeyTarget(f"{allow_list.vaults[0].url}/keys/{key}", allow_list)


#: Opens the key source a command reads versions from and unwraps with: ``(target,
#: ca_bundle) -> (source, close)``.
KeySourceOpener = Callable[[KeyTarget, str | None], Awaitable[tuple[KeyVersionSource, Closer]]]


async def open_vault_keys(
    target: KeyTarget, ca_bundle: str | None
) -> tuple[KeyVersionSource, Closer]:
    """Key Vault through ``DefaultAzureCredential``, and how to close it."""
    from azure.identity.aio import DefaultAzureCredential

    from shared.adapters.keyvault import AsyncKeyVaultAdapter

    credential = DefaultAzureCredential()
    adapter = AsyncKeyVaultAdapter(credential, target.allow_list, ca_bundle=ca_bundle)

    async def close() -> None:
        await adapter.close()
        await credential.close()

    return adapter, close
