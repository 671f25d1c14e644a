"""The Function App's record stores for the store-job operations (migrate, rotate-keks).

Only the Table kind holds application records in the Function App: its data table (records
and the mode row) and its KEK table. They are opened here from the context's one
``TableServiceClient`` under the data shard's name (``table:<KEYWARD_DEK_TABLE>``, the name
``GET /api/status`` lists), with the one bounded KEK-age query the sweep's crypto-period
rule asks. The CLI and applications open theirs through ``_record_ports`` (clients of their
own, from a connection string or an account URL); here the ports share the context's one
connection pool, as every other client of the Function App does. They need no write bound
(``shared.records._write_bound``, which the application's clients carry): every write of a
job is conditional on an ETag and moves toward its target, so a late one changes no count.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared.services._store_jobs import JobPorts, OldKek
from shared.settings import Settings

if TYPE_CHECKING:
    from azure.data.tables.aio import TableServiceClient


def build_job_ports(
    settings: Settings, tables: TableServiceClient
) -> tuple[dict[str, JobPorts], list[Any]]:
    """The record stores by shard name, and what to close with the context."""
    from shared.adapters.dek_table import (
        TableKekStore,
        TableModeStore,
        TableRecordStore,
        kek_older_than,
    )

    data = tables.get_table_client(settings.dek_table)
    keks = tables.get_table_client(settings.kek_table)

    def older_than(cutoff: datetime) -> Awaitable[OldKek | None]:
        return _old_kek(lambda: kek_older_than(keks, cutoff))

    ports = JobPorts(TableRecordStore(data), TableKekStore(keks), TableModeStore(data), older_than)
    return {f"table:{settings.dek_table}": ports}, [data, keks]


async def _old_kek(query: Callable[[], Awaitable[tuple[str, str, str] | None]]) -> OldKek | None:
    found = await query()
    return None if found is None else OldKek(*found)
