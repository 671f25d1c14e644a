"""Each vault's shared budget board in keyward's state table (``shared.rewrap.BudgetBoard``).

Every engine run that sends requests to a vault keeps one row here while it runs, so all of
keyward's workers (every process and Function instance) see each other and split the vault's
share (the rules: ``shared.rewrap._vault_share``). The state table is already shared by every
instance, strongly consistent within a partition, and stamps each write with the service's
own ``Timestamp``, which the rules use as the one clock all members agree on.

==================================  ==============  ===================================
PartitionKey                        RowKey          properties
==================================  ==============  ===================================
``budget:{vault host}``             member id       ``PerSecond`` (its key type's
``budget:subscription:{group}``                     published budget), ``Owner``
                                                    (host:pid: for operators)
==================================  ==============  ===================================

The second partition is a member's subscription group (``shared.rewrap.member_scopes``): the
same rows, written by the same heartbeat, for Key Vault's subscription-wide limit.

A partition holds one row per running engine of that vault (a handful to a few dozen), so a
heartbeat's read is small and costs nothing per DEK.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from shared.adapters._azure_errors import translated
from shared.errors import TransientServiceError
from shared.rewrap import BoardRow, BoardView

_PARTITION_PREFIX = "budget:"
#: PartitionKey and RowKey may not hold / \ # ? or control characters (U+0000-U+001F,
#: U+007F-U+009F), and hold at most 1 KiB.
_KEY_UNSAFE = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f]")
_MAX_OWNER = 200


def board_partition(vault: str) -> str:
    """The partition of a vault's board: ``budget:`` and its host, key-safe."""
    return _KEY_UNSAFE.sub("_", f"{_PARTITION_PREFIX}{vault.lower()}")[:255]


def _row(entity: Any) -> BoardRow:
    written = entity.metadata["timestamp"]
    if not isinstance(written, datetime):
        raise TransientServiceError("budget board: a row came back without its Timestamp")
    return BoardRow(
        member=str(entity["RowKey"]),
        written_at=written,
        etag=str(entity.metadata["etag"]),
        per_second=float(entity.get("PerSecond") or 0.0),
    )


class TableBudgetBoard:
    """The vaults' budget boards in the state table (the client is shared; its owner closes
    it)."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    async def beat(self, vault: str, member: str, *, per_second: float, owner: str) -> BoardView:
        """Upsert the member's row (the service stamps it), then read the vault's rows.

        Raises:
            ServiceError: the table could not be written or read (the member's own row
                missing from the read counts as transient).
        """
        partition = board_partition(vault)
        entity = {
            "PartitionKey": partition,
            "RowKey": _KEY_UNSAFE.sub("_", member),
            "PerSecond": float(per_second),
            "Owner": _KEY_UNSAFE.sub("_", owner)[:_MAX_OWNER],
        }
        with translated("write budget heartbeat"):
            await self._table.upsert_entity(entity, mode=UpdateMode.REPLACE)
        rows: list[BoardRow] = []
        with translated("read budget board"):
            query = self._table.query_entities("PartitionKey eq @pk", parameters={"pk": partition})
            async for found in query:
                rows.append(_row(found))
        own = next((row for row in rows if row.member == entity["RowKey"]), None)
        if own is None:
            raise TransientServiceError("budget board: the heartbeat's own row was not read back")
        return BoardView(own, tuple(rows))

    async def expire(self, vault: str, row: BoardRow) -> None:
        """Delete a dead member's row if it is unchanged since read (If-Match its ETag)."""
        with translated("expire budget board row"):
            try:
                await self._table.delete_entity(
                    board_partition(vault),
                    row.member,
                    etag=row.etag,
                    match_condition=MatchConditions.IfNotModified,
                )
            except (ResourceModifiedError, ResourceNotFoundError):
                return  # its member came back, or another member deleted it first

    async def leave(self, vault: str, member: str) -> None:
        """Delete the member's row (a missing row is not an error for ``delete_entity``)."""
        with translated("leave budget board"):
            await self._table.delete_entity(board_partition(vault), _KEY_UNSAFE.sub("_", member))
