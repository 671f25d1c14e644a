"""The application envelope's three ports (records, KEKs, mode row) of one ``--store``.

The operator's store jobs (``keyward migrate``, ``keyward rotate-keks``) name a store the way
every CLI command does (``sqlite:PATH``, ``table:CONNSTR:TABLE``) and need its record, KEK
and mode ports, not the rewrap engine's ``DekStore``: this opens them. Table: the data table
holds the records and the mode row, the KEK table (``KEYWARD_KEK_TABLE`` unless told) the
intermediate keys. SQLite: one file holds all three. Other kinds hold no records.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from shared.errors import ConfigurationError
from shared.records import KekStore, ModeStore, RecordStore
from shared.settings import SPECS

_KEK_TABLE_SETTING = "KEYWARD_KEK_TABLE"


def default_kek_table() -> str:
    """``KEYWARD_KEK_TABLE`` when set, else its documented default."""
    default = next(spec.default for spec in SPECS if spec.name == _KEK_TABLE_SETTING)
    return os.environ.get(_KEK_TABLE_SETTING) or default or ""


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


def open_record_ports(spec_text: str, *, kek_table: str | None = None) -> RecordPorts:
    """The ports of the store ``spec_text`` names (the connection string is never echoed).

    Raises:
        ConfigurationError: a kind that holds no application records, or a bad spec.
    """
    from shared.composition._stores import parse_store_spec

    spec = parse_store_spec(spec_text)
    if spec.kind == "sqlite":
        from shared.adapters.sqlite_records import SqliteRecords

        if spec.table and spec.table != "deks":
            raise ConfigurationError(f"{spec}: name the records file, not its {spec.table} table")
        opened = SqliteRecords.open(spec.path or spec.location)
        return RecordPorts(str(spec), opened.records, opened.keks, opened.modes, (opened.aclose,))
    if spec.kind == "table":
        from azure.data.tables.aio import TableClient

        from shared.adapters._pipeline import NO_REDIRECTS
        from shared.adapters.dek_table import TableKekStore, TableModeStore, TableRecordStore

        kek_name = kek_table or default_kek_table()
        data = TableClient.from_connection_string(
            spec.connection_string, spec.location, **NO_REDIRECTS
        )
        keks = TableClient.from_connection_string(spec.connection_string, kek_name, **NO_REDIRECTS)
        return RecordPorts(
            f"table:{spec.location} (KEKs in {kek_name})",
            TableRecordStore(data), TableKekStore(keks), TableModeStore(data),
            (data.close, keks.close),
        )  # fmt: skip
    raise ConfigurationError(
        f"{spec.kind} stores hold no application records: migrate and rotate-keks work on "
        "table and sqlite stores"
    )
