"""Flag records and pending-effects markers as JSON: the stored and the shown shape.

The flag store keeps a record (and, during a change, a pending marker) per account; ``GET
/api/status`` shows the same dict. The keys below are user-visible and stored: changing one
breaks the status API and records already in storage.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.dependents._flags import FlagRecord
from shared.dependents._reasons import Finding, Reason, Status


@dataclass(frozen=True)
class PendingEffects:
    """Effects decided but not all performed yet.

    Attributes:
        record: the record to store once every effect is done.
        effects: JSON-ready effects, in order (``{"kind": "event"|"tags", ...}``); events carry
            their CloudEvent type and id, so a replay sends the very same event.
        done: how many of ``effects`` are already performed.
        lease_until: the instance performing them holds the marker until then; another
            instance finishes a marker only once its lease has run out (the holder crashed)
            or was given up (``None``: the holder failed and let go).
    """

    record: FlagRecord
    effects: tuple[Mapping[str, Any], ...]
    done: int = 0
    lease_until: datetime | None = None


def record_to_dict(record: FlagRecord) -> dict[str, Any]:
    """The record as JSON-ready dict (status API and storage)."""

    def findings(items: Sequence[Finding]) -> list[list[str]]:
        return [[f.reason.value, f.detail] for f in items]

    def when(value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "account_id": record.account_id,
        "status": record.status.value,
        "reasons": findings(record.reasons),
        "key_id": record.key_id,
        "first_seen": when(record.first_seen),
        "last_seen": when(record.last_seen),
        "last_change": when(record.last_change),
        "unknown_since": when(record.unknown_since),
        "unknown_reasons": findings(record.unknown_reasons),
    }


def record_from_dict(data: Mapping[str, Any]) -> FlagRecord:
    """The record :func:`record_to_dict` wrote.

    Raises:
        KeyError, ValueError: not such a dict.
    """

    def findings(items: Sequence[Sequence[str]]) -> tuple[Finding, ...]:
        return tuple(Finding(Reason(code), detail) for code, detail in items)

    unknown_since = data.get("unknown_since")
    return FlagRecord(
        account_id=str(data["account_id"]),
        status=Status(data["status"]),
        reasons=findings(data.get("reasons", [])),
        key_id=str(data["key_id"]),
        first_seen=datetime.fromisoformat(data["first_seen"]),
        last_seen=datetime.fromisoformat(data["last_seen"]),
        last_change=datetime.fromisoformat(data["last_change"]),
        unknown_since=datetime.fromisoformat(unknown_since) if unknown_since else None,
        unknown_reasons=findings(data.get("unknown_reasons", [])),
    )
