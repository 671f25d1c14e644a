"""The DEK-store registry: every store kind registers here once, and only here.

A registration says everything the rest of keyward needs to know about a kind:

* ``name``: the shard prefix (``table`` in ``table:keywarddeks``) and the CLI's ``--store``
  prefix;
* ``setting``: the app setting that configures it in the Function App (``None``: CLI only);
* ``build``: how the composition root builds the Function App's stores of this kind from
  :class:`~shared.settings.Settings` and the storage clients it already holds;
* ``usage`` and ``open``: how the CLI opens one store from a ``--store kind:...`` spec.

The composition root builds stores by iterating :func:`store_kinds`; the CLI parses and opens
``--store`` through :func:`parse_store_spec` and :func:`open_store`; the rewrap worker refuses
a shard whose kind is not configured. Adding a kind (say Cosmos DB) touches three product
files: its store module under ``shared/adapters/``, one :func:`register` call below, and its
setting in ``shared/settings/_specs.py`` (read in ``build`` with ``Settings.read``). Store
modules are imported inside ``build``/``open``, so an SDK is loaded only for a kind in use.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from shared.errors import ConfigurationError
from shared.records import EnvelopeSettings
from shared.settings import Settings
from shared.stores import DekStore

if TYPE_CHECKING:  # the SDK types only annotate; store modules load their SDK on use
    from azure.core.credentials_async import AsyncTokenCredential
    from azure.data.tables.aio import TableServiceClient
    from azure.storage.blob.aio import ContainerClient

#: Where ``--store table::NAME`` (an empty connection string) finds one.
CONNECTION_STRING_ENV = "AZURE_STORAGE_CONNECTION_STRING"


@dataclass(frozen=True)
class StorageClients:
    """What the composition root already built, for store builders to share (one pool each)."""

    settings: Settings
    credential: AsyncTokenCredential
    tables: TableServiceClient
    container: Callable[[str], ContainerClient]


@dataclass(frozen=True)
class StoreSpec:
    """A parsed ``--store`` value. ``repr`` never shows the connection string."""

    kind: str
    location: str
    connection_string: str = field(default="", repr=False)
    #: The table inside the location, when the kind has several (``sqlite:PATH:keks``).
    table: str = ""
    #: The file or account part of ``location`` when ``table`` is given.
    path: str = ""

    def __str__(self) -> str:
        return f"{self.kind}:{self.location}"


@dataclass(frozen=True)
class StoreKind:
    """One registered kind of DEK store (see the module docstring)."""

    name: str
    usage: str
    open: Callable[[StoreSpec], DekStore]
    parse: Callable[[str, str], StoreSpec]
    setting: str | None = None
    build: Callable[[StorageClients], Sequence[DekStore]] | None = None


_KINDS: dict[str, StoreKind] = {}


def register(kind: StoreKind) -> StoreKind:
    """Add ``kind`` to the registry (once per name)."""
    if kind.name in _KINDS:
        raise ValueError(f"store kind {kind.name!r} is registered twice")
    _KINDS[kind.name] = kind
    return kind


def store_kinds() -> tuple[StoreKind, ...]:
    """Every registered kind, in registration order."""
    return tuple(_KINDS.values())


def app_store_settings() -> str:
    """The settings that configure the Function App's stores (for error messages)."""
    return " / ".join(k.setting for k in _KINDS.values() if k.setting)


def build_app_stores(clients: StorageClients) -> dict[str, DekStore]:
    """The Function App's DEK stores by shard name (``kind:name``), every kind in turn."""
    stores: dict[str, DekStore] = {}
    for kind in _KINDS.values():
        for store in kind.build(clients) if kind.build else ():
            stores[store.name] = store
    return stores


def parse_store_spec(text: str) -> StoreSpec:
    """Parse a ``--store`` value: ``kind:...`` as the kind's ``usage`` says.

    Raises:
        ConfigurationError: an unknown kind, or a missing part.
    """
    name, _, rest = text.partition(":")
    kind = _KINDS.get(name)
    if kind is None:
        usages = [k.usage for k in _KINDS.values()]
        usage = ", ".join(usages[:-1]) + f" or {usages[-1]}" if len(usages) > 1 else usages[0]
        raise ConfigurationError(f"--store must be {usage}")
    return kind.parse(name, rest)


