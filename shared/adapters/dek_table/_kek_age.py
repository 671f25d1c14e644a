"""The sweep's crypto-period question about a KEK table, in one bounded query.

"Is any intermediate key older than the crypto-period?": one query of the KEK table with a
``CreatedAt`` filter and a top of one, first page only. The service may answer a first page
with nothing and a continuation (it scans server-side in bounded chunks); that reads as "none
this time" rather than following the continuation, so a timer run never costs more than one
request per store, whatever the number of KEKs. A KEK row names its Key Vault key
(``KeyRef``: the format-1 layout), which is the key the rotation wraps the new KEKs under.
"""

from __future__ import annotations

from datetime import UTC, datetime

from azure.data.tables.aio import TableClient

from shared.adapters.dek_table._missing import is_missing_table
from shared.adapters.dek_table._query import query_page
from shared.errors import ServiceError

_COLUMNS = ("PartitionKey", "RowKey", "KeyRef", "CreatedAt")


def created_before_filter(cutoff: datetime) -> str:
    """The OData filter: rows whose ``CreatedAt`` (Edm.DateTime) is before ``cutoff``."""
    stamp = cutoff.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return f"CreatedAt lt datetime'{stamp}'"


async def kek_older_than(table: TableClient, cutoff: datetime) -> tuple[str, str, str] | None:
    """A KEK created before ``cutoff`` (the first the service's first page holds) as
    (partition, version, key ref), or None.

    Raises:
        ServiceError: the table could not be read (a missing table reads as no KEK).
    """
    try:
        rows, _ = await query_page(
            table, created_before_filter(cutoff), _COLUMNS, 1, None, operation="KEK age"
        )
    except ServiceError as error:
        if is_missing_table(error):
            return None
        raise
    if not rows:
        return None
    row = rows[0]
    return str(row["PartitionKey"]), str(row["RowKey"]), str(row.get("KeyRef") or "")
