"""Building the CLI's collaborators from its options; SDK-backed ones are imported lazily.

* DEK stores: ``sqlite:PATH`` (``shared.stores.SqliteDekStore``), ``table:CONNSTR:TABLE``
  (``TableDekStore``), ``blob:CONNSTR:CONTAINER`` (``shared.stores._blob.BlobDekStore``).
  Connection strings hold ``:`` themselves (``http://127.0.0.1:10002``), so the last ``:``
  separates the table or container; an empty one reads ``AZURE_STORAGE_CONNECTION_STRING``.
  No connection string is ever echoed: errors name the kind and the table or container.
* Key source: ``shared.adapters.keyvault.AsyncKeyVaultAdapter`` with ``DefaultAzureCredential``
  (it satisfies the engine's ``KeyVersionSource`` port as is), or, for development only, RSA
  keys from a local directory (``_local_keys``).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from shared.crypto import VaultAllowList, is_valid_key_name
from shared.errors import ConfigurationError
from shared.rewrap import KeyVersionSource, SqliteJobStore
from shared.stores import DekStore

_CONNECTION_STRING_ENV = "AZURE_STORAGE_CONNECTION_STRING"

Closer = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class StoreSpec:
    """A parsed ``--store`` value. ``repr`` never shows the connection string."""

    kind: str
    location: str
    connection_string: str = field(default="", repr=False)

    def __str__(self) -> str:
        return f"{self.kind}:{self.location}"


def parse_store_spec(text: str) -> StoreSpec:
    """Parse ``sqlite:PATH``, ``table:CONNSTR:TABLE`` or ``blob:CONNSTR:CONTAINER``.

    Raises:
        ConfigurationError: an unknown kind, or a missing part.
    """
    kind, _, rest = text.partition(":")
    if kind == "sqlite" and rest:
        return StoreSpec("sqlite", rest)
    if kind in ("table", "blob"):
        connection, _, name = rest.rpartition(":")
        if not name:
            raise ConfigurationError(f"--store {kind}: expected {kind}:CONNSTR:NAME")
        connection = connection or os.environ.get(_CONNECTION_STRING_ENV, "")
        if not connection:
            raise ConfigurationError(
                f"--store {kind}: no connection string (give one or set {_CONNECTION_STRING_ENV})"
            )
        return StoreSpec(kind, name, connection)
    raise ConfigurationError(
        "--store must be sqlite:PATH, table:CONNSTR:TABLE or blob:CONNSTR:CONTAINER"
    )


def open_store(spec: StoreSpec) -> DekStore:
    """The DEK store ``spec`` names (SDK modules imported only for Table and Blob).

    Raises:
        ConfigurationError: the store's module is not part of this installation.
    """
    if spec.kind == "sqlite":
        from shared.stores import SqliteDekStore

        Path(spec.location).parent.mkdir(parents=True, exist_ok=True)
        return SqliteDekStore(spec.location)
    if spec.kind == "table":
        from shared.stores import TableDekStore

        return TableDekStore.from_connection_string(spec.connection_string, spec.location)
    try:
        from shared.stores._blob import BlobDekStore
    except ImportError:
        raise ConfigurationError("the blob store is not available in this installation") from None
    return BlobDekStore.from_connection_string(spec.connection_string, spec.location)


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


async def open_key_source(
    target: KeyTarget, *, local_keys: Path | None, ca_bundle: str | None
) -> tuple[KeyVersionSource, Closer]:
    """The key source and how to close it: Key Vault, or local keys in development.

    Raises:
        ConfigurationError: the local key directory is unusable.
    """
    if local_keys is not None:
        from shared.cli._local_keys import load_local_keys

        return load_local_keys(local_keys), _nothing_to_close
    from azure.identity.aio import DefaultAzureCredential

    from shared.adapters.keyvault import AsyncKeyVaultAdapter

    credential = DefaultAzureCredential()
    adapter = AsyncKeyVaultAdapter(credential, target.allow_list, ca_bundle=ca_bundle)

    async def close() -> None:
        await adapter.close()
        await credential.close()

    return adapter, close


async def _nothing_to_close() -> None:
    return None