def open_store(spec: StoreSpec) -> DekStore:
    """The DEK store ``spec`` names.

    Raises:
        ConfigurationError: an unknown kind, or its module is not part of this installation.
    """
    kind = _KINDS.get(spec.kind)
    if kind is None:
        raise ConfigurationError(f"--store kind {spec.kind!r} is not known")
    try:
        return kind.open(spec)
    except ImportError:
        raise ConfigurationError(
            f"the {spec.kind} store is not available in this installation"
        ) from None


def parse_path(kind: str, rest: str) -> StoreSpec:
    """``kind:PATH`` (a local file)."""
    if not rest:
        raise ConfigurationError(f"--store {kind}: expected {kind}:PATH")
    return StoreSpec(kind, rest)


def parse_connection(kind: str, rest: str) -> StoreSpec:
    """``kind:CONNSTR:NAME``. Connection strings hold ``:`` themselves
    (``http://127.0.0.1:10002``), so the last ``:`` separates the name; an empty one reads
    ``AZURE_STORAGE_CONNECTION_STRING``. Errors name the kind, never the connection string."""
    connection, _, name = rest.rpartition(":")
    if not name:
        raise ConfigurationError(f"--store {kind}: expected {kind}:CONNSTR:NAME")
    connection = connection or os.environ.get(CONNECTION_STRING_ENV, "")
    if not connection:
        raise ConfigurationError(
            f"--store {kind}: no connection string (give one or set {CONNECTION_STRING_ENV})"
        )
    return StoreSpec(kind, name, connection)


# ---- the registrations ---------------------------------------------------------------------


#: The SQLite file's tables in the DEK layout: the records and the intermediate keys.
SQLITE_TABLES = ("deks", "keks")


def parse_sqlite(kind: str, rest: str) -> StoreSpec:
    """``sqlite:PATH`` (the records) or ``sqlite:PATH:keks`` (the same file's intermediate
    keys; the store's own name has that shape). Only a known table name after the last ``:``
    counts as one, so a path holding ``:`` still works."""
    spec = parse_path(kind, rest)
    path, _, table = rest.rpartition(":")
    if path and table in SQLITE_TABLES:
        return StoreSpec(kind, rest, table=table, path=path)
    return spec


def _open_sqlite(spec: StoreSpec) -> DekStore:
    from shared.stores import SqliteDekStore

    path = spec.path or spec.location
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    if spec.table and spec.table != SQLITE_TABLES[0]:
        return SqliteDekStore(path, table=spec.table)
    return SqliteDekStore(path)


def _open_table(spec: StoreSpec) -> DekStore:
    """Any table of the account (the data table, the KEK table): a mode-aware view, since
    only the data table holds a mode row (absent reads as direct: every page delegates)."""
    from shared.adapters.dek_table import ModeAwareTableStore

    return ModeAwareTableStore.from_connection_string(
        spec.connection_string, spec.location, mode_ttl=EnvelopeSettings().mode_ttl_seconds
    )


def _build_table(clients: StorageClients) -> Sequence[DekStore]:
    """Two shards: the data table, empty to the engine once its mode row says hierarchy,
    and the KEK table, which a vault rotation rewraps (a missing one reads as empty)."""
    from shared.adapters.dek_table import (
        KekTableShard,
        ModeAwareTableStore,
        TableDekStore,
        TableModeStore,
    )

    settings = clients.settings
    data = clients.tables.get_table_client(settings.dek_table)
    keks = clients.tables.get_table_client(settings.kek_table)
    return [
        ModeAwareTableStore(TableDekStore(data), TableModeStore(data),
                            mode_ttl=float(settings.mode_ttl)),
        KekTableShard(TableDekStore(keks)),
    ]  # fmt: skip


def _open_blob(spec: StoreSpec) -> DekStore:
    from shared.adapters.dek_blob import BlobDekStore

    return BlobDekStore.from_connection_string(spec.connection_string, spec.location)


def _build_blob(clients: StorageClients) -> Sequence[DekStore]:
    from shared.adapters.dek_blob import BlobDekStore

    return [BlobDekStore(clients.container(name)) for name in clients.settings.blob_containers]


register(StoreKind("sqlite", "sqlite:PATH[:keks]", _open_sqlite, parse_sqlite))
register(
    StoreKind("table", "table:CONNSTR:TABLE", _open_table, parse_connection,
              setting="KEYWARD_DEK_TABLE", build=_build_table)
)  # fmt: skip
register(
    StoreKind("blob", "blob:CONNSTR:CONTAINER", _open_blob, parse_connection,
              setting="KEYWARD_BLOB_CONTAINERS", build=_build_blob)
)  # fmt: skip
