"""The application envelope's three ports (records, KEKs, mode row) of one store: one home.

Two callers open them: an application (``shared.application.open_envelope``: a connection
string, or an account URL with a credential, or a SQLite file) and the operator's store jobs
(``keyward migrate``, ``keyward rotate-keks``), which name a store the way every CLI command
does (``sqlite:PATH``, ``table:CONNSTR:TABLE``). Both come here, so a store is opened the
same way (no redirects followed, the same names, the same closing) whoever asks. Table: the
data table holds the records and the mode row, the KEK table (``KEYWARD_KEK_TABLE`` unless
told) the intermediate keys. SQLite: one file holds all three. Other kinds hold no records.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from shared.errors import ConfigurationError
from shared.records import KekStore, ModeStore, RecordStore
from shared.settings import SPEC_BY_NAME

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential

_KEK_TABLE_SETTING = "KEYWARD_KEK_TABLE"


def default_kek_table() -> str:
    """``KEYWARD_KEK_TABLE`` when set, else its documented default."""
    return os.environ.get(_KEK_TABLE_SETTING) or SPEC_BY_NAME[_KEK_TABLE_SETTING].default or ""


@dataclass(frozen=True)
class RecordPorts:
    """One store's envelope ports, and how to close what was opened for them."""

    name: str
    records: RecordStore
    keks: KekStore
    modes: ModeStore
    closers: tuple[Callable[[], Awaitable[object]], ...] = ()

    async def aclose(self) -> None:
        for close in self.closers:
            await close()


def table_record_ports(
    table: str,
    kek_table: str,
    *,
    connection_string: str | None = None,
    account_url: str | None = None,
    credential: AsyncTokenCredential | None = None,
) -> RecordPorts:
    """The ports of data table ``table`` and KEK table ``kek_table`` of one storage account,
    reached by ``connection_string``, or by ``account_url`` with ``credential``. No I/O.

    Raises:
        ConfigurationError: not exactly one way to the account.
    """
    from azure.data.tables.aio import TableClient

    from shared.adapters._pipeline import NO_REDIRECTS
    from shared.adapters.dek_table import TableKekStore, TableModeStore, TableRecordStore
    from shared.records import TABLE_WRITE_CLIENT_OPTIONS

    # Bounded attempts and retries: a record write lands within MAX_WRITE_SECONDS or never
    # (shared/records/_write_bound.py), which the store jobs' counts rely on.
    options = {**NO_REDIRECTS, **TABLE_WRITE_CLIENT_OPTIONS}

    if bool(connection_string) == bool(account_url) or (account_url and credential is None):
        raise ConfigurationError(
            "a Table store needs a connection string, or an account URL with a credential"
        )

    def client(name: str) -> TableClient:
        if connection_string:
            return TableClient.from_connection_string(connection_string, name, **options)
        assert account_url is not None
        return TableClient(account_url, name, credential=credential, **options)

    data, keks = client(table), client(kek_table)
    return RecordPorts(
        f"table:{table} (KEKs in {kek_table})",
        TableRecordStore(data), TableKekStore(keks), TableModeStore(data),
        (data.close, keks.close),
    )  # fmt: skip


def sqlite_record_ports(path: str | Path) -> RecordPorts:
    """The ports of the SQLite file ``path`` (created when missing)."""
    from shared.adapters.sqlite_records import SqliteRecords

    opened = SqliteRecords.open(path)
    return RecordPorts(
        f"sqlite:{path}", opened.records, opened.keks, opened.modes, (opened.aclose,)
    )


def open_record_ports(spec_text: str, *, kek_table: str | None = None) -> RecordPorts:
    """The ports of the store ``spec_text`` names (the connection string is never echoed).

    Raises:
        ConfigurationError: a kind that holds no application records, or a bad spec.
    """
    from shared.composition._stores import parse_store_spec

    spec = parse_store_spec(spec_text)
    if spec.kind == "sqlite":
        if spec.table and spec.table != "deks":
            raise ConfigurationError(f"{spec}: name the records file, not its {spec.table} table")
        return sqlite_record_ports(spec.path or spec.location)
    if spec.kind == "table":
        return table_record_ports(
            spec.location, kek_table or default_kek_table(),
            connection_string=spec.connection_string,
        )  # fmt: skip
    raise ConfigurationError(
        f"{spec.kind} stores hold no application records: migrate and rotate-keks work on "
        "table and sqlite stores"
    )
