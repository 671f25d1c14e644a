"""The audit trail in keyward's state table: one row per mutating admin call, in dated
partitions so retention drops whole old days (``KEYWARD_RETENTION_DAYS``), as the event
ledger keeps its rejections.

=========================================  ==============================  ================
PartitionKey                               RowKey                          what
=========================================  ==============================  ================
``audit:{99999999 - YYYYMMDD}:{date}``     inverted time + random suffix   one call, by UTC
                                                                           day, newest first
=========================================  ==============================  ================

The inverted day leads the partition key, so one key-range query reads the newest day's rows
first, each day newest first: :meth:`TableAuditTrail.recent` reads at most ``limit`` rows
whatever the history. Rows hold ids, role names, the target and the outcome (no token).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from azure.data.tables.aio import TableClient

from shared.adapters._azure_errors import translated
from shared.adapters._table_expiry import delete_rows, row_keys

_AUDIT = "audit:"
#: The character after ``:``: ``prefix + ";"`` bounds a key range of ``prefix:...`` keys.
_AFTER_COLON = ";"
_MAX_TICKS = 10**19
_MAX_DAY_NUMBER = 99_999_999


def audit_partition(day: date) -> str:
    """Newest day first in key order: the inverted ``YYYYMMDD``, then the date to read."""
    return f"{_AUDIT}{_MAX_DAY_NUMBER - int(day.strftime('%Y%m%d')):08d}:{day.isoformat()}"


def _inverted_ticks(moment: datetime) -> str:
    return f"{_MAX_TICKS - int(moment.timestamp() * 1_000_000):020d}"


class TableAuditTrail:
    """The audit rows in the state table."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    async def append(self, entry: Mapping[str, Any]) -> None:
        """Write one row (``shared.services.audit.AuditEntry.to_dict``'s shape)."""
        at = datetime.fromisoformat(str(entry["at"])).astimezone(UTC)
        caller: Mapping[str, Any] = entry.get("caller") or {}
        row = {
            "PartitionKey": audit_partition(at.date()),
            "RowKey": f"{_inverted_ticks(at)}-{uuid.uuid4().hex[:12]}",
            "At": at.isoformat(),
            "Action": str(entry["action"]),
            "Target": str(entry.get("target") or "")[:1000],
            "Outcome": str(entry["outcome"]),
            "OperationId": str(entry.get("operation_id") or ""),
            "Detail": str(entry.get("detail") or "")[:1000],
            "CallerObjectId": str(caller.get("object_id") or ""),
            "CallerTenantId": str(caller.get("tenant_id") or ""),
            "CallerName": str(caller.get("name") or "")[:256],
            "CallerRoles": json.dumps([str(r) for r in caller.get("roles") or ()]),
            "CallerVia": str(caller.get("via") or ""),
        }
        with translated("record audit row"):
            await self._table.create_entity(row)

    async def recent(self, limit: int) -> list[dict[str, Any]]:
        """The newest rows, at most ``limit`` read (one key-range query)."""
        found: list[dict[str, Any]] = []
        if limit <= 0:
            return found
        with translated("list audit rows"):
            pages = self._table.query_entities(
                "PartitionKey ge @lo and PartitionKey lt @hi",
                parameters={"lo": _AUDIT, "hi": _AUDIT[:-1] + _AFTER_COLON},
                results_per_page=limit,
            )
            async for entity in pages:
                found.append(_entry_json(entity))
                if len(found) >= limit:
                    break
        return found

    async def expire(self, before: date, limit: int) -> int:
        """Delete up to ``limit`` rows of days before ``before`` (whole dated partitions)."""
        rows = await row_keys(
            self._table,
            "PartitionKey gt @lo and PartitionKey lt @hi",
            # Older days have larger inverted numbers: after ``before``'s own partition.
            {"lo": audit_partition(before), "hi": _AUDIT[:-1] + _AFTER_COLON},
            limit,
            "list expired audit rows",
        )
        return await delete_rows(self._table, rows, "expire audit rows")


def _entry_json(entity: Any) -> dict[str, Any]:
    caller = None
    if entity.get("CallerObjectId") or entity.get("CallerVia"):
        try:
            roles = [str(r) for r in json.loads(entity.get("CallerRoles") or "[]")]
        except ValueError:
            roles = []
        caller = {
            "object_id": entity.get("CallerObjectId") or "",
            "tenant_id": entity.get("CallerTenantId") or "",
            "name": entity.get("CallerName") or "",
            "roles": roles,
            "via": entity.get("CallerVia") or "",
        }
    return {
        "at": entity.get("At"),
        "action": entity.get("Action"),
        "caller": caller,
        "target": entity.get("Target"),
        "outcome": entity.get("Outcome"),
        "operation_id": entity.get("OperationId") or None,
        "detail": entity.get("Detail") or "",
    }
